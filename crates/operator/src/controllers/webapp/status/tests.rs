use std::sync::Arc;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use reconcile_kit::assess::{Failure, Previous, assess};
use reconcile_kit::conditions::{DEGRADED, READY, is_true};
use reconcile_kit::workload::pods::CachedPod;
use serde_json::json;
use webapp_api::webapp::ServiceType;
use webapp_api::{Phase, WebApp, WebAppSpec, WebAppStatus};

use super::*;

fn webapp(generation: i64, status: Option<WebAppStatus>) -> WebApp {
    let spec = WebAppSpec {
        image: "nginx:1.20".into(),
        replicas: Some(2),
        port: 80,
        env: Default::default(),
        domain: None,
        resources: None,
        probe_path: None,
        service_type: ServiceType::ClusterIP,
        security_context: None,
    };
    let mut webapp = WebApp::new("web", spec);
    webapp.metadata.generation = Some(generation);
    webapp.status = status;
    webapp
}

fn deployment(ready: i32) -> Deployment {
    serde_json::from_value(json!({"metadata": {"name": "web", "generation": 1}, "spec": {"replicas": 2, "selector": {}, "template": {}},
        "status": {"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2, "readyReplicas": ready, "availableReplicas": ready}}))
    .unwrap()
}

fn observed(ready: i32) -> Observed {
    Observed { deployment: Some(deployment(ready)), ..Observed::default() }
}

fn failing_pod(reason: &str) -> Arc<CachedPod> {
    Arc::new(
        serde_json::from_value(json!({"metadata": {"name": "web-1"}, "status": {"containerStatuses": [{"name": "app",
        "image": "x", "imageID": "", "ready": false, "restartCount": 0, "state": {"waiting": {"reason": reason}}}]}}))
        .unwrap(),
    )
}

/// The whole calculation a report makes: the kit's assessment, then the WebApp mapping.
fn compute(webapp: &WebApp, observed: &Observed, failure: Option<&Failure>, now: Timestamp) -> WebAppStatus {
    let before = webapp.status.as_ref().map(Previous::of).unwrap_or_default();
    super::compute(webapp, observed, assess(before, webapp.metadata.generation, &observed.progress(), failure, now))
}

fn pending(webapp: &WebApp, now: Timestamp) -> WebAppStatus {
    super::compute(webapp, &Observed::default(), reconcile_kit::assess::pending(webapp.metadata.generation, now))
}

fn now() -> Timestamp {
    Timestamp::from_second(1_000).unwrap()
}

#[test]
fn a_new_webapp_goes_creating_then_running_when_all_pods_are_ready() {
    let first = compute(&webapp(1, None), &observed(0), None, now());
    assert_eq!(first.phase, Some(Phase::Creating));
    assert!(!is_true(&first.conditions, READY));
    assert_eq!(first.observed_generation, Some(1));
    assert_eq!(first.message.as_deref(), Some("waiting: 0/2 pods ready"));

    let second = compute(&webapp(1, Some(first)), &observed(2), None, now());
    assert_eq!(second.phase, Some(Phase::Running));
    assert!(is_true(&second.conditions, READY));
    assert_eq!((second.replicas, second.ready_replicas), (Some(2), Some(2)));
    assert!(second.conditions.iter().all(|c| c.observed_generation == Some(1)));
}

#[test]
fn a_converged_webapp_computes_the_status_it_already_has() {
    let creating = compute(&webapp(1, None), &observed(0), None, now());
    let running = compute(&webapp(1, Some(creating)), &observed(2), None, now());
    let later = Timestamp::from_second(9_999).unwrap();
    assert_eq!(compute(&webapp(1, Some(running.clone())), &observed(2), None, later), running);
}

#[test]
fn a_change_sends_a_running_webapp_back_to_creating() {
    let running = WebAppStatus { phase: Some(Phase::Running), ..WebAppStatus::default() };
    let changed = Observed { changed: true, ..observed(2) };
    let status = compute(&webapp(2, Some(running)), &changed, None, now());
    assert_eq!(status.phase, Some(Phase::Creating));
    assert_eq!(status.observed_generation, Some(2));
}

#[test]
fn failing_pods_are_named_in_the_message_and_degraded_condition() {
    let failing = Observed { pods: vec![failing_pod("ImagePullBackOff")], ..observed(0) };
    let status = compute(&webapp(1, None), &failing, None, now());
    assert_eq!(status.phase, Some(Phase::Creating));
    assert!(status.message.as_deref().unwrap().contains("ImagePullBackOff"));
    assert!(is_true(&status.conditions, DEGRADED));
    let ready = status.conditions.iter().find(|c| c.type_ == READY).unwrap();
    assert_eq!(ready.reason, "PodsFailing");
}

#[test]
fn a_failure_marks_the_webapp_failed_with_the_reason() {
    let failure =
        Failure { reason: "NotOwned".into(), message: "Deployment web already exists".into(), retrying: false };
    let status = compute(&webapp(1, None), &Observed::default(), Some(&failure), now());
    assert_eq!(status.phase, Some(Phase::Failed));
    let degraded = status.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "NotOwned"));
    // Once the conflict is gone, the next reconcile retries through Creating.
    let retry = compute(&webapp(1, Some(status)), &observed(0), None, now());
    assert_eq!(retry.phase, Some(Phase::Creating));
    assert!(!is_true(&retry.conditions, DEGRADED));
}

#[test]
fn a_new_webapp_is_pending_first() {
    let status = pending(&webapp(1, None), now());
    assert_eq!(status.phase, Some(Phase::Pending));
    let next = compute(&webapp(1, Some(status)), &observed(0), None, now());
    assert_eq!(next.phase, Some(Phase::Creating));
}

#[test]
fn deletion_sets_phase_deleting() {
    let running = WebAppStatus { phase: Some(Phase::Running), ..WebAppStatus::default() };
    let status = deleting(&webapp(1, Some(running)), "removing children", now());
    assert_eq!(status.phase, Some(Phase::Deleting));
}

fn any_phase() -> impl Strategy<Value = Option<Phase>> {
    proptest::option::of(prop_oneof![
        Just(Phase::Pending),
        Just(Phase::Creating),
        Just(Phase::Running),
        Just(Phase::Failed),
        Just(Phase::Deleting)
    ])
}

proptest! {
    /// No observation makes the status calculation panic, and the phase it picks is
    /// always reachable from the previous one.
    #[test]
    fn no_observation_makes_status_panic(
        phase in any_phase(),
        ready in -3i32..5,
        changed: bool,
        problems in proptest::collection::vec(".{0,20}", 0..3),
        fail: bool,
        generation in proptest::option::of(any::<i64>()),
    ) {
        let previous = WebAppStatus { phase, ..WebAppStatus::default() };
        let mut app = webapp(1, Some(previous));
        app.metadata.generation = generation;
        let pods = problems.iter().map(|reason| failing_pod(reason)).collect();
        let observed = Observed { deployment: Some(deployment(ready)), pods, changed };
        let failure = fail.then(|| Failure { reason: "X".into(), message: "y".into(), retrying: false });
        let status = compute(&app, &observed, failure.as_ref(), now());
        let next = status.phase.unwrap();
        prop_assert!(reconcile_kit::phase::transition(phase.unwrap_or_default(), next).is_ok());
    }
}
