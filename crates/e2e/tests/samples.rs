//! The samples of config/samples, applied verbatim on a real node, answer for real:
//! nginx behind a WebApp's and a WebServer's Service, memcached behind a Memcached's,
//! PodManager's bare pods, with every check made through `kubectl port-forward`.

// A failed step is a failed test: the harness returns errors, the tests unwrap them.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use webapp_e2e::cluster::{self, kubectl_run};
use webapp_e2e::forward::{self, PortForward};
use webapp_e2e::namespace::Namespace;
use webapp_e2e::wait;

/// How long a sample may take to run: real pulls from the node's registry and real
/// readiness probes (measured: well under a minute; see docs/development.md).
const READY: Duration = Duration::from_secs(240);

fn sample(file: &str) -> String {
    std::fs::read_to_string(cluster::repo().join("config/samples").join(file)).unwrap()
}

/// `GET /` through a fresh port-forward to `svc/<name>` answers 200 with nginx's page.
/// A fresh one each time: a port-forward to a Service is bound to one pod, chosen when
/// it starts, and a rollout replaces the pods.
fn serves_nginx(ns: &str, service: &str, port: u16) -> Result<(), String> {
    wait::until(&format!("svc/{service}:{port} to answer 200"), Duration::from_secs(60), || {
        let forward = PortForward::start(ns, &format!("svc/{service}"), port)?;
        let (status, body) = forward::http_get(forward.port)?;
        if status == 200 && body.contains("nginx") { Ok(Some(())) } else { Err(format!("HTTP {status}")) }
    })
}

/// Waits until `what` is Running at its current generation.
fn running_at_latest(ns: &str, what: &str) -> Result<(), String> {
    wait::until(&format!("{what} Running at its generation"), READY, || {
        let object = cluster::get(ns, what)?.ok_or("gone")?;
        let generation = object.pointer("/metadata/generation").and_then(|g| g.as_i64());
        let observed = object.pointer("/status/observedGeneration").and_then(|g| g.as_i64());
        let phase = object.pointer("/status/phase").and_then(|p| p.as_str()).unwrap_or("<none>");
        let message = object.pointer("/status/message").and_then(|m| m.as_str()).unwrap_or("");
        if phase == "Running" && generation == observed {
            Ok(Some(()))
        } else {
            Err(format!("phase {phase} (generation {generation:?}, observed {observed:?}) {message}"))
        }
    })
}

fn gone(ns: &str, what: &str) -> Result<(), String> {
    wait::until(&format!("{what} to be gone"), Duration::from_secs(120), || {
        Ok(cluster::get(ns, what)?.is_none().then_some(()))
    })
}

#[test]
fn the_webapp_sample_serves_http_follows_changes_and_goes() {
    let ns = Namespace::new("webapp").unwrap();
    cluster::apply(&ns.name, &sample("apps_v1alpha1_webapp.yaml")).unwrap();
    running_at_latest(&ns.name, "webapp/my-webapp").unwrap();
    serves_nginx(&ns.name, "my-webapp", 80).unwrap();

    // An image change: a rollout of real pods, still serving.
    kubectl_run(&[
        "-n",
        &ns.name,
        "patch",
        "webapp/my-webapp",
        "--type=merge",
        "-p",
        r#"{"spec":{"image":"nginx:1.21"}}"#,
    ])
    .unwrap();
    running_at_latest(&ns.name, "webapp/my-webapp").unwrap();
    let images = kubectl_run(&[
        "-n",
        &ns.name,
        "get",
        "pods",
        "-l",
        "app.kubernetes.io/instance=my-webapp",
        "-o",
        r#"jsonpath={range .items[*]}{.metadata.deletionTimestamp}{"|"}{.spec.containers[0].image}{"\n"}{end}"#,
    ])
    .unwrap();
    // Pods of the old ReplicaSet may still be stopping (deletionTimestamp set): the
    // rollout is done when every pod that stays runs the new image.
    let staying: Vec<&str> = images.lines().filter_map(|l| l.strip_prefix('|')).collect();
    assert!(!staying.is_empty() && staying.iter().all(|i| *i == "nginx:1.21"), "pods left on the old image: {images}");
    serves_nginx(&ns.name, "my-webapp", 80).unwrap();

    // A port change, with the image that listens there: NGINX's unprivileged image
    // serves on 8080 (the official nginx image only ever listens on 80).
    kubectl_run(&[
        "-n",
        &ns.name,
        "patch",
        "webapp/my-webapp",
        "--type=merge",
        "-p",
        r#"{"spec":{"image":"nginxinc/nginx-unprivileged:1.21","port":8080}}"#,
    ])
    .unwrap();
    running_at_latest(&ns.name, "webapp/my-webapp").unwrap();
    let service_port =
        kubectl_run(&["-n", &ns.name, "get", "svc/my-webapp", "-o", "jsonpath={.spec.ports[0].port}"]).unwrap();
    assert_eq!(service_port, "8080");
    serves_nginx(&ns.name, "my-webapp", 8080).unwrap();

    kubectl_run(&["-n", &ns.name, "delete", "webapp/my-webapp", "--wait=false"]).unwrap();
    for child in ["webapp/my-webapp", "deployment/my-webapp", "service/my-webapp", "ingress/my-webapp"] {
        gone(&ns.name, child).unwrap();
    }
    // The garbage collector takes the ReplicaSet and its pods after the Deployment, and
    // kubelet stops each container (nginx's graceful stop): gone, not only deleting.
    wait::until("the pods to be gone", Duration::from_secs(120), || {
        let pods = kubectl_run(&["-n", &ns.name, "get", "pods", "-o", "name"])?;
        if pods.trim().is_empty() { Ok(Some(())) } else { Err(format!("left: {}", pods.replace('\n', " "))) }
    })
    .unwrap();
}

/// Pod Security on a real node: in a namespace that enforces `restricted`, a WebApp
/// without `securityContext` gets the restricted settings, so an image with a numeric
/// non-root user runs and serves, and an image that starts as root is admitted but not
/// started by kubelet, which the status explains.
#[test]
fn under_the_restricted_default_a_non_root_image_serves_and_a_root_one_is_explained() {
    let ns = Namespace::new("restricted").unwrap();
    kubectl_run(&["label", "namespace", &ns.name, "pod-security.kubernetes.io/enforce=restricted"]).unwrap();
    let webapp = |name: &str, image: &str, port: u16| {
        format!(
            r#"{{"apiVersion":"apps.example.com/v1alpha1","kind":"WebApp","metadata":{{"name":"{name}"}},
            "spec":{{"image":"{image}","replicas":1,"port":{port}}}}}"#
        )
    };
    cluster::apply(&ns.name, &webapp("unprivileged", "nginxinc/nginx-unprivileged:1.21", 8080)).unwrap();
    cluster::apply(&ns.name, &webapp("root", "nginx:1.21", 80)).unwrap();
    running_at_latest(&ns.name, "webapp/unprivileged").unwrap();
    serves_nginx(&ns.name, "unprivileged", 8080).unwrap();
    let message = wait::until("the root image's refusal in status.message", READY, || {
        let message = cluster::get(&ns.name, "webapp/root")?
            .and_then(|o| o.pointer("/status/message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Ok(message.contains("CreateContainerConfigError").then_some(message))
    })
    .unwrap();
    assert!(message.contains("runAsNonRoot"), "kubelet's reason is not in the status: {message}");
}

#[test]
fn a_really_crashing_pod_is_explained_in_the_status() {
    let ns = Namespace::new("crash").unwrap();
    // The postgres image exits at once without a password: a real CrashLoopBackOff.
    cluster::apply(
        &ns.name,
        r#"{"apiVersion":"apps.example.com/v1alpha1","kind":"WebApp",
        "metadata":{"name":"crasher"},"spec":{"image":"postgres:15","replicas":1,"port":5432}}"#,
    )
    .unwrap();
    wait::until("status.message to name CrashLoopBackOff", READY, || {
        let message = cluster::get(&ns.name, "webapp/crasher")?
            .and_then(|o| o.pointer("/status/message").and_then(|m| m.as_str()).map(str::to_owned))
            .unwrap_or_default();
        Ok(message.contains("CrashLoopBackOff").then_some(message))
    })
    .unwrap();
    // And it is the container's real exit that kubelet saw.
    let exit = kubectl_run(&[
        "-n",
        &ns.name,
        "get",
        "pods",
        "-o",
        "jsonpath={.items[0].status.containerStatuses[0].lastState.terminated.exitCode}",
    ])
    .unwrap();
    assert_eq!(exit, "1", "the container's last exit code");
}

#[test]
fn the_webserver_sample_serves_http() {
    let ns = Namespace::new("webserver").unwrap();
    cluster::apply(&ns.name, &sample("webserver_v1_webserver.yaml")).unwrap();
    running_at_latest(&ns.name, "webserver/webserver-sample").unwrap();
    // nginx:latest is pulled (policy Always) from the node's registry.
    serves_nginx(&ns.name, "webserver-sample", 80).unwrap();
}

#[test]
fn the_memcached_sample_answers_stats_and_lists_its_real_pods() {
    let ns = Namespace::new("memcached").unwrap();
    cluster::apply(&ns.name, &sample("cache_v1alpha1_memcached.yaml")).unwrap();
    running_at_latest(&ns.name, "memcached/memcached-sample").unwrap();

    let forward = PortForward::start(&ns.name, "svc/memcached-sample", 11211).unwrap();
    let stats = forward::memcached_stats(forward.port).unwrap();
    let stat = |name: &str| stats.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone());
    assert!(stat("pid").is_some(), "no pid in stats: {stats:?}");
    assert!(stat("version").is_some_and(|v| v.starts_with("1.6")), "version: {:?}", stat("version"));
    drop(forward);

    // status.nodes is the set of ready pods, as kubelet reports them.
    let nodes = wait::until("status.nodes to list the three ready pods", Duration::from_secs(60), || {
        let memcached = cluster::get(&ns.name, "memcached/memcached-sample")?.ok_or("gone")?;
        let mut nodes: Vec<String> = memcached
            .pointer("/status/nodes")
            .and_then(|n| n.as_array())
            .map(|n| n.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default();
        nodes.sort();
        let ready = kubectl_run(&[
            "-n",
            &ns.name,
            "get",
            "pods",
            "-l",
            "app.kubernetes.io/instance=memcached-sample",
            "-o",
            r#"jsonpath={range .items[?(@.status.containerStatuses[0].ready==true)]}{.metadata.name}{"\n"}{end}"#,
        ])?;
        let mut ready: Vec<String> = ready.lines().map(str::to_owned).collect();
        ready.sort();
        Ok((nodes.len() == 3 && nodes == ready).then_some(nodes))
    })
    .unwrap();
    assert_eq!(nodes.len(), 3);
}
