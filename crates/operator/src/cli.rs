//! The command line: `webapp-operator run` and `webapp-operator crd`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use webapp_api::WebhookEndpoint;

use crate::controllers::ControllerKind;
use crate::manager::{self, Config};
use crate::telemetry::{self, LogFormat};
use crate::webhook::crd::Target;
use crate::webhook::{self, NamespacedName, WebhookConfig};
use crate::{crdgen, manager::ManagerError};

/// Kubernetes operators for WebApp, PodManager, WebServer, Memcached and Database.
#[derive(Debug, Parser)]
#[command(name = "webapp-operator", version, about)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the controllers against the cluster of the current kubeconfig (or in-cluster).
    // Boxed: the flags outweigh `crd`'s by far (clippy::large_enum_variant).
    Run(Box<RunArgs>),
    /// Print the CustomResourceDefinitions as YAML (all, or one kind).
    Crd {
        /// Kind, plural or short name (e.g. WebApp, webapps, wa). All when omitted.
        kind: Option<String>,
        /// Write one file per CRD into this directory instead of printing.
        #[arg(long, conflicts_with = "kind")]
        out_dir: Option<PathBuf>,
        /// Print the finalizer policy (config/admission/finalizer-policy.yaml) instead.
        #[arg(long, conflicts_with_all = ["kind", "out_dir"])]
        finalizer_policy: bool,
        /// PodManager's conversion webhook URL, for an operator outside the cluster
        /// (e.g. https://127.0.0.1:9443/convert). Default: the in-cluster Service.
        #[arg(long)]
        webhook_url: Option<String>,
    },
}

/// Flags of `run`.
#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (namespace-scoped mode). All namespaces when unset.
    #[arg(long, env = "WATCH_NAMESPACE")]
    pub namespace: Option<String>,
    /// Controllers to run (comma-separated). All when unset.
    #[arg(long, value_delimiter = ',', env = "CONTROLLERS")]
    pub controllers: Vec<ControllerKind>,
    /// Objects reconciled in parallel per controller. A reconcile mostly waits on API
    /// round trips, so more in flight shortens convergence (never the same object twice
    /// at once); 16 is what the API server took without slowing down in the benchmarks.
    #[arg(long, default_value_t = 16, env = "CONCURRENCY")]
    pub concurrency: u16,
    /// Address of the /metrics, /healthz and /readyz server.
    #[arg(long, default_value = "127.0.0.1:8080", env = "METRICS_ADDR")]
    pub metrics_addr: SocketAddr,
    /// Take a Lease before reconciling, so that only one replica acts at a time.
    #[arg(long, env = "LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the leader-election Lease (default: the pod's or `default`).
    #[arg(long, env = "LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the leader-election Lease. Two installations in one namespace need two
    /// names, or only one of them ever reconciles (the chart passes the release's).
    #[arg(long, default_value = manager::leader::LEASE, value_parser = lease_name, env = "LEADER_ELECTION_ID")]
    pub leader_election_id: String,
    /// Name of this instance in the Lease and on Events (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Seconds a deletion waits for an object's children to go, counted from its first
    /// cleanup attempt, before it reports CleanupTimeout and releases the finalizer.
    #[arg(long, default_value_t = 120, env = "CLEANUP_BUDGET_SECONDS")]
    pub cleanup_budget_seconds: u64,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    pub log_format: LogFormat,
    /// Log level: error, warn, info, debug or trace (`debug` shows each field a change
    /// alters). `--zap-log-level` (controller-runtime's name) is taken too. `RUST_LOG`,
    /// when set, wins: it can set levels per module.
    #[arg(long, alias = "zap-log-level", value_enum, env = "LOG_LEVEL")]
    pub log_level: Option<telemetry::Level>,
    /// klog's verbosity, as Kubernetes tools take it (`-v=4`): 0 to 3 is info, 4 and 5
    /// debug, 6 and more trace. `--log-level` wins.
    #[arg(short = 'v', value_name = "N")]
    pub verbosity: Option<u8>,
    /// Address of PodManager's conversion webhook (HTTPS).
    #[arg(long, default_value = "127.0.0.1:9443", env = "WEBHOOK_ADDR")]
    pub webhook_addr: SocketAddr,
    /// Directory with the webhook's tls.crt, tls.key and ca.crt (e.g. a cert-manager
    /// Secret). Unset: a self-signed CA and certificate are generated at start.
    #[arg(long, env = "WEBHOOK_CERT_DIR")]
    pub webhook_cert_dir: Option<PathBuf>,
    /// Secret (NAMESPACE/NAME) sharing the generated certificate between replicas: the
    /// first replica creates it, the others serve it. Ignored with --webhook-cert-dir.
    #[arg(long, env = "WEBHOOK_CERT_SECRET")]
    pub webhook_cert_secret: Option<NamespacedName>,
    /// URL the API server calls for conversions, written into the CRD; for an operator
    /// outside the cluster (`make run`: https://127.0.0.1:9443/convert). Unset: in a
    /// cluster the CRD keeps its Service reference and only the CA bundle is written;
    /// outside one (a plain `webapp-operator run` next to a local control plane), the
    /// local address of --webhook-addr.
    #[arg(long, env = "WEBHOOK_URL", conflicts_with = "webhook_service")]
    pub webhook_url: Option<String>,
    /// The in-cluster Service (NAMESPACE/NAME, port 443) in front of the webhook, written
    /// into the CRD: the chart's release Service, wherever it is installed.
    #[arg(long, env = "WEBHOOK_SERVICE")]
    pub webhook_service: Option<NamespacedName>,
    /// Host names of the generated certificate (repeat or comma-separate). Default:
    /// localhost, 127.0.0.1 and the in-cluster Service's names.
    #[arg(long, value_delimiter = ',', env = "WEBHOOK_HOSTS")]
    pub webhook_host: Vec<String>,
    /// Days a generated webhook certificate lives; it is renewed, without a restart,
    /// when a third of its life is left.
    #[arg(long, default_value_t = 365, value_parser = clap::value_parser!(u64).range(1..=3650), env = "WEBHOOK_CERT_DAYS")]
    pub webhook_cert_days: u64,
    /// Run PodManager's controller without serving conversions (v2 is then unreadable).
    #[arg(long, env = "NO_WEBHOOK")]
    pub no_webhook: bool,
}

/// Where the API server should call the webhook when no flag says: in a cluster, the
/// Service the CRD already names; outside one, this process at `addr` on loopback (the
/// API server of a local control plane runs on the same machine), so that a learner's
/// plain `webapp-operator run` serves v2 without knowing about the webhook.
pub fn default_target(addr: SocketAddr, in_cluster: bool) -> Target {
    if in_cluster {
        return Target::Keep;
    }
    let ip = if addr.ip().is_unspecified() { std::net::Ipv4Addr::LOCALHOST.into() } else { addr.ip() };
    let local = SocketAddr::new(ip, addr.port());
    Target::Url(format!("https://{local}{}", webapp_api::podmanager::CONVERT_PATH))
}

impl From<RunArgs> for Config {
    fn from(args: RunArgs) -> Self {
        let controllers = if args.controllers.is_empty() { ControllerKind::ALL.to_vec() } else { args.controllers };
        // The webhook converts PodManagers: it runs with their controller.
        let webhook = (controllers.contains(&ControllerKind::Podmanager) && !args.no_webhook).then(|| {
            let hosts = match (&args.webhook_service, args.webhook_host.is_empty()) {
                (_, false) => args.webhook_host,
                (Some(service), true) => webhook::service_hosts(service),
                (None, true) => webhook::default_hosts(),
            };
            let target = match (args.webhook_url, args.webhook_service) {
                (Some(url), _) => Target::Url(url),
                (None, Some(service)) => Target::Service(service),
                (None, None) => {
                    default_target(args.webhook_addr, std::env::var_os("KUBERNETES_SERVICE_HOST").is_some())
                }
            };
            WebhookConfig {
                addr: args.webhook_addr,
                cert_dir: args.webhook_cert_dir,
                cert_secret: args.webhook_cert_secret,
                target,
                hosts,
                cert_life: std::time::Duration::from_secs(args.webhook_cert_days * 24 * 3600),
            }
        });
        Config {
            namespace: args.namespace,
            controllers,
            concurrency: args.concurrency,
            metrics_addr: args.metrics_addr,
            leader_elect: args.leader_elect,
            leader_election_namespace: args.leader_election_namespace,
            leader_election_id: args.leader_election_id,
            instance: args.instance,
            webhook,
            cleanup_budget: std::time::Duration::from_secs(args.cleanup_budget_seconds),
        }
    }
}

/// A Lease name as the API server takes it (a DNS subdomain), refused at start rather
/// than by the first create of the Lease.
fn lease_name(name: &str) -> Result<String, String> {
    let label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.len() <= 253 && name.split('.').all(label) {
        Ok(name.to_owned())
    } else {
        Err(format!("{name:?} is not a valid Lease name (lowercase DNS subdomain)"))
    }
}

/// What can go wrong at the top level.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Rendering or writing CRDs.
    #[error(transparent)]
    Crd(#[from] crdgen::CrdError),
    /// Running the manager.
    #[error(transparent)]
    Manager(#[from] ManagerError),
}

impl Cli {
    /// Runs the chosen subcommand.
    pub async fn execute(self) -> Result<(), CliError> {
        match self.command {
            Command::Crd { finalizer_policy: true, .. } => {
                print!("{}", crate::admission::render().map_err(crdgen::CrdError::Policy)?)
            }
            Command::Crd { out_dir: Some(dir), .. } => crdgen::write_dir(&dir)?,
            Command::Crd { kind, out_dir: None, webhook_url, .. } => {
                let endpoint = webhook_url.map_or(WebhookEndpoint::Service, WebhookEndpoint::Url);
                print!("{}", crdgen::render_all(&crdgen::select(kind.as_deref(), &endpoint)?)?);
            }
            Command::Run(args) => {
                let level = args.log_level.or(args.verbosity.map(telemetry::Level::from_verbosity));
                let _telemetry = telemetry::init(args.log_format, level);
                manager::run(Config::from(*args)).await?;
            }
        }
        Ok(())
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    reconcile_kit::events::error_chain(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_flags_learners_type_are_taken() {
        let run = |args: &[&str]| match Cli::try_parse_from([&["webapp-operator", "run"], args].concat()) {
            Ok(Cli { command: Command::Run(run), .. }) => run,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(run(&["--zap-log-level=debug"]).log_level, Some(telemetry::Level::Debug));
        assert_eq!(run(&["--log-level", "warn"]).log_level, Some(telemetry::Level::Warn));
        assert_eq!(run(&["-v=4"]).verbosity, Some(4));
        assert_eq!(telemetry::Level::from_verbosity(4), telemetry::Level::Debug);
        assert_eq!(telemetry::Level::from_verbosity(2), telemetry::Level::Info);
        assert!(Cli::try_parse_from(["webapp-operator", "run", "--zap-log-level=loud"]).is_err());
    }

    #[test]
    fn the_lease_is_named_by_the_flag_and_a_bad_name_is_refused_at_start() {
        let run = |args: &[&str]| Cli::try_parse_from([&["webapp-operator", "run"], args].concat());
        let lease = |args: &[&str]| match run(args) {
            Ok(Cli { command: Command::Run(run), .. }) => Config::from(*run).leader_election_id,
            other => panic!("{args:?}: {other:?}"),
        };
        assert_eq!(lease(&[]), "webapp-operator-leader", "the name of earlier releases stays the default");
        assert_eq!(lease(&["--leader-election-id=team-a-webapp-operator"]), "team-a-webapp-operator");
        assert_eq!(lease(&["--leader-election-id", "a.b-c"]), "a.b-c");
        for bad in ["Team-A", "-a", "a-", "a..b", "", "a_b"] {
            assert!(run(&["--leader-election-id", bad]).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn outside_a_cluster_the_webhook_is_registered_at_its_local_address() {
        let addr: SocketAddr = "127.0.0.1:9443".parse().unwrap();
        assert_eq!(default_target(addr, false), Target::Url("https://127.0.0.1:9443/convert".into()));
        let any: SocketAddr = "0.0.0.0:9443".parse().unwrap();
        assert_eq!(default_target(any, false), Target::Url("https://127.0.0.1:9443/convert".into()));
        assert_eq!(default_target(any, true), Target::Keep, "in a cluster: the CRD's Service");
    }
}
