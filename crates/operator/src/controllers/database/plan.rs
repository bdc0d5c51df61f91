//! The pure plan: what a Database's children should look like. No I/O, no clock, no
//! randomness (the password is generated in [`super::credentials`]).
//!
//! PostgreSQL runs from the official `postgres` image as a StatefulSet of one pod, with
//! the image's own conventions: `POSTGRES_USER` / `POSTGRES_PASSWORD` / `POSTGRES_DB`
//! from the credentials Secret, `PGDATA` in a subdirectory of the volume (a fresh
//! filesystem's `lost+found` would make `initdb` refuse the mount point itself).

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{StatefulSet, StatefulSetPersistentVolumeClaimRetentionPolicy, StatefulSetSpec};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EmptyDirVolumeSource, EnvVar, EnvVarSource, ExecAction, Lifecycle, LifecycleHandler,
    PersistentVolumeClaim, PersistentVolumeClaimSpec, PodSecurityContext, PodSpec, PodTemplateSpec, Probe,
    SecretKeySelector, SecurityContext, Service, ServicePort, ServiceSpec, Volume, VolumeMount,
    VolumeResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use webapp_api::Database;
use webapp_api::database::Storage;

use super::backup;
use reconcile_kit::security;
use reconcile_kit::workload::labels::{child_labels, selector_labels};

/// The `app.kubernetes.io/name` of Database children.
pub const APP: &str = "database";
/// Name of the server container.
pub const CONTAINER: &str = "postgres";
/// The port PostgreSQL listens on, and the Services expose.
pub const PORT: i32 = 5432;
/// Name of the data volume (claim template), so the first pod's claim is `data-<name>-0`.
pub const DATA_VOLUME: &str = "data";
/// Where the data volume is mounted.
pub const DATA_MOUNT: &str = "/var/lib/postgresql/data";
/// The data directory: a subdirectory of the mount.
pub const PGDATA: &str = "/var/lib/postgresql/data/pgdata";
/// uid and gid of the `postgres` user of the official (Debian) image; the image's
/// entrypoint also runs as this uid on the Alpine variants (through nss_wrapper).
pub const POSTGRES_UID: i64 = 999;
/// User and database of generated credentials: the official image's defaults.
pub const DEFAULT_USER: &str = "postgres";

/// Label telling the server's pods from the backup Jobs' pods, which share the
/// instance labels: Services and the StatefulSet select the server only.
pub const COMPONENT: &str = "app.kubernetes.io/component";

/// Labels of pods of `component` (`server` or `backup`) of Database `name`.
pub fn pod_labels(name: &str, component: &str) -> BTreeMap<String, String> {
    let mut labels = child_labels(APP, name);
    labels.insert(COMPONENT.into(), component.into());
    labels
}

/// The selector of the server's pod.
pub fn server_selector(name: &str) -> BTreeMap<String, String> {
    let mut labels = selector_labels(APP, name);
    labels.insert(COMPONENT.into(), "server".into());
    labels
}

/// Keys of the credentials Secret.
pub mod keys {
    /// The role to log in as.
    pub const USERNAME: &str = "username";
    /// Its password.
    pub const PASSWORD: &str = "password";
    /// The database to connect to.
    pub const DATABASE: &str = "database";
    /// The client Service's host name.
    pub const HOST: &str = "host";
    /// The port.
    pub const PORT: &str = "port";
    /// `postgresql://user:password@host:port/database`.
    pub const URI: &str = "uri";
}

/// The headless Service that gives the StatefulSet's pod its DNS name.
pub fn headless_name(name: &str) -> String {
    format!("{name}-headless")
}

/// The data claim of the first (only) pod, as the StatefulSet controller names it.
pub fn data_claim_name(name: &str) -> String {
    format!("{DATA_VOLUME}-{name}-0")
}

/// The data claim of `db`'s server, as the StatefulSet's claim template would make it.
/// The operator makes it itself, before the StatefulSet (which then uses it), when it
/// generates the credentials: the Secret must name the claim that keeps it.
pub fn data_claim(db: &Database) -> PersistentVolumeClaim {
    let name = db.name_any();
    PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(data_claim_name(&name)),
            namespace: db.namespace(),
            labels: Some(child_labels(APP, &name)),
            ..ObjectMeta::default()
        },
        spec: Some(claim_spec(&db.spec.storage, &db.spec.storage.size)),
        status: None,
    }
}

/// The generated credentials Secret of Database `name`.
pub fn generated_secret_name(name: &str) -> String {
    format!("{name}-credentials")
}

/// The Secret the server and clients read: the user's, or the generated one.
pub fn secret_name(db: &Database) -> String {
    db.spec.credentials_secret.clone().unwrap_or_else(|| generated_secret_name(&db.name_any()))
}

/// The client Service's host name, resolvable from every namespace.
pub fn host(db: &Database) -> String {
    format!("{}.{}.svc", db.name_any(), db.namespace().unwrap_or_default())
}

/// Where clients connect: `host:port`.
pub fn endpoint(db: &Database) -> String {
    format!("{}:{PORT}", host(db))
}

/// The server image: the official image at the spec's version tag.
pub fn image(db: &Database) -> String {
    format!("postgres:{}", db.spec.version)
}

/// The PostgreSQL major version of an image tag: `16` of `16.4-alpine`; before version
/// 10 the major version had two parts (`9.6` of `9.6.24`).
pub fn major(version: &str) -> String {
    let numbers = version.split('-').next().unwrap_or_default();
    let mut parts = numbers.split('.');
    let first = parts.next().unwrap_or_default();
    match (first.parse::<u32>(), parts.next()) {
        (Ok(n), Some(minor)) if n < 10 => format!("{first}.{minor}"),
        _ => first.to_owned(),
    }
}

/// Everything a Database should own (the Secret is made once, apart; see
/// [`super::credentials`]).
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The server.
    pub statefulset: StatefulSet,
    /// The StatefulSet's governing Service.
    pub headless: Service,
    /// The Service clients use.
    pub service: Service,
    /// The backup CronJob, when backups are enabled.
    pub cronjob: Option<CronJob>,
    /// The backup volume, when backups are enabled. Not owned by the Database (its
    /// data must outlive it); created once, never rewritten.
    pub backup_claim: Option<PersistentVolumeClaim>,
}

/// What the plan needs of the live StatefulSet: a StatefulSet's claim templates cannot
/// change, so an existing one keeps the size it was created with (the volumes
/// themselves are grown apart, see [`super::storage`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    /// The storage request of the live StatefulSet's data claim template, if any.
    pub claim_template_size: Option<String>,
}

impl Live {
    /// What the plan needs of `statefulset`.
    pub fn of(statefulset: Option<&StatefulSet>) -> Self {
        let template = statefulset
            .and_then(|s| s.spec.as_ref())
            .and_then(|s| s.volume_claim_templates.as_ref())
            .and_then(|t| t.iter().find(|c| c.metadata.name.as_deref() == Some(DATA_VOLUME)));
        let size = template
            .and_then(|c| c.spec.as_ref())
            .and_then(|s| s.resources.as_ref())
            .and_then(|r| r.requests.as_ref())
            .and_then(|r| r.get("storage"))
            .map(|q| q.0.clone());
        Live { claim_template_size: size }
    }
}

/// What `db` should own. `owner` is its controller owner reference.
pub fn desired(db: &Database, owner: OwnerReference, live: &Live) -> Children {
    let name = db.name_any();
    let metadata = |child: String, owned: bool| ObjectMeta {
        name: Some(child),
        namespace: db.namespace(),
        labels: Some(child_labels(APP, &name)),
        owner_references: owned.then(|| vec![owner.clone()]),
        ..ObjectMeta::default()
    };
    let backups = db.spec.backup.schedule.as_deref().filter(|_| db.spec.backup.enabled);
    Children {
        statefulset: statefulset(db, metadata(name.clone(), true), live),
        headless: service(db, metadata(headless_name(&name), true), true),
        service: service(db, metadata(name.clone(), true), false),
        cronjob: backups.map(|schedule| backup::cronjob(db, metadata(backup::name(&name), true), schedule)),
        backup_claim: backups.map(|_| backup::claim(db, metadata(backup::name(&name), false))),
    }
}

/// The pod's security settings: not root, the volume writable by the postgres group.
pub fn pod_security() -> PodSecurityContext {
    PodSecurityContext {
        run_as_user: Some(POSTGRES_UID),
        run_as_group: Some(POSTGRES_UID),
        run_as_non_root: Some(true),
        fs_group: Some(POSTGRES_UID),
        // A large data volume is not re-chowned at every start.
        fs_group_change_policy: Some("OnRootMismatch".into()),
        seccomp_profile: Some(security::runtime_default()),
        ..PodSecurityContext::default()
    }
}

/// The container's security settings: no privilege, no capability, a read-only root
/// filesystem (PostgreSQL writes only to its volume, its socket directory and /tmp).
/// With [`pod_security`], Pod Security `restricted`. (Unchanged since the first release:
/// a new field in the pod template would restart every server when the operator is
/// upgraded.)
pub fn container_security() -> SecurityContext {
    SecurityContext { read_only_root_filesystem: Some(true), ..security::unprivileged() }
}

/// An environment variable read from one key of the credentials Secret. A user's Secret
/// needs only `password`; the image defaults the others.
pub fn secret_env(db: &Database, variable: &str, key: &str) -> EnvVar {
    let required = key == keys::PASSWORD || db.spec.credentials_secret.is_none();
    EnvVar {
        name: variable.into(),
        value_from: Some(EnvVarSource {
            secret_key_ref: Some(SecretKeySelector {
                name: secret_name(db),
                key: key.into(),
                optional: (!required).then_some(true),
            }),
            ..EnvVarSource::default()
        }),
        ..EnvVar::default()
    }
}

/// The probe command: `pg_isready` over TCP on the loopback address. The image's first
/// start runs a temporary server on the Unix socket only, so TCP readiness means the
/// real server is up. No password is needed to ask; the user and database are given
/// so the server does not log failed attempts for a role that does not exist.
pub fn probe_command() -> Vec<String> {
    let script = format!(
        "exec pg_isready --host=127.0.0.1 --port={PORT} --username=\"${{POSTGRES_USER:-{DEFAULT_USER}}}\" --dbname=\"${{POSTGRES_DB:-${{POSTGRES_USER:-{DEFAULT_USER}}}}}\""
    );
    vec!["sh".into(), "-c".into(), script]
}

/// Stops the server with a fast shutdown before the pod's SIGTERM, which PostgreSQL
/// treats as a smart shutdown that waits for every client to disconnect (and is cut
/// off by SIGKILL at the end of the grace period, forcing crash recovery at the next start).
pub fn stop_command() -> Vec<String> {
    let script = "exec pg_ctl stop --pgdata=\"$PGDATA\" --mode=fast --wait --timeout=50".to_owned();
    vec!["sh".into(), "-c".into(), script]
}

fn probe(period: i32, failures: i32) -> Probe {
    Probe {
        exec: Some(ExecAction { command: Some(probe_command()) }),
        period_seconds: Some(period),
        timeout_seconds: Some(5),
        failure_threshold: Some(failures),
        ..Probe::default()
    }
}

fn statefulset(db: &Database, metadata: ObjectMeta, live: &Live) -> StatefulSet {
    let name = db.name_any();
    let container = Container {
        name: CONTAINER.into(),
        image: Some(image(db)),
        ports: Some(vec![ContainerPort {
            name: Some("postgresql".into()),
            container_port: PORT,
            ..ContainerPort::default()
        }]),
        env: Some(vec![
            secret_env(db, "POSTGRES_USER", keys::USERNAME),
            secret_env(db, "POSTGRES_PASSWORD", keys::PASSWORD),
            secret_env(db, "POSTGRES_DB", keys::DATABASE),
            EnvVar { name: "PGDATA".into(), value: Some(PGDATA.into()), ..EnvVar::default() },
        ]),
        // Initialisation and crash recovery can take long; liveness starts after it.
        startup_probe: Some(probe(5, 120)),
        readiness_probe: Some(probe(10, 3)),
        liveness_probe: Some(probe(10, 6)),
        lifecycle: Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction { command: Some(stop_command()) }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        }),
        security_context: Some(container_security()),
        volume_mounts: Some(vec![
            VolumeMount { name: DATA_VOLUME.into(), mount_path: DATA_MOUNT.into(), ..VolumeMount::default() },
            VolumeMount { name: "run".into(), mount_path: "/var/run/postgresql".into(), ..VolumeMount::default() },
            VolumeMount { name: "tmp".into(), mount_path: "/tmp".into(), ..VolumeMount::default() },
        ]),
        ..Container::default()
    };
    let scratch = |volume: &str| Volume {
        name: volume.into(),
        empty_dir: Some(EmptyDirVolumeSource::default()),
        ..Volume::default()
    };
    let size = live.claim_template_size.clone().unwrap_or_else(|| db.spec.storage.size.clone());
    let claim_template = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(DATA_VOLUME.into()),
            labels: Some(child_labels(APP, &name)),
            ..ObjectMeta::default()
        },
        spec: Some(claim_spec(&db.spec.storage, &size)),
        status: None,
    };
    StatefulSet {
        metadata,
        spec: Some(StatefulSetSpec {
            replicas: Some(1),
            service_name: Some(headless_name(&name)),
            selector: LabelSelector { match_labels: Some(server_selector(&name)), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(pod_labels(&name, "server")), ..ObjectMeta::default() }),
                spec: Some(PodSpec {
                    containers: vec![container],
                    security_context: Some(pod_security()),
                    termination_grace_period_seconds: Some(60),
                    volumes: Some(vec![scratch("run"), scratch("tmp")]),
                    ..PodSpec::default()
                }),
            },
            volume_claim_templates: Some(vec![claim_template]),
            // The data outlives the StatefulSet whatever happens to it (a StatefulSet
            // deleted by hand must not take the data along); the Database's
            // deletionPolicy alone decides, in its finalizer.
            persistent_volume_claim_retention_policy: Some(StatefulSetPersistentVolumeClaimRetentionPolicy {
                when_deleted: Some("Retain".into()),
                when_scaled: Some("Retain".into()),
            }),
            ..StatefulSetSpec::default()
        }),
        status: None,
    }
}

/// A one-pod read-write claim of `size` in the storage's class.
pub fn claim_spec(storage: &Storage, size: &str) -> PersistentVolumeClaimSpec {
    PersistentVolumeClaimSpec {
        access_modes: Some(vec!["ReadWriteOnce".into()]),
        storage_class_name: storage.storage_class_name.clone(),
        resources: Some(VolumeResourceRequirements {
            requests: Some(BTreeMap::from([("storage".to_owned(), Quantity(size.to_owned()))])),
            ..VolumeResourceRequirements::default()
        }),
        ..PersistentVolumeClaimSpec::default()
    }
}

fn service(db: &Database, metadata: ObjectMeta, headless: bool) -> Service {
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: (!headless).then(|| "ClusterIP".into()),
            cluster_ip: headless.then(|| "None".into()),
            selector: Some(server_selector(&db.name_any())),
            ports: Some(vec![ServicePort {
                name: Some("postgresql".into()),
                port: PORT,
                target_port: Some(IntOrString::Int(PORT)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
