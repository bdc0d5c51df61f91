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
//! The delay grows per retry, not per failure: a failure that comes before the retry the
//! last one scheduled is due (a reconcile that a watch event started meanwhile) keeps
//! that retry where it is. Otherwise a burst of events would double the delay once per
//! event: a WebServer blocked by a Service it does not own while its Deployment rolls
//! out failed eight times in a quarter of a second, and its next retry, the only thing
//! that notices the Service gone, was four minutes away.
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

/// The backoff of one failing object, when it last failed, and when the retry its
/// backoff last scheduled is due.
#[derive(Debug)]
struct Failing {
    backoff: ExponentialBackoff,
    since: Instant,
    last: Instant,
    due: Instant,
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

    /// The wait before the next attempt on `key`: one step longer than the last one, or,
    /// when a retry is already scheduled, the time until that retry.
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
            due: now,
        });
        failing.last = now;
        // Not the scheduled retry: that one stays as it is (see the module's note).
        if now < failing.due {
            return failing.due - now;
        }
        // backon's jitter adds up to one more delay on top; keep the promise of `max`.
        let delay = failing.backoff.next().unwrap_or(self.max_delay).min(self.max_delay);
        failing.due = now + delay;
        delay
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

    /// Fails `key` once the retry the last failure scheduled is due, `times` times from
    /// `now`; returns the last delay and the time of that failure.
    fn retries(backoffs: &Backoffs, key: &str, mut now: Instant, times: usize) -> (Duration, Instant) {
        let mut delay = Duration::ZERO;
        for _ in 0..times {
            now += delay;
            delay = backoffs.next_delay_at(key, now);
        }
        (delay, now)
    }

    #[test]
    fn delays_grow_per_object_and_reset_on_success() {
        let backoffs = Backoffs::new(Duration::from_millis(100), Duration::from_secs(10));
        let first = backoffs.next_delay("ns/a");
        let (last, _) = retries(&backoffs, "ns/a", Instant::now() + first, 5);
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
        let mut now = Instant::now();
        for _ in 0..50 {
            let delay = backoffs.next_delay_at("ns/a", now);
            assert!(delay <= Duration::from_secs(1));
            now += delay;
        }
    }

    #[test]
    fn failures_before_the_scheduled_retry_do_not_lengthen_the_backoff() {
        let backoffs = Backoffs::new(Duration::from_millis(100), Duration::from_secs(10));
        let (delay, at) = retries(&backoffs, "ns/a", Instant::now(), 3);
        // 100 ms doubled twice, with jitter: 400 to 800 ms.
        assert!(delay >= Duration::from_millis(400), "{delay:?}");
        // A burst of watch events, each a failing reconcile, before that retry is due:
        // each is told the time left until it, and the backoff stays where it was.
        for step in 1..=8 {
            let now = at + delay / 10 * step;
            assert_eq!(backoffs.next_delay_at("ns/a", now), at + delay - now);
        }
        // The retry itself fails: one step longer, not nine.
        let next = backoffs.next_delay_at("ns/a", at + delay);
        assert!(next >= delay.min(Duration::from_millis(800)) && next <= Duration::from_millis(3200), "{next:?}");
    }
}
