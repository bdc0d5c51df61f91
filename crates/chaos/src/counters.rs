//! The reconcile counters of an operator instance, summed over its processes. A killed
//! process takes its counters with it, so [`crate::fleet::Instance::kill`] reads them
//! just before the kill; the checks then see every error since the run began, not only
//! those since the last restart. Counters are read only from a scrape that declares
//! both families: an unreadable or empty scrape is an error, never zeros.

use std::collections::BTreeMap;

use webapp_bench::error::Result;
use webapp_bench::operator::Metrics;

/// The family of `controller_runtime_reconcile_total{controller,result}`.
pub const RECONCILES: &str = "controller_runtime_reconcile";
/// The family of `controller_runtime_reconcile_errors_total{controller,reason}`.
pub const ERRORS: &str = "controller_runtime_reconcile_errors";

/// The five controllers, as their metrics label them.
const CONTROLLERS: [&str; 5] = ["webapp", "webserver", "memcached", "podmanager", "database"];

/// Reasons a valid churn never causes: a spec refused as invalid, a forbidden request.
const PERMANENT: [&str; 3] = ["InvalidSpec", "Forbidden", "\"Invalid\""];

/// Reconcile and error series with their values, e.g.
/// `controller_runtime_reconcile_total{controller="webapp",result="error"}` → 3.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Counters(BTreeMap<String, u64>);

impl Counters {
    /// The reconcile counters of one scrape, which must declare both families.
    pub fn read(metrics: Metrics) -> Result<Self> {
        let metrics = metrics.require(RECONCILES)?.require(ERRORS)?;
        let series = metrics
            .matching("controller_runtime_reconcile_total{")
            .chain(metrics.matching("controller_runtime_reconcile_errors_total{"))
            .map(|(series, value)| (series.to_owned(), value as u64))
            .collect();
        Ok(Counters(series))
    }

    /// Adds `other`'s counts (a process that came before).
    pub fn add(&mut self, other: &Counters) {
        for (series, value) in &other.0 {
            *self.0.entry(series.clone()).or_default() += value;
        }
    }

    /// The counts made since `earlier` was read.
    pub fn since(&self, earlier: &Counters) -> Counters {
        let delta = self.0.iter().map(|(s, v)| (s.clone(), v.saturating_sub(earlier.0.get(s).copied().unwrap_or(0))));
        Counters(delta.collect())
    }

    fn sum(&self, prefix: &str, filter: impl Fn(&str) -> bool) -> u64 {
        self.0.iter().filter(|(s, _)| s.starts_with(prefix) && filter(s)).map(|(_, v)| v).sum()
    }

    /// Reconciles of every controller that ended with `result`.
    pub fn reconciles(&self, result: &str) -> u64 {
        let result = format!("result=\"{result}\"");
        self.sum("controller_runtime_reconcile_total{", |s| s.contains(&result))
    }

    /// Inconsistencies: per controller, errors counted by reason must add up to the
    /// reconciles that ended in error, and no reason may be one a valid churn never
    /// causes. `NotOwned` and `SecretExists` are expected: a re-created name meets its
    /// predecessor's children until they are gone, and is retried.
    pub fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        for kind in CONTROLLERS {
            let controller = format!("controller=\"{kind}\"");
            let errors = self.sum("controller_runtime_reconcile_errors_total{", |s| s.contains(&controller));
            let failed = self.sum("controller_runtime_reconcile_total{", |s| {
                s.contains(&controller) && s.contains("result=\"error\"")
            });
            if errors != failed {
                problems.push(format!("{kind}: {errors} errors by reason but {failed} reconciles ended in error"));
            }
        }
        for (series, value) in
            self.0.iter().filter(|(s, _)| s.starts_with("controller_runtime_reconcile_errors_total{"))
        {
            if *value > 0 && PERMANENT.iter().any(|p| series.contains(p)) {
                problems.push(format!("a permanent error during a valid churn: {series} {value}"));
            }
        }
        problems
    }

    /// Error counts by reason, summed over controllers, for the report.
    pub fn errors_by_reason(&self) -> Vec<(String, u64)> {
        let mut by: BTreeMap<String, u64> = BTreeMap::new();
        for (series, value) in
            self.0.iter().filter(|(s, _)| s.starts_with("controller_runtime_reconcile_errors_total{"))
        {
            let reason = series.split("reason=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
            *by.entry(reason.to_owned()).or_default() += value;
        }
        by.into_iter().filter(|(_, n)| *n > 0).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DECLARED: &str = "# TYPE controller_runtime_reconcile counter\n\
                            # TYPE controller_runtime_reconcile_errors counter\n";

    fn counters(samples: &str) -> Counters {
        Counters::read(Metrics::parse(&format!("{DECLARED}{samples}"))).unwrap()
    }

    #[test]
    fn a_scrape_without_the_reconcile_families_is_unreadable_not_zero() {
        assert!(Counters::read(Metrics::default()).is_err(), "an empty scrape");
        let renamed = "# TYPE reconcile counter\nreconcile_total{controller=\"webapp\",result=\"success\"} 3\n";
        assert!(Counters::read(Metrics::parse(renamed)).is_err(), "families renamed");
        assert_eq!(counters("").reconciles("success"), 0, "declared, nothing counted yet");
    }

    #[test]
    fn an_error_before_a_kill_is_still_checked_after_the_restart() {
        // The killed process counted an error by reason without the reconcile result
        // (an inconsistency); its successor is consistent. Only the sum shows it.
        let mut total =
            counters("controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"Leftover\"} 1\n");
        let successor = counters(
            "controller_runtime_reconcile_total{controller=\"webapp\",result=\"error\"} 2\n\
             controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"ApiUnreachable\"} 2\n",
        );
        assert!(successor.problems().is_empty());
        total.add(&successor);
        assert_eq!(total.problems(), ["webapp: 3 errors by reason but 2 reconciles ended in error"]);
        assert_eq!(total.errors_by_reason(), [("ApiUnreachable".to_owned(), 2), ("Leftover".to_owned(), 1)]);
    }

    #[test]
    fn a_permanent_reason_before_a_kill_fails_the_run() {
        let mut total = counters(
            "controller_runtime_reconcile_total{controller=\"webapp\",result=\"error\"} 1\n\
             controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"Invalid\"} 1\n",
        );
        total.add(&counters(""));
        assert_eq!(total.problems().len(), 1, "{:?}", total.problems());
    }

    #[test]
    fn counts_since_an_earlier_reading() {
        let earlier = counters("controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"} 4\n");
        let now = counters(
            "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"} 7\n\
             controller_runtime_reconcile_total{controller=\"database\",result=\"requeue\"} 2\n",
        );
        let during = now.since(&earlier);
        assert_eq!((during.reconciles("success"), during.reconciles("requeue")), (3, 2));
    }
}
