//! A Deployment's rollout, reduced to what status reports need, and why it is stuck when
//! its pods are never even created (a full ResourceQuota, Pod Security admission, a
//! webhook refusing pods): that shows only on the ReplicaSet, which the Deployment
//! controller copies into the Deployment's `ReplicaFailure` condition, and later as
//! `ProgressDeadlineExceeded`. No pod exists to tell it.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentCondition};

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

/// Why `deployment` cannot make progress, one line each, from its conditions.
pub fn deployment_problems(deployment: &Deployment) -> Vec<String> {
    let name = deployment.metadata.name.as_deref().unwrap_or("?");
    let conditions = deployment.status.as_ref().and_then(|s| s.conditions.as_ref());
    let mut problems = Vec::new();
    for condition in conditions.into_iter().flatten().filter(|c| is_stuck(c)) {
        let detail = condition.message.as_deref().map(|m| format!(": {m}")).unwrap_or_default();
        let reason = condition.reason.as_deref().unwrap_or(condition.type_.as_str());
        problems.push(format!("deployment {name}: {reason}{detail}"));
    }
    problems
}

/// Whether `condition` says the Deployment cannot make progress: the only conditions
/// [`deployment_problems`] reads (and so the only ones the cache keeps).
pub fn is_stuck(condition: &DeploymentCondition) -> bool {
    match (condition.type_.as_str(), condition.status.as_str()) {
        ("ReplicaFailure", "True") => true,
        ("Progressing", "False") => condition.reason.as_deref() == Some("ProgressDeadlineExceeded"),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn pods_refused_at_creation_are_named() {
        let deployment: Deployment = serde_json::from_value(json!({"metadata": {"name": "w"}, "spec": {"selector": {}, "template": {}},
            "status": {"conditions": [
                {"type": "Available", "status": "False", "reason": "MinimumReplicasUnavailable"},
                {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "pods \"w-1\" is forbidden: exceeded quota: q"},
                {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"w-1\" has timed out progressing."}]}}))
        .unwrap();
        assert_eq!(
            deployment_problems(&deployment),
            [
                "deployment w: FailedCreate: pods \"w-1\" is forbidden: exceeded quota: q",
                "deployment w: ProgressDeadlineExceeded: ReplicaSet \"w-1\" has timed out progressing."
            ]
        );
        let progressing: Deployment =
            serde_json::from_value(json!({"metadata": {"name": "w"}, "spec": {"selector": {}, "template": {}},
            "status": {"conditions": [{"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated"}]}}))
            .unwrap();
        assert!(deployment_problems(&progressing).is_empty());
    }

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
