//! One module per controller. Each is a thin I/O shell around a pure plan:
//! observe (reflector stores) → plan (pure) → act (kit apply/delete) → report (status,
//! conditions, events). WebApp, WebServer and Memcached are built on the kit's workload
//! layer (a Deployment behind a Service) and keep only their own mappings; PodManager
//! owns bare Pods and uses the pieces of it that fit (labels, caches, pod problems).

pub mod database;
pub mod memcached;
pub mod podmanager;
pub mod webapp;
pub mod webserver;

use futures::FutureExt;
use futures::future::BoxFuture;
use kube::Client;
use kube::runtime::Controller;
use reconcile_kit::backoff::Backoffs;
use reconcile_kit::driver::{Driver, Reconciler};
use reconcile_kit::events::Events;
use reconcile_kit::metrics::Metrics;
use reconcile_kit::workload::{self, Workload, WorkloadReconciler};

/// Which controllers a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ControllerKind {
    /// WebApp: Deployment + Service + Ingress.
    Webapp,
    /// WebServer: Deployment + Service.
    Webserver,
    /// Memcached: Deployment + headless Service, `status.nodes`.
    Memcached,
    /// Database: PostgreSQL StatefulSet + Services + credentials Secret + backup CronJob.
    Database,
    /// PodManager: bare Pods `<name>-<i>`.
    Podmanager,
}

/// The name `--controllers` takes: `webapp`, `podmanager`, ...
impl std::fmt::Display for ControllerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use clap::ValueEnum;
        match self.to_possible_value() {
            Some(value) => f.write_str(value.get_name()),
            None => write!(f, "{self:?}"),
        }
    }
}

impl ControllerKind {
    /// Every controller there is: what a manager runs by default.
    pub const ALL: &'static [ControllerKind] = &[
        ControllerKind::Webapp,
        ControllerKind::Webserver,
        ControllerKind::Memcached,
        ControllerKind::Podmanager,
        ControllerKind::Database,
    ];

    /// The kind's API group, plural and cleanup finalizer, for the controllers that clean
    /// up through one: what `config/admission/finalizer-policy.yaml` adds at creation.
    pub fn finalizer(self) -> Option<(String, String, &'static str)> {
        use kube::Resource;
        fn of<K: Resource<DynamicType = ()>>(finalizer: &'static str) -> Option<(String, String, &'static str)> {
            Some((K::group(&()).into_owned(), K::plural(&()).into_owned(), finalizer))
        }
        match self {
            ControllerKind::Webapp => of::<webapp_api::WebApp>(webapp::FINALIZER),
            ControllerKind::Podmanager => of::<webapp_api::PodManager>(podmanager::FINALIZER),
            ControllerKind::Database => of::<webapp_api::Database>(database::FINALIZER),
            ControllerKind::Webserver | ControllerKind::Memcached => None,
        }
    }
}

/// What every controller is built from: the process's client and events, the watched
/// namespace (all when `None`), reconciles in parallel, and the shared metrics.
#[derive(Clone)]
pub struct Setup {
    /// The client of the process.
    pub client: Client,
    /// Namespace to watch; all when `None`.
    pub namespace: Option<String>,
    /// Where Events go.
    pub events: Events,
    /// Objects reconciled in parallel per controller.
    pub concurrency: u16,
    /// Reconcile metrics, shared by every controller.
    pub metrics: Metrics,
    /// The source document's own `podmanager_reconcile_total`.
    pub podmanager_metrics: podmanager::PodManagerMetrics,
    /// How long a deletion waits for children to go, from its first attempt, before it
    /// releases the finalizer anyway.
    pub cleanup_budget: std::time::Duration,
}

impl Setup {
    /// The controller of `kind`, as a future that runs until `stop` resolves (letting
    /// in-flight reconciles finish) or `cancel` does (dropping them where they wait).
    pub fn run(&self, kind: ControllerKind, stop: Stop, cancel: Stop) -> BoxFuture<'static, ()> {
        match kind {
            ControllerKind::Webapp => self.drive(webapp::controller(self), stop, cancel),
            ControllerKind::Webserver => self.drive(webserver::controller(self), stop, cancel),
            ControllerKind::Memcached => self.drive(memcached::controller(self), stop, cancel),
            ControllerKind::Database => self.drive(database::controller(self), stop, cancel),
            ControllerKind::Podmanager => self.drive(podmanager::controller(self), stop, cancel),
        }
    }

    /// The controller of a plain workload kind (a Deployment behind a Service, nothing
    /// else: WebServer, Memcached) and its reconciler.
    pub fn plain<W: Workload<Extra = ()>>(&self) -> (Controller<W::Object>, WorkloadReconciler<W>) {
        workload::plain(
            self.client.clone(),
            self.namespace.as_deref(),
            self.events.clone(),
            self.concurrency,
            &self.metrics,
        )
    }

    fn drive<R: Reconciler>(
        &self,
        (controller, reconciler): (Controller<R::Object>, R),
        stop: Stop,
        cancel: Stop,
    ) -> BoxFuture<'static, ()> {
        let driver = Driver::new(reconciler, self.metrics.clone(), Backoffs::default());
        driver.run(controller, stop, cancel).boxed()
    }
}

/// Resolves when controllers must stop: on a shutdown request (gracefully), or when
/// leadership was lost (at once).
pub type Stop = futures::future::Shared<BoxFuture<'static, ()>>;

#[cfg(test)]
mod tests {
    use super::ControllerKind;

    #[test]
    fn a_controller_reads_in_a_log_as_its_flag_names_it() {
        let names: Vec<String> = ControllerKind::ALL.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["webapp", "webserver", "memcached", "podmanager", "database"]);
    }
}
