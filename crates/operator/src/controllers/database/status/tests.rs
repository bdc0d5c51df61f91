use super::*;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use reconcile_kit::conditions::{READY, is_true};
use serde_json::json;
use webapp_api::DatabaseSpec;
use webapp_api::Phase;

fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(seconds).unwrap()
}

fn db(status: Option<DatabaseStatus>) -> Database {
    let spec: DatabaseSpec = serde_json::from_value(json!({"type": "postgresql", "version": "16"})).unwrap();
    let mut db = Database::new("orders", spec);
    db.metadata.namespace = Some("shop".into());
    db.metadata.generation = Some(2);
    db.status = status;
    db
}

fn statefulset(ready: i32) -> StatefulSet {
    serde_json::from_value(json!({"metadata": {"name": "orders", "generation": 1},
        "spec": {"replicas": 1, "selector": {}, "template": {}, "serviceName": "orders-headless"},
        "status": {"observedGeneration": 1, "replicas": 1, "readyReplicas": ready, "updatedReplicas": 1,
            "currentRevision": "r1", "updateRevision": "r1"}}))
    .unwrap()
}

fn running() -> Observed {
    Observed { statefulset: Some(statefulset(1)), ..Observed::default() }
}

fn condition<'a>(status: &'a DatabaseStatus, type_: &str) -> &'a webapp_api::common::Condition {
    status.conditions.iter().find(|c| c.type_ == type_).unwrap()
}

#[test]
fn a_ready_pod_runs_and_status_names_endpoint_and_secret_never_its_content() {
    let creating = Some(DatabaseStatus { phase: Some(Phase::Creating), ..DatabaseStatus::default() });
    let status = compute(&db(creating), &running(), None, at(10));
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(status.endpoint.as_deref(), Some("orders.shop.svc:5432"));
    assert_eq!(status.credentials_secret.as_deref(), Some("orders-credentials"));
    assert!(is_true(&status.conditions, READY) && !is_true(&status.conditions, PROGRESSING));
    assert_eq!(status.observed_generation, Some(2));
}

#[test]
fn a_converged_database_computes_the_status_it_has() {
    let first = compute(&db(None), &running(), None, at(10));
    let first = compute(&db(Some(first)), &running(), None, at(20));
    let again = compute(&db(Some(first.clone())), &running(), None, at(30));
    assert_eq!(again, first);
}

#[test]
fn an_unready_or_rolling_statefulset_is_still_creating_with_pod_problems_in_the_message() {
    let previous = Some(DatabaseStatus { phase: Some(Phase::Running), ..DatabaseStatus::default() });
    let waiting = compute(
        &db(previous.clone()),
        &Observed { statefulset: Some(statefulset(0)), ..Observed::default() },
        None,
        at(1),
    );
    assert_eq!(waiting.phase, Some(Phase::Creating));
    let mut rolling = statefulset(1);
    rolling.status.as_mut().unwrap().update_revision = Some("r2".into());
    let status =
        compute(&db(previous.clone()), &Observed { statefulset: Some(rolling), ..Observed::default() }, None, at(1));
    assert_eq!(status.phase, Some(Phase::Creating), "a version change is not Running before the new pod is");

    let pod: CachedPod = serde_json::from_value(json!({"metadata": {"name": "orders-0"}, "status": {"containerStatuses": [{"name": "postgres",
        "image": "postgres:16", "imageID": "", "ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}))
    .unwrap();
    let failing = Observed { statefulset: Some(statefulset(0)), pods: vec![Arc::new(pod)], ..Observed::default() };
    let status = compute(&db(previous), &failing, None, at(1));
    assert!(status.message.as_deref().unwrap().contains("orders-0: container postgres: CrashLoopBackOff"));
    assert_eq!(condition(&status, DEGRADED).reason, "PodsFailing");
}

#[test]
fn volume_growth_is_progress_and_an_impossible_one_degrades_without_stopping_the_server() {
    let resizing = Observed {
        volumes: Volumes::Resizing("volume data-orders-0 is growing to 20Gi (has 10Gi)".into()),
        ..running()
    };
    let status = compute(&db(Some(compute(&db(None), &running(), None, at(1)))), &resizing, None, at(2));
    assert_eq!(status.phase, Some(Phase::Running));
    assert_eq!(condition(&status, PROGRESSING).reason, "Resizing");
    assert!(status.message.as_deref().unwrap().contains("growing to 20Gi"));

    let stuck = Observed {
        volumes: Volumes::NotExpandable("StorageClass slow does not allow volume expansion".into()),
        ..running()
    };
    let status = compute(&db(Some(status.clone())), &stuck, None, at(3));
    assert_eq!(status.phase, Some(Phase::Running));
    let degraded = condition(&status, DEGRADED);
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "StorageNotExpandable"));
}

#[test]
fn a_missing_secret_of_an_initialised_server_fails_and_a_failure_is_reported() {
    let missing = Observed {
        credentials_missing: Some("the credentials Secret orders-credentials was deleted".into()),
        ..running()
    };
    let status = compute(&db(None), &missing, None, at(1));
    assert_eq!(status.phase, Some(Phase::Failed));
    assert_eq!(condition(&status, DEGRADED).reason, "CredentialsMissing");

    let failure =
        Failure { reason: "NotOwned".into(), message: "Service orders already exists".into(), retrying: false };
    let status = compute(&db(None), &Observed::default(), Some(&failure), at(1));
    assert_eq!((status.phase, condition(&status, READY).reason.as_str()), (Some(Phase::Failed), "NotOwned"));
}

#[test]
fn last_backup_comes_from_the_cronjob_and_is_kept_once_backups_stop() {
    let cronjob: CronJob = serde_json::from_value(
        json!({"metadata": {"name": "orders-backup"}, "spec": {"schedule": "@daily", "jobTemplate": {}},
        "status": {"lastSuccessfulTime": "2026-01-02T02:00:05Z"}}),
    )
    .unwrap();
    let with_backups = Observed { cronjob: Some(cronjob), ..running() };
    let status = compute(&db(None), &with_backups, None, at(1));
    let expected: Time = serde_json::from_value(json!("2026-01-02T02:00:05Z")).unwrap();
    assert_eq!(status.last_backup.as_ref(), Some(&expected));
    let later = compute(&db(Some(status)), &running(), None, at(2));
    assert_eq!(later.last_backup, Some(expected));
}

#[test]
fn pending_and_deleting_keep_the_lifecycle_edges() {
    let pending = pending(&db(None), at(1));
    assert_eq!(pending.phase, Some(Phase::Pending));
    let deleting = deleting(&db(Some(compute(&db(None), &running(), None, at(1)))), "removing children", at(2));
    assert_eq!(deleting.phase, Some(Phase::Deleting));
    assert_eq!(deleting.endpoint.as_deref(), Some("orders.shop.svc:5432"));
}

fn cronjob(status: serde_json::Value) -> CronJob {
    serde_json::from_value(json!({"metadata": {"name": "orders-backup"},
        "spec": {"schedule": "@daily", "jobTemplate": {}}, "status": status}))
    .unwrap()
}

#[test]
fn a_failed_backup_run_degrades_a_running_database_until_one_succeeds() {
    let failed =
        cronjob(json!({"lastScheduleTime": "2026-01-03T02:00:00Z", "lastSuccessfulTime": "2026-01-02T02:00:05Z"}));
    let observed = Observed { cronjob: Some(failed), ..running() };
    let before = compute(&db(None), &running(), None, at(0));
    let before = compute(&db(Some(before)), &running(), None, at(0));
    assert_eq!(before.phase, Some(Phase::Running));
    let status = compute(&db(Some(before.clone())), &observed, None, at(1));
    assert_eq!(status.phase, Some(Phase::Running), "the server still serves");
    let degraded = condition(&status, DEGRADED);
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "BackupFailing"));
    assert!(degraded.message.contains("2026-01-02T02:00:05Z"), "names the last success: {}", degraded.message);
    assert!(status.message.as_deref().unwrap().contains("backup run"), "{:?}", status.message);
    // The same observation again computes the same status (no write, no hot loop).
    assert_eq!(compute(&db(Some(status.clone())), &observed, None, at(2)), status);

    let never = cronjob(json!({"lastScheduleTime": "2026-01-03T02:00:00Z"}));
    let status = compute(&db(Some(before.clone())), &Observed { cronjob: Some(never), ..running() }, None, at(1));
    assert!(condition(&status, DEGRADED).message.contains("last successful backup: never"));

    for fine in [
        json!({"lastScheduleTime": "2026-01-03T02:00:00Z", "lastSuccessfulTime": "2026-01-03T02:00:09Z"}),
        json!({"lastScheduleTime": "2026-01-03T02:00:00Z", "active": [{"name": "orders-backup-1"}]}),
        json!({}),
    ] {
        let observed = Observed { cronjob: Some(cronjob(fine.clone())), ..running() };
        let status = compute(&db(Some(before.clone())), &observed, None, at(1));
        assert_eq!(condition(&status, DEGRADED).status, "False", "{fine}");
    }
}
