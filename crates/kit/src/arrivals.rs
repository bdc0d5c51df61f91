//! How long a change waits before its reconcile starts: the time from the watch event of
//! a controller's own object to the start of the reconcile that handles it, exported as
//! controller-runtime's `workqueue_queue_duration_seconds{name}`, so that the operator's
//! own share of a change's latency can be told from the API server's.
//!
//! kube's controller does not say when it queued an object, so the watch stream notes
//! each object's first unhandled event here ([`Arrivals::note`]) and the driver takes it
//! when a reconcile of that object starts ([`Arrivals::take`]): several events before
//! one reconcile count once, from the first. Reconciles that no event of the object
//! asked for (a child changed, a requeue, a resync) are not measured.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kube::{Resource, ResourceExt};

/// Objects noted at once beyond which those noted longer ago than [`STALE`] are
/// forgotten: an object deleted without a last reconcile (no finalizer) is never taken.
const CROWDED: usize = 10_000;

/// How old a noted arrival may be before a crowded map forgets it.
const STALE: Duration = Duration::from_secs(600);

/// The first unhandled arrival of each object, by kind, namespace and name.
#[derive(Debug, Default)]
pub struct Arrivals {
    first: Mutex<HashMap<String, Instant>>,
}

impl Arrivals {
    /// Notes that an event of `object` arrived now, unless an earlier one still waits.
    pub fn note<K: Resource<DynamicType = ()>>(&self, object: &K) {
        self.note_at(key(object), Instant::now());
    }

    /// How long the oldest unhandled event of `object` has waited, forgetting it: the
    /// reconcile that starts now handles it.
    pub fn take<K: Resource<DynamicType = ()>>(&self, object: &K) -> Option<Duration> {
        self.lock().remove(&key(object)).map(|at| at.elapsed())
    }

    /// Objects with an event waiting.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no event waits.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn note_at(&self, key: String, now: Instant) {
        let mut first = self.lock();
        if first.len() >= CROWDED {
            first.retain(|_, at| now.saturating_duration_since(*at) < STALE);
        }
        first.entry(key).or_insert(now);
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Instant>> {
        self.first.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// `Kind/namespace/name`: one map serves every controller of a process.
fn key<K: Resource<DynamicType = ()>>(object: &K) -> String {
    format!("{}/{}/{}", K::kind(&()), object.namespace().unwrap_or_default(), object.name_any())
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{ConfigMap, Secret};

    use super::*;

    fn named<K: Resource<DynamicType = ()> + Default>(name: &str) -> K {
        let mut object = K::default();
        object.meta_mut().name = Some(name.into());
        object.meta_mut().namespace = Some("ns".into());
        object
    }

    #[test]
    fn the_first_unhandled_event_counts_and_a_reconcile_takes_it_once() {
        let arrivals = Arrivals::default();
        let web: ConfigMap = named("web");
        let early = Instant::now().checked_sub(Duration::from_millis(300)).expect("up for longer");
        arrivals.note_at(key(&web), early);
        arrivals.note(&web);
        let waited = arrivals.take(&web).expect("noted");
        assert!(waited >= Duration::from_millis(300), "from the first event: {waited:?}");
        assert_eq!(arrivals.take(&web), None, "taken once");
    }

    #[test]
    fn kinds_and_names_are_kept_apart_and_a_crowd_forgets_the_stale() {
        let arrivals = Arrivals::default();
        arrivals.note(&named::<ConfigMap>("web"));
        assert_eq!(arrivals.take(&named::<Secret>("web")), None, "another kind");
        assert_eq!(arrivals.take(&named::<ConfigMap>("db")), None, "another name");
        assert_eq!(arrivals.len(), 1);

        let then = Instant::now();
        for i in 0..CROWDED {
            arrivals.note_at(format!("ConfigMap/ns/gone-{i}"), then);
        }
        // Ten minutes and a second later (web too was noted before `then`).
        arrivals.note_at(key(&named::<ConfigMap>("new")), then + STALE + Duration::from_secs(1));
        assert_eq!(arrivals.len(), 1, "the stale crowd is forgotten, web with it; new stays");
        assert!(arrivals.take(&named::<ConfigMap>("new")).is_some());
    }
}
