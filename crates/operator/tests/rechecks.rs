//! The periodic re-checks, on the real local control plane: seed 001's 30 s health check
//! of a Running WebApp, and Memcached's one-minute re-check while it is not ready (seed
//! 003 requeues after a minute). Both are timers, not watch events: each test first
//! waits until the object has been left alone for a while, checks that nothing it
//! watches changed meanwhile, and measures when the next reconcile comes.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::api::{ListParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use webapp_api::{Memcached, Phase};
use webapp_operator::controllers::ControllerKind;

/// How long an object must have been left alone before the wait for its next reconcile
/// starts: well above the gap between the reconciles that a rollout's watch events
/// cause, well below the shortest timer.
const QUIET: Duration = Duration::from_secs(5);

/// Slack above a timer for the reconcile to start and its spans to close on a busy
/// machine (four test threads on two cores).
const SLACK: Duration = Duration::from_secs(10);

/// The number of reconciles of `object` (`namespace/name`) so far: each runs its `plan`
/// step once.
fn reconciles(object: &str) -> usize {
    trace().of(object).iter().filter(|span| span.step == "plan").count()
}

/// The moment `object` (`namespace/name`) was last seen reconciled, once it has not been
/// reconciled for [`QUIET`], and the count of its reconciles then. The baselines a test
/// compares against (writes, watched versions) are taken after this returns: the
/// reconciles that a rollout's watch events cause, and their writes, are over by then.
async fn quiet(object: &str) -> (usize, Instant) {
    let (mut seen, mut last) = (reconciles(object), Instant::now());
    assert!(seen > 0, "{object} was never reconciled");
    while last.elapsed() < QUIET {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = reconciles(object);
        if now != seen {
            (seen, last) = (now, Instant::now());
        }
    }
    (seen, last)
}

/// Waits for the reconcile of `object` that follows the quiet one [`quiet`] returned,
/// and returns how long after the last one that came (to within the 100 ms poll).
/// Fails if none comes within `timer` + [`SLACK`].
async fn next_reconcile(object: &str, (seen, last): (usize, Instant), timer: Duration) -> Duration {
    // Polls for the next reconcile; the deadline is the only failure.
    loop {
        if reconciles(object) > seen {
            return last.elapsed();
        }
        assert!(last.elapsed() < timer + SLACK, "{object} was not looked at again within {:?}", timer + SLACK);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The resourceVersions of the children of the object `name` whose change would
/// reconcile it: its Deployment, its Service and its pods. The object itself is left
/// out: only the operator writes it, and the re-check itself may write its status (a
/// failure that has now lasted long enough to show).
async fn watched_versions(client: &Client, ns: &str, name: &str) -> Vec<String> {
    let version = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        format!("{}={}", meta.name.clone().unwrap_or_default(), meta.resource_version.clone().unwrap_or_default())
    };
    let mut versions = vec![
        version(&Api::<Deployment>::namespaced(client.clone(), ns).get(name).await.unwrap().metadata),
        version(&Api::<Service>::namespaced(client.clone(), ns).get(name).await.unwrap().metadata),
    ];
    let pods = Api::<Pod>::namespaced(client.clone(), ns)
        .list(&ListParams::default().labels(&format!("app.kubernetes.io/instance={name}")))
        .await
        .unwrap();
    assert!(!pods.items.is_empty(), "{name} has no pods to watch");
    versions.extend(pods.items.iter().map(|pod| version(&pod.metadata)));
    versions
}

/// Seed 001's periodic health check: a Running WebApp that nothing touches is looked at
/// again 30 s after its last reconcile, and that look writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_running_webapp_is_looked_at_again_every_30_seconds() {
    trace();
    let (client, ns, operator) = setup("recheck").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.27", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let object = format!("{}/web", ns.name);

    let quiet_since = quiet(&object).await;
    let writes = operator.writes().await;
    let before = watched_versions(&client, &ns.name, "web").await;
    let period = next_reconcile(&object, quiet_since, Duration::from_secs(30)).await;
    let after = watched_versions(&client, &ns.name, "web").await;
    assert_eq!(before, after, "something it watches changed: the reconcile may have been that event's");
    assert!(period >= Duration::from_secs(30) - QUIET / 5, "looked at again after {period:?}, before the timer");
    assert_eq!(operator.writes().await, writes, "the health check wrote");
}

/// Memcached's re-check while it is not ready comes a minute after its last reconcile
/// (the seed requeues every Memcached after a minute; ours only while it is not ready:
/// its children's watch events do the rest). Its pods cannot pull their image here, so
/// it stays not ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_memcached_that_is_not_ready_is_looked_at_again_after_a_minute() {
    trace();
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "recheckmc").await;
    let _operator = Operator::start_with(&ns.name, vec![ControllerKind::Memcached]).await;
    let api: Api<Memcached> = Api::namespaced(client.clone(), &ns.name);
    let memcached: Memcached = serde_json::from_value(
        json!({"metadata": {"name": "mc"}, "spec": {"size": 1, "image": "nginx:does-not-exist"}}),
    )
    .unwrap();
    api.create(&PostParams::default(), &memcached).await.unwrap();
    let failing = eventually(Duration::from_secs(60), || async {
        let status = api.get("mc").await.ok()?.status?;
        status.message.as_deref().is_some_and(|m| m.contains("ImagePullBackOff")).then_some(status)
    })
    .await
    .expect("the Memcached never reported its pod's ImagePullBackOff");
    assert_ne!(failing.phase, Some(Phase::Running));
    let object = format!("{}/mc", ns.name);

    let quiet_since = quiet(&object).await;
    let before = watched_versions(&client, &ns.name, "mc").await;
    let period = next_reconcile(&object, quiet_since, Duration::from_secs(60)).await;
    let after = watched_versions(&client, &ns.name, "mc").await;
    assert_eq!(before, after, "something it watches changed: the reconcile may have been that event's");
    assert!(period >= Duration::from_secs(60) - QUIET / 5, "looked at again after {period:?}, before the timer");
    assert_ne!(api.get("mc").await.unwrap().status.unwrap().phase, Some(Phase::Running));
}
