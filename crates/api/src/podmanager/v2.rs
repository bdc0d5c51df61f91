//! `PodManager` apps.mycompany.com/v2: a spoke that says what v1 cannot, a whole Pod
//! template (containers with ports, env, resources and probes; Pod labels and
//! annotations) instead of one image. Stored as v1 through [`super::conversion`].

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, Probe, ResourceRequirements};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::PodManagerStatus;
use super::v1::default_replicas;

/// A fixed number of bare Pods made from one template.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "apps.mycompany.com",
    version = "v2",
    kind = "PodManager",
    namespaced,
    status = "PodManagerStatus",
    derive = "PartialEq",
    shortname = "pm",
    category = "webapp-operator",
    doc = "Keeps a number of bare Pods named <name>-<index>, made from a Pod template.",
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
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.template.spec.containers[0].image", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct PodManagerSpec {
    /// Number of Pods, at least 1.
    #[serde(default = "default_replicas")]
    #[schemars(range(min = 1, max = 1000))]
    pub replicas: i32,
    /// What every Pod looks like.
    pub template: PodTemplate,
}

/// The template of the Pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodTemplate {
    /// Labels and annotations of every Pod.
    #[serde(default, skip_serializing_if = "TemplateMetadata::is_empty")]
    pub metadata: TemplateMetadata,
    /// The Pod spec.
    pub spec: TemplateSpec,
}

/// Labels and annotations of the Pods. The operator's own labels win over these.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateMetadata {
    /// Labels of every Pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub labels: BTreeMap<String, String>,
    /// Annotations of every Pod.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend("maxProperties" = 64))]
    pub annotations: BTreeMap<String, String>,
}

impl TemplateMetadata {
    /// Whether neither labels nor annotations are set.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty() && self.annotations.is_empty()
    }
}

/// The part of a Pod spec a PodManager sets.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct TemplateSpec {
    /// The containers of every Pod, at least one; names must be unique.
    #[schemars(length(min = 1, max = 16))]
    #[schemars(extend("x-kubernetes-validations" = [{
        "rule": "self.all(c, self.exists_one(d, d.name == c.name))",
        "message": "container names must be unique"
    }]))]
    pub containers: Vec<Container>,
}

/// One container of the Pods.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct Container {
    /// Container name, a DNS label such as `app`.
    #[schemars(length(min = 1, max = 63))]
    pub name: String,
    /// Container image.
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Ports the container listens on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ports: Vec<ContainerPort>,
    /// Environment variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<EnvVar>,
    /// CPU and memory requests and limits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<ResourceRequirements>,
    /// When the container is ready for traffic.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub readiness_probe: Option<Probe>,
    /// When the container must be restarted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub liveness_probe: Option<Probe>,
}
