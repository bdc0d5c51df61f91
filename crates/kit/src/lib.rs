//! reconcile-kit: what every controller of the webapp-operator family shares.
//!
//! It runs on top of [`kube::runtime::Controller`], never instead of it, and holds:
//! - [`phase`]: the lifecycle state machine and its one transition function (the
//!   `lifecycle` crate, which the API types share);
//! - [`step`]: named steps, pipelines, conditional steps and the tracing/timeout decorators;
//! - [`error`]: errors classified as retryable or permanent;
//! - [`backoff`]: per-object exponential backoff with jitter;
//! - [`conditions`]: kstatus conditions that keep `lastTransitionTime` when nothing changed;
//! - [`assess`]: phase and conditions from what a reconcile found, for every kind;
//! - [`quantity`]: resource quantities compared by value;
//! - [`security`]: the container settings Pod Security `restricted` admits;
//! - [`apply`]: server-side apply of owned children that never touches what we do not own
//!   and never writes when nothing changed;
//! - [`status`]: status patches sent only when the status changed, transitions at once
//!   and changes of detail coalesced;
//! - [`compact`]: child caches of compact records, read back into API types on demand;
//! - [`fresh`]: the freshest view of an object, when the cache lags behind our own write;
//! - [`events`]: Kubernetes Events with the operator's reporter;
//! - [`finalizer`]: cleanup before deletion, tolerant of the object already being gone;
//! - [`cleanup`]: how a cleanup run ends: done, waiting, or released after its budget;
//! - [`owned`]: a controller's children, applied and deleted with an Event for each change;
//! - [`adopt`]: opt-in adoption of same-name children that have no owner;
//! - [`metrics`]: controller-runtime-compatible reconcile metrics;
//! - [`workload`]: labels, child caches, pod problems, rollouts, and the shared reconcile
//!   of kinds whose pods run in a Deployment behind a Service;
//! - [`driver`]: the glue that turns a reconcile function into a running controller.

pub mod adopt;
pub mod apply;
pub mod arrivals;
pub mod assess;
pub mod backoff;
pub mod cleanup;
pub mod compact;
pub mod conditions;
pub mod driver;
pub mod error;
pub mod events;
pub mod finalizer;
pub mod fresh;
pub mod lifetime;
pub mod metrics;
pub mod owned;
pub mod quantity;
pub mod security;
pub mod status;
pub mod step;
#[cfg(any(test, feature = "test-util"))]
pub mod testing;
pub mod workload;

pub use error::{Class, Error, Result};
/// The lifecycle state machine (re-exported from the `lifecycle` crate).
pub use lifecycle as phase;

/// The field manager of every server-side apply and the name on every Event.
pub const MANAGER: &str = "webapp-operator";
