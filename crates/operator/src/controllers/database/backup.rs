//! The pure plan of scheduled backups: a CronJob that runs `pg_dump` from the server's
//! own image (a `pg_dump` older than the server refuses to dump it) into a backup
//! volume, one file per run, keeping the newest `backup.retain` dumps.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use std::str::FromStr as _;
use webapp_api::Database;
use webapp_api::database::Storage;

use super::plan::{self, APP, PORT, keys};
use reconcile_kit::workload::labels::child_labels;

/// Where the backup volume is mounted in the backup pod.
pub const MOUNT: &str = "/backup";

/// Name of the backup CronJob and of the backup volume of Database `name`.
pub fn name(name: &str) -> String {
    format!("{name}-backup")
}

/// The backup volume's storage: `backup.storage`, or the data volume's.
pub fn storage(db: &Database) -> &Storage {
    db.spec.backup.storage.as_ref().unwrap_or(&db.spec.storage)
}

/// The backup script. Whatever fails, nothing partial is left behind (a trap, plus the
/// leftovers of a run killed before its trap ran). Retention runs first, so a full
/// volume cannot stop backups for good: it keeps the newest `$BACKUP_RETAIN - 1` dumps,
/// making room for this one (and always at least one until a newer one is complete).
/// Then `pg_dump` of the database and `pg_dumpall --globals-only` (roles, with their
/// passwords when the user may read them), each to a temporary name renamed when
/// complete, so a failed run never leaves a file that looks like a backup. The
/// connection comes from libpq's `PG*` variables.
pub const SCRIPT: &str = r#"set -eu
name="${PGDATABASE:-${PGUSER:-postgres}}-$(date -u +%Y%m%dT%H%M%SZ)"
dump="/backup/$name.dump"
globals="/backup/$name.globals.sql"
trap 'rm -f -- "$dump.partial" "$globals.partial"' EXIT
rm -f -- /backup/*.partial
keep=$((BACKUP_RETAIN > 1 ? BACKUP_RETAIN - 1 : 1))
ls -1t /backup/*.dump 2>/dev/null | tail -n +$((keep + 1)) | while read -r old; do
  rm -f -- "$old" "${old%.dump}.globals.sql"
done
pg_dump --format=custom --file="$dump.partial"
pg_dumpall --globals-only --file="$globals.partial" 2>/dev/null ||
  pg_dumpall --globals-only --no-role-passwords --file="$globals.partial"
mv "$globals.partial" "$globals"
mv "$dump.partial" "$dump"
echo "backup written to $dump (roles: $globals)""#;

/// Why backups are failing, if they are, from the CronJob's status: the last run was
/// scheduled after the last success (or none ever succeeded) and nothing runs now, so
/// it failed (its Job used up its retries). The note says when the last success was.
/// A run still going is not a failure yet; a schedule that stopped firing is not seen
/// here.
pub fn failing(cronjob: &CronJob) -> Option<String> {
    let status = cronjob.status.as_ref()?;
    let scheduled = status.last_schedule_time.as_ref()?;
    if status.active.as_ref().is_some_and(|active| !active.is_empty()) {
        return None;
    }
    let succeeded = status.last_successful_time.as_ref();
    if succeeded.is_some_and(|success| success.0 >= scheduled.0) {
        return None;
    }
    let last = succeeded.map_or_else(|| "never".to_owned(), |t| t.0.to_string());
    Some(format!(
        "the backup run scheduled at {} failed (see the Jobs of CronJob {}); last successful backup: {last}",
        scheduled.0,
        cronjob.metadata.name.as_deref().unwrap_or("?"),
    ))
}

/// How long past its due time a run may not have started before the schedule counts as
/// stopped: one period of the schedule, at most this (the CronJob controller looks every
/// 10 s; a run may wait for its pod to be scheduled).
const OVERDUE_AFTER_AT_MOST: chrono::TimeDelta = chrono::TimeDelta::hours(1);

/// Why backups are overdue, if they are: the run the schedule asked for after the last
/// one (or after the CronJob was made) has not started within one period of the schedule
/// (at most an hour) of its time: the schedule stopped firing (a suspended CronJob, a
/// controller that does not run it). The schedule is read in UTC, the CronJob
/// controller's zone in a cluster whose nodes keep UTC.
pub fn overdue(cronjob: &CronJob, now: Timestamp) -> Option<String> {
    let status = cronjob.status.as_ref();
    if status.and_then(|s| s.active.as_ref()).is_some_and(|active| !active.is_empty()) {
        return None;
    }
    // `spec` is optional in the API the client is built against (1.34; required from
    // 1.36); the API server always returns one, so a CronJob without it is never overdue.
    let schedule = &cronjob.spec.as_ref()?.schedule;
    let cron = croner::Cron::from_str(schedule).ok()?;
    let since = status.and_then(|s| s.last_schedule_time.as_ref()).or(cronjob.metadata.creation_timestamp.as_ref())?;
    let at = |t: Timestamp| chrono::DateTime::from_timestamp(t.as_second(), 0);
    let due = cron.find_next_occurrence(&at(since.0)?, false).ok()?;
    let next = cron.find_next_occurrence(&due, false).ok()?;
    let grace = (next - due).min(OVERDUE_AFTER_AT_MOST);
    if at(now)? <= due + grace {
        return None;
    }
    let last =
        status.and_then(|s| s.last_successful_time.as_ref()).map_or_else(|| "never".to_owned(), |t| t.0.to_string());
    Some(format!(
        "no backup run has started since {}, though the schedule {schedule:?} (UTC) asked for one at {} (see CronJob {}); \
         last successful backup: {last}",
        since.0,
        due.format("%Y-%m-%dT%H:%M:%SZ"),
        cronjob.metadata.name.as_deref().unwrap_or("?"),
    ))
}

/// The backup CronJob: one run at a time (`Forbid`: a slow dump is never overlapped by
/// the next), a short history of finished Jobs.
pub fn cronjob(db: &Database, metadata: ObjectMeta, schedule: &str) -> CronJob {
    let instance = db.name_any();
    let variable = |name: &str, value: String| EnvVar { name: name.into(), value: Some(value), ..EnvVar::default() };
    let container = Container {
        name: "backup".into(),
        image: Some(plan::image(db)),
        command: Some(vec!["sh".into(), "-c".into(), SCRIPT.into()]),
        env: Some(vec![
            variable("PGHOST", instance.clone()),
            variable("PGPORT", PORT.to_string()),
            plan::secret_env(db, "PGUSER", keys::USERNAME),
            plan::secret_env(db, "PGPASSWORD", keys::PASSWORD),
            plan::secret_env(db, "PGDATABASE", keys::DATABASE),
            variable("BACKUP_RETAIN", db.spec.backup.retain.to_string()),
        ]),
        security_context: Some(plan::container_security()),
        volume_mounts: Some(vec![
            VolumeMount { name: "backup".into(), mount_path: MOUNT.into(), ..VolumeMount::default() },
            VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..VolumeMount::default() },
        ]),
        ..Container::default()
    };
    let pod = PodSpec {
        containers: vec![container],
        // A failed pod stays for its logs; the Job retries with a new one.
        restart_policy: Some("Never".into()),
        security_context: Some(plan::pod_security()),
        volumes: Some(vec![
            Volume {
                name: "backup".into(),
                persistent_volume_claim: Some(PersistentVolumeClaimVolumeSource {
                    claim_name: name(&instance),
                    ..PersistentVolumeClaimVolumeSource::default()
                }),
                ..Volume::default()
            },
            Volume { name: "tmp".into(), empty_dir: Some(Default::default()), ..Volume::default() },
        ]),
        ..PodSpec::default()
    };
    CronJob {
        metadata,
        spec: Some(CronJobSpec {
            schedule: schedule.to_owned(),
            concurrency_policy: Some("Forbid".into()),
            successful_jobs_history_limit: Some(3),
            failed_jobs_history_limit: Some(3),
            // A run missed by more than an hour (controller down) is skipped, not run late.
            starting_deadline_seconds: Some(3600),
            job_template: JobTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(child_labels(APP, &instance)), ..ObjectMeta::default() }),
                spec: Some(JobSpec {
                    backoff_limit: Some(2),
                    template: PodTemplateSpec {
                        metadata: Some(ObjectMeta {
                            labels: Some(plan::pod_labels(&instance, "backup")),
                            ..ObjectMeta::default()
                        }),
                        spec: Some(pod),
                    },
                    ..JobSpec::default()
                }),
            },
            ..CronJobSpec::default()
        }),
        status: None,
    }
}

/// The backup volume (`metadata` carries no owner: the dumps outlive the Database
/// unless its deletionPolicy is `Delete`).
pub fn claim(db: &Database, metadata: ObjectMeta) -> PersistentVolumeClaim {
    let storage = storage(db);
    PersistentVolumeClaim { metadata, spec: Some(plan::claim_spec(storage, &storage.size)), status: None }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cronjob(schedule: &str, status: serde_json::Value) -> CronJob {
        serde_json::from_value(json!({"metadata": {"name": "db-backup", "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"schedule": schedule, "jobTemplate": {}}, "status": status}))
        .unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    #[test]
    fn a_schedule_that_stopped_firing_is_overdue_after_one_period_at_most_an_hour() {
        let hourly = cronjob(
            "0 * * * *",
            json!({"lastScheduleTime": "2026-01-01T10:00:00Z",
            "lastSuccessfulTime": "2026-01-01T10:00:07Z"}),
        );
        assert_eq!(overdue(&hourly, at("2026-01-01T11:30:00Z")), None, "the 11:00 run has an hour");
        let note = overdue(&hourly, at("2026-01-01T12:00:01Z")).expect("the 11:00 run never started");
        assert!(note.contains("2026-01-01T11:00:00Z") && note.contains("2026-01-01T10:00:07"), "{note}");

        let daily = cronjob("@daily", json!({"lastScheduleTime": "2026-01-01T00:00:00Z"}));
        assert_eq!(overdue(&daily, at("2026-01-02T00:59:00Z")), None, "an hour at most, not a day");
        assert!(overdue(&daily, at("2026-01-02T01:00:01Z")).is_some());

        let never_ran = cronjob("*/5 * * * *", json!({}));
        assert_eq!(overdue(&never_ran, at("2026-01-01T00:09:00Z")), None, "from the CronJob's creation");
        assert!(overdue(&never_ran, at("2026-01-01T00:10:01Z")).is_some());

        let running =
            cronjob("* * * * *", json!({"lastScheduleTime": "2026-01-01T00:00:00Z", "active": [{"name": "j"}]}));
        assert_eq!(overdue(&running, at("2026-01-01T05:00:00Z")), None, "a run in progress is not overdue");
        assert_eq!(overdue(&cronjob("not a schedule", json!({})), at("2030-01-01T00:00:00Z")), None);
    }
}
