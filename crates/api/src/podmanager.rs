//! `PodManager` (apps.mycompany.com/v1): a set of bare Pods `<name>-<i>`.

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, conditions_schema};

/// A fixed number of bare Pods running one image.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "apps.mycompany.com",
    version = "v1",
    kind = "PodManager",
    namespaced,
    status = "PodManagerStatus",
    shortname = "pm",
    category = "webapp-operator",
    doc = "Keeps a number of bare Pods named <name>-<index> running one image.",
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.currentReplicas"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Running pods"),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.currentReplicas",
        description = "Existing pods"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas", description = "Desired pods"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PodManagerSpec {
    /// Number of Pods, at least 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,
    /// Container image of every Pod.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
}

fn default_replicas() -> i32 {
    3
}

/// Observed state of a PodManager.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodManagerStatus {
    /// Pods in phase Running.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods that exist.
    #[serde(default)]
    pub current_replicas: i32,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Ready, Progressing and Degraded, kstatus-style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
