//! Custom resource types of the webapp-operator family.
//!
//! Each kind lives in its own module with its spec, status, defaults and bounds; the
//! bounds are written into the generated OpenAPI schema so that the API server rejects
//! bad input at admission, before any controller sees it. [`crds()`] lists every
//! CustomResourceDefinition this crate defines, which is what `webapp-operator crd`
//! prints and what `config/crd/` holds.

// kube-derive takes one `printcolumn(...)` per column; clippy mistakes the repeated
// `type_ = "string"` keys inside them for duplicated attributes.
#![allow(clippy::duplicated_attributes)]

pub mod common;
pub mod database;
pub mod memcached;
pub mod podmanager;
pub mod webapp;
pub mod webserver;

pub use common::{CATEGORY, LifecycleStatus, Phase};

common::lifecycle_status!(WebAppStatus, WebServerStatus, MemcachedStatus, DatabaseStatus, PodManagerStatus);
pub use database::{Database, DatabaseSpec, DatabaseStatus};
pub use memcached::{Memcached, MemcachedSpec, MemcachedStatus};
pub use podmanager::{PodManager, PodManagerSpec, PodManagerStatus, WebhookEndpoint};
pub use webapp::{WebApp, WebAppSpec, WebAppStatus};
pub use webserver::{WebServer, WebServerSpec, WebServerStatus};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::CustomResourceExt;

/// Every CustomResourceDefinition of the family, in a stable order (by kind), as
/// installed in a cluster (`config/crd`): PodManager's conversion webhook is the
/// operator's in-cluster Service.
pub fn crds() -> Vec<CustomResourceDefinition> {
    crds_with(&WebhookEndpoint::Service)
}

/// Every CustomResourceDefinition, with PodManager's conversion webhook at `endpoint`.
/// The kinds reconciled by the kit's workload layer start `Pending` by the API server's
/// own default ([`common::pending_by_default`]).
pub fn crds_with(endpoint: &WebhookEndpoint) -> Vec<CustomResourceDefinition> {
    vec![
        Database::crd(),
        common::pending_by_default(Memcached::crd()),
        podmanager::crd(endpoint),
        common::pending_by_default(WebApp::crd()),
        common::pending_by_default(WebServer::crd()),
    ]
}
