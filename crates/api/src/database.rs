//! `Database` (database.example.com/v1alpha1): a PostgreSQL server as a StatefulSet with
//! a headless and a client Service, a credentials Secret and optional scheduled backups.
//!
//! This is the kind where a mistake loses data, so the schema refuses at admission what
//! cannot be done safely: the engine never changes, a volume never shrinks, the storage
//! class and the credentials Secret of an existing database never change (CEL
//! transition rules on `oldSelf`), and a backup schedule must be a cron expression.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, Phase, conditions_schema};

/// A database server.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "database.example.com",
    version = "v1alpha1",
    kind = "Database",
    namespaced,
    status = "DatabaseStatus",
    shortname = "db",
    category = "webapp-operator",
    doc = "A database server: a StatefulSet, a headless and a client Service, a Secret with credentials, and a backup CronJob when backups are enabled.",
    validation = Rule::new("size(self.metadata.name) <= 45")
        .message("the Database name must be at most 45 characters: its backup CronJob <name>-backup may have at most 52"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "the Database name must be lower-case letters, digits and '-', start with a letter and end with a letter or digit (a DNS-1035 label): it names its children"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Storage", type_ = "string", json_path = ".spec.storage.size", priority = 1),
    printcolumn(name = "Endpoint", type_ = "string", json_path = ".status.endpoint", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "has(self.credentialsSecret) == has(oldSelf.credentialsSecret) && (!has(self.credentialsSecret) || self.credentialsSecret == oldSelf.credentialsSecret)",
    "message": "credentialsSecret cannot be changed: PostgreSQL keeps the password it was initialised with; change the password inside PostgreSQL and update the Secret's contents instead"
}]))]
pub struct DatabaseSpec {
    /// Database engine. Cannot be changed once created.
    #[serde(rename = "type")]
    #[schemars(extend("x-kubernetes-validations" = [{"rule": "self == oldSelf", "message": "type cannot be changed"}]))]
    pub engine: DatabaseType,
    /// Version of the engine, the tag of the official image: `"16"`, `"16.4"` or
    /// `"16-alpine"`. A change restarts the server on the new image; a change of the
    /// major version also needs the data migrated (`pg_upgrade` or dump and restore),
    /// which the operator does not do.
    #[schemars(extend(
        "minLength" = 1,
        "maxLength" = 32,
        "x-kubernetes-validations" = [{
            "rule": "self.matches('^[0-9]+(\\\\.[0-9]+)?(-[a-z0-9][a-z0-9.]*)?$')",
            "message": "version must be an image tag of the engine such as \"16\", \"16.4\" or \"16-alpine\""
        }]
    ))]
    pub version: String,
    /// Persistent storage of the data directory.
    #[serde(default)]
    pub storage: Storage,
    /// Scheduled backups.
    #[serde(default)]
    pub backup: Backup,
    /// Name of a Secret you provide with the keys `password` (required), `username` and
    /// `database` (optional). When unset, the operator generates `<name>-credentials`
    /// once. Cannot be changed once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxLength" = 253,
        "x-kubernetes-validations" = [{
            "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
            "message": "credentialsSecret must be the name of a Secret"
        }]
    ))]
    pub credentials_secret: Option<String>,
    /// What happens to the volumes (data and backups) when the Database is deleted:
    /// `Retain` (the default) keeps them, `Delete` deletes them.
    #[serde(default)]
    pub deletion_policy: DeletionPolicy,
}

/// Supported database engines.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseType {
    /// PostgreSQL, from the official `postgres` image.
    Postgresql,
}

/// What deleting a Database does to its volumes.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum DeletionPolicy {
    /// Keep the data and backup volumes (PersistentVolumeClaims); delete them by hand.
    #[default]
    Retain,
    /// Delete the data and backup volumes with the Database.
    Delete,
}

/// A persistent volume of a Database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "(has(self.storageClassName) ? self.storageClassName : '') == (has(oldSelf.storageClassName) ? oldSelf.storageClassName : '')",
    "message": "storageClassName cannot be changed: the volume is already provisioned"
}]))]
pub struct Storage {
    /// Size of the volume, a Kubernetes quantity such as `10Gi`. It can grow (when the
    /// StorageClass allows volume expansion) but never shrink.
    #[serde(default = "default_storage_size")]
    #[schemars(extend(
        "maxLength" = 32,
        "x-kubernetes-validations" = [
            {
                "rule": "self.matches('^[0-9]+(\\\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$')",
                "message": "size must be a quantity such as 10Gi"
            },
            {
                "rule": "!isQuantity(self) || !isQuantity(oldSelf) || quantity(self).compareTo(quantity(oldSelf)) >= 0",
                "message": "size cannot shrink: a volume can only grow"
            }
        ]
    ))]
    pub size: String,
    /// StorageClass of the volume; the cluster's default class when unset. Cannot be
    /// changed once created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 253))]
    pub storage_class_name: Option<String>,
}

impl Default for Storage {
    fn default() -> Self {
        Storage { size: default_storage_size(), storage_class_name: None }
    }
}

fn default_storage_size() -> String {
    "1Gi".into()
}

/// Backup settings of a Database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!self.enabled || has(self.schedule)",
    "message": "backup.schedule is required when backup.enabled is true"
}]))]
pub struct Backup {
    /// Whether backups run. Disabling them removes the CronJob and keeps the backup volume.
    #[serde(default)]
    pub enabled: bool,
    /// When backups run, in cron format (`minute hour day-of-month month day-of-week`,
    /// in the time zone of the cluster's controller manager) or a macro such as `@daily`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxLength" = 128,
        "x-kubernetes-validations" = [{
            "rule": CRON_RULE,
            "message": "backup.schedule must be a cron schedule such as \"0 2 * * *\""
        }]
    ))]
    pub schedule: Option<String>,
    /// The volume the dumps are written to; the data volume's size and class when unset.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub storage: Option<Storage>,
    /// How many dumps to keep on the backup volume; older ones are removed after each backup.
    #[serde(default = "default_retain")]
    #[schemars(range(min = 1, max = 1000))]
    pub retain: i32,
}

impl Default for Backup {
    fn default() -> Self {
        Backup { enabled: false, schedule: None, storage: None, retain: default_retain() }
    }
}

fn default_retain() -> i32 {
    7
}

/// A standard five-field cron expression (numbers, ranges, lists, steps, `*`, `?`, month
/// and weekday names) or one of the macros the CronJob controller knows.
const CRON_RULE: &str = concat!(
    "self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)",
    "|(\\\\*|\\\\?|[0-5]?[0-9](-[0-5]?[0-9])?)(/[0-9]+)?(,(\\\\*|[0-5]?[0-9](-[0-5]?[0-9])?)(/[0-9]+)?)*",
    " +(\\\\*|\\\\?|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]+)?(,(\\\\*|([01]?[0-9]|2[0-3])(-([01]?[0-9]|2[0-3]))?)(/[0-9]+)?)*",
    " +(\\\\*|\\\\?|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]+)?(,(\\\\*|(0?[1-9]|[12][0-9]|3[01])(-(0?[1-9]|[12][0-9]|3[01]))?)(/[0-9]+)?)*",
    " +(\\\\*|\\\\?|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]+)?",
    "(,(\\\\*|(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec))(-(0?[1-9]|1[0-2]|(?i:jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)))?)(/[0-9]+)?)*",
    " +(\\\\*|\\\\?|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]+)?",
    "(,(\\\\*|([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat))(-([0-7]|(?i:sun|mon|tue|wed|thu|fri|sat)))?)(/[0-9]+)?)*)$')"
);

/// Observed state of a Database. It names the credentials Secret, never its content.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// Lifecycle phase: Pending, Creating, Running, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Where clients connect: `<service>.<namespace>.svc:5432`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Name of the Secret with the credentials and a ready-to-use `uri`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_secret: Option<String>,
    /// When the last backup succeeded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_backup: Option<Time>,
    /// The version the server was last rolled out at: its data directory's version, which
    /// a new `spec.version` is compared with (a major or C library change needs approval).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Size of the data volume as provisioned (it lags behind `spec.storage.size` while
    /// the volume grows).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<String>,
    /// Human-readable summary of the phase, including why the pod is not ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready, Progressing and Degraded, kstatus-style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
