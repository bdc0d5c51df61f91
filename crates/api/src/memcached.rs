//! `Memcached` (cache.example.com/v1alpha1): a sized memcached Deployment.

use k8s_openapi::api::core::v1::ResourceRequirements;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, Phase, conditions_schema};

/// A memcached cluster of `size` pods.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "cache.example.com",
    version = "v1alpha1",
    kind = "Memcached",
    namespaced,
    status = "MemcachedStatus",
    shortname = "mc",
    category = "webapp-operator",
    doc = "A memcached cluster: a Deployment of `size` pods behind a headless Service; status.nodes lists the ready pods.",
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("the Memcached name must be at most 63 characters: it becomes the name of its Service and a label value"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "the Memcached name must be lower-case letters, digits and '-', start with a letter and end with a letter or digit (a DNS-1035 label): it names its children"
    ),
    scale(
        spec_replicas_path = ".spec.size",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Size", type_ = "integer", json_path = ".spec.size", description = "Desired pods"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Ready pods"),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct MemcachedSpec {
    /// Number of memcached pods, 1 to 10.
    #[schemars(range(min = 1, max = 10))]
    pub size: i32,
    /// Container image.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Port memcached listens on.
    #[serde(default = "default_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// CPU and memory of each pod. A memory limit also sizes memcached's cache (`-m`),
    /// leaving headroom for connections, so the pod is not OOM-killed when the cache fills.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed: an unset `ResourceRequirements` would still take 88 bytes of every cached copy.
    pub resources: Option<Box<ResourceRequirements>>,
}

fn default_image() -> String {
    "memcached:1.6".into()
}

fn default_port() -> i32 {
    11211
}

/// Observed state of a Memcached.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct MemcachedStatus {
    /// Lifecycle phase: Pending, Creating, Running or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Names of the ready memcached pods, sorted: the nodes a client can hash keys over.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nodes: Vec<String>,
    /// Pods the Deployment runs.
    #[serde(default)]
    pub replicas: i32,
    /// Pods that are ready.
    #[serde(default)]
    pub ready_replicas: i32,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Label selector of the pods, for the scale subresource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub selector: Option<String>,
    /// Human-readable summary of the phase, including why pods fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready, Progressing and Degraded, kstatus-style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}
