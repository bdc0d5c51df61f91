//! Tells the API server where the conversion webhook is and which CA to trust: the
//! operator patches the PodManager CRD's `spec.conversion.webhook.clientConfig` at
//! start (`caBundle`, and the URL when it runs outside the cluster).

use k8s_openapi::ByteString;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Patch, PatchParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use webapp_api::PodManager;

use super::WebhookError;

/// The merge patch that points the CRD's conversion at the webhook: `ca_pem` as the
/// bundle; with a `url` the Service reference is replaced by it, without one the
/// Service reference of `config/crd` stays.
pub fn client_config_patch(ca_pem: &str, url: Option<&str>) -> Value {
    let ca_bundle = serde_json::to_value(ByteString(ca_pem.as_bytes().to_vec())).unwrap_or_default();
    let client_config = match url {
        Some(url) => json!({"caBundle": ca_bundle, "url": url, "service": null}),
        None => json!({"caBundle": ca_bundle}),
    };
    json!({"spec": {"conversion": {"strategy": "Webhook",
        "webhook": {"conversionReviewVersions": ["v1"], "clientConfig": client_config}}}})
}

/// Writes the client config into the PodManager CRD.
pub async fn register(client: &Client, ca_pem: &str, url: Option<&str>) -> Result<(), WebhookError> {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    let patch = client_config_patch(ca_pem, url);
    api.patch(PodManager::crd_name(), &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|e| WebhookError::Crd(crate::cli::error_chain(&e)))?;
    tracing::info!(crd = PodManager::crd_name(), url, "conversion webhook registered in the CRD");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_patch_carries_the_bundle_in_base64_and_replaces_the_service_only_for_a_url() {
        let local = client_config_patch("PEM", Some("https://127.0.0.1:9443/convert"));
        let config = &local["spec"]["conversion"]["webhook"]["clientConfig"];
        assert_eq!(config["caBundle"], "UEVN");
        assert_eq!(config["url"], "https://127.0.0.1:9443/convert");
        assert!(config["service"].is_null() && config.as_object().unwrap().contains_key("service"));
        let in_cluster = client_config_patch("PEM", None);
        let config = &in_cluster["spec"]["conversion"]["webhook"]["clientConfig"];
        assert!(!config.as_object().unwrap().contains_key("service"));
    }
}
