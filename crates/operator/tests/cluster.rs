//! The local control plane works as a real cluster: it accepts our CRDs and samples,
//! rejects bad input at admission with clear messages, runs Deployments to Ready pods
//! on kwok's fake nodes, and garbage-collects owned objects.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{ApiResource, DeleteParams, DynamicObject, PostParams};
use kube::{Api, Resource};
use serde_json::json;
use webapp_api::{Database, Memcached, PodManager, WebApp, WebServer};

#[tokio::test]
async fn api_server_accepts_our_crds_and_every_sample() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "samples").await;
    let out = kubectl_ok(&["-n", &ns.name, "apply", "-f", repo().join("config/samples").to_str().unwrap()]);
    for kind in [
        "webapp.apps.example.com/my-webapp",
        "podmanager.apps.mycompany.com/my-pod-manager",
        "webserver.webserver.example.com/webserver-sample",
        "memcached.cache.example.com/memcached-sample",
        "database.database.example.com/my-db",
    ] {
        assert!(out.contains(kind), "{kind} not created: {out}");
    }
    // Defaults from the schema are filled in by the API server.
    let memcached =
        kubectl_ok(&["-n", &ns.name, "get", "memcached", "memcached-sample", "-o", "jsonpath={.spec.port}"]);
    assert_eq!(memcached, "11211");
    // The category lists every kind.
    let all = kubectl_ok(&["-n", &ns.name, "get", "webapp-operator", "-o", "name"]);
    assert_eq!(all.lines().count(), 5, "{all}");
}

/// Creates `body` as a `T` and returns the API server's refusal message.
async fn rejection<T: Resource<DynamicType = ()>>(client: &kube::Client, ns: &str, spec: serde_json::Value) -> String {
    let resource = ApiResource::erase::<T>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &resource);
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": resource.api_version, "kind": resource.kind, "metadata": {"name": "bad"}, "spec": spec,
    }))
    .unwrap();
    match api.create(&PostParams::default(), &object).await {
        Ok(_) => panic!("{} with spec {spec} was accepted", resource.kind),
        Err(kube::Error::Api(status)) => {
            assert_eq!(status.code, 422, "{status:?}");
            status.message
        }
        Err(other) => panic!("unexpected error {other}"),
    }
}

#[tokio::test]
async fn bad_input_is_rejected_at_admission_with_a_clear_message() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "badinput").await;
    let n = ns.name.as_str();
    let cases: Vec<(String, &str)> = vec![
        (
            rejection::<WebServer>(&client, n, json!({"replicas": 0})).await,
            "spec.replicas: Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
        ),
        (
            rejection::<WebServer>(&client, n, json!({"replicas": 11})).await,
            "spec.replicas in body should be less than or equal to 10",
        ),
        (
            rejection::<Memcached>(&client, n, json!({"size": 0})).await,
            "spec.size in body should be greater than or equal to 1",
        ),
        (
            rejection::<WebApp>(&client, n, json!({"image": "nginx", "port": 0})).await,
            "spec.port in body should be greater than or equal to 1",
        ),
        (
            rejection::<WebApp>(&client, n, json!({"image": "nginx", "port": 70000})).await,
            "spec.port in body should be less than or equal to 65535",
        ),
        (
            rejection::<WebApp>(&client, n, json!({"image": ""})).await,
            "spec.image in body should be at least 1 chars long",
        ),
        (
            rejection::<WebApp>(&client, n, json!({"image": "nginx", "env": {"1BAD NAME": "x"}})).await,
            "env names must be letters, digits",
        ),
        (
            rejection::<WebApp>(&client, n, json!({"image": "nginx", "domain": "not a domain!"})).await,
            "domain must be a lower-case DNS name",
        ),
        (
            rejection::<Database>(&client, n, json!({"type": "mysql", "version": "8"})).await,
            "Unsupported value: \"mysql\": supported values: \"postgresql\"",
        ),
        (
            rejection::<Database>(
                &client,
                n,
                json!({"type": "postgresql", "version": "13", "backup": {"enabled": true}}),
            )
            .await,
            "backup.schedule is required when backup.enabled is true",
        ),
        (
            rejection::<Database>(
                &client,
                n,
                json!({"type": "postgresql", "version": "13", "backup": {"enabled": true, "schedule": "daily"}}),
            )
            .await,
            "backup.schedule must be a cron schedule",
        ),
        (
            rejection::<PodManager>(&client, n, json!({"image": "nginx", "replicas": 0})).await,
            "spec.replicas in body should be greater than or equal to 1",
        ),
    ];
    for (message, expected) in cases {
        assert!(message.contains(expected), "expected {expected:?} in {message:?}");
    }
}

/// `kubectl apply --dry-run=server` of one WebApp: the API server's error text, or
/// `None` when it accepts the object.
fn kubectl_apply_webapp(ns: &str, name: &str, spec: serde_json::Value) -> Option<String> {
    use std::io::Write;
    let webapp =
        json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp", "metadata": {"name": name}, "spec": spec});
    let mut child = kubectl()
        .args(["-n", ns, "apply", "--dry-run=server", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run kubectl");
    child.stdin.take().unwrap().write_all(webapp.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    (!output.status.success()).then(|| String::from_utf8_lossy(&output.stderr).into_owned())
}

/// What can never run is refused when it is applied, with a message that says why:
/// image references no runtime could pull, names that cannot name a Service,
/// resource values that are not quantities. What is valid still goes through.
#[tokio::test]
async fn kubectl_apply_of_a_webapp_that_can_never_run_is_refused() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "admission").await;
    let n = ns.name.as_str();
    let image = |image: &str| json!({"image": image});
    let digest = format!("registry.example.com:5000/team/app:v2@sha256:{}", "a".repeat(64));
    for (name, spec) in [
        ("web", image("nginx:1.21")),
        ("web", image("nginx")),
        ("web", image(&digest)),
        ("web", image("localhost:5000/my_app__x/y-z:1.0-rc.1")),
        ("a".repeat(63).as_str(), image("nginx")),
        (
            "web-2",
            json!({"image": "nginx", "resources": {"limits": {"cpu": 2, "memory": "1Gi"}, "requests": {"cpu": "0.5"}}}),
        ),
    ] {
        assert_eq!(kubectl_apply_webapp(n, name, spec.clone()), None, "{name} {spec} was refused");
    }

    let long = "a".repeat(64);
    let cases = [
        ("web", image("nginx :1.21"), "image must not contain spaces"),
        ("web", image("Nginx:1.21"), "image must be an image reference such as nginx:1.21"),
        ("web", image("MyRepo/app"), "a lower-case repository path"),
        ("web", image("nginx@sha256:1234"), "the digest after '@' in image must be sha256: followed by 64"),
        ("web", image("nginx:1.21:2"), "image must be an image reference"),
        (long.as_str(), image("nginx"), "the WebApp name must be at most 63 characters"),
        ("9web", image("nginx"), "the WebApp name must be lower-case letters, digits and '-', start with a letter"),
        ("web.app", image("nginx"), "(a DNS-1035 label)"),
        ("web", json!({"image": "nginx", "domain": "Not_A.Domain"}), "domain must be a lower-case DNS name"),
        (
            "web",
            json!({"image": "nginx", "resources": {"limits": {"cpu": "lots"}}}),
            "every value of resources.limits must be a quantity such as 500m",
        ),
        (
            "web",
            json!({"image": "nginx", "resources": {"requests": {"memory": "1 GB"}}}),
            "every value of resources.requests must be a quantity",
        ),
    ];
    for (name, spec, expected) in cases {
        let refusal =
            kubectl_apply_webapp(n, name, spec.clone()).unwrap_or_else(|| panic!("{name} {spec} was accepted"));
        assert!(refusal.contains(expected), "expected {expected:?} for {name} {spec}, got: {refusal}");
    }
}

#[tokio::test]
async fn a_deployment_gets_ready_pods_on_the_fake_nodes() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "pods").await;
    let api: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "web", "image": "nginx:1.21"}]}}}
    }))
    .unwrap();
    api.create(&PostParams::default(), &deployment).await.unwrap();
    let ready = eventually(Duration::from_secs(60), || async {
        let status = api.get("web").await.ok()?.status?;
        (status.ready_replicas == Some(2)).then_some(())
    })
    .await;
    assert!(ready.is_some(), "pods never became ready: scheduler, controller manager or kwok is not working");
}

#[tokio::test]
async fn deleting_an_owner_garbage_collects_what_it_owns() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "gc").await;
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let owner = maps
        .create(&PostParams::default(), &serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap())
        .await
        .unwrap();
    let child: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "child", "ownerReferences": [{
        "apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.metadata.uid.unwrap(), "controller": true}]}}))
    .unwrap();
    maps.create(&PostParams::default(), &child).await.unwrap();
    maps.delete("owner", &DeleteParams::background()).await.unwrap();
    let collected =
        eventually(Duration::from_secs(60), || async { maps.get_opt("child").await.ok()?.is_none().then_some(()) })
            .await;
    assert!(collected.is_some(), "the garbage collector did not delete the owned ConfigMap");
}
