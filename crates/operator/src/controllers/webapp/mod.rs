//! The WebApp controller: a Deployment, a Service and, with `spec.domain`, an Ingress,
//! driven through `Pending → Creating → Running` (with `Failed` and `Deleting`).
//!
//! Built on the kit's workload layer, which plans, applies and observes the Deployment
//! and Service: [`plan`] maps the spec to them (and to the Ingress), [`status`] maps the
//! lifecycle assessment to the WebApp's status, and `steps` adds the Ingress and the
//! ordered cleanup behind the finalizer.

pub mod plan;
pub mod status;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use reconcile_kit::Result;
use reconcile_kit::assess::Assessment;
use reconcile_kit::compact::ChildCache;
use reconcile_kit::driver::Reconciler;
use reconcile_kit::workload::cache::{reflect_compact, trim_to_intent};
use reconcile_kit::workload::labels::kind_selector;
use reconcile_kit::workload::{self, Observed, Shape, Shared, Workload, WorkloadCaches};
use webapp_api::{WebApp, WebAppStatus};

use super::Setup;

/// Finalizer that holds a WebApp until its children are cleaned up.
pub const FINALIZER: &str = "apps.example.com/webapp-cleanup";

/// The WebApp kind in the workload layer's terms.
pub struct WebAppKind;

/// What the WebApp controller keeps beyond the Deployment and Service caches.
pub struct WebAppExtra {
    /// The cache of its Ingresses.
    pub ingresses: ChildCache<Ingress>,
    /// How long deletion waits for the children to go, from its first attempt.
    pub cleanup_budget: Duration,
}

/// Shared state of the WebApp controller: client, events, child caches.
pub type Context = Shared<WebAppKind>;

impl Workload for WebAppKind {
    type Object = WebApp;
    type Status = WebAppStatus;
    const APP: &'static str = plan::APP;
    type Extra = WebAppExtra;

    const SHAPE: fn(&WebApp) -> Result<Shape, String> = |webapp| {
        plan::validate(webapp)?;
        Ok(plan::shape(webapp))
    };
    const STATUS: fn(&WebApp, &Observed, Assessment) -> WebAppStatus = status::compute;
}

/// The WebApp reconciler.
pub struct WebAppReconciler {
    ctx: Arc<Context>,
}

/// Builds the WebApp controller: watches of WebApps and of their children (filtered on
/// our labels, cached once and shared with the reconciler), and the reconciler.
pub fn controller(setup: &Setup) -> (Controller<WebApp>, WebAppReconciler) {
    let (client, namespace) = (setup.client.clone(), setup.namespace.as_deref());
    let controller = workload::controller::<WebApp>(&client, namespace, setup.concurrency, &[], &setup.metrics);
    let (controller, caches) = WorkloadCaches::watch(&client, namespace, plan::APP, controller);
    let (ingresses, ingress_events) =
        reflect_compact(workload::scoped_api::<Ingress>(&client, namespace), &kind_selector(plan::APP), trim_to_intent);
    let controller = controller.owns_stream(ingress_events);
    let extra = WebAppExtra { ingresses, cleanup_budget: setup.cleanup_budget };
    let ctx = Context::new(client, setup.events.clone(), caches, extra);
    (controller, WebAppReconciler { ctx: Arc::new(ctx) })
}

impl Reconciler for WebAppReconciler {
    type Object = WebApp;
    const NAME: &'static str = "webapp";

    async fn reconcile(&self, webapp: Arc<WebApp>) -> Result<Action> {
        // Not older than our own last write of it (the finalizer guard reads it too).
        let webapp = self.ctx.freshest(webapp);
        reconcile_kit::finalizer::guard(&self.ctx.client, FINALIZER, webapp, &self.ctx, steps::apply, steps::cleanup)
            .await
    }

    async fn caches_ready(&self) {
        futures::join!(self.ctx.caches.ready(), self.ctx.extra.ingresses.ready());
    }
}
