//! The command line: `webapp-bench run` (one size), `webapp-bench growth` (table and
//! plot over the sizes run) and `webapp-bench link-order` (the release binary's link order).

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Parser, Subcommand};
use kube::Client;

use crate::control_plane::ControlPlane;
use crate::error::{Result, io, kube};
use crate::figures::{Contender, Figures, OperatorFigures};
use crate::measure::{self, Setup};
use crate::operator::{Kind, Launch};
use crate::spread::Spread;
use crate::{cluster, growth, link_order};

/// Benchmark of the WebApp operator against the control plane's own floor.
#[derive(Debug, Parser)]
#[command(name = "webapp-bench", about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Measure one size on the cluster of $KUBECONFIG (CRDs installed): floor, operator, Go contender.
    Run(RunArgs),
    /// Print the growth table of a results file and write its plot.
    Growth {
        /// The results file written by `run`.
        #[arg(long)]
        results: PathBuf,
        /// Where the SVG plot goes.
        #[arg(long)]
        svg: PathBuf,
    },
    /// Print the release binary's link order (crates/operator/link-order.txt) from
    /// callgrind profiles of it (`hack/release/link-order` makes them).
    LinkOrder {
        /// The binary profiled: the list keeps the functions it defines.
        #[arg(long)]
        binary: PathBuf,
        /// Callgrind's output files (`--demangle=no`).
        #[arg(required = true)]
        profiles: Vec<PathBuf>,
    },
}

/// Flags of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// WebApps.
    #[arg(long, default_value_t = 50)]
    pub n: usize,
    /// The operator binary (the release build).
    #[arg(long, default_value = "target/release/webapp-operator")]
    pub operator: PathBuf,
    /// Namespaces the WebApps are dealt over, round-robin (recorded with the figures).
    /// With more than one, both operators watch all namespaces, as a cluster-wide
    /// install does; with one, each watches only its own.
    #[arg(long, default_value_t = 1)]
    pub namespaces: usize,
    /// Fake nodes of the cluster (recorded with the figures).
    #[arg(long, default_value_t = 0)]
    pub nodes: usize,
    /// Address of the operator's metrics server.
    #[arg(long, default_value = "127.0.0.1:18089")]
    pub metrics_addr: SocketAddr,
    /// Spec changes timed per latency figure (at most N/2).
    #[arg(long, default_value_t = 100)]
    pub samples: usize,
    /// Bound of every wait, in seconds.
    #[arg(long, default_value_t = 1200)]
    pub timeout: u64,
    /// Append the figures as one JSON line to this file.
    #[arg(long)]
    pub results: Option<PathBuf>,
    /// Where the operator's logs go.
    #[arg(long, default_value = "/tmp")]
    pub log_dir: PathBuf,
    /// Extra argument of `webapp-operator run` (repeatable), e.g. `--operator-arg=--concurrency=16`.
    #[arg(long, allow_hyphen_values = true)]
    pub operator_arg: Vec<String>,
    /// The Go contender binary (`bench/contender/build` prints it): measured after ours,
    /// as ours is, on a fresh namespace of its own. Not run when unset.
    #[arg(long)]
    pub contender: Option<PathBuf>,
    /// Bind the finalizer policy (config/admission, as the chart installs it on
    /// Kubernetes 1.36 and later) to the operator's namespaces, so that the API server
    /// adds each WebApp's finalizer at creation. `false` measures the operator adding it
    /// itself, as on older clusters. Never for the Go contender, whose finalizer is its own.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub finalizer_policy: bool,
    /// Extra argument of the Go contender (repeatable), e.g. `--contender-arg=--concurrency=16`.
    #[arg(long, allow_hyphen_values = true)]
    pub contender_arg: Vec<String>,
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn execute(self) -> Result<()> {
        match self.command {
            Command::Run(args) => run(args).await,
            Command::Growth { results, svg } => {
                let jsonl = std::fs::read_to_string(&results).map_err(io(format!("read {}", results.display())))?;
                let sizes = growth::read(&jsonl)?;
                std::fs::write(&svg, growth::svg(&sizes)).map_err(io(format!("write {}", svg.display())))?;
                print!("{}", growth::table(&sizes));
                Ok(())
            }
            Command::LinkOrder { binary, profiles } => {
                let (list, summary) = link_order::list(&binary, &profiles)?;
                print!("{list}");
                eprintln!("{summary}");
                Ok(())
            }
        }
    }
}

async fn run(args: RunArgs) -> Result<()> {
    let config = kube::Config::infer().await?;
    let control_plane = ControlPlane::serving(config.cluster_url.port_u16().unwrap_or(443));
    let client = Client::try_from(config).map_err(kube("connect to the cluster of $KUBECONFIG"))?;
    let limit = Duration::from_secs(args.timeout);
    let tag = format!("{}-{}", args.n, std::process::id());
    let floor_ns = Spread::new(&format!("bench-floor-{tag}"), args.namespaces);
    let load_start = cluster::load();
    let when = utc_now();

    eprintln!("floor: {} Deployments + Services in {}", args.n, describe(&floor_ns));
    let floor = measure::floor(&client, &floor_ns, args.n, limit, &control_plane).await;
    cluster::delete_namespaces(&client, &floor_ns, limit).await?;
    let (floor, floor_control_plane_cpu) = floor?;
    let floor_seconds = floor.as_secs_f64();

    let (operator, deleted) =
        contender(&client, &args, Kind::Ours, &format!("bench-operator-{tag}"), limit, &control_plane).await;
    let mut figures = Figures {
        n: args.n,
        nodes: args.nodes,
        namespaces: args.namespaces.max(1),
        load_start,
        load_end: cluster::load(),
        when,
        floor_seconds,
        floor_control_plane_cpu,
        operator: operator?,
        contender: None,
    };
    // Figures first: a cleanup that fails (a cluster gone meanwhile) must not lose them;
    // and the contender does not start on a cluster still deleting ours' namespace.
    if deleted.is_err() || args.contender.is_none() {
        record(&figures, &args)?;
        return deleted;
    }
    let (theirs, deleted) =
        contender(&client, &args, Kind::Contender, &format!("bench-contender-{tag}"), limit, &control_plane).await;
    figures.load_end = cluster::load();
    let theirs = theirs.map(|figures| Contender { args: args.contender_arg.clone(), figures });
    // Ours are recorded even when the contender failed, and the failure reported after.
    figures.contender = theirs.as_ref().ok().cloned();
    record(&figures, &args)?;
    theirs.and(deleted)
}

/// Measures one operator contender on a fresh `namespace`, then deletes the namespace
/// so that the next one starts on an empty cluster. Returns both outcomes: figures of
/// a run whose cleanup failed are still worth printing.
async fn contender(
    client: &Client,
    args: &RunArgs,
    kind: Kind,
    namespace: &str,
    limit: Duration,
    control_plane: &ControlPlane,
) -> (Result<OperatorFigures>, Result<()>) {
    let (binary, extra, name) = match (kind, &args.contender) {
        (Kind::Contender, Some(binary)) => (binary.clone(), args.contender_arg.clone(), "Go contender"),
        _ => (args.operator.clone(), args.operator_arg.clone(), "operator"),
    };
    let spread = Spread::new(namespace, args.namespaces);
    eprintln!("{name}: {} WebApps in {}", args.n, describe(&spread));
    let launch = Launch {
        kind,
        binary,
        spread: spread.clone(),
        metrics: args.metrics_addr,
        log: crate::operator::log_path(&args.log_dir, namespace),
        args: extra,
    };
    let finalizer_policy = args.finalizer_policy && kind == Kind::Ours;
    let setup =
        Setup { client, launch: &launch, n: args.n, samples: args.samples, limit, finalizer_policy, control_plane };
    let figures = measure::operator(&setup).await;
    if finalizer_policy && let Err(error) = cluster::remove_finalizer_policy(client, &spread).await {
        eprintln!("{error}");
    }
    (figures, cluster::delete_namespaces(client, &spread, limit).await)
}

/// The namespaces of `spread`, for the progress lines.
fn describe(spread: &Spread) -> String {
    match spread.scope() {
        Some(namespace) => namespace.to_owned(),
        None => format!(
            "{} namespaces ({} to {})",
            spread.count(),
            spread.namespace_of(0),
            spread.namespace_of(spread.count() - 1)
        ),
    }
}

/// Prints the figures and appends them to the results file, if any.
fn record(figures: &Figures, args: &RunArgs) -> Result<()> {
    print!("{}", figures.render());
    if let Some(path) = &args.results {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(io(format!("open {}", path.display())))?;
        writeln!(file, "{}", serde_json::to_string(figures)?).map_err(io(format!("write {}", path.display())))?;
    }
    Ok(())
}

/// The time now, as `date -u` would print it, without a time crate for one line.
fn utc_now() -> String {
    std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%dT%H:%M:%SZ"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}
