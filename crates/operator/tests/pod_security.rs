//! Pod Security `restricted`: in a namespace that enforces it, the API server admits the
//! pods of every kind with a Deployment or StatefulSet as the operator plans them (the
//! kit's restricted defaults), and refuses a pod whose spec lifts them, which the
//! status then explains.

// Tests panic on failure by design.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace, Pod};
use kube::api::{ApiResource, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use webapp_api::{Database, Memcached, WebApp, WebServer};
use webapp_operator::controllers::ControllerKind;

const ENFORCE: &str = "pod-security.kubernetes.io/enforce";

/// A namespace of the test's own that enforces `restricted` (latest version).
async fn restricted_namespace(client: &Client, prefix: &str) -> TestNamespace {
    let ns = TestNamespace::new(client, prefix).await;
    let namespaces: Api<Namespace> = Api::all(client.clone());
    let labels = json!({"metadata": {"labels": {ENFORCE: "restricted", format!("{ENFORCE}-version"): "latest"}}});
    namespaces.patch(&ns.name, &PatchParams::default(), &Patch::Merge(&labels)).await.unwrap();
    ns
}

async fn create(client: &Client, ns: &str, resource: &ApiResource, name: &str, spec: Value) -> Api<DynamicObject> {
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": resource.kind, "metadata": {"name": name}, "spec": spec,
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.expect("rejected");
    api
}

fn status(object: &DynamicObject, field: &str) -> Value {
    object.data.pointer(&format!("/status/{field}")).cloned().unwrap_or(Value::Null)
}

async fn wait_for(api: &Api<DynamicObject>, name: &str, what: &str, check: impl Fn(&DynamicObject) -> bool) {
    let found = eventually(Duration::from_secs(90), || async { api.get(name).await.ok().filter(|o| check(o)) }).await;
    if found.is_none() {
        let last = api.get(name).await.ok().map(|o| o.data["status"].clone());
        panic!("{name} never got {what}; last status: {last:#?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restricted_namespace_admits_every_managed_pod_and_refuses_a_lifted_one() {
    let client = client().await;
    install_crds(&client).await;
    let ns = restricted_namespace(&client, "restricted").await;
    let _volumes = volumes(&client, &ns.name, "standard", &[("data-db-0", "1Gi")]).await;
    let _operator = Operator::start_with(
        &ns.name,
        vec![ControllerKind::Webapp, ControllerKind::Webserver, ControllerKind::Memcached, ControllerKind::Database],
    )
    .await;

    // The namespace does enforce: a bare pod without the settings is refused, so the
    // admissions below are not the absence of a check.
    let pods: Api<Pod> = Api::namespaced(client.clone(), &ns.name);
    let bare: Pod = serde_json::from_value(json!({"metadata": {"name": "bare"},
        "spec": {"containers": [{"name": "c", "image": "nginx:1.21"}]}}))
    .unwrap();
    let refused = pods.create(&PostParams::default(), &bare).await.expect_err("a bare pod was admitted");
    assert!(refused.to_string().contains("violates PodSecurity \"restricted"), "{refused}");

    let kinds = [
        (
            ApiResource::erase::<WebApp>(&()),
            "web",
            json!({"image": "nginxinc/nginx-unprivileged:1.21", "replicas": 2, "port": 8080}),
        ),
        (ApiResource::erase::<WebServer>(&()), "server", json!({"replicas": 2})),
        (ApiResource::erase::<Memcached>(&()), "cache", json!({"size": 2})),
        (ApiResource::erase::<Database>(&()), "db", json!({"type": "postgresql", "version": "16"})),
    ];
    let mut apis = Vec::new();
    for (resource, name, spec) in &kinds {
        apis.push((create(&client, &ns.name, resource, name, spec.clone()).await, *name));
    }
    for (api, name) in &apis {
        wait_for(api, name, "Running", |o| status(o, "phase") == "Running").await;
    }
    // Running means admitted and Ready: each kind's pods are there, in that namespace.
    for (_, name) in &apis {
        let listed = pods.list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}"))).await;
        assert!(!listed.unwrap().items.is_empty(), "no pod of {name}");
    }

    // A spec that lifts the defaults (`{}`: the image as it was built, root included)
    // gets no pod here, and the status says what the API server refused.
    let webapps = create(
        &client,
        &ns.name,
        &ApiResource::erase::<WebApp>(&()),
        "root",
        json!({"image": "nginx:1.21", "replicas": 1, "securityContext": {}}),
    )
    .await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let planned = eventually(Duration::from_secs(60), || async { deployments.get_opt("root").await.ok().flatten() })
        .await
        .expect("no Deployment for the lifted WebApp");
    let container = &planned.spec.unwrap().template.spec.unwrap().containers[0];
    assert_eq!(container.security_context, Some(Default::default()), "the spec's {{}} is sent as written");
    wait_for(&webapps, "root", "a status naming the Pod Security refusal", |o| {
        status(o, "message").as_str().is_some_and(|m| m.contains("FailedCreate") && m.contains("PodSecurity"))
    })
    .await;
    let root = webapps.get("root").await.unwrap();
    assert_ne!(status(&root, "phase"), "Running", "{:?}", root.data["status"]);
}
