//! Two replicas with leader election: only the holder of the Lease reconciles, and a
//! leader that shuts down releases the Lease (it is free the moment the leader has
//! stopped) so the standby takes over without waiting for it to expire. A leader that
//! loses the Lease cancels its in-flight reconciles and writes nothing more.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::Service;
use kube::Api;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
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

/// The webhook's state: the names seen, and whether held requests are released.
type HoldState = (Arc<std::sync::Mutex<Vec<String>>>, tokio::sync::watch::Receiver<bool>);

/// A validating admission webhook that holds every request for an object named `web`
/// until released: a reconcile that writes it waits in the API server, as one held up
/// by a slow API server or webhook would. Other names pass at once (they show that the
/// API server calls it).
struct HoldingWebhook {
    /// Names of the objects of the requests seen, in order.
    seen: Arc<std::sync::Mutex<Vec<String>>>,
    release: tokio::sync::watch::Sender<bool>,
    /// The cluster-wide configuration, deleted on drop.
    config: String,
}

impl HoldingWebhook {
    /// Serves the webhook and registers it for Deployments of `namespace`.
    async fn start(client: &kube::Client, namespace: &str) -> Self {
        use axum::routing::post;
        use serde_json::Value;

        let tls = webapp_operator::webhook::certs::self_signed(
            &webapp_operator::webhook::default_hosts(),
            webapp_operator::webhook::certs::DEFAULT_LIFE,
        )
        .unwrap();
        let rustls = webapp_operator::webhook::certs::server_config(&tls).unwrap();
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (release, released) = tokio::sync::watch::channel(false);
        let state = (seen.clone(), released);
        let app = axum::Router::new().route(
            "/hold",
            post(
                |axum::extract::State((seen, mut released)): axum::extract::State<HoldState>,
                 body: axum::body::Bytes| async move {
                    let review: Value = serde_json::from_slice(&body).unwrap_or_default();
                    let request = &review["request"];
                    let name = request["name"].as_str().or_else(|| request["object"]["metadata"]["name"].as_str());
                    let name = name.unwrap_or_default().to_owned();
                    seen.lock().unwrap().push(name.clone());
                    if name == "web" {
                        let _ = released.wait_for(|released| *released).await;
                    }
                    let answer = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
                    "response": {"uid": request["uid"], "allowed": true}});
                    ([(axum::http::header::CONTENT_TYPE, "application/json")], answer.to_string())
                },
            ),
        );
        let app = app.with_state(state);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let config = axum_server::tls_rustls::RustlsConfig::from_config(Arc::new(rustls));
        let server = axum_server::from_tcp_rustls(listener, config).unwrap();
        tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });

        let name = format!("hold-{namespace}");
        let configuration: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{
                "name": "hold.tests.example.com",
                "clientConfig": {"url": format!("https://{addr}/hold"),
                    "caBundle": k8s_openapi::ByteString(tls.ca_pem.as_bytes().to_vec())},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["deployments"]}],
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": namespace}},
                "sideEffects": "None", "admissionReviewVersions": ["v1"], "failurePolicy": "Fail",
                "timeoutSeconds": 30
            }]
        }))
        .unwrap();
        let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        configs.create(&PostParams::default(), &configuration).await.unwrap();
        let webhook = HoldingWebhook { seen, release, config: name };

        // The API server loads webhook configurations from a watch: a dry-run create
        // (which calls the webhook, as it has no side effects) shows when it uses it.
        let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
        let probe: Deployment = serde_json::from_value(json!({"metadata": {"name": "probe"}, "spec": {
            "selector": {"matchLabels": {"app": "probe"}},
            "template": {"metadata": {"labels": {"app": "probe"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}}}}))
        .unwrap();
        let called = eventually(Duration::from_secs(30), || async {
            let _ = deployments.create(&PostParams { dry_run: true, ..PostParams::default() }, &probe).await;
            webhook.seen().contains(&"probe".to_owned()).then_some(())
        })
        .await;
        assert!(called.is_some(), "the API server never called the holding webhook");
        webhook
    }

    fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for HoldingWebhook {
    fn drop(&mut self) {
        let _ = self.release.send(true);
        let _ = kubectl().args(["delete", "validatingwebhookconfiguration", &self.config, "--wait=false"]).output();
    }
}

/// `leader_election_master_status` of `operator`, `None` while it has none.
async fn leading(operator: &Operator) -> Option<f64> {
    let body = operator.get("/metrics").await?;
    body.lines().find_map(|line| line.strip_prefix("leader_election_master_status ")?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_leader_that_loses_the_lease_cancels_in_flight_reconciles_and_writes_no_more() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "lease-loss").await;
    let leases: Api<Lease> = Api::namespaced(client.clone(), &ns.name);
    let webhook = HoldingWebhook::start(&client, &ns.name).await;

    let a = Operator::start_config(replica(&ns.name, "replica-a")).await;
    let led = eventually(Duration::from_secs(30), || async {
        (holder(&leases).await? == "replica-a" && leading(&a).await? == 1.0).then_some(())
    })
    .await;
    assert!(led.is_some(), "replica-a never took the Lease");

    // The reconcile of `web` writes its status, then its Deployment, which the webhook
    // holds: the reconcile is in flight, waiting in a step.
    let api: Api<WebApp> = Api::namespaced(client.clone(), &ns.name);
    let webapp: WebApp = serde_json::from_value(json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "web"}, "spec": {"image": "nginx:1.20", "replicas": 1}}))
    .unwrap();
    api.create(&PostParams::default(), &webapp).await.unwrap();
    let held =
        eventually(Duration::from_secs(30), || async { webhook.seen().contains(&"web".to_owned()).then_some(()) })
            .await;
    assert!(held.is_some(), "the reconcile never wrote its Deployment");

    // Another holder takes the Lease, as a replica that saw it expire would (the admin
    // writes it, so the test needs no third replica).
    let now = k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime(k8s_openapi::jiff::Timestamp::now());
    let steal = json!({"spec": {"holderIdentity": "thief", "leaseDurationSeconds": 3600,
        "acquireTime": now, "renewTime": now}});
    leases
        .patch(webapp_operator::manager::leader::LEASE, &PatchParams::default(), &Patch::Merge(&steal))
        .await
        .unwrap();

    // Evidence that replica-a noticed: its gauge says it no longer leads (it renews, and
    // so looks, every 10 s).
    let noticed = eventually(Duration::from_secs(40), || async { (leading(&a).await? == 0.0).then_some(()) }).await;
    assert!(noticed.is_some(), "replica-a never noticed it lost the Lease");
    let writes = a.writes().await;

    // The held write may now go through. A reconcile that went on would apply the
    // Service next and write the status; one cancelled does nothing more. The manager
    // returns once its controllers stopped, which they do only after their in-flight
    // reconciles ended: from then on nothing of replica-a can write.
    let _ = webhook.release.send(true);
    let stopped = eventually(Duration::from_secs(60), || async { a.has_stopped().then_some(()) }).await;
    assert!(stopped.is_some(), "replica-a did not stop after losing the Lease");
    assert_eq!(a.writes().await, writes, "replica-a wrote after it noticed the loss of the Lease");
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    assert!(services.get_opt("web").await.unwrap().is_none(), "the cancelled reconcile went on to the Service");
    let cancelled = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"cancelled\"}";
    assert_eq!(a.metric(cancelled).await, 1.0, "the in-flight reconcile was not cancelled");

    let configs: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
    let _ = configs.delete(&webhook.config, &DeleteParams::default()).await;
}

/// The Lease the chart gives `release` in `namespace` (its `--leader-election-id`).
fn chart_lease(release: &str, namespace: &str) -> String {
    let deployment = helm_template(release, namespace, &["--show-only", "templates/deployment.yaml"]);
    let flag = deployment.lines().find_map(|line| line.trim().strip_prefix("- --leader-election-id="));
    flag.unwrap_or_else(|| panic!("the chart passes no --leader-election-id:\n{deployment}")).to_owned()
}

/// Two releases of the chart in one namespace, each watching a namespace of its own (as
/// teams install them), each elect a leader and reconcile: the chart names a Lease per
/// release. With one Lease for both, the second release would wait as a standby forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_releases_in_one_namespace_each_elect_a_leader_and_reconcile() {
    let client = client().await;
    install_crds(&client).await;
    let home = TestNamespace::new(&client, "releases").await;
    let teams = [TestNamespace::new(&client, "team-a").await, TestNamespace::new(&client, "team-b").await];
    let mut operators = Vec::new();
    let mut leases = Vec::new();
    for (release, team) in ["one", "two"].into_iter().zip(&teams) {
        let lease = chart_lease(release, &home.name);
        let mut config = Operator::config(&team.name, vec![ControllerKind::Webapp]);
        config.leader_elect = true;
        config.leader_election_namespace = Some(home.name.clone());
        config.leader_election_id = lease.clone();
        config.instance = Some(format!("{release}-0"));
        operators.push(Operator::start_config(config).await);
        leases.push(lease);
    }

    for (operator, lease) in operators.iter().zip(&leases) {
        let leads = eventually(Duration::from_secs(30), || async {
            let body = operator.get("/metrics").await?;
            body.lines().any(|line| line == "leader_election_master_status 1").then_some(())
        })
        .await;
        assert!(leads.is_some(), "the release with the Lease {lease} never became leader (leases: {leases:?})");
    }
    let in_home: Api<Lease> = Api::namespaced(client.clone(), &home.name);
    for (lease, instance) in leases.iter().zip(["one-0", "two-0"]) {
        let holder = in_home.get(lease).await.unwrap().spec.and_then(|spec| spec.holder_identity);
        assert_eq!(holder.as_deref(), Some(instance), "Lease {lease}");
    }
    for team in &teams {
        let api = create(&client, &team.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
        wait_for(&api, "web", "Running", running_at(1)).await;
    }
}
