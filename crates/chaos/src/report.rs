//! The report: one row per fault with what the checks found, and the lines that explain
//! any failure.

use std::fmt::Write;
use std::time::Duration;

use crate::check::Verdict;

/// One fault's results.
#[derive(Clone, Debug, Default)]
pub struct Row {
    /// The fault.
    pub fault: String,
    /// How many times it was injected.
    pub injected: usize,
    /// What the checks after it found.
    pub verdict: Verdict,
    /// Recovery time of each injection.
    pub recovery: Vec<Duration>,
    /// Figures worth printing (takeover times, write rates, errors by reason).
    pub notes: Vec<String>,
    /// Invariant failures specific to the fault (a crash, a write after takeover...).
    pub problems: Vec<String>,
}

impl Row {
    /// Whether every invariant held, over something: a row whose fault was never injected,
    /// or whose checks found no object to check, proves nothing and fails.
    pub fn passed(&self) -> bool {
        let v = &self.verdict;
        let checked = self.injected > 0 && v.objects > 0;
        checked
            && self.problems.is_empty()
            && v.converged == v.objects
            && v.lost + v.orphaned + v.duplicated + v.stuck == 0
    }
}

/// `p50/max` of `times`, in seconds.
pub fn p50_max(times: &[Duration]) -> (f64, f64) {
    let mut secs: Vec<f64> = times.iter().map(Duration::as_secs_f64).collect();
    secs.sort_by(f64::total_cmp);
    let p50 = secs.get(secs.len().saturating_sub(1) / 2).copied().unwrap_or(0.0);
    (p50, secs.last().copied().unwrap_or(0.0))
}

/// The table, as Markdown (what docs/reliability.md holds).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| fault | injected | objects | converged | lost | orphaned | duplicated | stuck | recovery p50 / max | result |\n\
         |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n",
    );
    for row in rows {
        let v = &row.verdict;
        let (p50, max) = p50_max(&row.recovery);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} in {:.0} s | {} | {} | {} | {} | {p50:.2} s / {max:.2} s | {} |",
            row.fault,
            row.injected,
            v.objects,
            v.converged,
            v.converge_seconds,
            v.lost,
            v.orphaned,
            v.duplicated,
            v.stuck,
            if row.passed() { "pass" } else { "FAIL" }
        );
    }
    out
}

/// Notes and problems of every row.
pub fn details(rows: &[Row]) -> String {
    let mut out = String::new();
    for row in rows {
        for note in &row.notes {
            let _ = writeln!(out, "- {}: {note}", row.fault);
        }
        for problem in row.problems.iter().chain(row.verdict.problems.iter().filter(|_| !row.passed())).take(40) {
            let _ = writeln!(out, "- {}: PROBLEM {problem}", row.fault);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_max() {
        let times: Vec<Duration> = [3, 1, 2].iter().map(|s| Duration::from_secs(*s)).collect();
        assert_eq!(p50_max(&times), (2.0, 3.0));
        assert_eq!(p50_max(&[]), (0.0, 0.0));
    }

    #[test]
    fn a_row_with_a_lost_update_fails() {
        let verdict = Verdict { objects: 2, converged: 2, ..Verdict::default() };
        let mut row = Row { injected: 1, verdict, ..Row::default() };
        assert!(row.passed());
        row.verdict.lost = 1;
        assert!(!row.passed());
        assert!(table(&[row]).contains("FAIL"));
    }

    #[test]
    fn a_row_that_checked_nothing_fails() {
        let verdict = Verdict { objects: 2, converged: 2, ..Verdict::default() };
        assert!(!Row { injected: 0, verdict: verdict.clone(), ..Row::default() }.passed(), "never injected");
        assert!(!Row { injected: 3, verdict: Verdict::default(), ..Row::default() }.passed(), "no object checked");
    }
}
