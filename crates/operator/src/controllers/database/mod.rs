//! The Database controller: PostgreSQL as a StatefulSet of one pod, a headless and a
//! client Service, a credentials Secret made once, and scheduled backups into a volume
//! of their own, driven through `Pending → Creating → Running` (with `Failed` and
//! `Deleting`).
//!
//! [`plan`], [`backup`], [`storage`] and [`status`] are pure; [`credentials`] draws the
//! password from the OS; this module, `steps`, `kept`, `volumes` and `cleanup` do the I/O.
//! Data safety decides the shape: volumes carry no owner reference and the
//! StatefulSet retains its claims, so only the finalizer, and only with
//! `deletionPolicy: Delete`, ever deletes data. The generated credentials are kept by
//! the data volume as well as owned by the Database (`kept`), so they last exactly as
//! long as the data they open.

pub mod backup;
mod cleanup;
pub mod credentials;
mod kept;
pub mod plan;
pub mod status;
mod steps;
pub mod storage;
mod volumes;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::runtime::reflector::Store;
use kube::{Client, ResourceExt};
use reconcile_kit::Result;
use reconcile_kit::driver::Reconciler;
use reconcile_kit::events::Events;
use webapp_api::Database;

use reconcile_kit::compact::ChildCache;
use reconcile_kit::workload::cache::{
    owner_by_instance_label, reflect_compact, reflect_with, trim_pod, trim_to_intent,
};
use reconcile_kit::workload::labels::{self, kind_selector};
use reconcile_kit::workload::pods::CachedPod;
use reconcile_kit::workload::scoped_api;

use super::Setup;

/// Finalizer that holds a Database until its children are cleaned up.
pub const FINALIZER: &str = "database.example.com/cleanup";
/// How often a healthy Database is looked at again even when nothing happens.
pub const HEALTH_CHECK: Duration = Duration::from_secs(30);
/// Budget of one API-bound step.
const STEP_BUDGET: Duration = Duration::from_secs(30);

/// Shared state of the Database controller: the client, events and the child caches.
pub struct Context {
    client: Client,
    events: Events,
    statefulsets: ChildCache<StatefulSet>,
    services: ChildCache<Service>,
    cronjobs: ChildCache<CronJob>,
    claims: Store<PersistentVolumeClaim>,
    pods: Store<CachedPod>,
    /// How long deletion waits for children to go, from its first attempt.
    cleanup_budget: Duration,
}

impl Context {
    /// The cached pods of the server (not of the backup Jobs) of Database `name`.
    fn server_pods(&self, namespace: &str, name: &str) -> Vec<Arc<CachedPod>> {
        self.pods.state_filter(|pod| {
            let label = |key: &str| pod.labels().get(key).map(String::as_str);
            pod.namespace().as_deref() == Some(namespace)
                && label(labels::INSTANCE) == Some(name)
                && label(plan::COMPONENT) == Some("server")
        })
    }
}

/// The Database reconciler.
pub struct DatabaseReconciler {
    ctx: Arc<Context>,
}

/// Builds the Database controller: watches of Databases and of their children (filtered
/// on our labels, cached once and shared with the reconciler), and the reconciler.
pub fn controller(setup: &Setup) -> (Controller<Database>, DatabaseReconciler) {
    let (client, namespace) = (setup.client.clone(), setup.namespace.as_deref());
    let selector = kind_selector(plan::APP);
    // Every cache keeps of the annotations only those the controller reads: a tenant's
    // labelled objects must not inflate the operator's memory.
    let (statefulsets, statefulset_events) =
        reflect_compact(scoped_api::<StatefulSet>(&client, namespace), &selector, trim_to_intent);
    let (services, service_events) =
        reflect_compact(scoped_api::<Service>(&client, namespace), &selector, trim_to_intent);
    let (cronjobs, cronjob_events) =
        reflect_compact(scoped_api::<CronJob>(&client, namespace), &selector, trim_to_intent);
    let (claims, claim_events) =
        reflect_with(scoped_api::<PersistentVolumeClaim>(&client, namespace), &selector, kept::trim_claim);
    let (pods, pod_events) = reflect_with(scoped_api::<CachedPod>(&client, namespace), &selector, trim_pod);
    // No Secret is watched or cached: the operator may create Secrets and nothing
    // else, so it cannot read any (see steps::ensure_credentials).

    let controller = reconcile_kit::workload::controller::<Database>(
        &client,
        namespace,
        setup.concurrency,
        &[storage::APPROVE_VERSION_CHANGE],
        &setup.metrics,
    )
    .owns_stream(statefulset_events)
    .owns_stream(service_events)
    .owns_stream(cronjob_events)
    // Neither volumes nor pods point at the Database: found by label.
    .watches_stream(claim_events, owner_by_instance_label::<Database, PersistentVolumeClaim>)
    .watches_stream(pod_events, owner_by_instance_label::<Database, CachedPod>);
    let events = setup.events.clone();
    let cleanup_budget = setup.cleanup_budget;
    let ctx = Context { client, events, statefulsets, services, cronjobs, claims, pods, cleanup_budget };
    (controller, DatabaseReconciler { ctx: Arc::new(ctx) })
}

impl Reconciler for DatabaseReconciler {
    type Object = Database;
    const NAME: &'static str = "database";

    async fn reconcile(&self, db: Arc<Database>) -> Result<Action> {
        reconcile_kit::finalizer::guard(&self.ctx.client, FINALIZER, db, &self.ctx, steps::apply, cleanup::cleanup)
            .await
    }

    async fn caches_ready(&self) {
        use reconcile_kit::workload::cache::ready;
        let ctx = &self.ctx;
        futures::join!(
            ctx.statefulsets.ready(),
            ctx.services.ready(),
            ctx.cronjobs.ready(),
            ready(&ctx.claims),
            ready(&ctx.pods)
        );
    }
}
