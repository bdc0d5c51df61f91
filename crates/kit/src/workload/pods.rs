//! Why pods fail: the container states and scheduling conditions that mean a pod will
//! not become ready by itself, as stable one-line messages for status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::Pod;

/// Container waiting reasons that mean a pod will not become ready by itself.
const FAILING_REASONS: [&str; 6] = [
    "ImagePullBackOff",
    "ErrImagePull",
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "InvalidImageName",
    "RunContainerError",
];

/// Why pods fail, one line per problem, sorted so the text is stable across reconciles
/// (a status that changes every time would re-trigger the controller).
pub fn pod_problems<'a>(pods: impl IntoIterator<Item = &'a Arc<Pod>>) -> Vec<String> {
    let mut problems = Vec::new();
    for pod in pods {
        let name = pod.metadata.name.as_deref().unwrap_or("?");
        let Some(status) = &pod.status else { continue };
        for container in status.container_statuses.iter().flatten() {
            let waiting = container.state.as_ref().and_then(|s| s.waiting.as_ref());
            if let Some(reason) = waiting.and_then(|w| w.reason.as_deref()).filter(|r| FAILING_REASONS.contains(r)) {
                let detail = waiting.and_then(|w| w.message.as_deref()).map(|m| format!(" ({m})")).unwrap_or_default();
                problems.push(format!("pod {name}: container {}: {reason}{detail}", container.name));
            }
        }
        for condition in status.conditions.iter().flatten() {
            if condition.type_ == "PodScheduled"
                && condition.status == "False"
                && condition.reason.as_deref() == Some("Unschedulable")
            {
                let detail = condition.message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default();
                problems.push(format!("pod {name}: Unschedulable{detail}"));
            }
        }
    }
    problems.sort();
    problems.dedup();
    problems
}

/// Whether `pod` has condition `Ready=True` (phase Running alone is not enough: a
/// running container may still fail its readiness probe).
pub fn is_ready(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn ready_means_the_ready_condition_not_the_phase() {
        let running = pod(
            json!({"metadata": {"name": "a"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}}),
        );
        let ready = pod(
            json!({"metadata": {"name": "b"}, "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}}),
        );
        assert!(!is_ready(&running) && is_ready(&ready));
    }

    #[test]
    fn names_image_pull_and_crash_loop_and_unschedulable_pods() {
        let pods = [
            pod(
                json!({"metadata": {"name": "b"}, "status": {"containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ImagePullBackOff", "message": "Back-off pulling image \"x\""}}}]}}),
            ),
            pod(
                json!({"metadata": {"name": "a"}, "status": {"containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 3,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}}),
            ),
            pod(
                json!({"metadata": {"name": "c"}, "status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}]}}),
            ),
            pod(
                json!({"metadata": {"name": "d"}, "status": {"containerStatuses": [{"name": "app", "image": "x", "imageID": "", "ready": false, "restartCount": 0,
                "state": {"waiting": {"reason": "ContainerCreating"}}}]}}),
            ),
        ];
        assert_eq!(
            pod_problems(&pods),
            [
                "pod a: container app: CrashLoopBackOff",
                "pod b: container app: ImagePullBackOff (Back-off pulling image \"x\")",
                "pod c: Unschedulable (0/2 nodes)",
            ]
        );
    }
}
