//! `PodManager` apps.mycompany.com/v1: the seed's API, the hub and storage version.

use std::collections::BTreeMap;

use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PodManagerStatus;

/// A fixed number of bare Pods running one image.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "apps.mycompany.com",
    version = "v1",
    kind = "PodManager",
    namespaced,
    status = "PodManagerStatus",
    derive = "PartialEq",
    shortname = "pm",
    category = "webapp-operator",
    doc = "Keeps a number of bare Pods named <name>-<index> running one image.",
    validation = Rule::new("size(self.metadata.name) <= 60")
        .message("the PodManager name must be at most 60 characters: its Pods are <name>-<index> and carry it as a label value"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "the PodManager name must be lower-case letters, digits and '-', start with a letter and end with a letter or digit (a DNS-1035 label): it names its children"
    ),
    scale(spec_replicas_path = ".spec.replicas", status_replicas_path = ".status.currentReplicas"),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Ready pods"),
    printcolumn(
        name = "Current",
        type_ = "integer",
        json_path = ".status.currentReplicas",
        description = "Existing pods"
    ),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas", description = "Desired pods"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image", priority = 1),
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
    /// Extra labels of every Pod, for example `app: my-app` (so that
    /// `kubectl get pods -l app=my-app` finds them). The operator's own labels win.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub pod_labels: BTreeMap<String, String>,
}

pub(super) fn default_replicas() -> i32 {
    3
}
