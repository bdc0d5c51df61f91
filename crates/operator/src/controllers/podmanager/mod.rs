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
use reconcile_kit::workload::labels::kind_selector;
use reconcile_kit::workload::{self, reflect, scoped_api};
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

/// Builds the PodManager controller: a watch of PodManagers and one of their Pods
/// (filtered on our labels, cached once and shared with the reconciler).
pub fn controller(setup: &Setup) -> (Controller<PodManager>, PodManagerReconciler) {
    let (client, namespace) = (setup.client.clone(), setup.namespace.as_deref());
    let (pods, pod_events) = reflect(scoped_api::<Pod>(&client, namespace), &kind_selector(plan::APP));
    // No predicate: a deleted or failed Pod must trigger its replacement.
    let controller = workload::controller::<PodManager>(&client, namespace, setup.concurrency).owns_stream(pod_events);
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
}
