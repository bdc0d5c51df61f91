//! WebServer (seed 004) and Memcached (seed 003) on the real local control plane. Both
//! are built on the kit's workload layer, so one scenario, parameterised by the kind,
//! proves what they share; each kind then has the tests of what is its own.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use webapp_api::{Memcached, WebServer};
use webapp_operator::controllers::ControllerKind;

/// What the shared scenario needs to know about a kind.
struct Kind {
    controller: ControllerKind,
    /// The controller's name in metric labels.
    name: &'static str,
    resource: ApiResource,
    /// `spec.replicas` or `spec.size`.
    count: &'static str,
    /// The image the schema defaults to.
    default_image: &'static str,
}

fn webserver() -> Kind {
    Kind {
        controller: ControllerKind::Webserver,
        name: "webserver",
        resource: ApiResource::erase::<WebServer>(&()),
        count: "replicas",
        default_image: "nginx:latest",
    }
}

fn memcached() -> Kind {
    Kind {
        controller: ControllerKind::Memcached,
        name: "memcached",
        resource: ApiResource::erase::<Memcached>(&()),
        count: "size",
        default_image: "memcached:1.6",
    }
}

impl Kind {
    fn api(&self, client: &Client, ns: &str) -> Api<DynamicObject> {
        Api::namespaced_with(client.clone(), ns, &self.resource)
    }

    async fn create(&self, client: &Client, ns: &str, name: &str, spec: Value) -> Api<DynamicObject> {
        let api = self.api(client, ns);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": self.resource.api_version, "kind": self.resource.kind,
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.expect("rejected");
        api
    }
}

fn status(object: &DynamicObject, field: &str) -> Value {
    object.data.pointer(&format!("/status/{field}")).cloned().unwrap_or(Value::Null)
}

/// Running, at `generation`, with `ready` pods ready.
fn running(generation: i64, ready: i64) -> impl Fn(&DynamicObject) -> bool {
    move |o| {
        status(o, "phase") == "Running"
            && status(o, "observedGeneration") == generation
            && status(o, "readyReplicas") == ready
    }
}

async fn wait_for(
    api: &Api<DynamicObject>,
    name: &str,
    what: &str,
    check: impl Fn(&DynamicObject) -> bool,
) -> DynamicObject {
    let found = eventually(Duration::from_secs(90), || async { api.get(name).await.ok().filter(|o| check(o)) }).await;
    if let Some(object) = found {
        return object;
    }
    let last = api.get(name).await.ok().map(|o| o.data["status"].clone());
    panic!("{name} never got {what}; last status: {last:#?}")
}

async fn setup(kind: &Kind, prefix: &str) -> (Client, TestNamespace, Operator) {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start_with(&ns.name, vec![kind.controller]).await;
    (client, ns, operator)
}

/// What both kinds promise: created → Running; scale subresource and spec count
/// followed; image change rolled out; drift repaired from the watch events; no writes
/// when converged; children gone with the owner.
async fn lifecycle(kind: Kind, prefix: &str) {
    let (client, ns, operator) = setup(&kind, prefix).await;
    let api = kind.create(&client, &ns.name, "x", json!({kind.count: 2})).await;
    let object = wait_for(&api, "x", "Running with 2 ready", running(1, 2)).await;
    let conditions = status(&object, "conditions");
    let ready = conditions.as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!((ready["status"].as_str(), ready["observedGeneration"].as_i64()), (Some("True"), Some(1)));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let deployment = deployments.get("x").await.unwrap();
    let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), (kind.resource.kind.as_str(), Some(true)));
    let image = |d: &Deployment| d.spec.clone().unwrap().template.spec.unwrap().containers[0].image.clone().unwrap();
    assert_eq!(image(&deployment), kind.default_image);

    // `kubectl scale` goes through the scale subresource to the spec, then to the Deployment.
    kubectl_ok(&["-n", &ns.name, "scale", &format!("{}/x", kind.resource.plural), "--replicas=3"]);
    wait_for(&api, "x", "Running with 3 ready", running(2, 3)).await;
    assert_eq!(deployments.get("x").await.unwrap().spec.unwrap().replicas, Some(3));

    let patch = json!({"spec": {"image": format!("{}-new", kind.default_image)}});
    api.patch("x", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    wait_for(&api, "x", "Running on the new image", running(3, 3)).await;
    assert_eq!(image(&deployments.get("x").await.unwrap()), format!("{}-new", kind.default_image));

    // Drift: replicas edited on the Deployment and the Service deleted, repaired well
    // under the 30 s re-check, so from the watch events.
    let drift = json!({"spec": {"replicas": 1}});
    deployments.patch("x", &PatchParams::default(), &Patch::Merge(&drift)).await.unwrap();
    services.delete("x", &DeleteParams::default()).await.unwrap();
    let repaired = eventually(Duration::from_secs(15), || async {
        let replicas = deployments.get("x").await.ok()?.spec?.replicas?;
        let service = services.get_opt("x").await.ok()??;
        (replicas == 3 && service.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    assert!(repaired.is_some(), "drift not repaired within 15 s");
    wait_for(&api, "x", "Running again", running(3, 3)).await;

    // The repair's rollout is over, the ReplicaSets' and pods' part of it too: the
    // Deployment's status, which the kind's status reports from, no longer changes (a
    // change would be reconciled and written).
    deployment_settled(&client, &ns.name, "x", 3).await;
    // And the kind's status says so: its pod counts are written up to 5 s late (the kit
    // coalesces changes of detail), and such a write landing among the resyncs below
    // would count as a write at rest (seen once under 4 test threads and a compile).
    wait_for(&api, "x", "the rollout's end in its status", |o| running(3, 3)(o) && status(o, "replicas") == 3).await;
    // Converged: forced resyncs (metadata-only changes) are reconciled and write nothing.
    let reconciles = format!("controller_runtime_reconcile_total{{controller=\"{}\",result=\"success\"}}", kind.name);
    let writes = operator.writes_at_rest(&api, "x", &reconciles, 3).await;
    assert_eq!(writes, 0.0, "a converged {} was written to", kind.resource.kind);

    // Deletion: owner references let the garbage collector take both children.
    api.delete("x", &DeleteParams::default()).await.unwrap();
    let gone = eventually(Duration::from_secs(60), || async {
        let deployment = deployments.get_opt("x").await.ok()?;
        let service = services.get_opt("x").await.ok()?;
        (deployment.is_none() && service.is_none()).then_some(())
    })
    .await;
    assert!(gone.is_some(), "children left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_lifecycle() {
    lifecycle(webserver(), "ws").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_lifecycle() {
    lifecycle(memcached(), "mc").await;
}

/// Applies a sample file of config/samples into `ns`, as a user would.
fn apply_sample(ns: &str, file: &str) {
    let path = repo().join("config/samples").join(file);
    kubectl_ok(&["-n", ns, "apply", "-f", path.to_str().unwrap()]);
}

/// Seed 004's quick start: the sample applies verbatim and reads well in `kubectl get`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_sample_runs_and_reads_well() {
    let kind = webserver();
    let (client, ns, _operator) = setup(&kind, "wssample").await;
    apply_sample(&ns.name, "webserver_v1_webserver.yaml");
    wait_for(&kind.api(&client, &ns.name), "webserver-sample", "Running with 3 ready", running(1, 3)).await;
    let table = kubectl_ok(&["-n", &ns.name, "get", "webservers"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "READY", "REPLICAS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["webserver-sample", "Running", "3", "3"]);
    let service: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let spec = service.get("webserver-sample").await.unwrap().spec.unwrap();
    assert_eq!((spec.type_.as_deref(), spec.ports.unwrap()[0].port), (Some("ClusterIP"), 80));
}

/// Seed 003's sample verbatim: `status.nodes` lists the ready pods, which the headless
/// Service resolves to; memcached runs non-root on its port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_sample_lists_its_ready_nodes() {
    let kind = memcached();
    let (client, ns, _operator) = setup(&kind, "mcsample").await;
    apply_sample(&ns.name, "cache_v1alpha1_memcached.yaml");
    let api = kind.api(&client, &ns.name);
    let object = wait_for(&api, "memcached-sample", "Running with 3 ready", running(1, 3)).await;

    let pods = kubectl_ok(&[
        "-n",
        &ns.name,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/instance=memcached-sample",
        "-o",
        "jsonpath={.items[*].metadata.name}",
    ]);
    let mut names: Vec<&str> = pods.split_whitespace().collect();
    names.sort();
    assert_eq!(status(&object, "nodes"), json!(names));
    // The source document's own selector finds the same pods.
    let seed_selector = "app=memcached,memcached_cr=memcached-sample";
    let listed = ["-n", &ns.name, "get", "pods", "-l", seed_selector, "-o", "jsonpath={.items[*].metadata.name}"];
    let mut seeds: Vec<String> = kubectl_ok(&listed).split_whitespace().map(str::to_owned).collect();
    seeds.sort();
    assert_eq!(seeds, names, "kubectl get pods -l {seed_selector}");

    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let service = services.get("memcached-sample").await.unwrap().spec.unwrap();
    assert_eq!(service.cluster_ip.as_deref(), Some("None"), "clients need every node: a headless Service");
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let pod = deployments.get("memcached-sample").await.unwrap().spec.unwrap().template.spec.unwrap();
    assert_eq!(pod.security_context.unwrap().run_as_non_root, Some(true));
    assert_eq!(pod.containers[0].args.as_deref(), Some(&["-p".to_owned(), "11211".to_owned()][..]));

    // A smaller size drops nodes from the list as their pods go.
    kubectl_ok(&[
        "-n",
        &ns.name,
        "patch",
        "memcached/memcached-sample",
        "--type=merge",
        "-p",
        r#"{"spec":{"size":1}}"#,
    ]);
    let smaller = wait_for(&api, "memcached-sample", "one node", |o| {
        status(o, "nodes").as_array().is_some_and(|n| n.len() == 1) && running(2, 1)(o)
    })
    .await;
    assert_eq!(status(&smaller, "replicas"), 1);
}

/// A port change reaches everything that names the port (the container, its probes, its
/// command line for memcached, the Service), and memcached's memory limit sizes its
/// cache (`-m`, in MiB, 80 % of the limit).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn port_changes_reach_the_container_the_probes_and_the_service() {
    for (kind, spec) in [
        (memcached(), json!({"size": 1, "port": 11211, "resources": {"limits": {"memory": "100Mi"}}})),
        (webserver(), json!({"replicas": 1, "port": 80})),
    ] {
        let (client, ns, _operator) = setup(&kind, &format!("{}port", kind.name)).await;
        let api = kind.api(&client, &ns.name);
        let object: DynamicObject = serde_json::from_value(json!({"apiVersion": kind.resource.api_version,
            "kind": kind.resource.kind, "metadata": {"name": "x"}, "spec": spec}))
        .unwrap();
        api.create(&PostParams::default(), &object).await.unwrap();
        wait_for(&api, "x", "Running", running(1, 1)).await;
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
        let container =
            || async { deployments.get("x").await.unwrap().spec.unwrap().template.spec.unwrap().containers.remove(0) };
        if kind.name == "memcached" {
            let args = container().await.args.unwrap_or_default();
            assert!(args.windows(2).any(|w| w == ["-m", "80"]), "the cache is not 80% of 100Mi: {args:?}");
        }
        api.patch("x", &PatchParams::default(), &Patch::Merge(json!({"spec": {"port": 9090}}))).await.unwrap();
        wait_for(&api, "x", "Running at generation 2", running(2, 1)).await;
        let container = container().await;
        assert_eq!(container.ports.unwrap()[0].container_port, 9090, "{}: container port", kind.name);
        if kind.name == "memcached" {
            let args = container.args.unwrap_or_default();
            assert!(args.windows(2).any(|w| w == ["-p", "9090"]), "memcached does not listen on 9090: {args:?}");
            let probe = container.readiness_probe.unwrap().tcp_socket.unwrap().port;
            assert_eq!(probe, k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(9090));
        }
        let service = Api::<Service>::namespaced(client.clone(), &ns.name).get("x").await.unwrap().spec.unwrap();
        assert_eq!(service.ports.unwrap()[0].port, 9090, "{}: Service port", kind.name);
    }
}

/// Bad input never reaches the controllers: the API server refuses it.
#[tokio::test]
async fn bad_sizes_and_ports_are_rejected_at_admission() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "wsbad").await;
    let cases = [
        (webserver(), json!({"replicas": 0}), "spec.replicas in body should be greater than or equal to 1"),
        (webserver(), json!({"replicas": 11}), "spec.replicas in body should be less than or equal to 10"),
        (webserver(), json!({"replicas": 1, "port": 0}), "spec.port in body should be greater than or equal to 1"),
        (webserver(), json!({"replicas": 1, "port": 70000}), "spec.port in body should be less than or equal to 65535"),
        (memcached(), json!({"size": 0}), "spec.size in body should be greater than or equal to 1"),
        (memcached(), json!({"size": 11}), "spec.size in body should be less than or equal to 10"),
        (memcached(), json!({"size": 1, "port": 70000}), "spec.port in body should be less than or equal to 65535"),
    ];
    for (kind, spec, expected) in cases {
        let api = kind.api(&client, &ns.name);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": kind.resource.api_version, "kind": kind.resource.kind,
            "metadata": {"name": "bad"}, "spec": spec,
        }))
        .unwrap();
        let error = api.create(&PostParams::default(), &object).await.expect_err("accepted");
        assert!(error.to_string().contains(expected), "expected {expected:?} in {error}");
    }
    // Nothing slipped through.
    assert!(webserver().api(&client, &ns.name).get_opt("bad").await.unwrap().is_none());
}

/// A child of the kind's name that another owner made: the object is Failed with
/// NotOwned and the child is never written, not even by a later reconcile (its
/// resourceVersion is unchanged after one, counted by the NotOwned error metric); once
/// the child is gone, the object makes its own and runs.
async fn a_child_it_does_not_own_is_never_written(kind: Kind, prefix: &str, theirs: DynamicObject) {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let child_kind = theirs.types.clone().unwrap().kind;
    let resource = match child_kind.as_str() {
        "Deployment" => ApiResource::erase::<Deployment>(&()),
        _ => ApiResource::erase::<Service>(&()),
    };
    let children: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);
    children.create(&PostParams::default(), &theirs).await.unwrap();

    let operator = Operator::start_with(&ns.name, vec![kind.controller]).await;
    let api = kind.create(&client, &ns.name, "x", json!({kind.count: 1})).await;
    let failed = wait_for(&api, "x", "Failed/NotOwned", |o| status(o, "phase") == "Failed").await;
    let conditions = status(&failed, "conditions");
    let degraded = conditions.as_array().unwrap().iter().find(|c| c["type"] == "Degraded").unwrap();
    assert_eq!((degraded["status"].as_str(), degraded["reason"].as_str()), (Some("True"), Some("NotOwned")));
    assert!(status(&failed, "message").as_str().unwrap().contains("not owned"), "{failed:?}");

    // Their Deployment's own controller writes its status until its rollout is over:
    // those writes are not ours, so the check starts once they have stopped.
    eventually(Duration::from_secs(60), || async {
        let child = children.get("x").await.ok()?;
        let settled = child_kind != "Deployment"
            || (child.data.pointer("/status/observedGeneration")
                == child.metadata.generation.map(Value::from).as_ref()
                && child.data.pointer("/status/availableReplicas") == child.data.pointer("/spec/replicas"));
        settled.then_some(())
    })
    .await
    .expect("their Deployment's rollout never finished");
    // One more reconcile of the blocked object, counted: it too leaves the child alone.
    let before = children.get("x").await.unwrap();
    let not_owned =
        format!("controller_runtime_reconcile_errors_total{{controller=\"{}\",reason=\"NotOwned\"}}", kind.name);
    operator.resync(&api, "x", &not_owned, 1).await;
    let after = children.get("x").await.unwrap();
    assert_untouched(&before.metadata, &after.metadata, &format!("their {child_kind}"));

    children.delete("x", &DeleteParams::default()).await.unwrap();
    wait_for(&api, "x", "Running once their child is gone", running(1, 1)).await;
}

/// A Service nobody owns, named like the WebServer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_leaves_a_service_it_does_not_own_alone() {
    let theirs: DynamicObject = serde_json::from_value(json!({"apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "x", "labels": {"team": "other"}},
        "spec": {"selector": {"app": "theirs"}, "ports": [{"port": 8080}]}}))
    .unwrap();
    a_child_it_does_not_own_is_never_written(webserver(), "wsnotowned", theirs).await;
}

/// A Deployment nobody owns, named like the Memcached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_leaves_a_deployment_it_does_not_own_alone() {
    let theirs: DynamicObject = serde_json::from_value(json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "x", "labels": {"team": "other"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}},
                "spec": {"containers": [{"name": "c", "image": "httpd:2"}]}}}}))
    .unwrap();
    a_child_it_does_not_own_is_never_written(memcached(), "mcnotowned", theirs).await;
}

/// Pods that cannot start: the WebServer's status names the pod and the reason, Ready
/// is False with PodsFailing, and a good image recovers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webserver_explains_failing_pods_in_status() {
    let kind = webserver();
    let (client, ns, _operator) = setup(&kind, "wsfailing").await;
    // kwok's test stage keeps pods of this image in ImagePullBackOff.
    let api = kind.create(&client, &ns.name, "x", json!({"replicas": 1, "image": "nginx:does-not-exist"})).await;
    let failing = wait_for(&api, "x", "an ImagePullBackOff message", |o| {
        status(o, "message").as_str().is_some_and(|m| m.contains("ImagePullBackOff"))
    })
    .await;
    let pod = instance_pods(&client, &ns.name, "x").await.remove(0);
    let message = status(&failing, "message");
    let expected = format!("pod {pod}: container web: ImagePullBackOff");
    assert!(message.as_str().unwrap().contains(&expected), "{expected:?} not in {message}");
    assert_eq!(status(&failing, "phase"), "Creating");
    let conditions = status(&failing, "conditions");
    let ready = conditions.as_array().unwrap().iter().find(|c| c["type"] == "Ready").unwrap();
    assert_eq!((ready["status"].as_str(), ready["reason"].as_str()), (Some("False"), Some("PodsFailing")));

    api.patch("x", &PatchParams::default(), &Patch::Merge(json!({"spec": {"image": "nginx:1.21"}}))).await.unwrap();
    wait_for(&api, "x", "Running on a good image", running(2, 1)).await;
}

/// `status.nodes` lists only the pods a client can use: one that runs but is not Ready
/// (its readiness probe fails) is left out, while the counts still show it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memcached_leaves_not_ready_pods_out_of_its_nodes() {
    let kind = memcached();
    let (client, ns, _operator) = setup(&kind, "mcnotready").await;
    let api = kind.create(&client, &ns.name, "x", json!({"size": 2})).await;
    // The Deployment's ready count and the pods' readiness come through two watches:
    // a status may count 2 ready before the second pod's own event has arrived, and the
    // next reconcile lists it.
    let both = wait_for(&api, "x", "Running with 2 ready nodes", |o| {
        running(1, 2)(o) && status(o, "nodes").as_array().is_some_and(|n| n.len() == 2)
    })
    .await;
    let pods = instance_pods(&client, &ns.name, "x").await;
    assert_eq!(status(&both, "nodes"), json!(pods));

    fake_pod(&client, &ns.name, &pods[0], Faked::NotReady).await;
    let one = wait_for(&api, "x", "one node and one ready replica", |o| {
        status(o, "nodes").as_array().is_some_and(|n| n.len() == 1) && status(o, "readyReplicas") == 1
    })
    .await;
    assert_eq!(status(&one, "nodes"), json!([pods[1]]), "the not-ready pod is still listed");
    // The same status counts both pods: the other one was seen, and left out.
    assert_eq!((status(&one, "replicas"), status(&one, "readyReplicas")), (json!(2), json!(1)));
    assert_eq!(instance_pods(&client, &ns.name, "x").await, pods);
}
