//! One conversion webhook per cluster: two releases of the operator (each with its own
//! webhook Service) share the PodManager CRD; the first owns its webhook, the second
//! refuses to take it over while the first is installed, and takes it once the first is
//! gone. The owner puts the client config back when a re-apply resets it.
//!
//! One test, alone in its binary: it points the cluster-wide CRD at Services the API
//! server cannot reach, which would break the conversions of any test running beside it.
//! It gives the CRD back to this process's webhook at the end.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use serde_json::json;
use webapp_api::PodManager;
use webapp_operator::controllers::ControllerKind;
use webapp_operator::webhook::crd::Target;
use webapp_operator::webhook::owner::OWNER;
use webapp_operator::webhook::{NamespacedName, WebhookConfig, default_hosts};

/// A release in namespace `ns`: its webhook Service, and the operator serving it.
async fn release(client: &Client, ns: &str, name: &str) -> (Operator, NamespacedName) {
    let services: Api<Service> = Api::namespaced(client.clone(), ns);
    let service: Service = serde_json::from_value(json!({"metadata": {"name": name},
        "spec": {"ports": [{"port": 443, "targetPort": 9443}], "selector": {"app": name}}}))
    .unwrap();
    services.create(&PostParams::default(), &service).await.unwrap();
    let service = NamespacedName { namespace: ns.into(), name: name.into() };
    let mut config = Operator::config(ns, vec![ControllerKind::Podmanager]);
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    config.webhook = Some(WebhookConfig {
        addr,
        cert_dir: None,
        cert_secret: None,
        target: Target::Service(service.clone()),
        hosts: default_hosts(),
        cert_life: webapp_operator::webhook::certs::DEFAULT_LIFE,
    });
    (Operator::start_config(config).await, service)
}

/// The CRD's owner annotation and the Service its webhook points at.
async fn webhook_of(crds: &Api<CustomResourceDefinition>) -> (Option<String>, Option<String>) {
    let crd = crds.get(PodManager::crd_name()).await.unwrap();
    let owner = crd.annotations().get(OWNER).cloned();
    let config = crd.spec.conversion.and_then(|c| c.webhook).and_then(|w| w.client_config);
    let service = config.and_then(|c| c.service).map(|s| format!("{}/{}", s.namespace, s.name));
    (owner, service)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_release_never_takes_a_live_release_s_webhook() {
    let client = client().await;
    install_crds(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let (team_a, team_b) = (TestNamespace::new(&client, "owner-a").await, TestNamespace::new(&client, "owner-b").await);

    let (a, a_service) = release(&client, &team_a.name, "a-webhook").await;
    let a_owner = format!("service:{a_service}");
    assert_eq!(webhook_of(&crds).await, (Some(a_owner.clone()), Some(a_service.to_string())));
    assert_eq!(a.metric("webhook_conversion_owner").await, 1.0);

    // The second release looked (its gauge is set by that look, before it is ready) and
    // refused: the CRD is still the first one's.
    let (b, b_service) = release(&client, &team_b.name, "b-webhook").await;
    assert_eq!(b.metric("webhook_conversion_owner").await, 0.0, "the second release claims the webhook");
    assert_eq!(webhook_of(&crds).await, (Some(a_owner.clone()), Some(a_service.to_string())));

    // A re-apply of the CRD resets the client config: the owner puts it back.
    let reset = json!({"spec": {"conversion": {"webhook": {"clientConfig": {"service": {
        "namespace": "webapp-operator-system", "name": "webapp-operator-webhook", "path": "/convert", "port": 443}}}}}});
    crds.patch(PodManager::crd_name(), &PatchParams::default(), &Patch::Merge(&reset)).await.unwrap();
    let healed = eventually(Duration::from_secs(30), || async {
        (webhook_of(&crds).await == (Some(a_owner.clone()), Some(a_service.to_string()))).then_some(())
    })
    .await;
    assert!(healed.is_some(), "the reset client config was not put back: {:?}", webhook_of(&crds).await);

    // The first release is uninstalled (its Service goes): the second takes over.
    Api::<Service>::namespaced(client.clone(), &team_a.name)
        .delete("a-webhook", &DeleteParams::default())
        .await
        .unwrap();
    let b_owner = format!("service:{b_service}");
    let taken = eventually(Duration::from_secs(60), || async {
        (webhook_of(&crds).await == (Some(b_owner.clone()), Some(b_service.to_string()))).then_some(())
    })
    .await;
    assert!(taken.is_some(), "the second release never took over: {:?}", webhook_of(&crds).await);
    assert_eq!(b.metric("webhook_conversion_owner").await, 1.0);

    assert!(a.stop().await, "the first release did not stop cleanly");
    assert!(b.stop().await, "the second release did not stop cleanly");
    install_crds(&client).await;
}
