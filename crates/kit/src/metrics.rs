//! Reconcile metrics with controller-runtime's names, so existing dashboards work:
//! `controller_runtime_reconcile_total{controller,result}`,
//! `controller_runtime_reconcile_errors_total{controller,reason}`,
//! `controller_runtime_reconcile_time_seconds{controller}`,
//! `controller_runtime_active_workers{controller}` and
//! `workqueue_queue_duration_seconds{name}` ([`crate::arrivals`]); and the kit's own
//! `webapp_operator_events_pending` ([`crate::events`]). Labels never hold object names:
//! their cardinality is bounded by the number of controllers and reasons.

use std::sync::Arc;

use prometheus_client::encoding::{EncodeLabelSet, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::arrivals::Arrivals;

/// A metric family that is declared (`# HELP`, `# TYPE`) even before its first series.
/// prometheus-client leaves an empty family out of the exposition altogether, so "no
/// error yet" would look like "no such metric": a dashboard's `absent()` and a test
/// that checks a count stays 0 could not tell a renamed metric from a quiet one.
#[derive(Debug)]
pub struct Declared<M>(pub M);

impl<M: EncodeMetric> EncodeMetric for Declared<M> {
    fn encode(&self, encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        self.0.encode(encoder)
    }

    fn metric_type(&self) -> MetricType {
        self.0.metric_type()
    }

    fn is_empty(&self) -> bool {
        false
    }
}

/// Labels of `controller_runtime_reconcile_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// Controller name.
    pub controller: &'static str,
    /// `success`, `requeue` (waiting on the cluster, or a stale read), `error`, or
    /// `paused` (left alone by the pause annotation).
    pub result: &'static str,
}

/// Labels of `controller_runtime_reconcile_errors_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// Controller name.
    pub controller: &'static str,
    /// [`crate::Error::reason`].
    pub reason: &'static str,
}

/// Labels of `controller_runtime_reconcile_time_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ControllerLabels {
    /// Controller name.
    pub controller: &'static str,
}

/// Labels of `workqueue_queue_duration_seconds`: controller-runtime names the queue
/// after its controller.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct QueueLabels {
    /// Controller name.
    pub name: &'static str,
}

/// The reconcile metric families, shared by every controller of the process.
#[derive(Clone)]
pub struct Metrics {
    /// Reconciles by result.
    pub reconciles: Family<ResultLabels, Counter>,
    /// Reconcile errors by reason.
    pub errors: Family<ErrorLabels, Counter>,
    /// Reconcile durations.
    pub duration: Family<ControllerLabels, Histogram>,
    /// Reconciles running now (controller-runtime's "active workers"): at the
    /// controller's concurrency for long, the queue is waiting on them.
    pub active: Family<ControllerLabels, Gauge>,
    /// How long changes of a controller's own objects waited for their reconcile.
    pub queue: Family<QueueLabels, Histogram>,
    /// When those changes arrived, until their reconcile starts.
    pub arrivals: Arc<Arrivals>,
    /// Events told by reconciles and not yet sent ([`crate::events`]).
    pub events_pending: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            reconciles: Family::default(),
            errors: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.005, 2.0, 14))),
            active: Family::default(),
            // From 1 ms: the operator's own share of a change's latency is a few.
            queue: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 16))),
            arrivals: Arc::default(),
            events_pending: Gauge::default(),
        }
    }
}

impl Metrics {
    /// Creates the families and registers them in `registry`.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = Metrics::default();
        registry.register(
            "controller_runtime_reconcile",
            "Total number of reconciliations per controller",
            Declared(metrics.reconciles.clone()),
        );
        registry.register(
            "controller_runtime_reconcile_errors",
            "Total number of reconciliation errors per controller and reason",
            Declared(metrics.errors.clone()),
        );
        registry.register(
            "controller_runtime_reconcile_time_seconds",
            "Length of time per reconciliation per controller",
            metrics.duration.clone(),
        );
        registry.register(
            "controller_runtime_active_workers",
            "Number of currently used workers per controller",
            Declared(metrics.active.clone()),
        );
        registry.register(
            "workqueue_queue_duration_seconds",
            "How long in seconds a change of an object waits before its reconcile starts",
            metrics.queue.clone(),
        );
        registry.register(
            "webapp_operator_events_pending",
            "Kubernetes Events told by reconciles and not yet sent to the API server",
            metrics.events_pending.clone(),
        );
        metrics
    }

    /// Records how long the change that a reconcile of `object` by `controller` handles
    /// waited for it, if a change of the object itself asked for it.
    pub fn started<K: kube::Resource<DynamicType = ()>>(&self, controller: &'static str, object: &K) {
        if let Some(waited) = self.arrivals.take(object) {
            self.queue.get_or_create(&QueueLabels { name: controller }).observe(waited.as_secs_f64());
        }
    }

    /// Counts one reconcile of `controller` as active until the returned guard drops,
    /// however the reconcile ends (finished, failed, cancelled, dropped by a shutdown).
    pub fn working(&self, controller: &'static str) -> InFlight {
        InFlight::enter(self.active.get_or_create(&ControllerLabels { controller }).clone())
    }
}

/// One unit of work counted in a gauge while it runs: [`InFlight::enter`] adds one, the
/// drop takes it back, however the work ends (done, failed, or its future dropped: a
/// cancelled reconcile, a client that hung up on a webhook request).
#[derive(Debug)]
pub struct InFlight(Gauge);

impl InFlight {
    /// Counts one more in `gauge` until the returned guard drops.
    pub fn enter(gauge: Gauge) -> InFlight {
        gauge.inc();
        InFlight(gauge)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_family_is_declared_before_its_first_series() {
        let mut registry = Registry::default();
        let metrics = Metrics::register(&mut registry);
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(text.contains("# TYPE controller_runtime_reconcile_errors counter\n"), "{text}");
        assert!(!text.contains("controller_runtime_reconcile_errors_total{"), "{text}");

        metrics.errors.get_or_create(&ErrorLabels { controller: "webapp", reason: "Invalid" }).inc();
        text.clear();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains("controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"Invalid\"} 1\n")
        );
    }

    #[test]
    fn a_worker_is_active_until_its_guard_drops() {
        let metrics = Metrics::default();
        let active = || metrics.active.get(&ControllerLabels { controller: "webapp" }).map(|gauge| gauge.get());
        let first = metrics.working("webapp");
        let second = metrics.working("webapp");
        assert_eq!(active(), Some(2));
        drop(first);
        assert_eq!(active(), Some(1));
        drop(second);
        assert_eq!(active(), Some(0));
    }
}
