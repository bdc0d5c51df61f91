//! The pure plan of scheduled backups: a CronJob that runs `pg_dump` from the server's
//! own image (a `pg_dump` older than the server refuses to dump it) into a backup
//! volume, one file per run, keeping the newest `backup.retain` dumps.

use k8s_openapi::api::batch::v1::{CronJob, CronJobSpec, JobSpec, JobTemplateSpec};
use k8s_openapi::api::core::v1::{
    Container, EnvVar, PersistentVolumeClaim, PersistentVolumeClaimVolumeSource, PodSpec, PodTemplateSpec, Volume,
    VolumeMount,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
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

/// The backup script: dump to a temporary name and rename when complete (a failed run
/// never leaves a file that looks like a backup), then remove all but the newest
/// `$BACKUP_RETAIN` dumps. The connection comes from libpq's `PG*` variables.
pub const SCRIPT: &str = r#"set -eu
file="/backup/${PGDATABASE:-${PGUSER:-postgres}}-$(date -u +%Y%m%dT%H%M%SZ).dump"
pg_dump --format=custom --file="$file.partial"
mv "$file.partial" "$file"
ls -1t /backup/*.dump | tail -n +$((BACKUP_RETAIN + 1)) | while read -r old; do rm -f -- "$old"; done
echo "backup written to $file""#;

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
        spec: CronJobSpec {
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
        },
        status: None,
    }
}

/// The backup volume (`metadata` carries no owner: the dumps outlive the Database
/// unless its deletionPolicy is `Delete`).
pub fn claim(db: &Database, metadata: ObjectMeta) -> PersistentVolumeClaim {
    let storage = storage(db);
    PersistentVolumeClaim { metadata, spec: Some(plan::claim_spec(storage, &storage.size)), status: None }
}
