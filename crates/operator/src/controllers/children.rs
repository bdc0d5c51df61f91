//! What every controller needs to know about the built-in objects it owns: cached,
//! label-filtered watches of children, Deployment rollout progress, and why pods fail.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Pod;
use kube::runtime::reflector::{self, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

/// An API for namespaced kind `K`: in one namespace, or all when `None`.
pub fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A cached watch of children selected by `labels`: the store to read, and the stream of
/// touched objects to hand to `Controller::owns_stream` (which must be polled for the
/// store to fill). `managedFields` are dropped before caching: they are large and we
/// never read them.
pub fn reflect<K>(
    api: Api<K>,
    labels: &str,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let config = watcher::Config::default().labels(labels).any_semantic();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(|object| {
            object.meta_mut().managed_fields = None;
        })
        .reflect(writer)
        .touched_objects()
        .boxed();
    (store, stream)
}

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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Arc<Pod> {
        Arc::new(serde_json::from_value(value).unwrap())
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
