//! The operator as platform teams run it: installed with the Helm chart, from its own
//! image, two replicas under leader election, the PodManager conversion webhook reached
//! by the API server through its Service. Then `helm upgrade` keeps the conversion
//! working, and `helm uninstall` leaves nothing cluster-scoped behind but the CRDs.
//!
//! One test, in order: the last steps take the operator away. hack/test-real-node runs
//! this binary after the others.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use webapp_e2e::cluster::{self, helm, kubectl_run, operator_namespace, release, run};
use webapp_e2e::namespace::Namespace;
use webapp_e2e::wait;

const READY: Duration = Duration::from_secs(240);
/// The Lease the replicas elect a leader on (`manager::leader::LEASE`).
const LEASE: &str = "lease/webapp-operator-leader";

/// The operator's replicas, ready, all on the image the stage built.
fn operator_ready(system: &str, release: &str) -> Result<Vec<String>, String> {
    wait::until("the operator's two replicas to be ready", READY, || {
        let deployment = cluster::get(system, &format!("deployment/{release}"))?.ok_or("no Deployment")?;
        let ready = deployment.pointer("/status/readyReplicas").and_then(|r| r.as_i64()).unwrap_or(0);
        let updated = deployment.pointer("/status/updatedReplicas").and_then(|r| r.as_i64()).unwrap_or(0);
        let total = deployment.pointer("/status/replicas").and_then(|r| r.as_i64()).unwrap_or(0);
        if ready == 2 && updated == 2 && total == 2 {
            let pods = kubectl_run(&[
                "-n",
                system,
                "get",
                "pods",
                "-l",
                &format!("app.kubernetes.io/instance={release}"),
                "-o",
                "jsonpath={.items[*].metadata.name}",
            ])?;
            Ok(Some(pods.split_whitespace().map(str::to_owned).collect()))
        } else {
            Err(format!("ready {ready}, updated {updated}, replicas {total}"))
        }
    })
}

/// The PodManager `name` read through v2, the conversion webhook's way.
fn read_v2(ns: &str, name: &str) -> Result<serde_json::Value, String> {
    cluster::get(ns, &format!("podmanagers.v2.apps.mycompany.com/{name}"))?.ok_or_else(|| format!("no {name}"))
}

/// A v2 PodManager is written, read back through v1, and served by the operator.
fn v2_round_trip(ns: &str, name: &str) -> Result<(), String> {
    let v2 = serde_json::json!({
        "apiVersion": "apps.mycompany.com/v2", "kind": "PodManager", "metadata": {"name": name},
        "spec": {"replicas": 1, "template": {"metadata": {"labels": {"written": "through-v2"}},
                 "spec": {"containers": [{"name": "web", "image": "nginx:1.21"}]}}}
    });
    cluster::apply(ns, &v2.to_string())?;
    let v1 = cluster::get(ns, &format!("podmanagers.v1.apps.mycompany.com/{name}"))?.ok_or("not readable as v1")?;
    if v1.pointer("/spec/image").and_then(|i| i.as_str()) != Some("nginx:1.21") {
        return Err(format!("v1 view of {name}: {v1}"));
    }
    wait::phase(ns, &format!("podmanagers.v1.apps.mycompany.com/{name}"), "Running", READY)
}

#[test]
fn the_chart_runs_the_operator_from_its_image_and_uninstalls_cleanly() {
    let system = operator_namespace();
    let release = release();

    // Two replicas from the image, one of them the leader.
    let pods = operator_ready(&system, &release).unwrap();
    let image = kubectl_run(&[
        "-n",
        &system,
        "get",
        &format!("deployment/{release}"),
        "-o",
        "jsonpath={.spec.template.spec.containers[0].image}",
    ])
    .unwrap();
    assert!(image.starts_with("webapp-operator:"), "the operator's image: {image}");
    let holder = wait::until("a leader", Duration::from_secs(60), || {
        let holder = kubectl_run(&["-n", &system, "get", LEASE, "-o", "jsonpath={.spec.holderIdentity}"])?;
        Ok(pods.contains(&holder).then_some(holder))
    })
    .unwrap();
    println!("leader: {holder}");

    // PodManager through its conversion webhook, which the API server reaches through
    // the release's Service (the CRD names no URL).
    let service = kubectl_run(&["get", "crd/podmanagers.apps.mycompany.com", "-o",
        "jsonpath={.spec.conversion.webhook.clientConfig.service.namespace}/{.spec.conversion.webhook.clientConfig.service.name}{.spec.conversion.webhook.clientConfig.url}"]).unwrap();
    assert_eq!(service, format!("{system}/{release}-webhook"));
    let ns = Namespace::new("chart").unwrap();
    let sample = std::fs::read_to_string(cluster::repo().join("config/samples/apps_v1_podmanager.yaml")).unwrap();
    cluster::apply(&ns.name, &sample).unwrap();
    wait::phase(&ns.name, "podmanagers.v1.apps.mycompany.com/my-pod-manager", "Running", READY).unwrap();
    let pods = kubectl_run(&[
        "-n",
        &ns.name,
        "get",
        "pods",
        "-o",
        r#"jsonpath={range .items[?(@.status.phase=="Running")]}{.metadata.name}{" "}{end}"#,
    ])
    .unwrap();
    assert_eq!(pods.split_whitespace().count(), 3, "running pods: {pods}");
    let through_v2 = read_v2(&ns.name, "my-pod-manager").unwrap();
    assert_eq!(through_v2.pointer("/apiVersion").and_then(|v| v.as_str()), Some("apps.mycompany.com/v2"));
    assert_eq!(
        through_v2.pointer("/spec/template/spec/containers/0/image").and_then(|v| v.as_str()),
        Some("nginx:latest"),
        "{through_v2}"
    );
    v2_round_trip(&ns.name, "written-as-v2").unwrap();

    // helm upgrade (a changed value rolls the pods): the conversion keeps working.
    let mut upgrade = helm();
    upgrade.args([
        "upgrade",
        &release,
        &cluster::repo().join("charts/webapp-operator").to_string_lossy(),
        "-n",
        &system,
        "--reset-then-reuse-values",
        "--set",
        "logging.level=debug",
        "--wait",
        "--timeout",
        "4m",
    ]);
    run(upgrade, None).unwrap();
    operator_ready(&system, &release).unwrap();
    read_v2(&ns.name, "my-pod-manager").unwrap();
    v2_round_trip(&ns.name, "written-after-upgrade").unwrap();

    // The user's objects go first, while the operator can still finalize them.
    drop(ns);
    wait::until("the test namespace to be gone", READY, || {
        Ok(kubectl_run(&["get", "namespaces", "-o", "name"])?
            .lines()
            .all(|n| !n.starts_with("namespace/e2e-chart-"))
            .then_some(()))
    })
    .unwrap();

    // helm uninstall: nothing cluster-scoped is left but the CRDs, which Helm keeps.
    let mut uninstall = helm();
    uninstall.args(["uninstall", &release, "-n", &system, "--wait", "--timeout", "4m"]);
    run(uninstall, None).unwrap();
    let cluster_scoped = kubectl_run(&["api-resources", "--namespaced=false", "--verbs=list", "-o", "name"]).unwrap();
    let mut leftovers = Vec::new();
    for kind in cluster_scoped.lines().filter(|k| *k != "customresourcedefinitions.apiextensions.k8s.io") {
        let Ok(names) =
            kubectl_run(&["get", kind, "-o", "name", "-l", &format!("app.kubernetes.io/instance={release}")])
        else {
            continue;
        };
        leftovers.extend(names.lines().map(str::to_owned));
        let named = kubectl_run(&["get", kind, "-o", "name"]).unwrap_or_default();
        leftovers.extend(named.lines().filter(|n| n.contains(&release)).map(str::to_owned));
    }
    leftovers.sort();
    leftovers.dedup();
    assert!(leftovers.is_empty(), "cluster-scoped leftovers of the release: {leftovers:?}");
    for crd in ["webapps.apps.example.com", "podmanagers.apps.mycompany.com", "databases.database.example.com"] {
        kubectl_run(&["get", "crd", crd]).unwrap_or_else(|e| panic!("the CRD {crd} should be kept: {e}"));
    }
}
