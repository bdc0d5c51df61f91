//! Pods as the caches hold them ([`CachedPod`]), and why they fail: the container
//! states and scheduling conditions that mean a pod will not become ready by itself, as
//! stable one-line messages for status.

use std::sync::Arc;

use k8s_openapi::api::core::v1::{Pod, PodStatus};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

/// A pod as the caches hold it: its metadata and status, decoded straight from the
/// watch. The spec, which every watch event carries whole, is never decoded, and a
/// cached pod's inline size is 952 bytes against the 2416 of k8s-openapi's `Pod`, most
/// of them its `PodSpec`, present or not (one pod per replica: the largest cache at a
/// thousand objects; docs/benchmarks.md, "Peak RSS"). Its JSON has the same field names
/// as a `Pod`'s, so a pod's JSON reads as either.
#[derive(Clone, Debug, Default, PartialEq, Deserialize, Serialize)]
pub struct CachedPod {
    /// Name, labels, deletion.
    pub metadata: ObjectMeta,
    /// Phase, conditions and container states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PodStatus>,
}

impl k8s_openapi::Resource for CachedPod {
    const API_VERSION: &'static str = "v1";
    const GROUP: &'static str = "";
    const KIND: &'static str = "Pod";
    const VERSION: &'static str = "v1";
    const URL_PATH_SEGMENT: &'static str = "pods";
    type Scope = k8s_openapi::NamespaceResourceScope;
}

impl k8s_openapi::Metadata for CachedPod {
    type Ty = ObjectMeta;

    fn metadata(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn metadata_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// What [`pod_problems`] and [`is_ready`] read of a pod: its name and status. A
/// [`CachedPod`] of the workload caches, or a `Pod` where a controller keeps them as
/// such (bare pods, cached trimmed by [`super::cache::trim_owned_pod`]).
pub trait PodState {
    /// The pod's name.
    fn name(&self) -> Option<&str>;
    /// The pod's status, once the kubelet (or kwok) wrote one.
    fn state(&self) -> Option<&PodStatus>;
}

impl PodState for CachedPod {
    fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn state(&self) -> Option<&PodStatus> {
        self.status.as_ref()
    }
}

impl PodState for Pod {
    fn name(&self) -> Option<&str> {
        self.metadata.name.as_deref()
    }

    fn state(&self) -> Option<&PodStatus> {
        self.status.as_ref()
    }
}

/// Through an `Arc` or a reference, as the caches and iterators hand pods out.
impl<P: PodState + ?Sized> PodState for Arc<P> {
    fn name(&self) -> Option<&str> {
        P::name(self)
    }

    fn state(&self) -> Option<&PodStatus> {
        P::state(self)
    }
}

impl<P: PodState + ?Sized> PodState for &P {
    fn name(&self) -> Option<&str> {
        P::name(self)
    }

    fn state(&self) -> Option<&PodStatus> {
        P::state(self)
    }
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
pub fn pod_problems(pods: impl IntoIterator<Item = impl PodState>) -> Vec<String> {
    let mut problems = Vec::new();
    for pod in pods {
        let name = pod.name().unwrap_or("?");
        let Some(status) = pod.state() else { continue };
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
pub fn is_ready(pod: &impl PodState) -> bool {
    let conditions = pod.state().and_then(|s| s.conditions.as_ref());
    conditions.into_iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Arc<CachedPod> {
        Arc::new(serde_json::from_value(value).unwrap())
    }

    #[test]
    fn a_cached_pod_is_a_pod_without_its_spec() {
        use kube::Resource;
        let value = json!({"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "a", "namespace": "ns", "labels": {"app": "x"}},
            "spec": {"containers": [{"name": "app", "image": "nginx:1"}], "nodeName": "n1"},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
        let (cached, pod): (CachedPod, Pod) =
            (serde_json::from_value(value.clone()).unwrap(), serde_json::from_value(value).unwrap());
        assert_eq!((&cached.metadata, &cached.status), (&pod.metadata, &pod.status));
        assert_eq!(CachedPod::url_path(&(), Some("ns")), Pod::url_path(&(), Some("ns")));
        assert_eq!((CachedPod::kind(&()), CachedPod::api_version(&())), (Pod::kind(&()), Pod::api_version(&())));
        assert!(std::mem::size_of::<CachedPod>() * 2 < std::mem::size_of::<Pod>());
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
