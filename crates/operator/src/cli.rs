//! The command line: `webapp-operator run` and `webapp-operator crd`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::controllers::ControllerKind;
use crate::manager::{self, Config};
use crate::telemetry::{self, LogFormat};
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
    Run(RunArgs),
    /// Print the CustomResourceDefinitions as YAML (all, or one kind).
    Crd {
        /// Kind, plural or short name (e.g. WebApp, webapps, wa). All when omitted.
        kind: Option<String>,
        /// Write one file per CRD into this directory instead of printing.
        #[arg(long, conflicts_with = "kind")]
        out_dir: Option<PathBuf>,
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
    /// Objects reconciled in parallel per controller.
    #[arg(long, default_value_t = 4, env = "CONCURRENCY")]
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
    /// Name of this instance in the Lease and on Events (default: the host name).
    #[arg(long, env = "POD_NAME")]
    pub instance: Option<String>,
    /// Log format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text, env = "LOG_FORMAT")]
    pub log_format: LogFormat,
}

impl From<RunArgs> for Config {
    fn from(args: RunArgs) -> Self {
        let controllers = if args.controllers.is_empty() { ControllerKind::ALL.to_vec() } else { args.controllers };
        Config {
            namespace: args.namespace,
            controllers,
            concurrency: args.concurrency,
            metrics_addr: args.metrics_addr,
            leader_elect: args.leader_elect,
            leader_election_namespace: args.leader_election_namespace,
            instance: args.instance,
        }
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
            Command::Crd { out_dir: Some(dir), .. } => crdgen::write_dir(&dir)?,
            Command::Crd { kind, out_dir: None } => {
                print!("{}", crdgen::render_all(&crdgen::select(kind.as_deref())?)?);
            }
            Command::Run(args) => {
                let _telemetry = telemetry::init(args.log_format);
                manager::run(Config::from(args)).await?;
            }
        }
        Ok(())
    }
}

/// An error and its causes on one line.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    reconcile_kit::events::error_chain(error)
}
