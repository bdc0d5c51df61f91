//! A Deployment's rollout, reduced to what status reports need.

use k8s_openapi::api::apps::v1::Deployment;

/// A Deployment's rollout, reduced to what status reports need.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rollout {
    /// Pods wanted.
    pub desired: i32,
    /// Pods existing.
    pub current: i32,
    /// Pods ready.
    pub ready: i32,
    /// Whether the Deployment controller has seen the latest Deployment spec and every
    /// wanted pod is updated, ready and available.
    pub complete: bool,
}

/// Reads the rollout state of `deployment`.
pub fn rollout(deployment: &Deployment) -> Rollout {
    let status = deployment.status.clone().unwrap_or_default();
    let desired = deployment.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let observed = status.observed_generation.unwrap_or(0) >= deployment.metadata.generation.unwrap_or(0);
    let ready = status.ready_replicas.unwrap_or(0);
    let complete = observed
        && status.updated_replicas.unwrap_or(0) == desired
        && ready == desired
        && status.available_replicas.unwrap_or(0) == desired
        && status.replicas.unwrap_or(0) == desired;
    Rollout { desired, current: status.replicas.unwrap_or(0), ready, complete }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rollout_is_complete_only_when_every_pod_is_ready_on_the_latest_spec() {
        let deployment = |observed: i64, ready: i32| -> Deployment {
            serde_json::from_value(json!({"metadata": {"name": "w", "generation": 2}, "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": {"observedGeneration": observed, "replicas": 2, "updatedReplicas": 2, "readyReplicas": ready, "availableReplicas": ready}}))
            .unwrap()
        };
        assert!(rollout(&deployment(2, 2)).complete);
        assert!(!rollout(&deployment(1, 2)).complete);
        assert!(!rollout(&deployment(2, 1)).complete);
        assert_eq!(rollout(&deployment(2, 1)).ready, 1);
    }
}
