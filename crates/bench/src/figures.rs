//! The figures of one size, as measured, and their targets: issue 25's, which raised
//! issue 12's bar (the N = 1000 ones apply at N = 1000; the 10 000 WebApps of issue 25
//! have their own, in docs/benchmarks.md). Printed next to each other; never asserted.

use serde::{Deserialize, Serialize};

use crate::control_plane::Cpu;
use crate::operator::{Metrics, Wait};

/// API traffic of the operator over a stretch of a run, Event writes apart.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Counts {
    /// Writes (POST, PUT, PATCH, DELETE), Event writes not included.
    pub writes: u64,
    /// Event writes (creates and series patches), from the Events listed.
    pub event_writes: u64,
    /// All requests (watches and lists included), Event writes not included.
    pub requests: u64,
    /// Successful WebApp reconciles.
    pub reconciles: u64,
    /// Requests answered with an error (409, 404, ...), Event writes included; absent
    /// (0) in results written before 2026-12-07.
    #[serde(default)]
    pub refused: u64,
    /// Writes per WebApp.
    pub writes_per_webapp: f64,
    /// Requests per WebApp.
    pub requests_per_webapp: f64,
}

impl Counts {
    /// The traffic from `before` to `after`, of which `event_writes` were Event writes,
    /// for `n` WebApps.
    pub fn between(before: &Metrics, after: &Metrics, event_writes: u64, n: usize) -> Self {
        let writes = (after.writes() - before.writes().min(after.writes())).saturating_sub(event_writes);
        let requests = (after.requests() - before.requests().min(after.requests())).saturating_sub(event_writes);
        let n = n.max(1) as f64;
        Counts {
            writes,
            event_writes,
            requests,
            reconciles: after.reconciles().saturating_sub(before.reconciles()),
            refused: after.refused().saturating_sub(before.refused()),
            writes_per_webapp: writes as f64 / n,
            requests_per_webapp: requests as f64 / n,
        }
    }
}

/// Spec-change latencies, in milliseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Changes timed.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile (the largest but one per hundred).
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
    /// Resync waves of the other WebApps made meanwhile (0 when idle).
    pub resync_waves: u64,
    /// Median of the part that follows the bench's PATCH (its round trip apart): mostly
    /// the operator's watch, reconcile and apply, and the Deployment's watch event (a
    /// lower bound of the operator's share: it may start before the PATCH's answer).
    #[serde(default)]
    pub after_patch_p50_ms: f64,
    /// 99th percentile of the same.
    #[serde(default)]
    pub after_patch_p99_ms: f64,
    /// Mean wait of the operator's changes for their reconcile over the round, from its
    /// `workqueue_queue_duration_seconds` (results written before have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait_mean_ms: Option<f64>,
    /// 99th percentile of the same, as fine as the histogram's buckets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_wait_p99_ms: Option<f64>,
    /// Mean round trip of the operator's PATCH requests over the round (its applies,
    /// and its status and Event patches), from `rest_client_request_duration_seconds`:
    /// the API server's share of the part after the bench's PATCH. Results written
    /// before 2026-12-07 have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_mean_ms: Option<f64>,
    /// 99th percentile of the same, as fine as client-go's buckets (25, 100, 250, 500 ms).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub patch_p99_ms: Option<f64>,
}

impl Latency {
    /// Percentiles of `millis` (nearest rank).
    pub fn of(millis: Vec<f64>) -> Self {
        let samples = millis.len();
        let (p50_ms, p99_ms, max_ms) = percentiles(millis);
        Latency { samples, p50_ms, p99_ms, max_ms, ..Latency::default() }
    }

    /// These latencies, with the operator's queue wait and PATCH round trips over the
    /// same round.
    pub fn with_operator_parts(self, wait: &Wait, patch: &Wait) -> Self {
        Latency {
            queue_wait_mean_ms: wait.mean_ms(),
            queue_wait_p99_ms: wait.quantile_ms(0.99),
            patch_mean_ms: patch.mean_ms(),
            patch_p99_ms: patch.quantile_ms(0.99),
            ..self
        }
    }

    /// The operator's parts, for the report: `; queue wait mean 1.2 ms, p99 3.9 ms;
    /// PATCH mean 20.1 ms, p99 97.0 ms`, or what of it was measured.
    fn operator_parts(&self) -> String {
        let part = |what: &str, mean: Option<f64>, p99: Option<f64>| match (mean, p99) {
            (Some(mean), Some(p99)) => format!("; {what} mean {mean:.1} ms, p99 {p99:.1} ms"),
            _ => String::new(),
        };
        part("queue wait", self.queue_wait_mean_ms, self.queue_wait_p99_ms)
            + &part("PATCH", self.patch_mean_ms, self.patch_p99_ms)
    }

    /// Percentiles of whole changes (`millis`) and of their parts after the PATCH
    /// returned (`after_patch`).
    pub fn with_parts(millis: Vec<f64>, after_patch: Vec<f64>) -> Self {
        let (after_patch_p50_ms, after_patch_p99_ms, _) = percentiles(after_patch);
        Latency { after_patch_p50_ms, after_patch_p99_ms, ..Latency::of(millis) }
    }
}

/// p50, p99 (nearest rank) and the largest of `millis`; zeros when empty.
fn percentiles(mut millis: Vec<f64>) -> (f64, f64, f64) {
    millis.sort_by(f64::total_cmp);
    let Some(&max) = millis.last() else {
        return (0.0, 0.0, 0.0);
    };
    let rank = |p: f64| {
        let index = ((p * millis.len() as f64).ceil() as usize).clamp(1, millis.len()) - 1;
        millis[index]
    };
    (rank(0.50), rank(0.99), max)
}

/// A restart with every WebApp converged.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Restart {
    /// From the new process's start until every WebApp was reconciled once.
    pub seconds: f64,
    /// Traffic of the new process until then (its watches and lists included).
    pub counts: Counts,
    /// Peak resident set of the new process until then, in KiB: it reads everything
    /// that exists at once, where the first process took the WebApps one by one
    /// (results written before 2026-12-06 have none: 0).
    #[serde(default)]
    pub peak_rss_kib: u64,
}

impl Restart {
    /// The new process's peak RSS in MiB, if the results have it.
    pub fn peak_rss_mib(&self) -> Option<f64> {
        recorded_mib(self.peak_rss_kib)
    }
}

/// A memory figure in MiB, or `None` for the 0 that results written before the figure
/// existed carry.
fn recorded_mib(kib: u64) -> Option<f64> {
    (kib > 0).then(|| kib as f64 / 1024.0)
}

/// What the operator contender measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OperatorFigures {
    /// From the first WebApp created until all were Running.
    pub converge_seconds: f64,
    /// CPU seconds the operator spent converging.
    pub cpu_seconds: f64,
    /// CPU seconds of the first process over the whole run.
    pub cpu_seconds_total: f64,
    /// Resident set just after start, with nothing to do.
    pub idle_rss_kib: u64,
    /// Peak resident set of the first process over the whole run.
    pub peak_rss_kib: u64,
    /// The file-backed part of its resident set at the end of the run, in KiB (results
    /// written before 2026-12-06 have none: 0).
    #[serde(default)]
    pub file_rss_kib: u64,
    /// Traffic from creation until the writes stopped.
    pub converge: Counts,
    /// Traffic of a forced resync of the converged set.
    pub resync: Counts,
    /// Duration of that resync.
    pub resync_seconds: f64,
    /// The restart.
    pub restart: Restart,
    /// Spec-change latency with the operator otherwise idle.
    pub latency_idle: Latency,
    /// The same, each change made once the rollout of the one before it was done: the
    /// API server has nothing else to do (results written before had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_settled: Option<Latency>,
    /// Spec-change latency while the other WebApps resync.
    pub latency_resync: Latency,
    /// Whether the API server added the WebApps' finalizer at creation (the finalizer
    /// policy; results written before had none).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub finalizer_policy: bool,
    /// CPU the control plane's processes used while this contender converged, when
    /// they run on this machine (results written before 2026-12-07 have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub control_plane_cpu: Option<Cpu>,
}

/// What the Go contender (`bench/contender`, controller-runtime) measured, measured as
/// ours is, in the same run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Contender {
    /// Its extra arguments (`--concurrency=16`, say): none is controller-runtime's default.
    #[serde(default)]
    pub args: Vec<String>,
    /// Its figures, beside `args` in the same object.
    #[serde(flatten)]
    pub figures: OperatorFigures,
}

/// Everything measured at one size.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// WebApps.
    pub n: usize,
    /// Fake nodes of the cluster.
    pub nodes: usize,
    /// Namespaces the WebApps were dealt over (results written before had one).
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub namespaces: usize,
    /// Load averages (1, 5, 15 min) when the size started.
    pub load_start: String,
    /// Load averages when it ended.
    pub load_end: String,
    /// UTC time the size started (RFC 3339).
    pub when: String,
    /// The floor's time from the first request to all Deployments Available.
    pub floor_seconds: f64,
    /// CPU the control plane's processes used meanwhile, when they run on this machine
    /// (results written before 2026-12-07 have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub floor_control_plane_cpu: Option<Cpu>,
    /// The operator's figures.
    pub operator: OperatorFigures,
    /// The Go contender's, when it was run (results written before it had none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contender: Option<Contender>,
}

fn one() -> usize {
    1
}

fn is_one(count: &usize) -> bool {
    *count <= 1
}

impl OperatorFigures {
    /// Convergence time over the floor's.
    pub fn ratio(&self, floor_seconds: f64) -> f64 {
        self.converge_seconds / floor_seconds.max(f64::EPSILON)
    }

    /// Convergence time per WebApp of `n`, in milliseconds.
    pub fn ms_per_webapp(&self, n: usize) -> f64 {
        self.converge_seconds * 1000.0 / n.max(1) as f64
    }

    /// Peak RSS in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kib as f64 / 1024.0
    }

    /// The file-backed part of the RSS at the end of the run in MiB, if the results
    /// have it.
    pub fn file_rss_mib(&self) -> Option<f64> {
        recorded_mib(self.file_rss_kib)
    }

    /// Peak RSS above the idle process, per WebApp of `n`, in KiB.
    pub fn rss_kib_per_webapp(&self, n: usize) -> f64 {
        self.peak_rss_kib.saturating_sub(self.idle_rss_kib) as f64 / n.max(1) as f64
    }

    /// The figures of this operator and their targets, one row each: figure, value,
    /// target, verdict; `n` WebApps, against a floor of `floor_seconds` that cost the
    /// control plane `floor_cpu`.
    fn rows(&self, n: usize, floor_seconds: f64, floor_cpu: Option<&Cpu>) -> Vec<[String; 4]> {
        let o = self;
        let verdict = |met: bool| if met { "met" } else { "MISSED" }.to_owned();
        let ratio = self.ratio(floor_seconds);
        let peak = self.peak_rss_mib();
        vec![
            [
                "operator: all WebApps Running".into(),
                format!("{:.1} s ({:.1} ms per WebApp)", o.converge_seconds, self.ms_per_webapp(n)),
                "-".into(),
                "-".into(),
            ],
            [
                "convergence operator/floor".into(),
                format!("{ratio:.2}"),
                "≤ 1.1 (at N = 1000)".into(),
                verdict(ratio <= 1.1),
            ],
            [
                "control plane CPU to converge".into(),
                match (&o.control_plane_cpu, floor_cpu) {
                    (Some(cpu), Some(floor)) => {
                        format!(
                            "{}; {:.2} × the floor's",
                            cpu.describe(),
                            cpu.total() / floor.total().max(f64::EPSILON)
                        )
                    }
                    (Some(cpu), None) => cpu.describe(),
                    (None, _) => "-".to_owned(),
                },
                "-".into(),
                "-".into(),
            ],
            [
                "operator CPU to converge".into(),
                format!("{:.1} s ({:.1} s whole run)", o.cpu_seconds, o.cpu_seconds_total),
                "-".into(),
                "-".into(),
            ],
            [
                "peak RSS".into(),
                format!(
                    "{peak:.1} MiB (idle {:.1} MiB{})",
                    o.idle_rss_kib as f64 / 1024.0,
                    o.file_rss_mib()
                        .map(|mib| format!("; at the end {mib:.1} MiB of it file-backed, the binary's pages"))
                        .unwrap_or_default()
                ),
                "≤ 20 MiB (at N = 1000)".into(),
                verdict(peak <= 20.0),
            ],
            [
                "RSS per WebApp (above idle)".into(),
                format!("{:.1} KiB", self.rss_kib_per_webapp(n)),
                "-".into(),
                "-".into(),
            ],
            [
                "writes per WebApp to converge (Events apart)".into(),
                format!(
                    "{:.2} ({} writes, + {} Event writes, {} reconciles)",
                    o.converge.writes_per_webapp, o.converge.writes, o.converge.event_writes, o.converge.reconciles
                ),
                "-".into(),
                "-".into(),
            ],
            [
                "requests per WebApp to converge (Events apart)".into(),
                format!(
                    "{:.2} ({} requests: {} writes, {} reads; {} refused)",
                    o.converge.requests_per_webapp,
                    o.converge.requests,
                    o.converge.writes,
                    o.converge.requests.saturating_sub(o.converge.writes),
                    o.converge.refused
                ),
                "≤ 4, Event writes ≤ 2".into(),
                // As printed, to two decimals: the few LISTs a process makes once (a
                // relist) are not a cost per WebApp.
                verdict(
                    (o.converge.requests_per_webapp * 100.0).round() <= 400.0
                        && o.converge.event_writes as f64 <= 2.0 * n.max(1) as f64,
                ),
            ],
            [
                "forced resync of the converged set".into(),
                format!(
                    "{} requests, {} writes, {} reconciles, {:.1} s",
                    o.resync.requests, o.resync.writes, o.resync.reconciles, o.resync_seconds
                ),
                "0 requests".into(),
                verdict(o.resync.requests == 0),
            ],
            [
                "restart: all re-verified".into(),
                format!(
                    "{:.1} s, {} writes, {} requests{}",
                    o.restart.seconds,
                    o.restart.counts.writes,
                    o.restart.counts.requests,
                    o.restart.peak_rss_mib().map(|mib| format!(", peak RSS {mib:.1} MiB")).unwrap_or_default()
                ),
                "≤ 10 s, 0 writes (at N = 10 000)".into(),
                verdict(o.restart.seconds <= 10.0 && o.restart.counts.writes == 0),
            ],
            [
                "spec change → Deployment, idle".into(),
                format!(
                    "p50 {:.0} ms, p99 {:.0} ms ({} changes; after the PATCH: {:.0} / {:.0} ms{})",
                    o.latency_idle.p50_ms,
                    o.latency_idle.p99_ms,
                    o.latency_idle.samples,
                    o.latency_idle.after_patch_p50_ms,
                    o.latency_idle.after_patch_p99_ms,
                    o.latency_idle.operator_parts()
                ),
                "p99 ≤ 100 ms".into(),
                verdict(o.latency_idle.p99_ms <= 100.0),
            ],
            [
                "spec change → Deployment, each rollout done first".into(),
                o.latency_settled.as_ref().map_or_else(
                    || "-".to_owned(),
                    |l| {
                        format!(
                            "p50 {:.0} ms, p99 {:.0} ms ({} changes; after the PATCH: {:.0} / {:.0} ms{})",
                            l.p50_ms,
                            l.p99_ms,
                            l.samples,
                            l.after_patch_p50_ms,
                            l.after_patch_p99_ms,
                            l.operator_parts()
                        )
                    },
                ),
                "-".into(),
                "-".into(),
            ],
            [
                "spec change → Deployment, during resync".into(),
                format!(
                    "p50 {:.0} ms, p99 {:.0} ms ({} changes, {} waves; after the PATCH: {:.0} / {:.0} ms{})",
                    o.latency_resync.p50_ms,
                    o.latency_resync.p99_ms,
                    o.latency_resync.samples,
                    o.latency_resync.resync_waves,
                    o.latency_resync.after_patch_p50_ms,
                    o.latency_resync.after_patch_p99_ms,
                    o.latency_resync.operator_parts()
                ),
                "p99 ≤ 300 ms (resync of 1000)".into(),
                verdict(o.latency_resync.p99_ms <= 300.0),
            ],
        ]
    }
}

impl Figures {
    /// Operator convergence time over the floor's.
    pub fn ratio(&self) -> f64 {
        self.operator.ratio(self.floor_seconds)
    }

    /// Convergence time per WebApp, in milliseconds.
    pub fn ms_per_webapp(&self) -> f64 {
        self.operator.ms_per_webapp(self.n)
    }

    /// Peak RSS in MiB.
    pub fn peak_rss_mib(&self) -> f64 {
        self.operator.peak_rss_mib()
    }

    /// Peak RSS above the idle process, per WebApp, in KiB.
    pub fn rss_kib_per_webapp(&self) -> f64 {
        self.operator.rss_kib_per_webapp(self.n)
    }

    /// The figures of ours and their targets, one row each: figure, value, target, verdict.
    pub fn rows(&self) -> Vec<[String; 4]> {
        let floor = match &self.floor_control_plane_cpu {
            Some(cpu) => format!("{:.1} s; control plane CPU {}", self.floor_seconds, cpu.describe()),
            None => format!("{:.1} s", self.floor_seconds),
        };
        let mut rows = vec![["floor: all Deployments Available".into(), floor, "-".into(), "-".into()]];
        rows.extend(self.operator.rows(self.n, self.floor_seconds, self.floor_control_plane_cpu.as_ref()));
        rows
    }

    /// The rows as a text table; with the Go contender, its values and verdicts beside
    /// N, and the namespaces when there were several: `1000 in 100 namespaces`; `, finalizer
    /// at admission` when the finalizer policy added the WebApps' finalizers.
    pub fn size(&self) -> String {
        let size = match self.namespaces {
            0 | 1 => self.n.to_string(),
            namespaces => format!("{} in {namespaces} namespaces", self.n),
        };
        match self.operator.finalizer_policy {
            true => format!("{size}, finalizer at admission"),
            false => size,
        }
    }

    /// ours, under a header naming both.
    pub fn render(&self) -> String {
        let ours = self.rows();
        let lines: Vec<Vec<String>> = match &self.contender {
            None => ours.into_iter().map(Vec::from).collect(),
            Some(contender) => {
                let theirs = std::iter::once(["-".to_owned(), "-".to_owned()]).chain(
                    contender
                        .figures
                        .rows(self.n, self.floor_seconds, self.floor_control_plane_cpu.as_ref())
                        .into_iter()
                        .map(|[_, v, _, m]| [v, m]),
                );
                let header = ["", "webapp-operator", &format!("Go contender {}", contender.args.join(" "))];
                let header = [header[0], header[1], header[2].trim_end(), "target", "verdict (ours / contender)"];
                std::iter::once(header.map(str::to_owned).to_vec())
                    .chain(ours.into_iter().zip(theirs).map(|([figure, value, target, verdict], [their, met])| {
                        vec![figure, value, their, target, format!("{verdict} / {met}")]
                    }))
                    .collect()
            }
        };
        let columns = lines.first().map_or(0, Vec::len);
        let widths: Vec<usize> =
            (0..columns).map(|c| lines.iter().map(|l| l[c].chars().count()).max().unwrap_or(0)).collect();
        let mut out = format!(
            "N = {} WebApps (1 replica each){}, {} kwok nodes, load {} → {}\n",
            self.n,
            self.size().strip_prefix(&self.n.to_string()).unwrap_or_default(),
            self.nodes,
            self.load_start,
            self.load_end
        );
        for line in lines {
            for (cell, width) in line.iter().zip(&widths).take(columns.saturating_sub(1)) {
                out.push_str(&format!("  {cell:<width$}"));
            }
            out.push_str(&format!("  {}\n", line.last().map_or("", String::as_str)));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let latency = Latency::of((1..=100).rev().map(f64::from).collect());
        assert_eq!((latency.samples, latency.p50_ms, latency.p99_ms, latency.max_ms), (100, 50.0, 99.0, 100.0));
        let one = Latency::of(vec![7.0]);
        assert_eq!((one.p50_ms, one.p99_ms), (7.0, 7.0));
        assert_eq!(Latency::of(vec![]).p99_ms, 0.0);
    }

    #[test]
    fn a_results_line_without_a_contender_still_parses() {
        let old = include_str!("../../../docs/benchmarks-growth.jsonl").lines().next().unwrap();
        let figures: Figures = serde_json::from_str(old).unwrap();
        assert!(figures.n > 0 && figures.operator.converge_seconds > 0.0);
        assert_eq!(figures.contender, None);
        assert_eq!(figures.namespaces, 1, "written before the many-namespace profile");
        let line = serde_json::to_string(&figures).unwrap();
        assert!(!line.contains("contender") && !line.contains("namespaces"), "none written back either");
        assert_eq!(figures.size(), figures.n.to_string());
    }

    #[test]
    fn the_settled_round_has_its_row_and_is_absent_from_older_lines() {
        let mut figures = Figures { n: 10, namespaces: 1, ..Figures::default() };
        let row = |f: &Figures| {
            f.render().lines().find(|l| l.contains("each rollout done first")).map(str::to_owned).unwrap_or_default()
        };
        assert!(row(&figures).contains("  -"), "none measured: {}", figures.render());
        assert!(!serde_json::to_string(&figures).unwrap().contains("latency_settled"));
        figures.operator.latency_settled = Some(Latency::with_parts(vec![30.0, 40.0], vec![10.0, 20.0]));
        assert!(
            row(&figures).contains("p50 30 ms, p99 40 ms (2 changes; after the PATCH: 10 / 20 ms)"),
            "{}",
            row(&figures)
        );
        let line = serde_json::to_string(&figures).unwrap();
        assert_eq!(serde_json::from_str::<Figures>(&line).unwrap(), figures);
    }

    #[test]
    fn a_run_over_many_namespaces_says_so_in_its_line_and_its_size() {
        let figures = Figures { n: 1000, namespaces: 100, ..Figures::default() };
        let line = serde_json::to_string(&figures).unwrap();
        assert!(line.contains("\"namespaces\":100"), "{line}");
        assert_eq!(serde_json::from_str::<Figures>(&line).unwrap(), figures);
        assert_eq!(figures.size(), "1000 in 100 namespaces");
        let mut admitted = figures.clone();
        admitted.operator.finalizer_policy = true;
        let line = serde_json::to_string(&admitted).unwrap();
        assert!(
            line.contains("\"finalizer_policy\":true")
                && !serde_json::to_string(&figures).unwrap().contains("finalizer")
        );
        assert_eq!(serde_json::from_str::<Figures>(&line).unwrap(), admitted);
        assert_eq!(admitted.size(), "1000 in 100 namespaces, finalizer at admission");
        assert!(
            figures.render().starts_with("N = 1000 WebApps (1 replica each) in 100 namespaces,"),
            "{}",
            figures.render()
        );
    }

    #[test]
    fn a_results_line_with_a_contender_carries_its_args_beside_its_figures() {
        let mut figures = Figures { n: 50, namespaces: 1, floor_seconds: 4.0, ..Figures::default() };
        figures.operator.converge_seconds = 5.0;
        let mut theirs = OperatorFigures { converge_seconds: 8.0, ..OperatorFigures::default() };
        theirs.converge.writes = 150;
        figures.contender = Some(Contender { args: vec!["--concurrency=16".into()], figures: theirs });
        let line = serde_json::to_string(&figures).unwrap();
        assert!(line.contains("\"contender\":{\"args\":[\"--concurrency=16\"],\"converge_seconds\":8.0"), "{line}");
        let read: Figures = serde_json::from_str(&line).unwrap();
        assert_eq!(read, figures);
        let report = figures.render();
        let line = |figure: &str| report.lines().find(|l| l.starts_with(&format!("  {figure}"))).unwrap_or_default();
        let header = report.lines().nth(1).unwrap_or_default();
        assert!(header.contains("webapp-operator") && header.contains("Go contender --concurrency=16"), "{report}");
        let running = line("operator: all WebApps Running");
        let (ours, theirs) = (running.find("5.0 s (100.0 ms").unwrap(), running.find("8.0 s (160.0 ms").unwrap());
        assert!(ours < theirs, "ours first: {report}");
        assert!(line("convergence operator/floor").ends_with("  MISSED / MISSED"), "1.25 and 2.00: {report}");
        assert!(line("peak RSS").ends_with("  met / met"), "{report}");
    }

    #[test]
    fn the_control_plane_cpu_is_reported_beside_the_floors_and_absent_from_older_lines() {
        let mut figures = Figures { n: 10, namespaces: 1, floor_seconds: 4.0, ..Figures::default() };
        let row = |f: &Figures| {
            f.render()
                .lines()
                .find(|l| l.contains("control plane CPU to converge"))
                .map(str::to_owned)
                .unwrap_or_default()
        };
        assert!(row(&figures).contains("  -"), "none measured: {}", figures.render());
        assert!(!serde_json::to_string(&figures).unwrap().contains("control_plane"));
        let cpu = |apiserver: f64| Cpu([("etcd".to_owned(), 2.0), ("kube-apiserver".to_owned(), apiserver)].into());
        figures.floor_control_plane_cpu = Some(cpu(6.0));
        figures.operator.control_plane_cpu = Some(cpu(8.0));
        assert!(
            row(&figures).contains("10.0 s (kube-apiserver 8.0, etcd 2.0); 1.25 × the floor's"),
            "{}",
            row(&figures)
        );
        let floor = figures.render().lines().nth(1).map(str::to_owned).unwrap_or_default();
        assert!(floor.contains("4.0 s; control plane CPU 8.0 s (kube-apiserver 6.0, etcd 2.0)"), "{floor}");
        let line = serde_json::to_string(&figures).unwrap();
        assert_eq!(serde_json::from_str::<Figures>(&line).unwrap(), figures);
    }

    #[test]
    fn without_a_contender_the_report_has_four_columns_and_no_header() {
        let report = Figures { n: 1, ..Figures::default() }.render();
        assert!(!report.contains("contender"), "{report}");
        let floor = report.lines().nth(1).unwrap_or_default();
        assert!(floor.starts_with("  floor: all Deployments Available  ") && floor.ends_with("  -"), "{report}");
        assert_eq!(floor.split_whitespace().filter(|w| *w == "-").count(), 2, "value, target, verdict: {report}");
    }

    #[test]
    fn counts_leave_event_writes_apart() {
        let before = Metrics::parse("rest_client_requests_total{code=\"200\",method=\"GET\"} 4\n");
        let after = Metrics::parse(
            "rest_client_requests_total{code=\"200\",method=\"GET\"} 10\n\
             rest_client_requests_total{code=\"201\",method=\"POST\"} 25\nrest_client_requests_total{code=\"409\",method=\"POST\"} 5\n\
             rest_client_requests_total{code=\"200\",method=\"PATCH\"} 20\n",
        );
        let counts = Counts::between(&before, &after, 15, 10);
        assert_eq!((counts.writes, counts.requests, counts.event_writes), (35, 41, 15));
        assert_eq!(counts.writes_per_webapp, 3.5);
    }
}
