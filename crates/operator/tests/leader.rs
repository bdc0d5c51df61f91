//! Two replicas with leader election: only the holder of the Lease reconciles, and a
//! leader that shuts down releases the Lease (it is free the moment the leader has
//! stopped) so the standby takes over without waiting for it to expire.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use kube::api::{Patch, PatchParams, PostParams};
use serde_json::json;
use webapp_api::{Phase, WebApp};
use webapp_operator::controllers::ControllerKind;
use webapp_operator::manager::leader::{LEASE_DURATION_SECONDS, RELEASE_POLL, RENEW_GRACE_SECONDS};

fn replica(namespace: &str, name: &str) -> webapp_operator::manager::Config {
    let mut config = Operator::config(namespace, vec![ControllerKind::Webapp]);
    config.leader_elect = true;
    config.leader_election_namespace = Some(namespace.to_owned());
    config.instance = Some(name.to_owned());
    config
}

async fn holder(leases: &Api<Lease>) -> Option<String> {
    leases.get_opt("webapp-operator-leader").await.ok()??.spec?.holder_identity
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_leader_reconciles_and_a_stopping_leader_hands_over() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "leader").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);

    let a = Operator::start_config(replica(&ns.name, "replica-a")).await;
    let led =
        eventually(Duration::from_secs(30), || async { (holder(&leases).await? == "replica-a").then_some(()) }).await;
    assert!(led.is_some(), "replica-a never took the Lease");
    let b = Operator::start_config(replica(&ns.name, "replica-b")).await;

    let api: Api<WebApp> = Api::namespaced(client.clone(), &ns.name);
    let webapp: WebApp = serde_json::from_value(json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "web"}, "spec": {"image": "nginx:1.20", "replicas": 1}}))
    .unwrap();
    api.create(&PostParams::default(), &webapp).await.unwrap();
    let running = eventually(Duration::from_secs(60), || async {
        (api.get("web").await.ok()?.status?.phase? == Phase::Running).then_some(())
    })
    .await;
    assert!(running.is_some(), "the leader did not reconcile");
    let standby = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"}";
    // The standby exports the family but, never having reconciled, no series of it.
    assert_eq!(b.metric_or_zero_if_family_exists(standby).await, 0.0, "the standby reconciled");

    assert!(a.stop().await, "the leader did not stop cleanly");
    // Released, not left to expire: right after the leader stopped, nobody holds the
    // Lease (or the standby already does). A leader that does not release it still
    // holds it here, for up to 15 s.
    let after_stop = holder(&leases).await;
    assert!(
        after_stop.as_deref().is_none_or(|h| h == "replica-b"),
        "the stopped leader did not release the Lease: {after_stop:?}"
    );
    // The bound of the hand-over, from the Lease settings the operator uses. The
    // standby looks for a released Lease every RELEASE_POLL (2 s), so it sees the
    // release at most one poll after it; taking the Lease then costs a few API round
    // trips (the look, the new lease manager's read, its sync and its lock), allowed
    // RENEW_GRACE_SECONDS (5 s) in all: the slack the operator itself gives a renewal's
    // round trips before its Lease would expire, and room for 4 test threads on 2
    // cores. 2 s + 5 s = 7 s, still below LEASE_DURATION_SECONDS (15 s), the wait of a
    // standby that missed the release and waits for the Lease it saw to expire.
    let bound = RELEASE_POLL + Duration::from_secs(RENEW_GRACE_SECONDS);
    assert!(bound < Duration::from_secs(LEASE_DURATION_SECONDS), "the bound would not tell a release from an expiry");
    let handed = eventually(bound, || async { (holder(&leases).await? == "replica-b").then_some(()) }).await;
    assert!(handed.is_some(), "replica-b did not take over within {bound:?}; holder: {:?}", holder(&leases).await);

    let patch = json!({"spec": {"image": "nginx:1.21"}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let followed = eventually(Duration::from_secs(30), || async {
        let image = deployments.get("web").await.ok()?.spec?.template.spec?.containers[0].image.clone()?;
        (image == "nginx:1.21").then_some(())
    })
    .await;
    assert!(followed.is_some(), "the new leader does not reconcile");
}
