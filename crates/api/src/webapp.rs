//! `WebApp` (apps.example.com/v1alpha1): a web application made of a Deployment, a
//! Service and, when `spec.domain` is set, an Ingress.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ResourceRequirements, SecurityContext};
use kube::CustomResource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, Phase, conditions_schema, default_http_port};

/// A container image reference as container runtimes parse it (the grammar of
/// `distribution/reference`, less IPv6 registry hosts): `[host[:port]/]path[:tag][@digest]`,
/// where the path is lower case and the first part is a host only if it holds a `.`
/// or a port or is `localhost` (so `MyRepo/app` is an upper-case path, not a host).
fn image_reference_pattern() -> String {
    let host_part = "[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?";
    let host = format!("(?:(?:localhost|{host_part}(?:[.]{host_part})+)(?::[0-9]+)?|{host_part}:[0-9]+)");
    let path_part = "[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*";
    let tag = "[a-zA-Z0-9_][a-zA-Z0-9_.-]{0,127}";
    let digest = "[a-z0-9]+(?:[+._-][a-z0-9]+)*:[a-zA-Z0-9=_-]+";
    format!("^(?:{host}/)?{path_part}(?:/{path_part})*(?::{tag})?(?:@{digest})?$")
}

/// Bounds on the `limits` and `requests` maps of a `ResourceRequirements` schema. The
/// API server refuses a CEL rule whose worst case it cannot bound; these let it bound
/// the `isQuantity` rules (and no real container has 32 kinds of resources or a
/// 64-character quantity).
fn bounded_quantities(schema: &mut schemars::Schema) {
    for list in ["limits", "requests"] {
        let Some(map) = schema.pointer_mut(&format!("/properties/{list}")).and_then(|m| m.as_object_mut()) else {
            continue;
        };
        map.insert("maxProperties".into(), 32.into());
        if let Some(value) = map.get_mut("additionalProperties").and_then(|v| v.as_object_mut()) {
            value.insert("maxLength".into(), 64.into());
        }
    }
}

/// Schema of `spec.image`: bounded length, and CEL rules that refuse what no runtime
/// could pull, each with a message that says what is wrong.
fn image_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "minLength": 1,
        "maxLength": 512,
        "x-kubernetes-validations": [
            {"rule": "!self.matches('[[:space:]]')", "message": "image must not contain spaces"},
            {
                "rule": "!self.contains('@') || self.matches('@sha256:[a-f0-9]{64}$') || self.matches('@sha512:[a-f0-9]{128}$')",
                "message": "the digest after '@' in image must be sha256: followed by 64 lower-case hex digits (or sha512: and 128)"
            },
            {
                "rule": format!("self.matches('{}')", image_reference_pattern()),
                "message": "image must be an image reference such as nginx:1.21 or registry.example.com:5000/team/app:v2: a lower-case repository path, then an optional :tag and @digest"
            }
        ]
    })
}

/// What the user asks for: one web application.
#[derive(CustomResource, Serialize, Deserialize, Clone, Debug, PartialEq, JsonSchema)]
#[kube(
    group = "apps.example.com",
    version = "v1alpha1",
    kind = "WebApp",
    namespaced,
    status = "WebAppStatus",
    shortname = "wa",
    category = "webapp-operator",
    doc = "A web application: the operator runs it as a Deployment behind a Service, and an Ingress when a domain is set. Its name names them all, so it must be a DNS-1035 label of at most 63 characters (lower-case letters, digits and '-', starting with a letter).",
    validation = Rule::new("size(self.metadata.name) <= 63")
        .message("the WebApp name must be at most 63 characters: it becomes the name of its Service and a label value"),
    validation = Rule::new("self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')").message(
        "the WebApp name must be lower-case letters, digits and '-', start with a letter and end with a letter or digit (a DNS-1035 label): it becomes the name of its Service"
    ),
    scale(
        spec_replicas_path = ".spec.replicas",
        status_replicas_path = ".status.replicas",
        label_selector_path = ".status.selector"
    ),
    printcolumn(name = "Phase", type_ = "string", json_path = ".status.phase", description = "Lifecycle phase"),
    printcolumn(name = "Ready", type_ = "integer", json_path = ".status.readyReplicas", description = "Ready pods"),
    printcolumn(
        name = "Replicas",
        type_ = "integer",
        json_path = ".status.replicas",
        description = "Pods the Deployment runs"
    ),
    printcolumn(name = "Image", type_ = "string", json_path = ".spec.image", priority = 1),
    printcolumn(name = "Domain", type_ = "string", json_path = ".spec.domain", priority = 1),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
pub struct WebAppSpec {
    /// Container image to run, for example `nginx:1.21` or
    /// `registry.example.com:5000/team/app:v2@sha256:<64 hex digits>`: a lower-case
    /// repository path (after an optional registry host), an optional `:tag` and an
    /// optional `@digest`, without spaces.
    #[schemars(schema_with = "image_schema")]
    pub image: String,

    /// Number of pods. Leave unset to let an autoscaler own it through the scale
    /// subresource; the operator then never sends replicas to the Deployment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0, max = 1000))]
    pub replicas: Option<i32>,

    /// Port the container listens on; the Service exposes the same port.
    #[serde(default = "default_http_port")]
    #[schemars(range(min = 1, max = 65535))]
    pub port: i32,

    /// Environment variables of the container, name to value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    #[schemars(extend(
        "maxProperties" = 128,
        "x-kubernetes-validations" = [{
            "rule": "self.all(k, size(k) <= 253 && k.matches('^[-._a-zA-Z][-._a-zA-Z0-9]*$'))",
            "message": "env names must be letters, digits, '_', '-' or '.', and must not start with a digit"
        }]
    ))]
    pub env: BTreeMap<String, String>,

    /// Public host name. When set, an Ingress routes `http://<domain>/` to the Service.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxLength" = 253,
        "x-kubernetes-validations" = [{
            "rule": "self.matches('^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$')",
            "message": "domain must be a lower-case DNS name such as example.com"
        }]
    ))]
    pub domain: Option<String>,

    /// CPU and memory requests and limits of the container. Every value is a quantity,
    /// such as `500m` or `2` (CPU) and `128Mi` or `1Gi` (memory).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(transform = bounded_quantities)]
    #[schemars(extend(
        "x-kubernetes-validations" = [
            {
                "rule": "!has(self.limits) || self.limits.all(k, isQuantity(string(self.limits[k])))",
                "message": "every value of resources.limits must be a quantity such as 500m, 2, 128Mi or 1Gi"
            },
            {
                "rule": "!has(self.requests) || self.requests.all(k, isQuantity(string(self.requests[k])))",
                "message": "every value of resources.requests must be a quantity such as 500m, 2, 128Mi or 1Gi"
            }
        ]
    ))]
    // Boxed, as is `security_context`: unset, the two took 456 of a `WebApp`'s 1056
    // bytes, in every copy the controller's cache holds (docs/benchmarks.md, "A smaller
    // binary and a smaller WebApp").
    pub resources: Option<Box<ResourceRequirements>>,

    /// HTTP path of the readiness probe, for example `/healthz`. Unset: a TCP probe on
    /// the port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend(
        "maxLength" = 1024,
        "x-kubernetes-validations" = [{"rule": "self.startsWith('/')", "message": "probePath must start with '/'"}]
    ))]
    pub probe_path: Option<String>,

    /// How the Service is exposed.
    #[serde(default)]
    pub service_type: ServiceType,

    /// Security settings of the container. Unset, it gets what Pod Security
    /// `restricted` asks for: not root, no privilege escalation, every capability
    /// dropped, the runtime's seccomp profile (the image's user must then be a number
    /// other than 0). Set, it replaces them whole: `{}` runs the image as it was built,
    /// for example nginx's official image, which starts as root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub security_context: Option<Box<SecurityContext>>,
}

/// How the WebApp's Service is exposed.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, JsonSchema)]
pub enum ServiceType {
    /// Reachable inside the cluster only.
    #[default]
    ClusterIP,
    /// Also reachable on a port of every node.
    NodePort,
    /// Also reachable through a cloud load balancer.
    LoadBalancer,
}

impl ServiceType {
    /// The Service `spec.type` value.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceType::ClusterIP => "ClusterIP",
            ServiceType::NodePort => "NodePort",
            ServiceType::LoadBalancer => "LoadBalancer",
        }
    }
}

/// What the operator observed and did, last time it looked.
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct WebAppStatus {
    /// Lifecycle phase: Pending, Creating, Running, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Pods that the Deployment runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Pods that are ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ready_replicas: Option<i32>,
    /// Label selector of the pods, for the scale subresource (autoscalers).
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
