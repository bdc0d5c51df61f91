use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;
use reconcile_kit::conditions::{DEGRADED, PROGRESSING, READY, is_true};
use reconcile_kit::phase::Phase;
use webapp_api::{PodManagerSpec, PodManagerStatus};

use super::*;

fn pm(replicas: i32, status: Option<PodManagerStatus>) -> PodManager {
    let mut pm =
        PodManager::new("pm", PodManagerSpec { replicas, image: "nginx:1.20".into(), pod_labels: BTreeMap::new() });
    pm.metadata.generation = Some(1);
    pm.status = status;
    pm
}

fn pod(ordinal: i32, hash: &str, ready: bool) -> PodView {
    PodView::test(ordinal, hash, ready)
}

fn observed(pods: Vec<PodView>) -> Observed {
    Observed { pods, hash: "h".into(), ..Observed::default() }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_000).unwrap()
}

#[test]
fn ready_means_every_pod_ready_on_the_current_template() {
    let creating = compute(&pm(2, None), &observed(vec![pod(0, "h", true), pod(1, "h", false)]), None, now());
    assert_eq!(creating.phase, Some(Phase::Creating));
    assert_eq!((creating.current_replicas, creating.ready_replicas), (2, 1));
    assert!(!is_true(&creating.conditions, READY) && is_true(&creating.conditions, PROGRESSING));

    let running = compute(&pm(2, Some(creating)), &observed(vec![pod(0, "h", true), pod(1, "h", true)]), None, now());
    assert_eq!(running.phase, Some(Phase::Running));
    assert_eq!((running.current_replicas, running.ready_replicas, running.updated_replicas), (2, 2, 2));
    assert!(is_true(&running.conditions, READY) && !is_true(&running.conditions, PROGRESSING));
    assert!(!is_true(&running.conditions, DEGRADED));
    assert_eq!(running.message.as_deref(), Some("2/2 pods ready"));
}

#[test]
fn a_converged_podmanager_computes_the_status_it_already_has() {
    let pods = || observed(vec![pod(0, "h", true)]);
    let creating = compute(&pm(1, None), &pods(), None, now());
    let running = compute(&pm(1, Some(creating)), &pods(), None, now());
    let later = Timestamp::from_second(99_999).unwrap();
    assert_eq!(compute(&pm(1, Some(running.clone())), &pods(), None, later), running);
}

#[test]
fn a_rolling_update_is_progressing_and_says_how_far_it_is() {
    let running = PodManagerStatus { phase: Some(Phase::Running), ..PodManagerStatus::default() };
    let pods = observed(vec![pod(0, "old", true), pod(1, "old", true), pod(2, "h", true)]);
    let status = compute(&pm(3, Some(running)), &pods, None, now());
    assert_eq!(status.phase, Some(Phase::Creating));
    assert_eq!(status.updated_replicas, 1);
    assert_eq!(status.message.as_deref(), Some("waiting: rolling update: 1/3 pods updated, 3/3 pods ready"));
    assert!(is_true(&status.conditions, PROGRESSING) && !is_true(&status.conditions, READY));
}

#[test]
fn terminating_and_ended_pods_are_not_counted_as_current_or_ready() {
    let mut gone = pod(1, "h", true);
    gone.terminating = true;
    let mut failed = pod(2, "h", false);
    failed.ended = true;
    let status = compute(&pm(3, None), &observed(vec![pod(0, "h", true), gone, failed]), None, now());
    assert_eq!((status.current_replicas, status.ready_replicas, status.updated_replicas), (2, 1, 1));
}

#[test]
fn failing_pods_and_errors_are_degraded_with_their_reason() {
    let failing = Observed { problems: vec!["pod pm-0: container app: ImagePullBackOff".into()], ..observed(vec![]) };
    let status = compute(&pm(1, None), &failing, None, now());
    assert!(is_true(&status.conditions, DEGRADED));
    assert!(status.message.unwrap().contains("ImagePullBackOff"));

    let error = reconcile_kit::Error::NotOwned { kind: "Pod".into(), name: "pm-0".into(), owner: "PodManager".into() };
    let status = compute(&pm(1, None), &observed(vec![]), Some(&Failure::of(&error)), now());
    assert_eq!(status.phase, Some(Phase::Failed));
    let degraded = status.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "NotOwned"));
    assert!(degraded.message.contains("not owned"), "{}", degraded.message);
}

#[test]
fn conditions_are_set_never_appended() {
    let mut status = None;
    for _ in 0..5 {
        status = Some(compute(&pm(1, status), &observed(vec![pod(0, "h", false)]), None, now()));
    }
    let conditions = status.unwrap().conditions;
    let mut types: Vec<&str> = conditions.iter().map(|c| c.type_.as_str()).collect();
    types.dedup();
    assert_eq!(types.len(), conditions.len(), "one condition per type: {types:?}");
    assert!(types.contains(&READY) && types.contains(&PROGRESSING) && types.contains(&DEGRADED));
}

proptest! {
    #[test]
    fn any_observation_gives_a_consistent_status(
        replicas in 1..10i32,
        pods in prop::collection::vec((0..12i32, any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()), 0..12),
        changed in any::<bool>(),
    ) {
        let pods: Vec<PodView> = pods
            .into_iter()
            .map(|(i, current, ready, ended, terminating)| PodView { ended, terminating, ..pod(i, if current { "h" } else { "old" }, ready) })
            .collect();
        let observed = Observed { changed, ..observed(pods) };
        let status = compute(&pm(replicas, None), &observed, None, now());
        prop_assert!(status.ready_replicas <= status.current_replicas);
        prop_assert!(status.updated_replicas <= status.current_replicas);
        let mut types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
        types.dedup();
        prop_assert_eq!(types.len(), status.conditions.len());
        if is_true(&status.conditions, READY) {
            prop_assert!(!changed && status.ready_replicas == replicas);
        }
    }
}
