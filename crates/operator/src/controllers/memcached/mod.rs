//! The Memcached controller (seed 003): a Deployment of `size` memcached pods behind a
//! headless Service, so that clients can reach every node, and `status.nodes` listing
//! the ready pods. Re-checked every minute while not ready, as the seed does, and every
//! 30 s once it is. Everything but the mappings ([`plan`], [`status`]) is the kit's
//! workload layer; no finalizer, for the same reason as WebServer's.

pub mod plan;
pub mod status;

use std::time::Duration;

use kube::runtime::Controller;
use reconcile_kit::assess::Assessment;
use reconcile_kit::workload::{Observed, Shape, Workload, WorkloadReconciler};
use webapp_api::{Memcached, MemcachedStatus};

use super::Setup;

/// The Memcached kind in the workload layer's terms.
pub struct MemcachedKind;

impl Workload for MemcachedKind {
    type Object = Memcached;
    type Status = MemcachedStatus;
    const APP: &'static str = plan::APP;
    const SHAPE: fn(&Memcached) -> Result<Shape, String> = plan::shape;
    // The seed requeues every Memcached after a minute, whatever its state. Watch events
    // of the children drive our reconciles; this timer is a backstop: the seed's minute
    // while it is not ready, then the shared 30 s health check once it is Running.
    const NOT_READY_RECHECK: Duration = Duration::from_secs(60);
    const STATUS: fn(&Memcached, &Observed, Assessment) -> MemcachedStatus = status::compute;
    type Extra = ();
}

/// The Memcached controller and its reconciler.
pub fn controller(setup: &Setup) -> (Controller<Memcached>, WorkloadReconciler<MemcachedKind>) {
    setup.plain::<MemcachedKind>()
}
