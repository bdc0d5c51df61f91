//! The whole controller of a workload kind that owns nothing beyond its Deployment and
//! Service: built from its [`Workload`] mapping alone, with the shared pipeline
//! (`accept → plan → deployment → service → observe`) and no finalizer, since owner
//! references let the garbage collector remove both children, and neither needs to go
//! before the other.

use std::sync::Arc;

use kube::Client;
use kube::runtime::Controller;
use kube::runtime::controller::Action;

use super::cache::{WorkloadCaches, controller};
use super::run::{Run, Shared, Workload, observe, pipeline, reconcile};
use crate::Result;
use crate::driver::Reconciler;
use crate::events::Events;
use crate::metrics::Metrics;
use crate::step::Pipeline;

/// The reconciler of a plain workload kind.
pub struct WorkloadReconciler<W: Workload> {
    shared: Arc<Shared<W>>,
    pipeline: Pipeline<Run<W>>,
}

/// The controller of kind `W` (watching `namespace`, or all when `None`) and its
/// reconciler; `metrics` times the wait of its objects' changes.
pub fn plain<W: Workload<Extra = ()>>(
    client: Client,
    namespace: Option<&str>,
    events: Events,
    concurrency: u16,
    metrics: &Metrics,
) -> (Controller<W::Object>, WorkloadReconciler<W>) {
    let controller = controller::<W::Object>(&client, namespace, concurrency, &[], metrics);
    let (controller, caches) = WorkloadCaches::watch(&client, namespace, W::APP, controller);
    let shared = Arc::new(Shared::new(client, events, caches, ()));
    (controller, WorkloadReconciler { shared, pipeline: pipeline::<W>().then(observe::<W>()) })
}

impl<W: Workload> Reconciler for WorkloadReconciler<W> {
    type Object = W::Object;
    const NAME: &'static str = W::APP;

    async fn reconcile(&self, object: Arc<W::Object>) -> Result<Action> {
        let object = self.shared.freshest(object);
        reconcile(Run::new(self.shared.clone(), object), &self.pipeline).await
    }

    async fn caches_ready(&self) {
        self.shared.caches.ready().await;
    }
}
