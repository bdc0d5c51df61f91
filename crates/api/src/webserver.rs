//! `WebServer` (webserver.example.com/v1): nginx-style pods behind a Service.

use k8s_openapi::api::core::v1::SecurityContext;
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, Phase, conditions_schema, default_http_port};

/// A web server of 1 to 10 replicas.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "webserver.example.com",
    version = "v1",
    kind = "WebServer",
    namespaced,
    status = "WebServerStatus",
    shortname = "ws",
    category = "webapp-operator",
    doc = "A web server: a Deployment of 1 to 10 pods and a Service in front of them.",
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("the WebServer name must be at most 63 characters: it becomes the name of its Service and a label value"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "the WebServer name must be lower-case letters, digits and '-', start with a letter and end with a letter or digit (a DNS-1035 label): it names its children"
    ),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Ready pods"),
    printcolumn(name = "Replicas", type_ = "integer", json_path = ".spec.replicas", description = "Desired pods"),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct WebServerSpec {
    /// Number of pods, 1 to 10.
    #[schemars(range(min = 1, max = 10))]
    pub replicas: i32,
    /// Container image.
    #[serde(default = "default_image")]
    #[schemars(length(min = 1, max = 512))]
    pub image: String,
    /// Container port, also the Service port.
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,
    /// Security settings of the container. Unset, it gets what Pod Security
    /// `restricted` asks for: not root, no privilege escalation, every capability
    /// dropped, the runtime's seccomp profile (the image's user must then be a number
    /// other than 0). Set, it replaces them whole: `{}` runs the image as it was built,
    /// for example the default `nginx:latest`, which starts as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    // Boxed: an unset `SecurityContext` would still take 384 bytes of every cached copy.
    pub security_context: Option<Box<SecurityContext>>,
}

fn default_image() -> String {
    "nginx:latest".into()
}

/// Observed state of a WebServer.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebServerStatus {
    /// Lifecycle phase: Pending, Creating, Running or Failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
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
