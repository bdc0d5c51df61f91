use std::collections::BTreeMap;

use proptest::prelude::*;
use webapp_api::PodManagerSpec;
use webapp_api::podmanager::conversion;

use super::*;

fn view(ordinal: i32, hash: &str, ready: bool) -> PodView {
    PodView::test(ordinal, hash, ready)
}

fn pm(pod_labels: BTreeMap<String, String>) -> PodManager {
    let mut pm = PodManager::new("pm", PodManagerSpec { replicas: 2, image: "nginx:1.20".into(), pod_labels });
    pm.metadata.namespace = Some("ns".into());
    pm.metadata.uid = Some("u-1".into());
    pm
}

#[test]
fn ordinals_are_plain_decimal_suffixes_of_the_name() {
    assert_eq!(ordinal("pm", "pm-0"), Some(0));
    assert_eq!(ordinal("pm", "pm-12"), Some(12));
    for other in ["pm-", "pm-01", "pm--1", "pm-1a", "pmx-1", "other-1", "pm-a-1", "pm-99999999999"] {
        assert_eq!(ordinal("pm", other), None, "{other}");
    }
    assert_eq!(ordinal("pm-a", "pm-a-3"), Some(3));
}

#[test]
fn a_pod_carries_the_seed_labels_ours_and_the_users_and_ours_win() {
    let labels =
        BTreeMap::from([("app".to_owned(), "my-app".to_owned()), ("podmanager".to_owned(), "evil".to_owned())]);
    let pm = pm(labels);
    let template = conversion::template(&pm).unwrap();
    let owner = reconcile_kit::apply::owner_reference(&pm).unwrap();
    let pod = desired_pod(&pm, &template, "h1", owner, 1);
    let labels = pod.metadata.labels.unwrap();
    assert_eq!(pod.metadata.name.as_deref(), Some("pm-1"));
    assert_eq!(labels["app"], "my-app");
    assert_eq!(labels["podmanager"], "pm");
    assert_eq!(labels["podmanager-uid"], "u-1");
    assert_eq!(labels["app.kubernetes.io/name"], "podmanager");
    assert_eq!(labels["app.kubernetes.io/instance"], "pm");
    assert_eq!(labels[TEMPLATE_HASH], "h1");
    let spec = pod.spec.unwrap();
    assert_eq!(spec.containers.len(), 1);
    assert_eq!((spec.containers[0].name.as_str(), spec.containers[0].image.as_deref()), ("app", Some("nginx:1.20")));
    assert_eq!(pod.metadata.owner_references.unwrap()[0].controller, Some(true));
}

#[test]
fn the_template_hash_changes_with_the_image_only() {
    let a = conversion::template(&pm(BTreeMap::new())).unwrap();
    let mut b = a.clone();
    assert_eq!(template_hash(&a), template_hash(&b));
    b.spec.containers[0].image = "nginx:1.21".into();
    assert_ne!(template_hash(&a), template_hash(&b));
}

#[test]
fn scale_up_creates_the_missing_ordinals() {
    let pods = [view(1, "h", true)];
    assert_eq!(changes(4, "h", &pods), Changes { create: vec![0, 2, 3], delete: vec![] });
}

#[test]
fn scale_down_deletes_the_highest_ordinals_first() {
    let pods: Vec<_> = (0..5).map(|i| view(i, "h", true)).collect();
    let planned = changes(2, "h", &pods);
    assert!(planned.create.is_empty());
    let names: Vec<&str> = planned.delete.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["pm-4", "pm-3", "pm-2"]);
    assert!(planned.delete.iter().all(|(_, why)| *why == Why::ScaleDown));
}

#[test]
fn ended_pods_are_deleted_and_come_back_once_gone() {
    let mut failed = view(1, "h", false);
    failed.ended = true;
    let pods = [view(0, "h", true), failed.clone()];
    assert_eq!(changes(2, "h", &pods), Changes { create: vec![], delete: vec![("pm-1".into(), Why::Ended)] });
    failed.terminating = true;
    assert!(changes(2, "h", &[view(0, "h", true), failed]).is_empty(), "wait while it goes");
    assert_eq!(changes(2, "h", &[view(0, "h", true)]).create, [1]);
}

#[test]
fn a_converged_set_needs_nothing() {
    let pods: Vec<_> = (0..3).map(|i| view(i, "h", true)).collect();
    assert!(changes(3, "h", &pods).is_empty());
}

#[test]
fn a_new_template_replaces_one_pod_at_a_time_highest_first() {
    let pods: Vec<_> = (0..3).map(|i| view(i, "old", true)).collect();
    assert_eq!(changes(3, "new", &pods).delete, [("pm-2".to_owned(), Why::Outdated)]);
    // The replacement is not Ready yet: nothing more.
    let pods = [view(0, "old", true), view(1, "old", true), view(2, "new", false)];
    assert!(changes(3, "new", &pods).is_empty());
    let pods = [view(0, "old", true), view(1, "old", true), view(2, "new", true)];
    assert_eq!(changes(3, "new", &pods).delete, [("pm-1".to_owned(), Why::Outdated)]);
}

#[test]
fn an_outdated_pod_that_is_not_ready_is_replaced_first() {
    let pods = [view(0, "old", false), view(1, "old", true), view(2, "old", true)];
    assert_eq!(changes(3, "new", &pods).delete, [("pm-0".to_owned(), Why::Outdated)]);
}

#[test]
fn strays_are_deleted_and_never_counted() {
    let stray = PodView { ordinal: None, name: "pm-x".into(), ..view(0, "h", true) };
    let planned = changes(1, "h", &[stray]);
    assert_eq!(planned, Changes { create: vec![0], delete: vec![("pm-x".into(), Why::Stray)] });
}

fn any_view() -> impl Strategy<Value = PodView> {
    (prop::option::of(0..12i32), prop::sample::select(vec!["old", "new"]), any::<bool>(), any::<bool>(), any::<bool>())
        .prop_map(|(ordinal, hash, ended, ready, terminating)| PodView {
            name: ordinal.map_or("pm-stray".into(), |i| pod_name("pm", i)),
            uid: None,
            ordinal,
            hash: Some(hash.into()),
            ended,
            ready,
            terminating,
        })
}

fn any_pods() -> impl Strategy<Value = Vec<PodView>> {
    // Names are unique in a namespace.
    prop::collection::vec(any_view(), 0..12).prop_map(|mut pods| {
        pods.sort_by(|a, b| a.name.cmp(&b.name));
        pods.dedup_by(|a, b| a.name == b.name);
        pods
    })
}

/// Ordinals below `replicas` without a live Ready Pod.
fn down(replicas: i32, pods: &[PodView]) -> usize {
    (0..replicas).filter(|i| !pods.iter().any(|p| p.ordinal == Some(*i) && p.live() && p.ready)).count()
}

proptest! {
    #[test]
    fn the_plan_is_consistent_for_any_pods(replicas in -2..10i32, pods in any_pods()) {
        let planned = changes(replicas, "new", &pods);
        for i in &planned.create {
            prop_assert!((0..replicas).contains(i));
            prop_assert!(!pods.iter().any(|p| p.ordinal == Some(*i)), "ordinal {} exists", i);
        }
        for i in 0..replicas {
            let exists = pods.iter().any(|p| p.ordinal == Some(i));
            prop_assert_eq!(planned.create.contains(&i), !exists);
        }
        for (name, why) in &planned.delete {
            let pod = pods.iter().find(|p| &p.name == name).unwrap();
            prop_assert!(!pod.terminating, "deletes {} twice", name);
            if *why == Why::Outdated {
                prop_assert_eq!(pod.hash.as_deref(), Some("old"));
                let after: Vec<PodView> = pods.iter().filter(|p| &p.name != name).cloned().collect();
                prop_assert_eq!(down(replicas, &after), 1, "a rolling replacement takes only one Pod down");
            }
        }
        prop_assert!(planned.delete.iter().filter(|(_, why)| *why == Why::Outdated).count() <= 1);
        for pod in pods.iter().filter(|p| !p.terminating) {
            let must_go = pod.ordinal.is_none_or(|i| i >= replicas) || pod.ended;
            if must_go {
                prop_assert!(planned.delete.iter().any(|(n, _)| n == &pod.name), "{} stays", pod.name);
            }
        }
    }

    /// Simulated cluster: deleted Pods go at the next step, created ones are Ready the
    /// step after. A rolling update of `replicas` Ready Pods never has more than one
    /// Pod down and ends with every Pod on the new template.
    #[test]
    fn a_rolling_update_keeps_all_but_one_pod_ready_and_finishes(replicas in 1..8i32) {
        let mut pods: Vec<PodView> = (0..replicas).map(|i| view(i, "old", true)).collect();
        for _ in 0..(4 * replicas + 4) {
            pods.retain(|p| !p.terminating);
            for pod in &mut pods {
                pod.ready = true;
            }
            let planned = changes(replicas, "new", &pods);
            if planned.is_empty() {
                break;
            }
            for (name, _) in &planned.delete {
                pods.iter_mut().filter(|p| &p.name == name).for_each(|p| p.terminating = true);
            }
            pods.extend(planned.create.iter().map(|i| view(*i, "new", false)));
            prop_assert!(down(replicas, &pods) <= 1, "{:?}", pods);
        }
        prop_assert_eq!(pods.len(), replicas as usize);
        prop_assert!(pods.iter().all(|p| p.hash.as_deref() == Some("new") && p.ready && p.live()));
    }
}

#[test]
fn a_pod_that_ended_is_never_ready_even_with_a_stale_ready_condition() {
    let pod: Pod = serde_json::from_value(serde_json::json!({
        "metadata": {"name": "pm-0", "labels": {TEMPLATE_HASH: "h"}},
        "status": {"phase": "Succeeded", "conditions": [{"type": "Ready", "status": "True"}]}
    }))
    .unwrap();
    let view = PodView::of("pm", &pod);
    assert!(view.ended && !view.ready && !view.live());
    assert_eq!((view.ordinal, view.hash.as_deref()), (Some(0), Some("h")));
}
