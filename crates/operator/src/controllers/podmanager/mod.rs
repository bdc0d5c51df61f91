//! The PodManager controller (seed 002): bare Pods `<name>-<i>`, owned directly, with
//! no Deployment or ReplicaSet in between, driven through `Pending → Creating →
//! Running` (with `Failed` and `Deleting`).
//!
//! [`plan`] and [`status`] are pure; this module and `steps` do the I/O. The controller
//! reads v1, the storage version; objects written through v2 carry their whole Pod
//! template, which `webapp_api::podmanager::conversion::template` recovers.

pub mod plan;
pub mod status;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Client;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use reconcile_kit::Result;
use reconcile_kit::driver::Reconciler;
use reconcile_kit::events::Events;
use reconcile_kit::metrics::Declared;
use reconcile_kit::workload::cache::{reflect_with, trim_owned_pod};
use reconcile_kit::workload::labels::kind_selector;
use reconcile_kit::workload::{self, scoped_api};
use webapp_api::PodManager;

use super::Setup;

/// Finalizer that holds a PodManager until its Pods are gone.
pub const FINALIZER: &str = "apps.mycompany.com/podmanager-cleanup";
/// How often a PodManager is looked at again even when nothing happens (the seed's 30 s).
pub const HEALTH_CHECK: Duration = Duration::from_secs(30);

/// Labels of `podmanager_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `success`, `requeue` or `error`, as in `controller_runtime_reconcile_total`.
    pub result: &'static str,
}

/// The seed's own metric, `podmanager_reconcile_total{result}`, next to the shared
/// controller-runtime ones.
#[derive(Clone, Default)]
pub struct PodManagerMetrics {
    reconciles: Family<ResultLabel, Counter>,
}

impl PodManagerMetrics {
    /// Creates the counter and registers it in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = PodManagerMetrics::default();
        let family = Declared(metrics.reconciles.clone());
        registry.register("podmanager_reconcile", "Total number of reconcile operations", family);
        metrics
    }

    fn count(&self, result: &Result<Action>) {
        let result = match result {
            Ok(_) => "success",
            Err(error) if error.is_expected() => "requeue",
            Err(_) => "error",
        };
        self.reconciles.get_or_create(&ResultLabel { result }).inc();
    }
}

/// Shared state of the PodManager controller: the client, events and the Pod cache.
pub struct Context {
    client: Client,
    events: Events,
    pods: Store<Pod>,
    metrics: PodManagerMetrics,
    /// How long deletion waits for the Pods to go before releasing the finalizer anyway.
    cleanup_budget: Duration,
}

/// The PodManager reconciler.
pub struct PodManagerReconciler {
    ctx: Arc<Context>,
}

/// The trim of the Pod cache. Anyone who may create a Pod can give it our labels: the
/// cache keeps only what the steps read (owner references, labels, deletion, status),
/// not a tenant's annotations or spec. One function, so the unit test checks the trim
/// the cache is built with.
fn trim_cached_pod(pod: &mut Pod) {
    trim_owned_pod(pod);
}

/// Builds the PodManager controller: a watch of PodManagers and one of their Pods
/// (filtered on our labels, cached once and shared with the reconciler).
pub fn controller(setup: &Setup) -> (Controller<PodManager>, PodManagerReconciler) {
    let (client, namespace) = (setup.client.clone(), setup.namespace.as_deref());
    let selector = kind_selector(plan::APP);
    let (pods, pod_events) = reflect_with(scoped_api::<Pod>(&client, namespace), &selector, trim_cached_pod);
    // No predicate: a deleted or failed Pod must trigger its replacement.
    // The v2 template rides on the v1 object in an annotation (the conversion's).
    let keep = &[webapp_api::podmanager::conversion::V2_TEMPLATE];
    let controller = workload::controller::<PodManager>(&client, namespace, setup.concurrency, keep, &setup.metrics)
        .owns_stream(pod_events);
    let ctx = Context {
        client,
        events: setup.events.clone(),
        pods,
        metrics: setup.podmanager_metrics.clone(),
        cleanup_budget: setup.cleanup_budget,
    };
    (controller, PodManagerReconciler { ctx: Arc::new(ctx) })
}

impl Reconciler for PodManagerReconciler {
    type Object = PodManager;
    const NAME: &'static str = "podmanager";

    async fn reconcile(&self, pm: Arc<PodManager>) -> Result<Action> {
        let result =
            reconcile_kit::finalizer::guard(&self.ctx.client, FINALIZER, pm, &self.ctx, steps::apply, steps::cleanup)
                .await;
        self.ctx.metrics.count(&result);
        result
    }

    async fn caches_ready(&self) {
        reconcile_kit::workload::cache::ready(&self.ctx.pods).await;
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use reconcile_kit::workload::pods::pod_problems;
    use serde_json::json;

    use super::plan::PodView;

    /// A Pod of PodManager `web` as the API server sends it, with a tenant's large
    /// annotation and the server's `managedFields`.
    fn served() -> Pod {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {
                "name": "web-1", "namespace": "ns", "uid": "pod-uid", "generateName": "web-",
                "deletionTimestamp": "2026-01-01T00:00:00Z",
                "labels": {"app.kubernetes.io/name": "podmanager", "apps.mycompany.com/template-hash": "h1"},
                "annotations": {"tenant.example.org/blob": "x".repeat(256 << 10)},
                "ownerReferences": [{"apiVersion": "apps.mycompany.com/v1", "kind": "PodManager", "name": "web",
                    "uid": "pm-uid", "controller": true}],
                "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "v1",
                    "fieldsType": "FieldsV1", "fieldsV1": {"f:metadata": {}}}]
            },
            "spec": {"containers": [{"name": "app", "image": "nginx:1",
                "env": [{"name": "BLOB", "value": "y".repeat(64 << 10)}]}]},
            "status": {
                "phase": "Running", "podIP": "10.0.0.1",
                "conditions": [{"type": "Ready", "status": "True"}, {"type": "Initialized", "status": "True"},
                    {"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/1 nodes"}],
                "containerStatuses": [{"name": "app", "image": "nginx:1", "imageID": "sha", "ready": false,
                    "restartCount": 3, "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]
            }
        }))
        .unwrap()
    }

    #[test]
    fn the_pod_cache_keeps_what_the_plan_reads_and_no_annotations_spec_or_managed_fields() {
        let pod = served();
        let mut cached = pod.clone();
        super::trim_cached_pod(&mut cached);

        let annotations = cached.metadata.annotations.as_ref().map(|a| a.keys().collect::<Vec<_>>());
        assert_eq!(annotations, None, "a tenant's annotations survived the trim");
        assert_eq!(cached.metadata.managed_fields, None, "managedFields survived the trim");
        assert_eq!(cached.spec, None, "the spec survived the trim");
        let size = serde_json::to_vec(&cached).unwrap().len();
        assert!(size < 2048, "the cached Pod still takes {size} bytes");

        // What the steps read: ownership (`Run::pods`), the plan's view, the problems.
        assert_eq!(cached.metadata.owner_references, pod.metadata.owner_references);
        assert_eq!(cached.metadata.namespace, pod.metadata.namespace);
        assert_eq!(PodView::of("web", &cached), PodView::of("web", &pod));
        let view = PodView::of("web", &cached);
        assert_eq!((view.uid.as_deref(), view.hash.as_deref()), (Some("pod-uid"), Some("h1")));
        assert!(view.ready && view.terminating && view.ordinal == Some(1));
        assert_eq!(pod_problems([&cached]), pod_problems([&pod]));
        assert_eq!(pod_problems([&cached]).len(), 2, "{:?}", pod_problems([&cached]));
    }
}
