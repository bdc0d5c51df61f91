//! The conversion webhook's certificate renews and reloads without a restart: a
//! generated one with a short life is renewed in its Secret before it expires, the CRD's
//! bundle then trusts the new CA beside the old one, and conversions go on; a mounted
//! one replaced on disk (as cert-manager does) is served from then on.
//!
//! One test, alone in its binary: it points the cluster-wide CRD at its own webhooks. It
//! gives the CRD back to this process's webhook at the end.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::*;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt, ResourceExt};
use serde_json::json;
use webapp_api::PodManager;
use webapp_operator::controllers::ControllerKind;
use webapp_operator::webhook::certs::{self, trusted_by};
use webapp_operator::webhook::crd::Target;
use webapp_operator::webhook::{NamespacedName, WebhookConfig, default_hosts};

/// A life short enough to see a renewal: looked at every 3 s, renewed after 20 s.
const LIFE: Duration = Duration::from_secs(30);

fn webhook(cert_dir: Option<std::path::PathBuf>, cert_secret: Option<NamespacedName>) -> WebhookConfig {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let url = format!("https://{addr}{}", webapp_api::podmanager::CONVERT_PATH);
    WebhookConfig { addr, cert_dir, cert_secret, target: Target::Url(url), hosts: default_hosts(), cert_life: LIFE }
}

/// Ends a rotation as the last old replica would: the bundle trusts `ca` alone, so a
/// conversion succeeds only through a server that presents the renewed certificate.
async fn trust_only(crds: &Api<CustomResourceDefinition>, ca: &str) {
    let bundle = serde_json::to_value(k8s_openapi::ByteString(ca.as_bytes().to_vec())).unwrap();
    let patch = json!({"spec": {"conversion": {"webhook": {"clientConfig": {"caBundle": bundle}}}}});
    crds.patch(PodManager::crd_name(), &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
}

async fn bundle(crds: &Api<CustomResourceDefinition>) -> String {
    let crd = crds.get(PodManager::crd_name()).await.unwrap();
    let config = crd.spec.conversion.and_then(|c| c.webhook).and_then(|w| w.client_config);
    String::from_utf8(config.and_then(|c| c.ca_bundle).unwrap().0).unwrap()
}

/// A PodManager written and read back through v2, which the API server converts through
/// the webhook (it stores v1): retried while the API server picks up a new bundle.
async fn converts(client: &Client, ns: &str, name: &str) {
    let v2 = ApiResource {
        group: "apps.mycompany.com".into(),
        version: "v2".into(),
        api_version: "apps.mycompany.com/v2".into(),
        kind: "PodManager".into(),
        plural: "podmanagers".into(),
    };
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &v2);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.mycompany.com/v2", "kind": "PodManager", "metadata": {"name": name},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.21"}]}}},
    }))
    .unwrap();
    let read = eventually(Duration::from_secs(30), || async {
        if api.get_opt(name).await.ok()?.is_none() {
            api.create(&PostParams::default(), &object).await.ok()?;
        }
        api.get(name).await.ok()
    })
    .await;
    let Some(read) = read else {
        panic!("{name}: no conversion: {:?}", api.create(&PostParams::default(), &object).await)
    };
    assert_eq!(read.data["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.21");
    api.delete(name, &DeleteParams::default()).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_certificate_renews_and_reloads_without_a_restart() {
    let client = client().await;
    install_crds(&client).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let ns = TestNamespace::new(&client, "certs").await;

    // Generated, shared through a Secret, with a short life.
    let name = NamespacedName { namespace: ns.name.clone(), name: "webhook-tls".into() };
    let mut config = Operator::config(&ns.name, vec![ControllerKind::Podmanager]);
    config.webhook = Some(webhook(None, Some(name.clone())));
    let operator = Operator::start_config(config).await;
    let secrets: Api<Secret> = Api::namespaced(client.clone(), &ns.name);
    let ca = |s: &Secret| String::from_utf8(s.data.as_ref().unwrap()["ca.crt"].0.clone()).unwrap();
    let first = secrets.get("webhook-tls").await.unwrap();
    let expires: u64 = first.annotations()["webapp-operator.example.com/expires"].parse().unwrap();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs();
    assert!(expires <= now + LIFE.as_secs(), "the generated certificate outlives its life");
    assert!(trusted_by(&ca(&first), &bundle(&crds).await));
    converts(&client, &ns.name, "before-renewal").await;

    let renewed = eventually(Duration::from_secs(60), || async {
        secrets.get("webhook-tls").await.ok().filter(|s| ca(s) != ca(&first))
    })
    .await
    .expect("the certificate was not renewed before it expired");
    // The bundle trusts both: replicas still serving the old one keep converting.
    let merged = eventually(Duration::from_secs(30), || async {
        let bundle = bundle(&crds).await;
        (trusted_by(&ca(&renewed), &bundle) && trusted_by(&ca(&first), &bundle)).then_some(())
    })
    .await;
    assert!(merged.is_some(), "the bundle does not trust both CAs: {}", bundle(&crds).await);
    trust_only(&crds, &ca(&renewed)).await;
    converts(&client, &ns.name, "after-renewal").await;
    assert!(operator.stop().await, "the operator did not stop cleanly");

    // Mounted, replaced on disk by its issuer.
    let dir = std::env::temp_dir().join(format!("webhook-certs-{}", ns.name));
    std::fs::create_dir_all(&dir).unwrap();
    let write = |tls: &certs::Tls| {
        std::fs::write(dir.join("tls.crt"), &tls.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &tls.key_pem).unwrap();
        std::fs::write(dir.join("ca.crt"), &tls.ca_pem).unwrap();
    };
    let mounted = certs::self_signed(&default_hosts(), certs::DEFAULT_LIFE).unwrap();
    write(&mounted);
    let mut config = Operator::config(&ns.name, vec![ControllerKind::Podmanager]);
    config.webhook = Some(webhook(Some(dir.clone()), None));
    let operator = Operator::start_config(config).await;
    assert!(trusted_by(&mounted.ca_pem, &bundle(&crds).await));
    let reissued = certs::self_signed(&default_hosts(), certs::DEFAULT_LIFE).unwrap();
    write(&reissued);
    let reloaded = eventually(Duration::from_secs(30), || async {
        trusted_by(&reissued.ca_pem, &bundle(&crds).await).then_some(())
    })
    .await;
    assert!(reloaded.is_some(), "the reissued certificate on disk was not picked up");
    trust_only(&crds, &reissued.ca_pem).await;
    converts(&client, &ns.name, "after-reload").await;
    assert!(operator.stop().await, "the operator did not stop cleanly");
    std::fs::remove_dir_all(&dir).unwrap();
    install_crds(&client).await;
}
