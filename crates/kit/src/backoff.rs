//! Per-object exponential backoff with jitter.
//!
//! `kube::runtime::Controller`'s error policy sees one error at a time and has no
//! memory, so a broken object would be retried at a fixed pace (kube#1916). This keeps
//! one `backon` backoff per object: each failure waits longer (with jitter, so many
//! broken objects do not retry in lockstep), and a success resets it.
//!
//! The key names one object, not one name: the driver keys on `namespace/name/uid`, so
//! a WebApp deleted while it failed and re-created under the same name starts afresh.
//! The state of an object that stopped failing without a success (it was deleted) is
//! dropped once it has not failed for twice the longest delay: a failing object fails
//! again at least that often.
//!
//! It also knows since when each object has been failing ([`Backoffs::failing_for`]),
//! so that a retryable error that keeps coming back can be shown in status after a
//! bounded time instead of only in the logs.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use backon::{BackoffBuilder, ExponentialBackoff, ExponentialBuilder};

/// The first delay of the default backoff.
pub const MIN_DELAY: Duration = Duration::from_secs(1);

/// The longest delay of the default backoff: an object whose error has stopped is
/// reconciled again within this long at the latest (sooner when something it watches
/// changes).
pub const MAX_DELAY: Duration = Duration::from_secs(300);

/// Backoffs keyed by object.
#[derive(Debug)]
pub struct Backoffs {
    builder: ExponentialBuilder,
    max_delay: Duration,
    by_object: Mutex<HashMap<String, Failing>>,
}

/// The backoff of one failing object and when it last failed.
#[derive(Debug)]
struct Failing {
    backoff: ExponentialBackoff,
    since: Instant,
    last: Instant,
}

impl Default for Backoffs {
    /// 1 s doubling up to 5 minutes, the usual controller-runtime envelope.
    fn default() -> Self {
        Self::new(MIN_DELAY, MAX_DELAY)
    }
}

impl Backoffs {
    /// Backoffs that start at `min` and double up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        let builder = ExponentialBuilder::new()
            .with_min_delay(min)
            .with_max_delay(max)
            .with_factor(2.0)
            .with_jitter()
            .without_max_times();
        Backoffs { builder, max_delay: max, by_object: Mutex::default() }
    }

    /// The wait before the next attempt on `key`, one step longer than the last one.
    pub fn next_delay(&self, key: &str) -> Duration {
        self.next_delay_at(key, Instant::now())
    }

    fn next_delay_at(&self, key: &str, now: Instant) -> Duration {
        let mut map = self.by_object.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        // Objects that no longer fail and never succeeded are gone: forget them.
        map.retain(|_, failing| now.saturating_duration_since(failing.last) <= self.max_delay * 2);
        let failing = map.entry(key.to_owned()).or_insert_with(|| Failing {
            backoff: self.builder.build(),
            since: now,
            last: now,
        });
        failing.last = now;
        // backon's jitter adds up to one more delay on top; keep the promise of `max`.
        failing.backoff.next().unwrap_or(self.max_delay).min(self.max_delay)
    }

    /// How long `key` has been failing: since its first failure after its last success,
    /// or `None` when its last attempt succeeded (or it never failed).
    pub fn failing_for(&self, key: &str) -> Option<Duration> {
        let map = self.by_object.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.get(key).map(|failing| failing.since.elapsed())
    }

    /// Forgets `key`'s failures after a success (or when the object is gone).
    pub fn reset(&self, key: &str) {
        let mut map = self.by_object.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_per_object_and_reset_on_success() {
        let backoffs = Backoffs::new(Duration::from_millis(100), Duration::from_secs(10));
        let first = backoffs.next_delay("ns/a");
        let mut last = first;
        for _ in 0..5 {
            last = backoffs.next_delay("ns/a");
        }
        // 100ms doubled five times is 3.2s; jitter only ever adds.
        assert!(last >= Duration::from_millis(3200), "{last:?}");
        assert!(first < Duration::from_millis(201), "{first:?}");
        // Another object starts from the beginning.
        assert!(backoffs.next_delay("ns/b") < Duration::from_millis(201));
        assert!(backoffs.failing_for("ns/a").is_some());
        backoffs.reset("ns/a");
        assert_eq!(backoffs.failing_for("ns/a"), None, "a success ends the failing streak");
        assert!(backoffs.next_delay("ns/a") < Duration::from_millis(201));
    }

    #[test]
    fn objects_that_stopped_failing_without_a_success_are_forgotten() {
        let backoffs = Backoffs::new(Duration::from_millis(100), Duration::from_secs(10));
        let start = Instant::now();
        for _ in 0..5 {
            backoffs.next_delay_at("ns/a/uid-1", start);
        }
        backoffs.next_delay_at("ns/b/uid-2", start + Duration::from_secs(20));
        assert_eq!(backoffs.by_object.lock().unwrap().len(), 2, "within twice the longest delay: kept");
        backoffs.next_delay_at("ns/b/uid-2", start + Duration::from_secs(21));
        assert_eq!(backoffs.by_object.lock().unwrap().len(), 1, "ns/a stopped failing long ago: dropped");
        assert!(backoffs.next_delay_at("ns/a/uid-1", start + Duration::from_secs(21)) < Duration::from_millis(201));
    }

    #[test]
    fn delays_never_exceed_the_maximum() {
        let backoffs = Backoffs::new(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..50 {
            assert!(backoffs.next_delay("ns/a") <= Duration::from_secs(1));
        }
    }
}
