//! Runs a reconcile function as a [`kube::runtime::Controller`]: one span per
//! reconcile, metrics, the pause annotation, and the error policy that turns an error's
//! [`Class`] into per-object backoff (retryable, blocked) or a wait for the next change
//! (permanent).
//!
//! A retryable error is not shown in status at first: most clear at the next attempt.
//! One that keeps coming back for [`PERSISTENT_AFTER`] is: each reconcile runs with
//! [`failing_for`] telling how long its object has been failing, and
//! [`crate::assess::Failure::to_report`] turns that into a Degraded condition.

use std::fmt::Debug;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{FutureExt, StreamExt};
use kube::runtime::Controller;
use kube::runtime::controller::Action;
use kube::{Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tracing::Instrument;

use crate::backoff::Backoffs;
use crate::error::{Class, Error, Result};
use crate::metrics::{ControllerLabels, ErrorLabels, Metrics, ResultLabels};

/// Annotation that stops the operator from changing one object (deletion still runs).
pub const PAUSED: &str = "apps.example.com/paused";

/// How long an object may fail with retryable errors (5xx, timeouts, 429, an
/// unreachable API server) before its status says so. Short blips stay out of status;
/// an outage does not stay invisible.
pub const PERSISTENT_AFTER: Duration = Duration::from_secs(30);

tokio::task_local! {
    /// How long the object of the running reconcile has been failing.
    static FAILING_FOR: Option<Duration>;
}

/// How long the object being reconciled has been failing, from its first failure since
/// its last success; `None` when its last attempt succeeded, and outside a reconcile
/// run by a [`Driver`]. Set by the driver around each reconcile, so that the code that
/// writes status can tell a passing error from one that persists.
pub fn failing_for() -> Option<Duration> {
    FAILING_FOR.try_with(|failing| *failing).ok().flatten()
}

/// A controller's reconcile logic.
pub trait Reconciler: Send + Sync + 'static {
    /// The kind this controller reconciles.
    type Object: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static;
    /// Controller name, in logs and metric labels.
    const NAME: &'static str;
    /// Budget of one whole reconcile (each API-bound step has its own, shorter one):
    /// past it the reconcile fails as retryable and frees its slot.
    const TIMEOUT: Duration = Duration::from_secs(120);
    /// Makes the cluster match one object.
    fn reconcile(&self, object: Arc<Self::Object>) -> impl Future<Output = Result<Action>> + Send;
    /// Resolves once the caches the reconcile reads have listed what exists (see
    /// [`crate::workload::cache::ready`]); the driver polls it once per reconcile and,
    /// while it is pending, defers the reconcile ([`CACHES_READY_RETRY`], counted as
    /// `result="deferred"`). kube's controller starts reconciling as soon as the
    /// watched kind lists, while the children's caches may still be empty; a reconcile
    /// would then take "not cached" for "missing": it would send a create (or a GET)
    /// per child, and a controller that plans from its cache alone (bare Pods) would
    /// write a running Pod back to its template in the middle of a rollout. Default:
    /// no caches.
    fn caches_ready(&self) -> impl Future<Output = ()> + Send {
        std::future::ready(())
    }
}

/// How long after its start a controller defers reconciles to wait for
/// [`Reconciler::caches_ready`]: a cache that cannot list (its watch forbidden) must not
/// hold every object without a word; past it, a reconcile reports what it finds.
pub const CACHES_READY_BUDGET: Duration = Duration::from_secs(30);

/// How soon a reconcile deferred because the caches have not listed yet comes back.
pub const CACHES_READY_RETRY: Duration = Duration::from_millis(200);

/// A reconciler with its per-object backoffs and metrics.
pub struct Driver<R> {
    /// The controller's logic.
    pub reconciler: R,
    backoffs: Backoffs,
    metrics: Metrics,
    started: Instant,
}

/// `namespace/name` of an object.
pub fn object_key<K: Resource>(object: &K) -> String {
    match object.namespace() {
        Some(namespace) => format!("{namespace}/{}", object.name_any()),
        None => object.name_any(),
    }
}

/// The key of `object`'s backoff: `namespace/name/uid`, so that an object re-created
/// under the same name does not inherit the failures of the one it replaces.
fn backoff_key<K: Resource>(object: &K) -> String {
    format!("{}/{}", object_key(object), object.uid().unwrap_or_default())
}

/// Whether the pause annotation is set on `object`.
pub fn is_paused<K: Resource>(object: &K) -> bool {
    object.annotations().get(PAUSED).is_some_and(|v| v == "true")
}

impl<R: Reconciler> Driver<R> {
    /// Wraps `reconciler`.
    pub fn new(reconciler: R, metrics: Metrics, backoffs: Backoffs) -> Arc<Self> {
        Arc::new(Driver { reconciler, backoffs, metrics, started: Instant::now() })
    }

    /// Runs `controller` until `shutdown` or `cancel` resolves. After `shutdown`,
    /// in-flight reconciles finish first (a graceful stop). After `cancel`, they do not:
    /// each is dropped where it waits and ends with [`Error::Cancelled`], so that it
    /// sends no further request; for a process that lost the right to write (its leader
    /// Lease), where another replica may already be reconciling the same objects.
    pub async fn run<C>(
        self: Arc<Self>,
        controller: Controller<R::Object>,
        shutdown: impl Future<Output = ()> + Send + Sync + 'static,
        cancel: C,
    ) where
        C: Future<Output = ()> + Clone + Unpin + Send + Sync + 'static,
    {
        // kube stops taking new reconciles once this resolves, and waits for those in
        // flight, which `cancel` ends at once.
        let stop = futures::future::select(Box::pin(shutdown), cancel.clone());
        controller
            .graceful_shutdown_on(stop.map(|_| ()))
            .run(move |object, driver| cancellable::<R>(object, driver, cancel.clone()), error_policy::<R>, self)
            .for_each(|outcome| async move {
                if let Err(error) = outcome {
                    // Reconcile errors were logged with their object; these are queue
                    // and watch errors, which kube retries by itself.
                    tracing::debug!(controller = R::NAME, error = %crate::events::error_chain(&error), "controller event");
                }
            })
            .await;
    }
}

/// [`reconcile`], raced against `cancel`. `cancel` is looked at first, so a reconcile
/// started after it resolved (kube may start one before it sees the stop) is never
/// polled, and so never sends a request.
async fn cancellable<R: Reconciler>(
    object: Arc<R::Object>,
    driver: Arc<Driver<R>>,
    cancel: impl Future<Output = ()>,
) -> Result<Action> {
    let metrics = driver.metrics.clone();
    let _working = metrics.working(R::NAME);
    tokio::select! {
        biased;
        () = cancel => {
            metrics.reconciles.get_or_create(&ResultLabels { controller: R::NAME, result: "cancelled" }).inc();
            tracing::warn!(controller = R::NAME, object = %object_key(object.as_ref()), "reconcile cancelled");
            Err(Error::Cancelled)
        }
        result = reconcile::<R>(object.clone(), driver) => result,
    }
}

async fn reconcile<R: Reconciler>(object: Arc<R::Object>, driver: Arc<Driver<R>>) -> Result<Action> {
    let (key, backoff) = (object_key(object.as_ref()), backoff_key(object.as_ref()));
    // `k8s.namespace.name` is OpenTelemetry's semantic convention, for trace backends.
    let namespace = object.meta().namespace.clone().unwrap_or_default();
    let span = tracing::info_span!("reconcile", controller = R::NAME, object = %key, k8s.namespace.name = %namespace);
    if is_paused(object.as_ref()) && object.meta().deletion_timestamp.is_none() {
        span.in_scope(|| tracing::info!("paused by annotation; not reconciling"));
        driver.metrics.started(R::NAME, object.as_ref());
        // Counted, so that "left alone" can be told from "not looked at yet".
        driver.metrics.reconciles.get_or_create(&ResultLabels { controller: R::NAME, result: "paused" }).inc();
        return Ok(Action::await_change());
    }
    // Deferred, not awaited: kube's controller stops reading its watches, the children's
    // included, while every worker is busy, so workers waiting for those caches would
    // wait for each other. Only the first moments after a start see this.
    if driver.reconciler.caches_ready().now_or_never().is_none() {
        if driver.started.elapsed() < CACHES_READY_BUDGET {
            driver.metrics.reconciles.get_or_create(&ResultLabels { controller: R::NAME, result: "deferred" }).inc();
            return Ok(Action::requeue(CACHES_READY_RETRY));
        }
        span.in_scope(|| tracing::warn!("the child caches have not listed yet; reconciling from what they hold"));
    }
    driver.metrics.started(R::NAME, object.as_ref());
    let started = Instant::now();
    let failing = driver.backoffs.failing_for(&backoff);
    let run = FAILING_FOR.scope(failing, driver.reconciler.reconcile(object).instrument(span.clone()));
    let result = tokio::time::timeout(R::TIMEOUT, run)
        .await
        .unwrap_or(Err(Error::Timeout { step: "reconcile", after: R::TIMEOUT }));
    let elapsed = started.elapsed().as_secs_f64();
    driver.metrics.duration.get_or_create(&ControllerLabels { controller: R::NAME }).observe(elapsed);
    // Waiting for a child to go, or a stale read, is normal operation: a requeue.
    let outcome = match &result {
        Ok(_) => "success",
        Err(error) if error.is_expected() => "requeue",
        Err(_) => "error",
    };
    driver.metrics.reconciles.get_or_create(&ResultLabels { controller: R::NAME, result: outcome }).inc();
    // Seed 001 prints "Reconcile called" for every pass; at debug level, so do we (one
    // line per reconcile would drown the info level under a resync of thousands).
    span.in_scope(|| tracing::debug!(result = outcome, seconds = elapsed, "reconciled"));
    match &result {
        Ok(_) => driver.backoffs.reset(&backoff),
        Err(error) if error.is_expected() => {}
        Err(error) => {
            driver.metrics.errors.get_or_create(&ErrorLabels { controller: R::NAME, reason: error.reason() }).inc();
        }
    }
    result
}

fn error_policy<R: Reconciler>(object: Arc<R::Object>, error: &Error, driver: Arc<Driver<R>>) -> Action {
    let key = object_key(object.as_ref());
    let chain = crate::events::error_chain(error);
    match error.class() {
        Class::Permanent => {
            tracing::warn!(controller = R::NAME, object = %key, error = %chain, "permanent error; waiting for a change");
            Action::await_change()
        }
        class @ (Class::Retryable | Class::Blocked) => {
            let delay = driver.backoffs.next_delay(&backoff_key(object.as_ref()));
            if error.is_expected() {
                tracing::debug!(controller = R::NAME, object = %key, reason = %chain, retry_in = ?delay, "reconciling again");
            } else {
                tracing::warn!(controller = R::NAME, object = %key, error = %chain, ?class, retry_in = ?delay, "reconcile failed");
            }
            Action::requeue(delay)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::ConfigMap;

    fn object(uid: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.name = Some("web".into());
        object.metadata.namespace = Some("ns".into());
        object.metadata.uid = Some(uid.into());
        object
    }

    #[tokio::test]
    async fn failing_for_is_set_only_inside_a_reconcile() {
        assert_eq!(failing_for(), None);
        let seen = FAILING_FOR.scope(Some(Duration::from_secs(40)), async { failing_for() }).await;
        assert_eq!(seen, Some(Duration::from_secs(40)));
    }

    /// A reconcile that never ends, and says whether it was started.
    struct Hangs(Arc<std::sync::atomic::AtomicBool>);

    impl Reconciler for Hangs {
        type Object = ConfigMap;
        const NAME: &'static str = "hangs";
        async fn reconcile(&self, _: Arc<ConfigMap>) -> Result<Action> {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            futures::future::pending().await
        }
    }

    fn hanging() -> (Arc<Driver<Hangs>>, Arc<std::sync::atomic::AtomicBool>) {
        let started = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let metrics = Metrics::register(&mut prometheus_client::registry::Registry::default());
        (Driver::new(Hangs(started.clone()), metrics, Backoffs::default()), started)
    }

    #[tokio::test]
    async fn a_cancel_ends_a_reconcile_in_flight_and_one_started_after_it_never_runs() {
        let (driver, started) = hanging();
        let (cancel, cancelled) = tokio::sync::oneshot::channel::<()>();
        let cancelled = cancelled.map(|_| ()).shared();
        let run = tokio::spawn(cancellable::<Hangs>(Arc::new(object("uid-1")), driver, cancelled));
        while !started.load(std::sync::atomic::Ordering::SeqCst) {
            tokio::task::yield_now().await;
        }
        cancel.send(()).unwrap();
        assert!(matches!(run.await.unwrap(), Err(Error::Cancelled)));

        let (driver, started) = hanging();
        let result = cancellable::<Hangs>(Arc::new(object("uid-1")), driver, futures::future::ready(())).await;
        assert!(matches!(result, Err(Error::Cancelled)));
        assert!(!started.load(std::sync::atomic::Ordering::SeqCst), "a reconcile ran after the cancel");
    }

    /// A reconciler whose caches have not listed until `ready` is set, counting the
    /// reconciles that ran.
    struct Listing {
        ready: Arc<std::sync::atomic::AtomicBool>,
        ran: Arc<std::sync::atomic::AtomicUsize>,
    }

    impl Reconciler for Listing {
        type Object = ConfigMap;
        const NAME: &'static str = "listing";
        async fn reconcile(&self, _: Arc<ConfigMap>) -> Result<Action> {
            self.ran.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(Action::await_change())
        }
        fn caches_ready(&self) -> impl Future<Output = ()> + Send {
            let ready = self.ready.load(std::sync::atomic::Ordering::SeqCst);
            async move {
                if !ready {
                    futures::future::pending::<()>().await;
                }
            }
        }
    }

    #[tokio::test]
    async fn a_reconcile_before_the_caches_have_listed_is_deferred_without_holding_its_worker() {
        let (ready, ran) = (Arc::default(), Arc::new(std::sync::atomic::AtomicUsize::new(0)));
        let mut registry = prometheus_client::registry::Registry::default();
        let metrics = Metrics::register(&mut registry);
        let listing = Listing { ready: Arc::clone(&ready), ran: ran.clone() };
        let driver = Driver::new(listing, metrics, Backoffs::default());
        // At once, not after a wait: the worker is free for kube to read the watches.
        let deferred = tokio::time::timeout(
            Duration::from_secs(1),
            reconcile::<Listing>(Arc::new(object("uid-1")), driver.clone()),
        );
        assert_eq!(deferred.await.expect("the reconcile waited").unwrap(), Action::requeue(CACHES_READY_RETRY));
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 0, "it ran on caches that had not listed");
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        assert!(
            text.contains(r#"controller_runtime_reconcile_total{controller="listing",result="deferred"} 1"#),
            "{text}"
        );

        ready.store(true, std::sync::atomic::Ordering::SeqCst);
        assert_eq!(reconcile::<Listing>(Arc::new(object("uid-1")), driver).await.unwrap(), Action::await_change());
        assert_eq!(ran.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[test]
    fn an_object_re_created_under_the_same_name_has_a_backoff_of_its_own() {
        assert_eq!(object_key(&object("uid-1")), object_key(&object("uid-2")));
        assert_ne!(backoff_key(&object("uid-1")), backoff_key(&object("uid-2")));
    }
}
