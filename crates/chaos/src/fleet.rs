//! The operator processes under test: the release binary run by webapp-bench's
//! [`Operator`], all five controllers, scoped to the suite's namespace, each with its
//! own metrics port, instance name and log file. Killed with SIGKILL, restarted, and
//! read through their metrics and logs.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use webapp_bench::error::{BenchError, Result};
use webapp_bench::operator::{Metrics, Operator, REQUESTS};

/// One operator instance: a name, a port and a log that outlive its processes.
pub struct Instance {
    /// Its name (`--instance`: the Lease holder and the Events' reporting instance).
    pub name: String,
    /// Where its /metrics listens.
    pub metrics: SocketAddr,
    /// Where its PodManager conversion webhook listens.
    pub webhook: SocketAddr,
    /// Its log file, appended to by every process of this instance.
    pub log: PathBuf,
    /// The running process, if any.
    pub process: Option<Operator>,
    leader_elect: bool,
}

/// How every instance is started.
#[derive(Clone, Debug)]
pub struct Launch {
    /// The operator binary.
    pub binary: PathBuf,
    /// The namespace it watches (and holds its Lease in).
    pub namespace: String,
    /// Where the logs go.
    pub log_dir: PathBuf,
}

impl Instance {
    /// An instance named `name`, not started.
    pub fn new(launch: &Launch, name: &str, leader_elect: bool) -> std::io::Result<Self> {
        Ok(Instance {
            name: name.to_owned(),
            metrics: free_port()?,
            webhook: free_port()?,
            log: launch.log_dir.join(format!("{}-{name}.log", launch.namespace)),
            process: None,
            leader_elect,
        })
    }

    /// Starts a process (waiting for /readyz).
    pub async fn start(&mut self, launch: &Launch) -> Result<()> {
        let mut args: Vec<String> = vec![
            "run".into(),
            "--namespace".into(),
            launch.namespace.clone(),
            "--metrics-addr".into(),
            self.metrics.to_string(),
            "--instance".into(),
            self.name.clone(),
            // Each replica serves conversions on a port of its own and, when it
            // starts, points the CRD at itself: the API server needs them to read
            // PodManagers through v2 (the namespace controller and the garbage
            // collector do), and a killed replica's successor takes them over.
            "--webhook-addr".into(),
            self.webhook.to_string(),
            "--webhook-url".into(),
            format!("https://{}{}", self.webhook, webapp_api::podmanager::CONVERT_PATH),
        ];
        if self.leader_elect {
            args.extend(["--leader-elect".into(), "--leader-election-namespace".into(), launch.namespace.clone()]);
        }
        self.process = Some(Operator::spawn(&launch.binary, &args, &self.log, self.metrics).await?);
        Ok(())
    }

    /// Kills the process with SIGKILL; returns when it was seen gone.
    pub async fn kill(&mut self) -> Result<Option<tokio::time::Instant>> {
        match self.process.take() {
            Some(process) => Ok(Some(process.kill().await?)),
            None => Ok(None),
        }
    }

    /// Its metrics (of the current process).
    pub async fn metrics(&self) -> Result<Metrics> {
        match &self.process {
            Some(process) => process.metrics().await,
            None => Ok(Metrics::default()),
        }
    }

    /// The metrics of its running process, which must export the client's request
    /// counters: with no process, or without the family, every bound on its requests
    /// (a quiet operator, no storm) would hold on zeros.
    pub async fn request_metrics(&self) -> Result<Metrics> {
        let process = self
            .process
            .as_ref()
            .ok_or_else(|| BenchError::Operator(format!("{}: no process to count the requests of", self.name)))?;
        process.metrics().await?.require(REQUESTS)
    }

    /// Whether its process died on its own.
    pub fn crashed(&mut self) -> bool {
        self.process.as_mut().is_some_and(Operator::exited)
    }
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Reconciles of every controller, by result.
pub fn reconciles(metrics: &Metrics, result: &str) -> u64 {
    metrics
        .matching("controller_runtime_reconcile_total{")
        .filter(|(series, _)| series.contains(&format!("result=\"{result}\"")))
        .map(|(_, v)| v as u64)
        .sum()
}

/// Inconsistencies of the error metrics: per controller, errors counted by reason must
/// add up to the reconciles that ended in error, and no reason may be one a valid churn
/// never causes (an invalid spec, a forbidden request). `NotOwned` is expected: a
/// re-create with the same name meets the children of its predecessor until the
/// garbage collector has removed them, and is retried.
pub fn metric_problems(metrics: &Metrics) -> Vec<String> {
    let mut problems = Vec::new();
    for kind in ["webapp", "webserver", "memcached", "podmanager", "database"] {
        let controller = format!("controller=\"{kind}\"");
        let errors: u64 = metrics
            .matching("controller_runtime_reconcile_errors_total{")
            .filter(|(s, _)| s.contains(&controller))
            .map(|(_, v)| v as u64)
            .sum();
        let failed: u64 = metrics
            .matching("controller_runtime_reconcile_total{")
            .filter(|(s, _)| s.contains(&controller) && s.contains("result=\"error\""))
            .map(|(_, v)| v as u64)
            .sum();
        if errors != failed {
            problems.push(format!("{kind}: {errors} errors by reason but {failed} reconciles ended in error"));
        }
    }
    for (series, value) in metrics.matching("controller_runtime_reconcile_errors_total{") {
        let permanent = ["InvalidSpec", "Forbidden", "\"Invalid\""];
        if value > 0.0 && permanent.iter().any(|p| series.contains(p)) {
            problems.push(format!("a permanent error during a valid churn: {series} {value}"));
        }
    }
    problems
}

/// Error counts by reason, summed over controllers, for the report.
pub fn errors_by_reason(metrics: &Metrics) -> Vec<(String, u64)> {
    let mut by: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
    for (series, value) in metrics.matching("controller_runtime_reconcile_errors_total{") {
        let reason = series.split("reason=\"").nth(1).and_then(|r| r.split('"').next()).unwrap_or("?");
        *by.entry(reason.to_owned()).or_default() += value as u64;
    }
    by.into_iter().collect()
}

/// Lines of a log that show a panic.
pub fn panics(log: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(log)?;
    Ok(text.lines().filter(|l| l.contains("panicked at") || l.contains("RUST_BACKTRACE")).map(str::to_owned).collect())
}
