//! The WebServer controller (seed 004): a Deployment of 1 to 10 pods and a Service in
//! front of them, re-checked every 30 s. Everything but the spec → children mapping
//! ([`plan`]) and the status mapping ([`status`]) is the kit's workload layer.
//!
//! No finalizer: both children carry an owner reference, so the garbage collector
//! removes them once the WebServer is gone, and neither has to go before the other.

pub mod plan;
pub mod status;

use kube::runtime::Controller;
use reconcile_kit::assess::Assessment;
use reconcile_kit::workload::{Observed, Shape, Workload, WorkloadReconciler};
use webapp_api::{WebServer, WebServerStatus};

use super::Setup;

/// The WebServer kind in the workload layer's terms.
pub struct WebServerKind;

impl Workload for WebServerKind {
    type Object = WebServer;
    type Status = WebServerStatus;
    type Extra = ();
    const APP: &'static str = plan::APP;
    const SHAPE: fn(&WebServer) -> Result<Shape, String> = |webserver| Ok(plan::shape(webserver));
    const STATUS: fn(&WebServer, &Observed, Assessment) -> WebServerStatus = status::compute;
}

/// The WebServer controller and its reconciler.
pub fn controller(setup: &Setup) -> (Controller<WebServer>, WorkloadReconciler<WebServerKind>) {
    setup.plain::<WebServerKind>()
}
