//! The operator processes under test: the release binary run by webapp-bench's
//! [`Operator`], all five controllers, scoped to the suite's namespace, each with its
//! own metrics port, instance name and log file. Killed with SIGKILL, restarted, and
//! read through their metrics and logs: an instance's reconcile counters are summed over
//! its processes, each read just before its kill.

use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use webapp_bench::error::{BenchError, Result};
use webapp_bench::operator::{Metrics, Operator, REQUESTS};

use crate::counters::Counters;

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
    /// The counters of its processes that are gone.
    past: Counters,
    /// How many processes' counters `past` holds.
    pub killed_and_counted: usize,
    /// Counters that could not be read before a process went: each fails the phase.
    unreadable: Vec<String>,
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
            past: Counters::default(),
            killed_and_counted: 0,
            unreadable: Vec::new(),
        })
    }

    /// Starts a process (waiting for /readyz).
    pub async fn start(&mut self, launch: &Launch) -> Result<()> {
        if self.process.take().is_some() {
            // It exited on its own: what it counted is gone with it.
            self.unreadable.push(format!("{}: a process exited before its counters were read", self.name));
        }
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

    /// Kills the process with SIGKILL; returns when it was seen gone. Its reconcile
    /// counters are read first and kept, or the errors it counted would never be checked.
    pub async fn kill(&mut self) -> Result<Option<tokio::time::Instant>> {
        let Some(process) = self.process.take() else { return Ok(None) };
        match process.metrics().await.and_then(Counters::read) {
            Ok(counters) => {
                self.past.add(&counters);
                self.killed_and_counted += 1;
            }
            Err(error) => self.unreadable.push(format!(
                "{}: the counters before a kill could not be read: {}",
                self.name,
                crate::cli::describe(&error)
            )),
        }
        Ok(Some(process.kill().await?))
    }

    /// The reconcile counters of every process it ran, the running one included.
    pub async fn counters(&self) -> Result<Counters> {
        let mut total = self.current_counters().await?;
        total.add(&self.past);
        Ok(total)
    }

    /// The reconcile counters of its running process alone.
    pub async fn current_counters(&self) -> Result<Counters> {
        Counters::read(self.running()?.metrics().await?)
    }

    /// What could not be read before a process went, since the last call.
    pub fn take_unreadable(&mut self) -> Vec<String> {
        std::mem::take(&mut self.unreadable)
    }

    fn running(&self) -> Result<&Operator> {
        self.process.as_ref().ok_or_else(|| BenchError::Operator(format!("{}: no process to read", self.name)))
    }

    /// The metrics of its running process, which must export the client's request
    /// counters: with no process, or without the family, every bound on its requests
    /// (a quiet operator, no storm) would hold on zeros.
    pub async fn request_metrics(&self) -> Result<Metrics> {
        self.running()?.metrics().await?.require(REQUESTS)
    }

    /// Whether its process died on its own.
    pub fn crashed(&mut self) -> bool {
        self.process.as_mut().is_some_and(Operator::exited)
    }
}

fn free_port() -> std::io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

/// Lines of a log that show a panic.
pub fn panics(log: &Path) -> std::io::Result<Vec<String>> {
    let text = std::fs::read_to_string(log)?;
    Ok(text.lines().filter(|l| l.contains("panicked at") || l.contains("RUST_BACKTRACE")).map(str::to_owned).collect())
}
