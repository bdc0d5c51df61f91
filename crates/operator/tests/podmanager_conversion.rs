//! PodManager v1 (hub, storage) and v2 (spoke) on the real API server, converted by the
//! operator's webhook over HTTPS: create through v2 and read through v1 and back,
//! kubectl on both versions, Pods made from a v2 template, a list of objects written in
//! both versions, an unreadable annotation degrading one object only, clear errors for bad requests, and what still works when the
//! webhook is down.
//!
//! One test: the webhook is registered in the cluster-wide CRD, so its steps run in order.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use webapp_api::podmanager::conversion::V2_TEMPLATE;
use webapp_api::{Phase, PodManager};
use webapp_operator::controllers::ControllerKind;
use webapp_operator::webhook::crd::Target;
use webapp_operator::webhook::{NamespacedName, WebhookConfig, default_hosts, secret};

fn version(version: &str) -> ApiResource {
    ApiResource {
        group: "apps.mycompany.com".into(),
        version: version.into(),
        api_version: format!("apps.mycompany.com/{version}"),
        kind: "PodManager".into(),
        plural: "podmanagers".into(),
    }
}

fn dynamic(client: &Client, ns: &str, v: &str) -> Api<DynamicObject> {
    Api::namespaced_with(client.clone(), ns, &version(v))
}

fn template() -> Value {
    json!({
        "metadata": {"labels": {"tier": "front"}, "annotations": {"note": "from-v2"}},
        "spec": {"containers": [{"name": "web", "image": "nginx:1.21",
            "ports": [{"containerPort": 8080, "name": "http"}], "env": [{"name": "MODE", "value": "v2"}]}]}
    })
}

fn free_addr() -> std::net::SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_and_v2_clients_share_objects_through_the_conversion_webhook() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "pmconv").await;
    let n = ns.name.as_str();
    let addr = free_addr();
    let url = format!("https://{addr}{}", webapp_api::podmanager::CONVERT_PATH);
    let mut config = Operator::config(n, vec![ControllerKind::Podmanager]);
    // The certificate as the chart and config/default have it: generated once, shared by
    // the replicas through a Secret in the operator's namespace.
    let cert_secret = NamespacedName { namespace: n.to_owned(), name: "webhook-tls".to_owned() };
    config.webhook = Some(WebhookConfig {
        addr,
        cert_dir: None,
        cert_secret: Some(cert_secret.clone()),
        target: Target::Url(url.clone()),
        hosts: default_hosts(),
        cert_life: webapp_operator::webhook::certs::DEFAULT_LIFE,
    });
    let operator = Operator::start_config(config).await;

    // The operator wrote its URL and CA into the CRD before it became ready.
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    let crd = crds.get(PodManager::crd_name()).await.unwrap();
    let client_config = crd.spec.conversion.unwrap().webhook.unwrap().client_config.unwrap();
    assert_eq!(client_config.url.as_deref(), Some(url.as_str()));
    let ca = client_config.ca_bundle.expect("caBundle written").0;
    assert!(String::from_utf8_lossy(&ca).contains("BEGIN CERTIFICATE"));
    // It stored the certificate, and a second replica starting now serves the same one.
    let secrets: Api<Secret> = Api::namespaced(client.clone(), n);
    let stored = secrets.get("webhook-tls").await.expect("certificate Secret created");
    assert_eq!(stored.data.unwrap()["ca.crt"].0, ca, "the CRD trusts the stored CA");
    let life = webapp_operator::webhook::certs::DEFAULT_LIFE;
    let second = secret::shared(&client, &cert_secret, &default_hosts(), life).await.unwrap();
    assert_eq!(second.ca_pem.as_bytes(), ca.as_slice(), "a second replica serves the first one's certificate");

    // Create through v2 (the API server may take a moment to pick up the new client config).
    let v2 = dynamic(&client, n, "v2");
    let object: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "apps.mycompany.com/v2", "kind": "PodManager",
        "metadata": {"name": "rich"}, "spec": {"replicas": 2, "template": template()}}))
        .unwrap();
    let created =
        eventually(Duration::from_secs(30), || async { v2.create(&PostParams::default(), &object).await.ok() })
            .await
            .expect("create through v2 never succeeded");
    assert_eq!(created.data["spec"]["template"], template());

    // Read through v1: what v1 can say, plus the rest in the annotation.
    let v1: Api<PodManager> = Api::namespaced(client.clone(), n);
    let stored = v1.get("rich").await.unwrap();
    assert_eq!(stored.spec.image, "nginx:1.21");
    assert_eq!(stored.spec.pod_labels["tier"], "front");
    assert!(stored.metadata.annotations.as_ref().unwrap()[V2_TEMPLATE].contains("8080"));
    // ... and back through v2, unchanged.
    assert_eq!(v2.get("rich").await.unwrap().data["spec"]["template"], template());

    // The controller reads v1 and builds Pods from the whole v2 template.
    let running = eventually(Duration::from_secs(90), || async {
        let pm = v1.get("rich").await.ok()?;
        (pm.status.as_ref()?.phase == Some(Phase::Running)).then_some(pm)
    })
    .await;
    assert!(running.is_some(), "not Running: {:?}", v1.get("rich").await.unwrap().status);
    let pod: Pod = Api::namespaced(client.clone(), n).get("rich-0").await.unwrap();
    let container = &pod.spec.as_ref().unwrap().containers[0];
    assert_eq!(container.name, "web");
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 8080);
    assert_eq!(container.env.as_ref().unwrap()[0].value.as_deref(), Some("v2"));
    assert_eq!(pod.metadata.labels.as_ref().unwrap()["tier"], "front");
    assert_eq!(pod.metadata.annotations.as_ref().unwrap()["note"], "from-v2");

    // kubectl, both versions.
    let port = kubectl_ok(&[
        "-n",
        n,
        "get",
        "podmanagers.v2.apps.mycompany.com",
        "rich",
        "-o",
        "jsonpath={.spec.template.spec.containers[0].ports[0].containerPort}",
    ]);
    assert_eq!(port, "8080");
    let image =
        kubectl_ok(&["-n", n, "get", "podmanagers.v1.apps.mycompany.com", "rich", "-o", "jsonpath={.spec.image}"]);
    assert_eq!(image, "nginx:1.21");

    // A list of objects written in both versions converts either way.
    let plain: PodManager = serde_json::from_value(json!({"apiVersion": "apps.mycompany.com/v1", "kind": "PodManager",
        "metadata": {"name": "plain"}, "spec": {"replicas": 1, "image": "nginx:1.20", "podLabels": {"app": "plain"}}}))
    .unwrap();
    v1.create(&PostParams::default(), &plain).await.unwrap();
    let through_v2 = v2.list(&ListParams::default()).await.unwrap();
    let mut images: Vec<(String, Value)> = through_v2
        .items
        .iter()
        .map(|o| {
            (o.metadata.name.clone().unwrap(), o.data["spec"]["template"]["spec"]["containers"][0]["image"].clone())
        })
        .collect();
    images.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(images, [("plain".into(), json!("nginx:1.20")), ("rich".into(), json!("nginx:1.21"))]);
    let plain_v2 = through_v2.items.iter().find(|o| o.metadata.name.as_deref() == Some("plain")).unwrap();
    assert_eq!(plain_v2.data["spec"]["template"]["metadata"]["labels"], json!({"app": "plain"}));
    assert!(plain_v2.metadata.annotations.as_ref().is_none_or(|a| !a.contains_key(V2_TEMPLATE)));
    assert_eq!(v1.list(&ListParams::default()).await.unwrap().items.len(), 2);

    // v2's own rules hold at admission.
    let duplicate: DynamicObject =
        serde_json::from_value(json!({"apiVersion": "apps.mycompany.com/v2", "kind": "PodManager",
        "metadata": {"name": "dup"}, "spec": {"template": {"spec": {"containers": [
            {"name": "a", "image": "x"}, {"name": "a", "image": "y"}]}}}}))
        .unwrap();
    match v2.create(&PostParams::default(), &duplicate).await {
        Err(kube::Error::Api(status)) => {
            assert!(status.message.contains("container names must be unique"), "{status:?}")
        }
        other => panic!("duplicate container names accepted: {other:?}"),
    }

    // One object whose annotation was edited into something unreadable is served in its
    // v1 form: reads of it, and of every list that holds it (kubectl get -A, the garbage
    // collector, namespace deletion), keep working...
    let broken = json!({"metadata": {"annotations": {V2_TEMPLATE: "{broken"}}});
    v1.patch("plain", &PatchParams::default(), &Patch::Merge(&broken)).await.unwrap();
    let served = v2.get("plain").await.expect("one unreadable annotation failed the read");
    assert_eq!(served.data["spec"]["template"]["spec"]["containers"][0]["image"], json!("nginx:1.20"));
    let listed = v2.list(&ListParams::default()).await.expect("one unreadable annotation failed the list");
    assert_eq!(listed.items.len(), 2);
    // ...and the controller reports that object, and only it, as Failed.
    let failed = eventually(Duration::from_secs(30), || async {
        let pm = v1.get("plain").await.ok()?;
        let status = pm.status?;
        (status.phase == Some(Phase::Failed)).then_some(status.message.unwrap_or_default())
    })
    .await
    .expect("the object with the unreadable annotation was not reported");
    assert!(failed.contains("does not hold a v2 Pod template"), "{failed}");
    assert_ne!(v1.get("rich").await.unwrap().status.and_then(|s| s.phase), Some(Phase::Failed));
    let repaired = json!({"metadata": {"annotations": {V2_TEMPLATE: null}}});
    v1.patch("plain", &PatchParams::default(), &Patch::Merge(&repaired)).await.unwrap();
    assert!(v2.get("plain").await.is_ok(), "the webhook still answers after a degraded conversion");
    let ca_file = std::env::temp_dir().join(format!("webhook-ca-{}.pem", std::process::id()));
    std::fs::write(&ca_file, &ca).unwrap();
    let garbage = std::process::Command::new("curl")
        .args(["-sS", "--cacert", ca_file.to_str().unwrap(), "-w", "\n%{http_code}", "-X", "POST", "--data", "garbage"])
        .arg(&url)
        .output()
        .expect("curl");
    let answer = String::from_utf8_lossy(&garbage.stdout);
    assert!(answer.contains("not a ConversionReview") && answer.ends_with("400"), "{answer}");

    // With the webhook down, the storage version still reads; v2 does not.
    assert!(operator.stop().await, "the operator did not stop cleanly");
    assert_eq!(v1.get("rich").await.unwrap().spec.image, "nginx:1.21");
    match v2.get("rich").await {
        Err(kube::Error::Api(status)) => assert!(status.message.contains("conversion webhook"), "{}", status.message),
        other => panic!("v2 read without a webhook: {other:?}"),
    }
    // Back to the test process's webhook, for the namespace cleanup.
    install_crds(&client).await;
}
