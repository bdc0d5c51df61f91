//! The Database operator on the real local control plane: PostgreSQL's children, the
//! credentials Secret made once and never rewritten, a user's Secret never touched,
//! backups on and off, volume growth, deletion policies, drift, zero writes when
//! converged, and what admission refuses.
//!
//! kwok runs no containers, so the server pod becomes Ready without PostgreSQL; what
//! would run in it (probes, commands) is covered by the plan's unit tests. Volumes bind
//! to PersistentVolumes each test creates, pre-bound to its claims.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::io::Write;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, RoleBinding};
use kube::api::{ApiResource, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client, ResourceExt};
use serde_json::json;
use webapp_api::{Database, Phase};
use webapp_operator::controllers::ControllerKind;

async fn setup(prefix: &str) -> (Client, TestNamespace, Operator) {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start_with(&ns.name, vec![ControllerKind::Database]).await;
    (client, ns, operator)
}

/// A Database `db` made from `spec` in a namespace of its own, with a volume of `size`
/// for each claim of `claims` (in the spec's storage class), once it is Running.
struct Fixture {
    client: Client,
    ns: TestNamespace,
    operator: Operator,
    api: Api<Database>,
    volumes: Volumes,
}

async fn running(prefix: &str, spec: serde_json::Value, claims: &[(&str, &str)]) -> Fixture {
    let (client, ns, operator) = setup(prefix).await;
    let class = spec["storage"]["storageClassName"].as_str().unwrap_or("standard").to_owned();
    let volumes = volumes(&client, &ns.name, &class, claims).await;
    let api = create(&client, &ns.name, "db", spec).await;
    wait_for(&api, "db", "Running", running_at(1)).await;
    Fixture { client, ns, operator, api, volumes }
}

fn database(name: &str, spec: serde_json::Value) -> Database {
    serde_json::from_value(json!({"apiVersion": "database.example.com/v1alpha1", "kind": "Database",
        "metadata": {"name": name}, "spec": spec}))
    .unwrap()
}

async fn create(client: &Client, ns: &str, name: &str, spec: serde_json::Value) -> Api<Database> {
    let api: Api<Database> = Api::namespaced(client.clone(), ns);
    api.create(&PostParams::default(), &database(name, spec)).await.expect("Database rejected");
    api
}

/// Waits for the Database to satisfy `check`; panics with its last status.
async fn wait_for(api: &Api<Database>, name: &str, what: &str, check: impl Fn(&Database) -> bool) -> Database {
    let found = eventually(Duration::from_secs(90), || async { api.get(name).await.ok().filter(|d| check(d)) }).await;
    if let Some(db) = found {
        return db;
    }
    let last = api.get(name).await.ok().and_then(|d| d.status);
    panic!("Database {name} never got {what}; last status: {last:#?}")
}

fn running_at(generation: i64) -> impl Fn(&Database) -> bool {
    move |d| {
        let status = d.status.as_ref();
        status.and_then(|s| s.phase) == Some(Phase::Running)
            && status.and_then(|s| s.observed_generation) == Some(generation)
    }
}

/// Until `check` holds for the object named `name` (or `None`: until it is gone).
async fn until<K, F>(api: &Api<K>, name: &str, what: &str, check: F) -> Option<K>
where
    K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    F: Fn(Option<&K>) -> bool,
{
    let found =
        eventually(Duration::from_secs(60), || async { api.get_opt(name).await.ok().filter(|o| check(o.as_ref())) })
            .await;
    found.unwrap_or_else(|| panic!("{name}: never {what}"))
}

const SEED: &str = "0 2 * * *";

/// The annotation approving a risky version change.
const APPROVE: &str = "database.example.com/approve-version-change";

fn seed_spec() -> serde_json::Value {
    json!({"type": "postgresql", "version": "13", "storage": {"size": "2Gi"},
        "backup": {"enabled": true, "schedule": SEED}})
}

/// Seed exercise 2: every child exists, the Database is Running, and its status says
/// where to connect and which Secret to read, never what is in it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_database_gets_its_children_and_runs() {
    let (client, ns, _operator) = setup("db-seed").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-my-db-0", "2Gi"), ("my-db-backup", "2Gi")]).await;
    let api = create(&client, &ns.name, "my-db", seed_spec()).await;
    let db = wait_for(&api, "my-db", "Running", running_at(1)).await;
    let status = db.status.unwrap();
    assert_eq!(status.endpoint, Some(format!("my-db.{}.svc:5432", ns.name)));
    assert_eq!(status.credentials_secret.as_deref(), Some("my-db-credentials"));
    assert_eq!(status.capacity.as_deref(), Some("2Gi"));

    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), &ns.name).get("my-db").await.unwrap();
    let owner = &statefulset.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("Database", Some(true)));
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    assert_eq!(services.get("my-db-headless").await.unwrap().spec.unwrap().cluster_ip.as_deref(), Some("None"));
    assert_eq!(services.get("my-db").await.unwrap().spec.unwrap().type_.as_deref(), Some("ClusterIP"));
    let cronjob = Api::<CronJob>::namespaced(client.clone(), &ns.name).get("my-db-backup").await.unwrap();
    let spec = cronjob.spec.unwrap();
    assert_eq!(spec.schedule, SEED);
    assert_eq!(spec.concurrency_policy.as_deref(), Some("Forbid"));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    for claim in ["data-my-db-0", "my-db-backup"] {
        let claim = claims.get(claim).await.unwrap();
        assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Bound"));
        assert!(
            claim.metadata.owner_references.is_none(),
            "volumes are never owned: the garbage collector cannot take them"
        );
    }

    let secret = Api::<Secret>::namespaced(client.clone(), &ns.name).get("my-db-credentials").await.unwrap();
    let data = secret.data.unwrap();
    let keys: Vec<&str> = data.keys().map(String::as_str).collect();
    assert_eq!(keys, ["database", "host", "password", "port", "uri", "username"]);
    let password = String::from_utf8(data["password"].0.clone()).unwrap();
    assert!(password.len() >= 24 && password.chars().all(|c| c.is_ascii_alphanumeric()));
    let uri = String::from_utf8(data["uri"].0.clone()).unwrap();
    assert_eq!(uri, format!("postgresql://postgres:{password}@my-db.{}.svc:5432/postgres", ns.name));
    let shown = serde_json::to_string(&api.get("my-db").await.unwrap()).unwrap();
    assert!(!shown.contains(&password), "the password leaked into the Database");
    kubectl_ok(&["-n", &ns.name, "wait", "--for=condition=Ready", "database/my-db", "--timeout=30s"]);
    // kstatus, which GitOps tools judge health with, reads it as Current.
    let objects = kubectl_ok(&["-n", &ns.name, "get", "databases", "-o", "json"]);
    let mut checker = tool("kstatus").stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().expect("cannot run kstatus");
    checker.stdin.take().unwrap().write_all(objects.as_bytes()).unwrap();
    let output = checker.wait_with_output().unwrap();
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "my-db Current");
}

/// The generated Secret is made once: a reconcile, a restart of the operator and a spec
/// change leave it byte for byte (and resourceVersion) as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_generated_secret_is_never_rewritten() {
    let Fixture { client, ns, operator, api, volumes: _volumes } =
        running("db-secret", json!({"type": "postgresql", "version": "16"}), &[("data-db-0", "1Gi")]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let before = secrets.get("db-credentials").await.unwrap();

    // A reconcile of the Running Database, counted, before the restart.
    let reconciles = "controller_runtime_reconcile_total{controller=\"database\",result=\"success\"}";
    operator.resync(&api, "db", reconciles, 1).await;
    assert!(operator.stop().await, "the operator did not stop cleanly");
    let _operator = Operator::start_with(&ns.name, vec![ControllerKind::Database]).await;
    let change = json!({"spec": {"version": "16.4"}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(&change)).await.unwrap();
    wait_for(&api, "db", "Running at generation 2", running_at(2)).await;

    let after = secrets.get("db-credentials").await.unwrap();
    assert_eq!(after.data, before.data, "the credentials changed");
    assert_eq!(after.metadata.resource_version, before.metadata.resource_version, "the Secret was written to");
}

/// A Secret of the generated Secret's name that the operator did not make for this data
/// (here: one naming a Database in an API version that does not exist, which the garbage
/// collector cannot resolve and leaves alone) blocks the Database: the operator may not
/// read Secrets, so it cannot tell whose it is, and it never reads, changes or deletes
/// it. Once it is gone, the Database makes its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_way_blocks_the_database_and_is_never_touched() {
    let (client, ns, _operator) = setup("db-inway").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-db-0", "1Gi")]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let left: Secret = serde_json::from_value(json!({"metadata": {"name": "db-credentials",
            "ownerReferences": [{"apiVersion": "database.example.com/v0gone", "kind": "Database", "name": "db",
                "uid": "00000000-0000-4000-8000-000000000000", "controller": true}]},
        "stringData": {"username": "old", "password": "old"}}))
    .unwrap();
    let left = secrets.create(&PostParams::default(), &left).await.unwrap();

    let api = create(&client, &ns.name, "db", json!({"type": "postgresql", "version": "16"})).await;
    let blocked = |d: &Database| {
        d.status
            .as_ref()
            .is_some_and(|s| s.phase == Some(Phase::Failed) && s.conditions.iter().any(|c| c.reason == "SecretExists"))
    };
    let status = wait_for(&api, "db", "Failed with SecretExists", blocked).await.status.unwrap();
    assert!(status.message.as_deref().is_some_and(|m| m.contains("delete or rename it")), "{status:?}");
    let after = secrets.get("db-credentials").await.unwrap();
    assert_eq!(after.metadata.resource_version, left.metadata.resource_version, "the Secret was written to");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    assert!(statefulsets.get_opt("db").await.unwrap().is_none(), "a server was made with someone else's Secret");

    // The user clears the way; the per-object backoff brings the Database back.
    secrets.delete("db-credentials", &DeleteParams::default()).await.unwrap();
    let db = wait_for(&api, "db", "Running", running_at(1)).await;
    let secret = secrets.get("db-credentials").await.unwrap();
    assert_ne!(secret.metadata.uid, left.metadata.uid);
    let owner = &secret.metadata.owner_references.as_ref().expect("no owner")[0];
    assert_eq!(owner.uid, db.metadata.uid.unwrap());
}

/// The operator killed (or its connection dropped) between creating the generated Secret
/// and unmarking the data claim: the claim says the create went out, so the 409 of the
/// next attempt is that Secret, which is used as it is (never read or written), and the
/// Database goes on to Running instead of blocking on its own Secret (SecretExists). The
/// state is built here as the interrupted attempt left it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_whose_create_answer_was_lost_is_taken_as_ours() {
    let (client, ns, operator) = setup("db-lostanswer").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-db-0", "1Gi")]).await;
    let labels = json!({"app.kubernetes.io/name": "database", "app.kubernetes.io/instance": "db",
        "app.kubernetes.io/managed-by": "webapp-operator"});
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    let claim: PersistentVolumeClaim =
        serde_json::from_value(json!({"metadata": {"name": "data-db-0", "labels": labels,
            "annotations": {"database.example.com/awaiting-credentials": "true",
                "database.example.com/credentials-create-sent": "true"}},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
            "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap();
    let claim = claims.create(&PostParams::default(), &claim).await.unwrap();
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let made: Secret = serde_json::from_value(json!({"metadata": {"name": "db-credentials", "labels": labels,
            "ownerReferences": [{"apiVersion": "v1", "kind": "PersistentVolumeClaim", "name": "data-db-0",
                "uid": claim.metadata.uid}]},
        "stringData": {"username": "postgres", "password": "made-by-the-lost-attempt"}}))
    .unwrap();
    let made = secrets.create(&PostParams::default(), &made).await.unwrap();

    let api = create(&client, &ns.name, "db", json!({"type": "postgresql", "version": "16"})).await;
    wait_for(&api, "db", "Running", running_at(1)).await;
    let after = secrets.get("db-credentials").await.unwrap();
    assert_eq!(after.metadata.resource_version, made.metadata.resource_version, "the Secret was written to");
    let annotations = claims.get("data-db-0").await.unwrap().metadata.annotations.unwrap_or_default();
    assert!(
        !annotations.keys().any(|k| k.starts_with("database.example.com/")),
        "the claim is still marked: {annotations:?}"
    );
    operator.events_sent().await;
    let reasons = event_reasons(&client, &ns.name).await;
    assert!(!reasons.iter().any(|r| r == "SecretExists"), "{reasons:?}");
}

/// A Secret the user names is used by the server and never touched; none is generated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_users_secret_is_used_and_never_touched() {
    let (client, ns, _operator) = setup("db-usersecret").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-db-0", "1Gi")]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let mine: Secret =
        serde_json::from_value(json!({"metadata": {"name": "mine"}, "stringData": {"password": "s3cret-of-mine"}}))
            .unwrap();
    let mine = secrets.create(&PostParams::default(), &mine).await.unwrap();
    let api =
        create(&client, &ns.name, "db", json!({"type": "postgresql", "version": "16", "credentialsSecret": "mine"}))
            .await;
    let db = wait_for(&api, "db", "Running", running_at(1)).await;
    assert_eq!(db.status.unwrap().credentials_secret.as_deref(), Some("mine"));

    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), &ns.name).get("db").await.unwrap();
    let container = &statefulset.spec.unwrap().template.spec.unwrap().containers[0];
    let password = container.env.iter().flatten().find(|e| e.name == "POSTGRES_PASSWORD").unwrap();
    assert_eq!(password.value_from.as_ref().unwrap().secret_key_ref.as_ref().unwrap().name, "mine");
    let after = secrets.get("mine").await.unwrap();
    assert_eq!(after.metadata.resource_version, mine.metadata.resource_version, "the user's Secret was written to");
    assert!(after.metadata.owner_references.is_none());
    assert!(secrets.get_opt("db-credentials").await.unwrap().is_none(), "a Secret was generated anyway");
}

/// Backups on: a CronJob on the schedule. Off: the CronJob goes, the backup volume stays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_backups_removes_the_cronjob_and_keeps_the_volume() {
    let spec = json!({"type": "postgresql", "version": "16",
        "backup": {"enabled": true, "schedule": "*/30 1-5 * * MON-FRI", "storage": {"size": "3Gi"}}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-backup", spec, &[("data-db-0", "1Gi"), ("db-backup", "3Gi")]).await;
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &ns.name);
    assert_eq!(cronjobs.get("db-backup").await.unwrap().spec.unwrap().schedule, "*/30 1-5 * * MON-FRI");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    let backup = claims.get("db-backup").await.unwrap();

    let off = json!({"spec": {"backup": {"enabled": false}}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(&off)).await.unwrap();
    wait_for(&api, "db", "Running at generation 2", running_at(2)).await;
    until(&cronjobs, "db-backup", "deleted", |c| c.is_none()).await;
    let kept = claims.get("db-backup").await.unwrap();
    assert_eq!(kept.metadata.uid, backup.metadata.uid, "the backup volume was replaced");
    assert!(kept.metadata.deletion_timestamp.is_none(), "the backup volume is being deleted");
}

/// A larger size grows the claim (the class allows it; nothing here resizes the volume,
/// so the status says it is growing); a smaller one is refused at admission.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn storage_grows_and_never_shrinks() {
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } = running(
        "db-grow",
        json!({"type": "postgresql", "version": "16", "storage": {"size": "1Gi"}}),
        &[("data-db-0", "1Gi")],
    )
    .await;

    let shrink = json!({"spec": {"storage": {"size": "512Mi"}}});
    let refused = api.patch("db", &PatchParams::default(), &Patch::Merge(&shrink)).await.unwrap_err();
    assert!(refused.to_string().contains("size cannot shrink"), "{refused}");

    let grow = json!({"spec": {"storage": {"size": "2Gi"}}});
    api.patch("db", &PatchParams::default(), &Patch::Merge(&grow)).await.unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    until(&claims, "data-db-0", "asked for 2Gi", |c| {
        c.and_then(|c| c.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?.get("storage").cloned())
            .is_some_and(|q| q.0 == "2Gi")
    })
    .await;
    let db = wait_for(&api, "db", "Resizing", |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Progressing" && c.reason == "Resizing"))
    })
    .await;
    let status = db.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Running), "the server keeps serving while its volume grows");
    assert_eq!(status.capacity.as_deref(), Some("1Gi"));
    // The StatefulSet's claim template cannot change and was not asked to.
    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), &ns.name).get("db").await.unwrap();
    let template = &statefulset.spec.unwrap().volume_claim_templates.unwrap()[0];
    assert_eq!(
        template.spec.as_ref().unwrap().resources.as_ref().unwrap().requests.as_ref().unwrap()["storage"].0,
        "1Gi"
    );
}

/// A class that does not allow expansion: nothing is sent, the status says why.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_that_cannot_grow_is_reported() {
    let spec =
        json!({"type": "postgresql", "version": "16", "storage": {"size": "1Gi", "storageClassName": "fixed-size"}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-fixed", spec, &[("data-db-0", "1Gi")]).await;
    api.patch("db", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"storage": {"size": "2Gi"}}})))
        .await
        .unwrap();
    let db = wait_for(&api, "db", "StorageNotExpandable", |d| {
        d.status
            .as_ref()
            .is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Degraded" && c.reason == "StorageNotExpandable"))
    })
    .await;
    assert!(db.status.unwrap().message.unwrap().contains("does not allow volume expansion"));
    let claim = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns.name).get("data-db-0").await.unwrap();
    assert_eq!(claim.spec.unwrap().resources.unwrap().requests.unwrap()["storage"].0, "1Gi");
}

async fn delete_and_wait(api: &Api<Database>, name: &str) {
    api.delete(name, &DeleteParams::default()).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt(name).await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "Database stuck: {:?}", api.get_opt(name).await.unwrap().and_then(|d| d.status));
}

/// A backup run that failed (scheduled after the last success, nothing running: its Job
/// used up its retries) degrades a Running Database with reason `BackupFailing`, naming
/// the last success, until a run succeeds. The CronJob's status is written here as the
/// CronJob controller would after a failed run (kwok's pods run no pg_dump).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_backup_degrades_the_database_until_a_run_succeeds() {
    let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": "@yearly"}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-backupfail", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &ns.name);
    let failed = json!({"status": {"lastScheduleTime": "2026-01-03T02:00:00Z",
        "lastSuccessfulTime": "2026-01-02T02:00:05Z"}});
    cronjobs.patch_status("db-backup", &PatchParams::default(), &Patch::Merge(&failed)).await.unwrap();
    let db = wait_for(&api, "db", "Degraded with BackupFailing", running_degraded("BackupFailing")).await;
    let condition = db.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Degraded").unwrap();
    assert!(condition.message.contains("2026-01-02T02:00:05"), "{}", condition.message);
    expect_events(&client, &ns.name, &["BackupFailing"]).await;

    let succeeded = json!({"status": {"lastSuccessfulTime": "2026-01-03T02:00:09Z"}});
    cronjobs.patch_status("db-backup", &PatchParams::default(), &Patch::Merge(&succeeded)).await.unwrap();
    wait_for(&api, "db", "healthy again after a successful run", not_degraded).await;
}

/// A schedule that stopped firing (here: the CronJob suspended by hand, its last run
/// three hours ago on an hourly schedule) degrades the Database too, naming the run
/// that never started; a run brings it back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_backup_degrades_the_database() {
    let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": "0 * * * *"}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-overdue", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &ns.name);
    let suspend = json!({"spec": {"suspend": true}});
    cronjobs.patch("db-backup", &PatchParams::default(), &Patch::Merge(&suspend)).await.unwrap();
    let time = |hours_ago: i64| {
        (chrono::Utc::now() - chrono::TimeDelta::hours(hours_ago)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let stopped = json!({"status": {"lastScheduleTime": time(3), "lastSuccessfulTime": time(3)}});
    cronjobs.patch_status("db-backup", &PatchParams::default(), &Patch::Merge(&stopped)).await.unwrap();
    let db = wait_for(&api, "db", "Degraded with BackupFailing (overdue)", running_degraded("BackupFailing")).await;
    let condition = db.status.unwrap().conditions.into_iter().find(|c| c.type_ == "Degraded").unwrap();
    assert!(condition.message.contains("no backup run has started since"), "{}", condition.message);

    let ran = json!({"status": {"lastScheduleTime": time(0), "lastSuccessfulTime": time(0)}});
    cronjobs.patch_status("db-backup", &PatchParams::default(), &Patch::Merge(&ran)).await.unwrap();
    wait_for(&api, "db", "healthy again after a run", not_degraded).await;
}

/// `deletionPolicy: Retain` (the default) keeps the data and backup volumes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_with_retain_keeps_the_volumes() {
    let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": "@daily"}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-retain", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    delete_and_wait(&api, "db").await;

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    for claim in ["data-db-0", "db-backup"] {
        let claim = claims.get(claim).await.unwrap();
        assert!(claim.metadata.deletion_timestamp.is_none(), "{} is being deleted", claim.name_any());
    }
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    assert!(statefulsets.get_opt("db").await.unwrap().is_none());
    assert!(Api::<CronJob>::namespaced(client.clone(), &ns.name).get_opt("db-backup").await.unwrap().is_none());
    expect_events(&client, &ns.name, &["Deleted"]).await;
}

fn owner_kinds(secret: Option<&Secret>) -> Vec<String> {
    let references = secret.and_then(|s| s.metadata.owner_references.clone()).unwrap_or_default();
    references.into_iter().map(|r| r.kind).collect()
}

/// Under `Retain` the credentials outlive the Database exactly as the data does: kept by
/// the data volume from their creation, left alone by the garbage collector when the
/// Database goes, and used as they are (same uid, same password, not written to) by a
/// Database re-created under the same name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_retain_a_re_created_database_keeps_its_credentials() {
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-keep", json!({"type": "postgresql", "version": "16"}), &[("data-db-0", "1Gi")]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let kept = |s: Option<&Secret>| owner_kinds(s) == ["Database", "PersistentVolumeClaim"];
    let before = until(&secrets, "db-credentials", "kept by its volume", kept).await.unwrap();

    delete_and_wait(&api, "db").await;
    // Evidence that the garbage collector looked: it strips the deleted owner's reference.
    let only_volume = |s: Option<&Secret>| owner_kinds(s) == ["PersistentVolumeClaim"];
    let stripped = until(&secrets, "db-credentials", "owned by its volume alone", only_volume).await.unwrap();

    create(&client, &ns.name, "db", json!({"type": "postgresql", "version": "16"})).await;
    wait_for(&api, "db", "Running", running_at(1)).await;
    let after = secrets.get("db-credentials").await.unwrap();
    assert_eq!(after.metadata.uid, before.metadata.uid, "a new Secret was made");
    assert_eq!(after.data, before.data, "the credentials changed");
    // Used as it is (the operator may create Secrets, never write to one): still kept by
    // the data alone, so it goes when the data goes.
    assert_eq!(after.metadata.resource_version, stripped.metadata.resource_version, "the Secret was written to");
    assert_eq!(owner_kinds(Some(&after)), ["PersistentVolumeClaim"]);
    expect_events(&client, &ns.name, &["CredentialsReused"]).await;
}

/// Retained data whose credentials were deleted: no new password (PostgreSQL would not
/// take it), no server, and `Failed` with `CredentialsMissing` saying how to recover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retained_data_without_its_credentials_is_failed_not_given_a_new_password() {
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-nocreds", json!({"type": "postgresql", "version": "16"}), &[("data-db-0", "1Gi")]).await;
    delete_and_wait(&api, "db").await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    secrets.delete("db-credentials", &DeleteParams::default()).await.unwrap();
    until(&secrets, "db-credentials", "deleted", |s| s.is_none()).await;

    create(&client, &ns.name, "db", json!({"type": "postgresql", "version": "16"})).await;
    let failed = |d: &Database| d.status.as_ref().and_then(|s| s.phase) == Some(Phase::Failed);
    let status = wait_for(&api, "db", "Failed", failed).await.status.unwrap();
    let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
    assert_eq!(degraded.reason, "CredentialsMissing");
    assert!(degraded.message.contains("data-db-0") && degraded.message.contains("restore"), "{}", degraded.message);
    // The Failed status is the evidence the credentials step ran and stopped there.
    assert!(secrets.get_opt("db-credentials").await.unwrap().is_none(), "a new password was made");
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    assert!(statefulsets.get_opt("db").await.unwrap().is_none(), "a server was started without its password");
}

/// `deletionPolicy: Delete` takes the volumes along, after the server's pod is gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_with_delete_removes_the_volumes() {
    let spec = json!({"type": "postgresql", "version": "16", "deletionPolicy": "Delete",
        "backup": {"enabled": true, "schedule": "@daily"}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-delete", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    delete_and_wait(&api, "db").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    for claim in ["data-db-0", "db-backup"] {
        assert!(claims.get_opt(claim).await.unwrap().is_none(), "{claim} is still there");
    }
    // With the data gone, the garbage collector takes its credentials too.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    until(&secrets, "db-credentials", "deleted with the data", |s| s.is_none()).await;
}

/// Hand-made drift is undone from the watch events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired() {
    let Fixture { client, ns, operator: _operator, api: _, volumes: _volumes } =
        running("db-drift", json!({"type": "postgresql", "version": "16"}), &[("data-db-0", "1Gi")]).await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let edit =
        json!({"spec": {"template": {"spec": {"containers": [{"name": "postgres", "image": "postgres:hacked"}]}}}});
    statefulsets.patch("db", &PatchParams::default(), &Patch::Strategic(&edit)).await.unwrap();
    services.delete("db", &DeleteParams::default()).await.unwrap();
    let repaired = eventually(Duration::from_secs(15), || async {
        let image = statefulsets.get("db").await.ok()?.spec?.template.spec?.containers[0].image.clone()?;
        let service = services.get_opt("db").await.ok()??;
        (image == "postgres:16" && service.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    assert!(repaired.is_some(), "drift not repaired within 15 s");
}

/// A converged Database costs no writes: forced resyncs send no POST, PUT, PATCH or DELETE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_reconcile_makes_zero_writes() {
    let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": "@hourly"}});
    let Fixture { client: _, ns: _ns, operator, api, volumes: _volumes } =
        running("db-nowrite", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    let reconciles = "controller_runtime_reconcile_total{controller=\"database\",result=\"success\"}";
    let writes = operator.writes_at_rest(&api, "db", reconciles, 3).await;
    assert_eq!(writes, 0.0, "a converged Database was written to");
    let reads = operator.requests_at_rest(&api, "db", reconciles, 3, &["GET"]).await;
    assert_eq!(reads, 0.0, "a converged Database was read from the API server, not the caches");
}

/// The image of the server container of the StatefulSet `db`.
async fn server_image(client: &Client, ns: &str) -> String {
    let statefulset = Api::<StatefulSet>::namespaced(client.clone(), ns).get("db").await.unwrap();
    statefulset.spec.unwrap().template.spec.unwrap().containers[0].image.clone().unwrap()
}

/// Running, and Degraded for `reason`.
fn running_degraded(reason: &'static str) -> impl Fn(&Database) -> bool {
    move |d| {
        d.status.as_ref().is_some_and(|s| {
            s.phase == Some(Phase::Running)
                && s.conditions.iter().any(|c| c.type_ == "Degraded" && c.reason == reason && c.status == "True")
        })
    }
}

/// Degraded is False.
fn not_degraded(d: &Database) -> bool {
    d.status.as_ref().is_some_and(|s| s.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "False"))
}

/// Failed at `generation` with reason `VersionChangeRefused`.
fn refused_at(generation: i64) -> impl Fn(&Database) -> bool {
    move |d| {
        let status = d.status.as_ref();
        status.and_then(|s| s.phase) == Some(Phase::Failed)
            && status.and_then(|s| s.observed_generation) == Some(generation)
            && status.is_some_and(|s| s.conditions.iter().any(|c| c.reason == "VersionChangeRefused"))
    }
}

/// A version the data directory may not survive (another major version, another C
/// library) is refused, and the server stays on the image it runs, until the user
/// approves that very version; going back to the running version is the way out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_risky_version_change_is_refused_until_approved() {
    let Fixture { client, ns, operator, api, volumes: _volumes } =
        running("db-version", json!({"type": "postgresql", "version": "13"}), &[("data-db-0", "1Gi")]).await;
    let version = |v: &str| Patch::Merge(json!({"spec": {"version": v}}));
    let approve = |v: &str| Patch::Merge(json!({"metadata": {"annotations": {APPROVE: v}}}));

    api.patch("db", &PatchParams::default(), &version("16")).await.unwrap();
    let refused = wait_for(&api, "db", "refused at generation 2", refused_at(2)).await;
    let message = refused.status.unwrap().message.unwrap();
    assert!(message.contains("cannot read the data directory of version 13"), "{message}");
    assert!(message.contains(APPROVE), "the message says how to approve: {message}");
    assert_eq!(server_image(&client, &ns.name).await, "postgres:13", "refused, yet the server image changed");

    // An approval of another version approves nothing: the operator looks again (one
    // more refused reconcile counted) and the image stays.
    let refusals = "controller_runtime_reconcile_errors_total{controller=\"database\",reason=\"VersionChangeRefused\"}";
    let before = operator.metric(refusals).await;
    assert!(before > 0.0, "the refusal was not counted");
    api.patch("db", &PatchParams::default(), &approve("15")).await.unwrap();
    eventually(Duration::from_secs(30), || async { (operator.metric(refusals).await > before).then_some(()) })
        .await
        .expect("the operator never looked at the approval of version 15");
    assert_eq!(server_image(&client, &ns.name).await, "postgres:13", "an approval of 15 let 16 through");

    api.patch("db", &PatchParams::default(), &approve("16")).await.unwrap();
    wait_for(&api, "db", "Running at generation 2", running_at(2)).await;
    assert_eq!(server_image(&client, &ns.name).await, "postgres:16");
    let warning = eventually(Duration::from_secs(20), || async {
        let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("VersionChange"))
    })
    .await
    .expect("no VersionChange event");
    assert_eq!(warning.type_.as_deref(), Some("Warning"));

    // glibc to musl, within one major version: refused too; going back is the way out.
    api.patch("db", &PatchParams::default(), &version("16-alpine")).await.unwrap();
    let refused = wait_for(&api, "db", "refused at generation 3", refused_at(3)).await;
    assert!(refused.status.unwrap().message.unwrap().contains("from glibc to musl"));
    assert_eq!(server_image(&client, &ns.name).await, "postgres:16");
    api.patch("db", &PatchParams::default(), &version("16")).await.unwrap();
    wait_for(&api, "db", "Running at generation 4", running_at(4)).await;
}

/// What cannot be realised or done safely is refused before any controller sees it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_inputs_are_rejected_at_admission() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "db-admission").await;
    let api: Api<Database> = Api::namespaced(client.clone(), &ns.name);
    // Untyped, so that what the Rust types cannot even hold reaches the API server.
    let raw: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &ApiResource::erase::<Database>(&()));
    let refused = |spec: serde_json::Value, expected: &'static str| {
        let raw = raw.clone();
        async move {
            let object: DynamicObject = serde_json::from_value(json!({"apiVersion": "database.example.com/v1alpha1",
                "kind": "Database", "metadata": {"name": "bad"}, "spec": spec}))
            .unwrap();
            let error = raw.create(&PostParams::default(), &object).await.unwrap_err();
            assert!(error.to_string().contains(expected), "{spec}: {error}");
        }
    };
    refused(json!({"type": "mysql", "version": "8"}), "Unsupported value: \"mysql\"").await;
    refused(json!({"type": "postgresql", "version": ""}), "spec.version").await;
    refused(json!({"type": "postgresql", "version": "latest"}), "version must be an image tag").await;
    refused(json!({"type": "postgresql", "version": "16", "storage": {"size": "10Gb"}}), "size must be a quantity")
        .await;
    for schedule in ["every night", "61 * * * *", "0 2 * *", "0 25 * * *", "0 2 * * 8"] {
        let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": schedule}});
        refused(spec, "must be a cron schedule").await;
    }
    refused(json!({"type": "postgresql", "version": "16", "backup": {"enabled": true}}), "backup.schedule is required")
        .await;
    for schedule in ["0 2 * * *", "*/15 1-5 * * mon-fri", "@daily", "0 0 1,15 jan,jul ?"] {
        let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": schedule}});
        let db = api.create(&PostParams::default(), &database("good", spec)).await;
        assert!(db.is_ok(), "{schedule}: {db:?}");
        api.delete("good", &DeleteParams::default()).await.unwrap();
        eventually(Duration::from_secs(10), || async { api.get_opt("good").await.ok()?.is_none().then_some(()) }).await;
    }

    // Transition rules, on updates of an existing Database (no operator runs here).
    let spec =
        json!({"type": "postgresql", "version": "16", "storage": {"size": "10Gi", "storageClassName": "standard"}});
    api.create(&PostParams::default(), &database("db", spec)).await.unwrap();
    for (patch, expected) in [
        (json!({"spec": {"storage": {"size": "5Gi"}}}), "size cannot shrink"),
        (json!({"spec": {"storage": {"storageClassName": "fast"}}}), "storageClassName cannot be changed"),
        (json!({"spec": {"credentialsSecret": "other"}}), "credentialsSecret cannot be changed"),
    ] {
        let error = api.patch("db", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap_err();
        assert!(error.to_string().contains(expected), "{patch}: {error}");
    }
    api.patch("db", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"storage": {"size": "20Gi"}}})))
        .await
        .unwrap();
}

/// The Database controller needs no more than `config/rbac/role.yaml` grants: run as a
/// ServiceAccount bound to that ClusterRole in its namespace, it makes a Database run
/// and deletes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_controller_works_with_the_least_privilege_role() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "db-rbac").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    let role = include_str!("../../../config/rbac/role.yaml").split("\n---\n").next().unwrap();
    let role: ClusterRole = serde_saphyr::from_str(role).unwrap();
    let params = PatchParams::apply("webapp-operator-tests").force();
    Api::<ClusterRole>::all(client.clone()).patch(&role.name_any(), &params, &Patch::Apply(&role)).await.unwrap();
    let binding: RoleBinding = serde_json::from_value(json!({"metadata": {"name": "operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": role.name_any()},
        "subjects": [{"kind": "ServiceAccount", "name": "operator", "namespace": ns.name}]}))
    .unwrap();
    Api::<RoleBinding>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &binding).await.unwrap();
    let account: ServiceAccount = serde_json::from_value(json!({"metadata": {"name": "operator"}})).unwrap();
    Api::<ServiceAccount>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &account).await.unwrap();

    let mut as_operator = kube_config().await;
    as_operator.auth_info.impersonate = Some(format!("system:serviceaccount:{}:operator", ns.name));
    // The identity is really the ServiceAccount's: what the role does not grant is refused.
    let restricted = Client::try_from(as_operator.clone()).unwrap();
    let refused = Api::<k8s_openapi::api::core::v1::Namespace>::all(restricted).list(&ListParams::default()).await;
    assert!(matches!(refused, Err(kube::Error::Api(ref s)) if s.code == 403), "{refused:?}");
    let config = Operator::config(&ns.name, vec![ControllerKind::Database]);
    let operator = Operator::start_as(config, as_operator).await;
    let spec = json!({"type": "postgresql", "version": "16", "deletionPolicy": "Delete",
        "backup": {"enabled": true, "schedule": "@daily"}});
    let api = create(&client, &ns.name, "db", spec).await;
    wait_for(&api, "db", "Running", running_at(1)).await;
    delete_and_wait(&api, "db").await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    assert!(
        claims.list(&ListParams::default()).await.unwrap().items.is_empty(),
        "volumes left with deletionPolicy Delete"
    );
    let errors = operator
        .metric_or_zero_if_family_exists(
            "controller_runtime_reconcile_errors_total{controller=\"database\",reason=\"Forbidden\"}",
        )
        .await;
    assert_eq!(errors, 0.0, "the role lacks a permission");
}

/// A StatefulSet of the Database's name that another owner made: the Database is Failed
/// with NotOwned and the StatefulSet is never written, not even by a later reconcile
/// (its resourceVersion is unchanged after one, counted by the NotOwned error metric);
/// once it is gone, the Database makes its own and runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statefulset_it_does_not_own_is_never_written() {
    let (client, ns, operator) = setup("db-notowned").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-db-0", "1Gi")]).await;
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    let theirs: StatefulSet = serde_json::from_value(json!({"metadata": {"name": "db", "labels": {"team": "other"}},
        "spec": {"serviceName": "theirs", "replicas": 1, "selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}},
                "spec": {"containers": [{"name": "c", "image": "mysql:8"}]}}}}))
    .unwrap();
    statefulsets.create(&PostParams::default(), &theirs).await.unwrap();

    let api = create(&client, &ns.name, "db", json!({"type": "postgresql", "version": "16"})).await;
    let failed = wait_for(&api, "db", "Failed/NotOwned", |d| {
        d.status.as_ref().is_some_and(|s| {
            s.phase == Some(Phase::Failed)
                && s.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "NotOwned")
        })
    })
    .await;
    assert!(failed.status.unwrap().message.unwrap().contains("not owned"));

    let before = statefulsets.get("db").await.unwrap();
    let not_owned = "controller_runtime_reconcile_errors_total{controller=\"database\",reason=\"NotOwned\"}";
    operator.resync(&api, "db", not_owned, 1).await;
    let after = statefulsets.get("db").await.unwrap();
    assert_untouched(&before.metadata, &after.metadata, "their StatefulSet");

    statefulsets.delete("db", &DeleteParams::default()).await.unwrap();
    wait_for(&api, "db", "Running once their StatefulSet is gone", running_at(1)).await;
    let ours = statefulsets.get("db").await.unwrap();
    assert_eq!(ours.metadata.owner_references.unwrap()[0].kind, "Database");
}

/// Watches `api` on a task of its own, handing each event to `on` with `seen` locked;
/// stopped by aborting the task.
fn record<K, S, F>(api: Api<K>, seen: &Arc<Mutex<S>>, on: F) -> tokio::task::JoinHandle<()>
where
    K: kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
    S: Send + 'static,
    F: Fn(&mut S, watcher::Event<K>) + Send + 'static,
{
    let seen = seen.clone();
    tokio::spawn(async move {
        let mut stream = watcher(api, watcher::Config::default()).boxed();
        while let Some(Ok(event)) = stream.next().await {
            on(&mut seen.lock().unwrap(), event);
        }
    })
}

/// With `deletionPolicy: Delete`, the volumes are asked to go only once the server's
/// pod is gone. The pod is held (a finalizer of the test's) after its StatefulSet went:
/// counted cleanup attempts leave the claims alone until it is released. Watches of the
/// pod and the claims record the pod's removal and each claim's deletion request with
/// their resourceVersions: with one etcd, those are the revisions at which the changes
/// were stored, so they order changes of two kinds, which the arrival order of two
/// watch streams would not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_delete_the_volumes_go_only_after_the_server_pod() {
    let spec = json!({"type": "postgresql", "version": "16", "deletionPolicy": "Delete",
        "backup": {"enabled": true, "schedule": "@daily"}});
    let Fixture { client, ns, operator, api, volumes: _volumes } =
        running("db-order", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    #[derive(Default)]
    struct Seen {
        listed: usize,
        /// The resourceVersion of the server pod's removal.
        pod_gone: Option<u64>,
        /// Each claim's name and the resourceVersion that first shows it being deleted.
        claims_deleting: Vec<(String, u64)>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    fn version(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> u64 {
        meta.resource_version.as_deref().unwrap().parse().unwrap()
    }
    let pods = Api::<Pod>::namespaced(client.clone(), &ns.name);
    let pod_watch = record(pods, &seen, move |seen: &mut Seen, event| match event {
        watcher::Event::InitDone => seen.listed += 1,
        watcher::Event::Delete(pod) if pod.name_any() == "db-0" => seen.pod_gone = Some(version(&pod.metadata)),
        _ => {}
    });
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), &ns.name);
    let claim_watch = record(claims, &seen, move |seen: &mut Seen, event| match event {
        watcher::Event::InitDone => seen.listed += 1,
        watcher::Event::Apply(claim) | watcher::Event::Delete(claim)
            if claim.metadata.deletion_timestamp.is_some()
                && !seen.claims_deleting.iter().any(|(n, _)| *n == claim.name_any()) =>
        {
            seen.claims_deleting.push((claim.name_any(), version(&claim.metadata)));
        }
        _ => {}
    });
    eventually(Duration::from_secs(10), || async { (seen.lock().unwrap().listed == 2).then_some(()) })
        .await
        .expect("the watches never listed");

    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let hold = json!({"metadata": {"finalizers": ["test.example.com/hold"]}});
    pods.patch("db-0", &PatchParams::default(), &Patch::Merge(&hold)).await.unwrap();
    api.delete("db", &DeleteParams::default()).await.unwrap();
    let statefulsets: Api<StatefulSet> = Api::namespaced(client.clone(), &ns.name);
    until(&statefulsets, "db", "deleted", |s| s.is_none()).await;
    until(&pods, "db-0", "asked to go", |p| p.is_some_and(|p| p.metadata.deletion_timestamp.is_some())).await;
    // Two more cleanup attempts, counted, with the StatefulSet gone and the pod held.
    let waiting = "controller_runtime_reconcile_total{controller=\"database\",result=\"requeue\"}";
    let before = operator.metric_or_zero_if_family_exists(waiting).await;
    let more = eventually(Duration::from_secs(60), || async {
        (operator.metric_or_zero_if_family_exists(waiting).await >= before + 2.0).then_some(())
    })
    .await;
    assert!(more.is_some(), "no further cleanup attempt was counted");
    let early = seen.lock().unwrap().claims_deleting.clone();
    assert!(early.is_empty(), "claims asked to go while the server pod stands: {early:?}");

    let release = json!({"metadata": {"finalizers": null}});
    pods.patch("db-0", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt("db").await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "Database stuck: {:?}", api.get_opt("db").await.unwrap().and_then(|d| d.status));
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    for claim in ["data-db-0", "db-backup"] {
        until(&claims, claim, "deleted", |c| c.is_none()).await;
    }
    // Both claims' deletions were seen (a claim goes in one event at the most).
    eventually(Duration::from_secs(10), || async { (seen.lock().unwrap().claims_deleting.len() == 2).then_some(()) })
        .await
        .unwrap_or_else(|| panic!("claims seen going: {:?}", seen.lock().unwrap().claims_deleting));
    pod_watch.abort();
    claim_watch.abort();
    let seen = seen.lock().unwrap();
    let pod_gone = seen.pod_gone.expect("the server pod's removal was not seen");
    for (claim, deleting) in &seen.claims_deleting {
        assert!(
            *deleting > pod_gone,
            "{claim} was asked to go at resourceVersion {deleting}, before the pod went at {pod_gone}"
        );
    }
}

/// A new backup schedule reaches the CronJob in place; backups turned off and on again
/// bring a CronJob back on the schedule, onto the backup volume that was kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_follow_a_new_schedule_and_come_back_when_re_enabled() {
    let spec = json!({"type": "postgresql", "version": "16", "backup": {"enabled": true, "schedule": "0 2 * * *"}});
    let Fixture { client, ns, operator: _operator, api, volumes: _volumes } =
        running("db-reenable", spec, &[("data-db-0", "1Gi"), ("db-backup", "1Gi")]).await;
    let cronjobs: Api<CronJob> = Api::namespaced(client.clone(), &ns.name);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &ns.name);
    let first = cronjobs.get("db-backup").await.unwrap();
    let volume = claims.get("db-backup").await.unwrap().metadata.uid;

    let schedule = |s: &str| Patch::Merge(json!({"spec": {"backup": {"schedule": s}}}));
    api.patch("db", &PatchParams::default(), &schedule("30 3 * * SUN")).await.unwrap();
    wait_for(&api, "db", "Running at generation 2", running_at(2)).await;
    let moved = cronjobs.get("db-backup").await.unwrap();
    assert_eq!(moved.spec.as_ref().unwrap().schedule, "30 3 * * SUN");
    assert_eq!(moved.metadata.uid, first.metadata.uid, "the CronJob was replaced, not updated");

    let enabled = |on: bool| Patch::Merge(json!({"spec": {"backup": {"enabled": on}}}));
    api.patch("db", &PatchParams::default(), &enabled(false)).await.unwrap();
    wait_for(&api, "db", "Running at generation 3", running_at(3)).await;
    until(&cronjobs, "db-backup", "deleted", |c| c.is_none()).await;

    api.patch("db", &PatchParams::default(), &enabled(true)).await.unwrap();
    wait_for(&api, "db", "Running at generation 4", running_at(4)).await;
    let back = until(&cronjobs, "db-backup", "made again", |c| c.is_some()).await.unwrap();
    assert_eq!(back.spec.as_ref().unwrap().schedule, "30 3 * * SUN", "the schedule of the spec");
    assert_ne!(back.metadata.uid, first.metadata.uid);
    let job = back.spec.unwrap().job_template.spec.unwrap().template.spec.unwrap();
    let claim = job.volumes.iter().flatten().find_map(|v| v.persistent_volume_claim.as_ref()).unwrap();
    assert_eq!(claim.claim_name, "db-backup");
    assert_eq!(claims.get("db-backup").await.unwrap().metadata.uid, volume, "the backup volume was made again");
}

/// The generated Secret deleted under a running Database is never made again with a
/// new password (PostgreSQL keeps the one it was initialised with), not by reconciles,
/// an operator restart or a spec change; the server's pod, which a kubelet then cannot
/// start again (CreateContainerConfigError, written here as a kubelet would), is
/// explained in status, and Ready is False.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_secret_is_never_remade_and_the_failing_pod_is_explained() {
    let Fixture { client, ns, operator, api, volumes: _volumes } =
        running("db-secretgone", json!({"type": "postgresql", "version": "16"}), &[("data-db-0", "1Gi")]).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    secrets.delete("db-credentials", &DeleteParams::default()).await.unwrap();
    until(&secrets, "db-credentials", "deleted", |s| s.is_none()).await;

    let reconciles = "controller_runtime_reconcile_total{controller=\"database\",result=\"success\"}";
    operator.resync(&api, "db", reconciles, 2).await;
    assert!(operator.stop().await, "the operator did not stop cleanly");
    let operator = Operator::start_with(&ns.name, vec![ControllerKind::Database]).await;
    api.patch("db", &PatchParams::default(), &Patch::Merge(json!({"spec": {"version": "16.4"}}))).await.unwrap();
    wait_for(&api, "db", "Running at generation 2", running_at(2)).await;
    operator.resync(&api, "db", reconciles, 1).await;
    assert!(secrets.get_opt("db-credentials").await.unwrap().is_none(), "a new password was made");

    let missing = "secret \"db-credentials\" not found";
    fake_pod(&client, &ns.name, "db-0", Faked::Waiting("CreateContainerConfigError", missing)).await;
    let db = wait_for(&api, "db", "a CreateContainerConfigError message", |d| {
        d.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("CreateContainerConfigError"))
    })
    .await;
    let status = db.status.unwrap();
    let expected = format!("pod db-0: container postgres: CreateContainerConfigError ({missing})");
    assert!(status.message.as_deref().unwrap().contains(&expected), "{status:#?}");
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "PodsFailing"));
    assert!(secrets.get_opt("db-credentials").await.unwrap().is_none(), "a new password was made");
}
