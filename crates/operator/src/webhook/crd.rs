//! Tells the API server where the conversion webhook is and which CA to trust: the
//! operator patches the PodManager CRD's `spec.conversion.webhook.clientConfig`
//! (`caBundle`, and the Service or URL it is reached at) and names itself its owner
//! ([`super::owner`] decides when it may).
//!
//! A merge patch rather than a server-side apply: a Service and a URL exclude each
//! other, and an apply cannot remove the one another field manager set (the CRD of
//! `config/crd` sets the Service), while `null` in a merge patch does.

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use webapp_api::PodManager;
use webapp_api::podmanager::CONVERT_PATH;

use super::{NamespacedName, WebhookError};

/// Where the API server reaches the webhook, as written into the CRD.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Keep the CRD's address (the Service reference of `config/crd`); write the bundle only.
    Keep,
    /// An in-cluster Service, port 443: the chart's release Service, wherever it is installed
    /// (the chart renders the same Service into the CRD; the operator writes it again
    /// whenever something else reset it, e.g. a re-apply of `config/crd`).
    Service(NamespacedName),
    /// A URL, for an operator outside the cluster (`make run`, the tests).
    Url(String),
}

/// As a log reads it: `keep` (the CRD's own Service), `service ns/name`, or the URL.
impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Keep => f.write_str("keep"),
            Target::Service(service) => write!(f, "service {service}"),
            Target::Url(url) => f.write_str(url),
        }
    }
}

/// The merge patch that points the CRD's conversion at the webhook: `ca_pem` (one CA or
/// several) as the bundle, and `target`'s address (a Service and a URL exclude each other, so setting
/// one clears the other), owned by `owner`.
pub fn client_config_patch(ca_pem: &str, target: &Target, owner: &str) -> Value {
    let ca_bundle = serde_json::to_value(ByteString(ca_pem.as_bytes().to_vec())).unwrap_or_default();
    let client_config = match target {
        Target::Keep => json!({"caBundle": ca_bundle}),
        Target::Service(service) => json!({"caBundle": ca_bundle, "url": null, "service": {
            "namespace": service.namespace, "name": service.name, "path": CONVERT_PATH, "port": 443}}),
        Target::Url(url) => json!({"caBundle": ca_bundle, "url": url, "service": null}),
    };
    json!({"metadata": {"annotations": {super::owner::OWNER: owner}},
        "spec": {"conversion": {"strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client_config}}}})
}

/// Writes the client config into the PodManager CRD, as `owner`'s.
pub async fn register(client: &Client, ca_pem: &str, target: &Target, owner: &str) -> Result<(), WebhookError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let patch = client_config_patch(ca_pem, target, owner);
    api.patch(PodManager::crd_name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| WebhookError::Crd(crate::cli::error_chain(&e)))?;
    tracing::info!(crd = PodManager::crd_name(), %target, "conversion webhook registered in the CRD");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_carries_the_bundle_in_base64_and_replaces_the_address_only_when_given() {
        let local = client_config_patch("PEM", &Target::Url("https://127.0.0.1:9443/convert".into()), "me");
        let config = &local["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(config["caBundle"], "UEVN");
        assert_eq!(config["url"], "https://127.0.0.1:9443/convert");
        assert!(config["service"].is_null() && config.as_object().unwrap().contains_key("service"));

        let service = NamespacedName { namespace: "ops".into(), name: "release-webapp-operator-webhook".into() };
        let released = client_config_patch("PEM", &Target::Service(service), "me");
        let config = &released["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(
            config["service"],
            json!({"namespace": "ops", "name": "release-webapp-operator-webhook", "path": "/convert", "port": 443})
        );
        assert!(config["url"].is_null() && config.as_object().unwrap().contains_key("url"));

        let kept = client_config_patch("PEM", &Target::Keep, "me");
        assert_eq!(kept["metadata"]["annotations"][crate::webhook::owner::OWNER], "me");
        let config = kept["spec"]["conversion"]["webhook"]["clientConfig"].as_object().unwrap();
        assert!(!config.contains_key("service") && !config.contains_key("url"));
    }

    #[test]
    fn a_target_reads_in_a_log_as_kubectl_would_print_it() {
        let service = NamespacedName { namespace: "ops".into(), name: "hook".into() };
        assert_eq!(Target::Service(service).to_string(), "service ops/hook");
        assert_eq!(Target::Url("https://127.0.0.1:9443/convert".into()).to_string(), "https://127.0.0.1:9443/convert");
        assert_eq!(Target::Keep.to_string(), "keep");
    }
}
