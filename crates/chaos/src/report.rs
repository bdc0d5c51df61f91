//! The report: one row per fault with what the checks found, and the lines that explain
//! any failure.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::check::Verdict;

/// One fault's results. Stored as one JSON line per row (`--raw`), from which
/// `--table-from` prints the table again: the tables in docs/reliability.md are made from
/// such files, not copied from a console.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
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
    // No time at all is a row that recovered nothing, which fails on its own problem
    // line; its cells read 0.
    match (secs.get(secs.len().saturating_sub(1) / 2), secs.last()) {
        (Some(p50), Some(max)) => (*p50, *max),
        _ => (0.0, 0.0),
    }
}

const HEADER: &str = "| fault | injected | objects | converged | lost | orphaned | duplicated | stuck | recovery p50 / max | result |\n\
                      |---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n";

/// The table, as Markdown (what docs/reliability.md holds).
pub fn table(rows: &[Row]) -> String {
    let mut out = String::from(HEADER);
    for row in rows {
        out.push_str(&table_line(row));
    }
    out
}

/// One row of [`table`], with its line end.
fn table_line(row: &Row) -> String {
    let v = &row.verdict;
    let (p50, max) = p50_max(&row.recovery);
    format!(
        "| {} | {} | {} | {} in {:.0} s | {} | {} | {} | {} | {p50:.2} s / {max:.2} s | {} |\n",
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
    )
}

/// The rows of a run as they end: each is printed at once (a run cut off by a timeout
/// still shows how far it got and what the finished phases found) and, with a raw file,
/// appended to it as a JSON line.
pub struct Recorder {
    rows: Vec<Row>,
    raw: Option<PathBuf>,
}

impl Recorder {
    /// A recorder that starts `raw` afresh, if given.
    pub fn new(raw: Option<PathBuf>) -> std::io::Result<Self> {
        if let Some(path) = &raw {
            std::fs::write(path, "")?;
        }
        Ok(Self { rows: Vec::new(), raw })
    }

    /// Prints `row` (after the table's header, for the first) and stores it.
    pub fn record(&mut self, row: Row) -> std::io::Result<()> {
        let header = if self.rows.is_empty() { HEADER } else { "" };
        eprint!("{header}{}{}", table_line(&row), details(std::slice::from_ref(&row)));
        if let Some(path) = &self.raw {
            let mut file = std::fs::OpenOptions::new().append(true).open(path)?;
            let line = serde_json::to_string(&row).map_err(std::io::Error::other)?;
            writeln!(file, "{line}")?;
        }
        self.rows.push(row);
        Ok(())
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows, once the run is over.
    pub fn into_rows(self) -> Vec<Row> {
        self.rows
    }
}

/// The rows stored in a raw file (one JSON line each).
pub fn read_raw(path: &Path) -> std::io::Result<Vec<Row>> {
    std::fs::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(std::io::Error::other))
        .collect()
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
    fn a_raw_file_gives_back_the_same_table() {
        let path = std::env::temp_dir().join(format!("chaos-raw-{}.jsonl", std::process::id()));
        let mut recorder = Recorder::new(Some(path.clone())).unwrap();
        let verdict = Verdict { objects: 3, converged: 3, converge_seconds: 12.0, ..Verdict::default() };
        let recovery = vec![Duration::from_millis(1500), Duration::from_millis(250)];
        recorder.record(Row { fault: "a".into(), injected: 2, verdict, recovery, ..Row::default() }).unwrap();
        recorder.record(Row { fault: "b".into(), notes: vec!["n".into()], ..Row::default() }).unwrap();
        let read = read_raw(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert_eq!(table(&read), table(recorder.rows()));
        assert_eq!(details(&read), details(recorder.rows()));
        assert!(table(&read).contains("| a | 2 | 3 | 3 in 12 s |"), "{}", table(&read));
    }

    #[test]
    fn a_row_that_checked_nothing_fails() {
        let verdict = Verdict { objects: 2, converged: 2, ..Verdict::default() };
        assert!(!Row { injected: 0, verdict: verdict.clone(), ..Row::default() }.passed(), "never injected");
        assert!(!Row { injected: 3, verdict: Verdict::default(), ..Row::default() }.passed(), "no object checked");
    }
}
