//! An operator contender as its own process, watching one namespace or all, WebApp controller only:
//! ours (the release binary) or the Go contender (`bench/contender`). Start, scrape its
//! metrics, read its CPU time and memory from `/proc`, stop it with SIGINT as a user
//! would. Both are measured by the same code; only their command lines differ ([`Kind`]).

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::process::{Child, Command};
use tokio::time::Instant;

use crate::error::{BenchError, Result, io};
use crate::process::{Usage, usage};
use crate::spread::Spread;

/// The environment the operator's images set (the Dockerfile and hack/images/operator):
/// one malloc arena. An operator is measured as it runs in its image; the Go contender
/// has its own allocator and does not read it.
pub const MALLOC_TUNABLES: (&str, &str) = ("GLIBC_TUNABLES", "glibc.malloc.arena_max=1");

/// Which operator a process is, which decides its command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `webapp-operator run [--namespace NS] --controllers webapp --metrics-addr ADDR`.
    Ours,
    /// The Go contender: `webapp-contender [--namespace NS] --metrics-addr ADDR` (one
    /// controller only, serving /metrics and /readyz on that address).
    Contender,
}

/// How the operator process is started.
#[derive(Clone, Debug)]
pub struct Launch {
    /// Which operator it is.
    pub kind: Kind,
    /// The operator binary.
    pub binary: PathBuf,
    /// The namespaces it watches: the one of a single-namespace run, or all.
    pub spread: Spread,
    /// Where its /metrics and /readyz listen.
    pub metrics: SocketAddr,
    /// Its log file (appended to).
    pub log: PathBuf,
    /// Extra arguments, e.g. `--concurrency 16`.
    pub args: Vec<String>,
}

impl Launch {
    /// The whole command line after the binary: the namespace (none when the run
    /// spreads over several: both then watch all), the metrics address, then the extra
    /// arguments (which may override what comes before).
    pub fn command_line(&self) -> Vec<String> {
        let mut args = match self.kind {
            Kind::Ours => vec!["run".into(), "--controllers".into(), "webapp".into()],
            Kind::Contender => vec![],
        };
        if let Some(namespace) = self.spread.scope() {
            args.extend(["--namespace".to_owned(), namespace.to_owned()]);
        }
        args.extend(["--metrics-addr".to_owned(), self.metrics.to_string()]);
        args.extend(self.args.iter().cloned());
        args
    }
}

/// A running operator process.
pub struct Operator {
    child: Child,
    pid: u32,
    metrics: SocketAddr,
    /// When the process was spawned.
    pub started: Instant,
}

impl Operator {
    /// Starts the operator and waits until it serves /readyz.
    pub async fn start(launch: &Launch) -> Result<Self> {
        Self::spawn(&launch.binary, &launch.command_line(), &launch.log, launch.metrics).await
    }

    /// Starts `binary` with `args` (its whole command line), appending its output to
    /// `log`, and waits until it serves /readyz at `metrics`. `start` and the chaos
    /// suite (which picks its own controllers and leader election) share this.
    pub async fn spawn(binary: &Path, args: &[String], log: &Path, metrics: SocketAddr) -> Result<Self> {
        let log_path = log;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log_path)
            .map_err(io(format!("open {}", log_path.display())))?;
        let log_err = log.try_clone().map_err(io("clone log file"))?;
        let started = Instant::now();
        let child = Command::new(binary)
            .args(args)
            .env(MALLOC_TUNABLES.0, MALLOC_TUNABLES.1)
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log_err)
            .kill_on_drop(true)
            .spawn()
            .map_err(io(format!("start {}", binary.display())))?;
        let pid = child.id().ok_or_else(|| BenchError::Operator("exited at once".into()))?;
        let mut operator = Operator { child, pid, metrics, started };
        let limit = Duration::from_secs(60);
        while get(operator.metrics, "/readyz").await.is_err() {
            if let Ok(Some(status)) = operator.child.try_wait() {
                return Err(BenchError::Operator(format!("exited with {status}; see {}", log_path.display())));
            }
            if started.elapsed() > limit {
                return Err(BenchError::Timeout(limit, "the operator's /readyz".into()));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(operator)
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Whether it has exited (without waiting).
    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Kills it with SIGKILL (a crash: no shutdown, no Lease release) and waits until
    /// it is gone. Returns when it was seen gone.
    pub async fn kill(mut self) -> Result<Instant> {
        self.child.start_kill().map_err(io("kill -9 the operator"))?;
        self.child.wait().await.map_err(io("wait for the killed operator"))?;
        Ok(Instant::now())
    }

    /// Its metrics now.
    pub async fn metrics(&self) -> Result<Metrics> {
        scrape(self.metrics).await
    }

    /// Its CPU time and memory now.
    pub fn usage(&self) -> Result<Usage> {
        usage(self.pid)
    }

    /// Stops it with SIGINT (a graceful shutdown) and waits for it to exit.
    pub async fn stop(mut self) -> Result<()> {
        // `kill` rather than a signal crate: one signal, once per run.
        Command::new("kill")
            .args(["-INT", &self.pid.to_string()])
            .status()
            .await
            .map_err(io("kill -INT the operator"))?;
        let limit = Duration::from_secs(60);
        match tokio::time::timeout(limit, self.child.wait()).await {
            Ok(status) => status.map(drop).map_err(io("wait for the operator")),
            Err(_) => Err(BenchError::Timeout(limit, "the operator to exit".into())),
        }
    }
}

/// The samples of a Prometheus text exposition, keyed by name with labels, e.g.
/// `rest_client_requests_total{code="200",method="GET"}`, and the families it declares.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    samples: HashMap<String, f64>,
    families: HashSet<String>,
}

/// HTTP methods that write.
const WRITES: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// The family of the client's request counters (`rest_client_requests_total{code,method}`).
pub const REQUESTS: &str = "rest_client_requests";

impl Metrics {
    /// Parses the text format; malformed lines are skipped, comments other than the
    /// `# TYPE` lines that declare a family too.
    pub fn parse(text: &str) -> Self {
        let families = text
            .lines()
            .filter_map(|line| line.strip_prefix("# TYPE "))
            .filter_map(|rest| rest.split_whitespace().next())
            .map(str::to_owned)
            .collect();
        let samples = text
            .lines()
            .filter(|line| !line.starts_with('#'))
            .filter_map(|line| line.rsplit_once(' '))
            .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
            .collect();
        Metrics { samples, families }
    }

    /// These metrics, if they declare `family`. A counter's series appear only once
    /// incremented, so an absent series reads as 0; an absent family (renamed, not
    /// registered, an empty scrape) is an error instead, or every check that something
    /// stayed low would pass.
    pub fn require(self, family: &str) -> Result<Self> {
        if self.families.contains(family) {
            return Ok(self);
        }
        let mut declared: Vec<&String> = self.families.iter().collect();
        declared.sort();
        Err(BenchError::Operator(format!("the metrics have no {family} family; declared: {declared:?}")))
    }

    /// Every sample whose series starts with `prefix` (a name and `{`, say), for
    /// families the methods here do not sum.
    pub fn matching<'a>(&'a self, prefix: &'a str) -> impl Iterator<Item = (&'a str, f64)> + 'a {
        self.samples.iter().filter(move |(series, _)| series.starts_with(prefix)).map(|(s, v)| (s.as_str(), *v))
    }

    /// The sum of the series of `name` that carry every label of `labels` (each
    /// `key="value"`), whatever other labels they carry: controller-runtime's request
    /// counter has a `host` label that ours has not. A counter not incremented yet has
    /// no series, and counts 0.
    fn sum_where(&self, name: &str, labels: &[&str]) -> u64 {
        self.sum_matching(name, |carried| labels.iter().all(|label| carried.contains(label)))
    }

    /// The sum of the series of `name` whose labels (each `key="value"`) `keep` takes.
    fn sum_matching(&self, name: &str, keep: impl Fn(&[&str]) -> bool) -> u64 {
        self.samples
            .iter()
            .filter_map(|(series, value)| {
                let inner = series.strip_prefix(name)?.strip_prefix('{')?.strip_suffix('}')?;
                let carried: Vec<&str> = inner.split(',').collect();
                keep(&carried).then_some(*value as u64)
            })
            .sum()
    }

    /// Requests sent with `method`, whatever their answers' codes.
    pub fn requests_by(&self, method: &str) -> u64 {
        self.sum_where("rest_client_requests_total", &[&format!("method=\"{method}\"")])
    }

    /// API requests sent, Event writes included, watches apart: each watch is made
    /// again every minute whatever the operator does (counted as `WATCH` by ours;
    /// client-go counts a watch as a `GET`, so the Go contender's watches are counted).
    pub fn requests(&self) -> u64 {
        self.sum_where("rest_client_requests_total", &[]) - self.requests_by("WATCH")
    }

    /// API requests (watches apart, Event writes included) the API server answered with
    /// an error: a create that found its object there (409), a write on a stale
    /// resourceVersion (409), a read of what is gone (404). Each is a round trip spent for
    /// nothing, and so what a count of requests above the plan's is made of.
    pub fn refused(&self) -> u64 {
        self.sum_matching("rest_client_requests_total", |labels| {
            let failed = labels.iter().any(|l| l.starts_with("code=\"") && !l.starts_with("code=\"2"));
            failed && !labels.contains(&"method=\"WATCH\"")
        })
    }

    /// API writes sent (POST, PUT, PATCH, DELETE), Event writes included.
    pub fn writes(&self) -> u64 {
        WRITES.iter().map(|method| self.requests_by(method)).sum()
    }

    /// Successful reconciles of the WebApp controller.
    pub fn reconciles(&self) -> u64 {
        self.sum_where("controller_runtime_reconcile_total", &["controller=\"webapp\"", "result=\"success\""])
    }

    /// The WebApp controller's `workqueue_queue_duration_seconds` histogram (both
    /// operators export it under controller-runtime's name): how long changes waited
    /// for their reconcile. Empty when the family is not exported.
    pub fn queue_wait(&self) -> Wait {
        self.histogram("workqueue_queue_duration_seconds", "name=\"webapp\"")
    }

    /// The `rest_client_request_duration_seconds` histogram of PATCH requests: the round
    /// trips of the operator's applies (and of its status and Event patches), from the
    /// request to the answer's headers. Empty when the family is not exported.
    pub fn patch_round_trip(&self) -> Wait {
        self.histogram("rest_client_request_duration_seconds", "verb=\"PATCH\"")
    }

    /// The histogram `name` summed over the series that carry `label` (`key="value"`).
    fn histogram(&self, name: &str, label: &str) -> Wait {
        let carrying = |series: &str, suffix: &str| -> Option<Vec<String>> {
            let inner = series.strip_prefix(name)?.strip_prefix(suffix)?.strip_prefix('{')?.strip_suffix('}')?;
            let labels: Vec<String> = inner.split(',').map(str::to_owned).collect();
            labels.iter().any(|l| l == label).then_some(labels)
        };
        let mut wait = Wait::default();
        for (series, value) in &self.samples {
            if carrying(series, "_count").is_some() {
                wait.count += value;
            } else if carrying(series, "_sum").is_some() {
                wait.sum_seconds += value;
            } else if let Some(labels) = carrying(series, "_bucket") {
                let bound = labels.iter().find_map(|l| l.strip_prefix("le=\"")?.strip_suffix('"').map(str::to_owned));
                let bound = bound.and_then(|b| if b == "+Inf" { Some(f64::INFINITY) } else { b.parse().ok() });
                if let Some(bound) = bound {
                    match wait.buckets.iter_mut().find(|(b, _)| *b == bound) {
                        Some((_, count)) => *count += value,
                        None => wait.buckets.push((bound, *value)),
                    }
                }
            }
        }
        wait.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        wait
    }
}

/// A histogram of durations (`workqueue_queue_duration_seconds`,
/// `rest_client_request_duration_seconds`), or the difference of two scrapes of it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Wait {
    /// Waits observed.
    pub count: f64,
    /// Their sum, in seconds.
    pub sum_seconds: f64,
    /// Cumulative buckets: upper bound in seconds, waits at most that long; by bound.
    pub buckets: Vec<(f64, f64)>,
}

impl Wait {
    /// What was observed from `before` to `self` (buckets matched by bound).
    pub fn since(&self, before: &Wait) -> Wait {
        let earlier = |bound: f64| before.buckets.iter().find(|(b, _)| *b == bound).map_or(0.0, |(_, c)| *c);
        Wait {
            count: self.count - before.count,
            sum_seconds: self.sum_seconds - before.sum_seconds,
            buckets: self.buckets.iter().map(|(bound, count)| (*bound, count - earlier(*bound))).collect(),
        }
    }

    /// The mean wait in milliseconds (exact), if any was observed.
    pub fn mean_ms(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum_seconds / self.count * 1000.0)
    }

    /// The `q` quantile in milliseconds, interpolated within its bucket as Prometheus'
    /// `histogram_quantile` does, so only as fine as the buckets (ours double, the Go
    /// contender's grow tenfold).
    pub fn quantile_ms(&self, q: f64) -> Option<f64> {
        let total = self.buckets.last().map(|(_, c)| *c).filter(|c| *c > 0.0)?;
        let rank = q * total;
        let mut lower = (0.0, 0.0);
        for &(bound, count) in &self.buckets {
            if count >= rank {
                if bound.is_infinite() {
                    return Some(lower.0 * 1000.0);
                }
                let within = if count > lower.1 { (rank - lower.1) / (count - lower.1) } else { 1.0 };
                return Some((lower.0 + (bound - lower.0) * within) * 1000.0);
            }
            lower = (bound, count);
        }
        None
    }
}

/// The metrics served at `addr`.
pub async fn scrape(addr: SocketAddr) -> Result<Metrics> {
    Ok(Metrics::parse(&get(addr, "/metrics").await?))
}

/// One plain HTTP/1.0 GET (the server closes the connection after the body), so the
/// bench needs no HTTP client for two local endpoints.
async fn get(addr: SocketAddr, path: &str) -> Result<String> {
    let mut stream = TcpStream::connect(addr).await.map_err(io(format!("connect {addr}")))?;
    stream.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.map_err(io("send"))?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.map_err(io("read"))?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    if !head.lines().next().is_some_and(|line| line.contains(" 200 ")) {
        return Err(BenchError::Operator(format!("GET {path}: {}", head.lines().next().unwrap_or("no answer"))));
    }
    Ok(body.to_owned())
}

/// Where the operator's log of a run goes.
pub fn log_path(dir: &Path, namespace: &str) -> PathBuf {
    dir.join(format!("{namespace}.log"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_sum_requests_and_writes_by_method_watches_apart() {
        let metrics = Metrics::parse(
            "# HELP x\nrest_client_requests_total{code=\"200\",method=\"GET\"} 8\n\
             rest_client_requests_total{code=\"404\",method=\"GET\"} 2\nrest_client_requests_total{code=\"200\",method=\"PATCH\"} 3\n\
             rest_client_requests_total{code=\"201\",method=\"POST\"} 2\nrest_client_requests_total{code=\"200\",method=\"WATCH\"} 4\n\
             controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"} 7\n",
        );
        assert_eq!(metrics.requests(), 15);
        assert_eq!(metrics.refused(), 2);
        assert_eq!(metrics.writes(), 5);
        assert_eq!(metrics.reconciles(), 7);
        assert_eq!(metrics.requests_by("DELETE"), 0);
        assert_eq!(metrics.requests_by("GET"), 10);
    }

    #[test]
    fn controller_runtime_series_with_a_host_label_count_like_ours() {
        let metrics = Metrics::parse(
            "# TYPE rest_client_requests_total counter\n\
             rest_client_requests_total{code=\"200\",host=\"127.0.0.1:6443\",method=\"GET\"} 8\n\
             rest_client_requests_total{code=\"409\",host=\"127.0.0.1:6443\",method=\"PUT\"} 1\n\
             rest_client_requests_total{code=\"200\",host=\"127.0.0.1:6443\",method=\"PUT\"} 3\n\
             rest_client_requests_total{code=\"201\",host=\"127.0.0.1:6443\",method=\"POST\"} 2\n\
             controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"} 7\n\
             controller_runtime_reconcile_total{controller=\"webapp\",result=\"error\"} 2\n\
             controller_runtime_reconcile_total{controller=\"webapps\",result=\"success\"} 5\n",
        );
        assert_eq!(metrics.requests(), 14);
        assert_eq!(metrics.writes(), 6);
        assert_eq!(metrics.requests_by("PUT"), 4);
        assert_eq!(metrics.reconciles(), 7, "only the webapp controller's successes");
    }

    #[test]
    fn each_kind_of_operator_gets_its_own_command_line_and_the_extra_arguments_last() {
        let mut launch = Launch {
            kind: Kind::Ours,
            binary: "op".into(),
            spread: Spread::new("ns", 1),
            metrics: SocketAddr::from(([127, 0, 0, 1], 9)),
            log: "log".into(),
            args: vec!["--concurrency=16".into()],
        };
        let ours = "run --controllers webapp --namespace ns --metrics-addr 127.0.0.1:9 --concurrency=16";
        assert_eq!(launch.command_line().join(" "), ours);
        launch.kind = Kind::Contender;
        assert_eq!(launch.command_line().join(" "), "--namespace ns --metrics-addr 127.0.0.1:9 --concurrency=16");

        // Spread over namespaces: both watch all of them.
        launch.spread = Spread::new("ns", 100);
        assert_eq!(launch.command_line().join(" "), "--metrics-addr 127.0.0.1:9 --concurrency=16");
        launch.kind = Kind::Ours;
        assert_eq!(
            launch.command_line().join(" "),
            "run --controllers webapp --metrics-addr 127.0.0.1:9 --concurrency=16"
        );
    }

    #[test]
    fn the_queue_wait_of_the_webapp_controller_is_read_and_differenced() {
        let scrape = |count: f64, sum: f64, fast: f64| {
            Metrics::parse(&format!(
                "workqueue_queue_duration_seconds_sum{{name=\"webapp\"}} {sum}\n\
                 workqueue_queue_duration_seconds_count{{name=\"webapp\"}} {count}\n\
                 workqueue_queue_duration_seconds_bucket{{le=\"0.001\",name=\"webapp\"}} {fast}\n\
                 workqueue_queue_duration_seconds_bucket{{le=\"0.002\",name=\"webapp\"}} {count}\n\
                 workqueue_queue_duration_seconds_bucket{{le=\"+Inf\",name=\"webapp\"}} {count}\n\
                 workqueue_queue_duration_seconds_count{{name=\"other\"}} 99\n"
            ))
            .queue_wait()
        };
        let (before, after) = (scrape(10.0, 0.01, 10.0), scrape(20.0, 0.025, 10.0));
        let round = after.since(&before);
        assert_eq!((round.count, round.buckets.len()), (10.0, 3), "{round:?}");
        assert!((round.mean_ms().unwrap() - 1.5).abs() < 1e-9);
        // All ten of the round fell between 1 and 2 ms: the median interpolates to 1.5.
        assert!((round.quantile_ms(0.5).unwrap() - 1.5).abs() < 1e-9, "{round:?}");
        assert!((round.quantile_ms(0.99).unwrap() - 1.99).abs() < 1e-9);
        assert_eq!(Wait::default().mean_ms(), None);
        assert_eq!(Wait::default().quantile_ms(0.99), None);
    }

    #[test]
    fn the_patch_round_trips_are_summed_over_the_other_labels_of_their_series() {
        let scrape = Metrics::parse(
            "rest_client_request_duration_seconds_sum{verb=\"PATCH\",host=\"a\"} 0.03\n\
             rest_client_request_duration_seconds_count{verb=\"PATCH\",host=\"a\"} 2\n\
             rest_client_request_duration_seconds_bucket{le=\"0.025\",verb=\"PATCH\",host=\"a\"} 1\n\
             rest_client_request_duration_seconds_bucket{le=\"+Inf\",verb=\"PATCH\",host=\"a\"} 2\n\
             rest_client_request_duration_seconds_sum{verb=\"PATCH\",host=\"b\"} 0.01\n\
             rest_client_request_duration_seconds_count{verb=\"PATCH\",host=\"b\"} 1\n\
             rest_client_request_duration_seconds_bucket{le=\"0.025\",verb=\"PATCH\",host=\"b\"} 1\n\
             rest_client_request_duration_seconds_bucket{le=\"+Inf\",verb=\"PATCH\",host=\"b\"} 1\n\
             rest_client_request_duration_seconds_count{verb=\"POST\",host=\"a\"} 7\n",
        )
        .patch_round_trip();
        assert_eq!(scrape.count, 3.0, "POSTs apart: {scrape:?}");
        assert_eq!(scrape.buckets, vec![(0.025, 2.0), (f64::INFINITY, 3.0)], "one bucket per bound");
        assert!((scrape.mean_ms().unwrap() - 40.0 / 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_family_is_required_by_its_type_line() {
        let declared = Metrics::parse("# HELP rest_client_requests x\n# TYPE rest_client_requests counter\n# EOF\n");
        assert_eq!(declared.require(REQUESTS).map(|m| m.writes()).ok(), Some(0));
        let renamed = Metrics::parse("# TYPE kube_requests counter\nkube_requests_total{method=\"PATCH\"} 3\n");
        assert!(renamed.require(REQUESTS).is_err());
        assert!(Metrics::default().require(REQUESTS).is_err());
    }
}
