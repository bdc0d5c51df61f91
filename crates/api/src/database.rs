//! `Database` (database.example.com/v1alpha1): a database server as a StatefulSet with
//! a headless Service, a credentials Secret and optional scheduled backups.

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
    doc = "A database server: a StatefulSet, a headless Service, a Secret with credentials, and a backup CronJob when backups are enabled.",
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Type", type_ = "string", json_path = ".spec.type"),
    printcolumn(name = "Version", type_ = "string", json_path = ".spec.version"),
    printcolumn(name = "Storage", type_ = "string", json_path = ".spec.storage.size", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSpec {
    /// Database engine.
    #[serde(rename = "type")]
    pub engine: DatabaseType,
    /// Major version of the engine, for example `"13"`.
    #[schemars(length(min = 1, max = 32))]
    pub version: String,
    /// Persistent storage of the data directory.
    #[serde(default)]
    pub storage: Storage,
    /// Scheduled backups.
    #[serde(default)]
    pub backup: Backup,
}

/// Supported database engines.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DatabaseType {
    /// PostgreSQL.
    Postgresql,
}

/// Persistent storage of a Database.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Storage {
    /// Size of the volume, a Kubernetes quantity such as `10Gi`.
    #[serde(default = "default_storage_size")]
    #[schemars(extend(
        "maxLength" = 32,
        "x-kubernetes-validations" = [{
            "rule": "self.matches('^[0-9]+(\\\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$')",
            "message": "storage.size must be a quantity such as 10Gi"
        }]
    ))]
    pub size: String,
}

impl Default for Storage {
    fn default() -> Self {
        Storage { size: default_storage_size() }
    }
}

fn default_storage_size() -> String {
    "1Gi".into()
}

/// Backup settings of a Database.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(extend("x-kubernetes-validations" = [{
    "rule": "!self.enabled || has(self.schedule)",
    "message": "backup.schedule is required when backup.enabled is true"
}]))]
pub struct Backup {
    /// Whether backups run.
    #[serde(default)]
    pub enabled: bool,
    /// When backups run, in cron format (`minute hour day-of-month month day-of-week`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxLength" = 128,
        "x-kubernetes-validations" = [{
            "rule": "self.matches('^(@(yearly|annually|monthly|weekly|daily|midnight|hourly)|\\\\S+( +\\\\S+){4})$')",
            "message": "backup.schedule must be a cron schedule such as \"0 2 * * *\""
        }]
    ))]
    pub schedule: Option<String>,
}

/// Observed state of a Database.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseStatus {
    /// Lifecycle phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded, kstatus-style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
