//! The pure status mapping of a Memcached: the ready pods as `status.nodes` (what a
//! client can use, sorted so the status is stable), counts, phase and conditions.

use kube::ResourceExt;
use reconcile_kit::assess::Assessment;
use reconcile_kit::workload::Observed;
use reconcile_kit::workload::labels::selector_labels;
use webapp_api::{Memcached, MemcachedStatus};

use super::plan::APP;

/// The status `memcached` should carry given `assessment` and what was `observed`.
pub fn compute(memcached: &Memcached, observed: &Observed, assessment: Assessment) -> MemcachedStatus {
    let rollout = observed.rollout();
    MemcachedStatus {
        phase: Some(assessment.phase),
        replicas: rollout.current,
        ready_replicas: rollout.ready,
        nodes: observed.ready_pods(),
        observed_generation: memcached.metadata.generation,
        selector: Some(observed.pod_selector(&selector_labels(APP, &memcached.name_any()))),
        message: Some(assessment.message),
        conditions: assessment.conditions,
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use k8s_openapi::jiff::Timestamp;
    use reconcile_kit::assess::pending;
    use reconcile_kit::workload::pods::CachedPod;
    use serde_json::json;
    use webapp_api::MemcachedSpec;

    use super::*;

    fn pod(name: &str, ready: &str) -> Arc<CachedPod> {
        Arc::new(
            serde_json::from_value(json!({"metadata": {"name": name},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": ready}]}}))
            .unwrap(),
        )
    }

    #[test]
    fn nodes_are_the_ready_pods_sorted() {
        let memcached =
            Memcached::new("mc", MemcachedSpec { size: 3, image: "m".into(), port: 11211, resources: None });
        let observed = Observed {
            pods: vec![pod("mc-c", "True"), pod("mc-a", "True"), pod("mc-b", "False")],
            ..Observed::default()
        };
        let status = compute(&memcached, &observed, pending(Some(1), Timestamp::from_second(1).unwrap()));
        assert_eq!(status.nodes, ["mc-a", "mc-c"]);
        assert_eq!(status.selector.as_deref(), Some("app.kubernetes.io/instance=mc,app.kubernetes.io/name=memcached"));
    }
}
