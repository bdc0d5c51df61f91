//! `PodManager` (apps.mycompany.com): a set of bare Pods `<name>-<i>`, served in two
//! versions.
//!
//! [`v1`] is the seed's API (`replicas`, `image`) and the hub: the storage version, and
//! the one the controller reads. [`v2`] is a spoke with a full Pod template
//! (`spec.template`). [`conversion`] turns one into the other without losing anything,
//! so a client of either version can read and write every object; the operator serves
//! it to the API server as the CRD's conversion webhook. Both versions share the status.

pub mod conversion;
pub mod v1;
pub mod v2;

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{
    CustomResourceConversion, CustomResourceDefinition, ServiceReference, WebhookClientConfig, WebhookConversion,
};
use kube::CustomResourceExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::common::{Condition, Phase, conditions_schema};

pub use v1::{PodManager, PodManagerSpec};

/// The API group of PodManager.
pub const GROUP: &str = "apps.mycompany.com";
/// Path of the conversion webhook on the operator's HTTPS server.
pub const CONVERT_PATH: &str = "/convert";
/// The in-cluster Service in front of the operator's webhook server (`config/`).
pub const WEBHOOK_SERVICE: (&str, &str) = ("webapp-operator-system", "webapp-operator-webhook");

/// Observed state of a PodManager (the same in every version).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PodManagerStatus {
    /// Lifecycle phase: Pending, Creating, Running, Failed or Deleting.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// Pods whose Ready condition is True.
    #[serde(default)]
    pub ready_replicas: i32,
    /// Pods that exist (not being deleted).
    #[serde(default)]
    pub current_replicas: i32,
    /// Pods that run the current template.
    #[serde(default)]
    pub updated_replicas: i32,
    /// The `metadata.generation` this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Human-readable summary of the phase, including why Pods fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Ready, Progressing and Degraded, kstatus-style.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(schema_with = "conditions_schema")]
    pub conditions: Vec<Condition>,
}

/// Where the API server sends ConversionReviews.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WebhookEndpoint {
    /// The operator's Service in the cluster (`config/`), port 443.
    Service,
    /// A URL, for an operator running outside the cluster (`make run`), e.g.
    /// `https://127.0.0.1:9443/convert`.
    Url(String),
}

/// The PodManager CRD: v1 (storage) and v2, converted by the webhook at `endpoint`.
/// The CA bundle is left empty: the operator patches it in at start.
pub fn crd(endpoint: &WebhookEndpoint) -> CustomResourceDefinition {
    // Both derives produce valid single-version CRDs of one kind, so merging cannot fail.
    let mut crd = kube::core::crd::merge_crds(vec![v1::PodManager::crd(), v2::PodManager::crd()], "v1")
        .unwrap_or_else(|_| v1::PodManager::crd());
    let client_config = match endpoint {
        WebhookEndpoint::Service => WebhookClientConfig {
            service: Some(ServiceReference {
                namespace: WEBHOOK_SERVICE.0.into(),
                name: WEBHOOK_SERVICE.1.into(),
                path: Some(CONVERT_PATH.into()),
                port: Some(443),
            }),
            ..WebhookClientConfig::default()
        },
        WebhookEndpoint::Url(url) => WebhookClientConfig { url: Some(url.clone()), ..WebhookClientConfig::default() },
    };
    crd.spec.conversion = Some(CustomResourceConversion {
        strategy: "Webhook".into(),
        webhook: Some(WebhookConversion {
            client_config: Some(client_config),
            conversion_review_versions: vec!["v1".into()],
        }),
    });
    crd
}
