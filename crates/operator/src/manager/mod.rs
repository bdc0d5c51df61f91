//! The manager: one process, one client, every chosen controller; leader election,
//! the metrics/health server, and graceful shutdown on SIGTERM or Ctrl-C.

mod client;
mod http;
pub mod leader;
mod process;

use std::net::SocketAddr;
use std::sync::Arc;

use futures::future::{FutureExt, Shared};
use prometheus_client::registry::Registry;
use reconcile_kit::events::{self, Events};
use reconcile_kit::metrics::Metrics;
use tokio::sync::watch;

use crate::controllers::{ControllerKind, Setup, podmanager};
use crate::webhook::{self, WebhookConfig, WebhookError};

pub use client::ClientMetrics;

/// How long a stopping manager gives the Events its reconciles told to be sent, once the
/// controllers have stopped.
const EVENTS_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Settings of a manager.
#[derive(Clone, Debug)]
pub struct Config {
    /// Namespace to watch; all when `None`.
    pub namespace: Option<String>,
    /// Controllers to run.
    pub controllers: Vec<ControllerKind>,
    /// Parallel reconciles per controller.
    pub concurrency: u16,
    /// Address of the metrics and health server.
    pub metrics_addr: SocketAddr,
    /// Whether to take the leader Lease first.
    pub leader_elect: bool,
    /// Namespace of the Lease.
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease ([`leader::LEASE`] unless an installation names its own).
    pub leader_election_id: String,
    /// Identity of this instance.
    pub instance: Option<String>,
    /// PodManager's conversion webhook server; `None` runs none.
    pub webhook: Option<WebhookConfig>,
    /// How long a deletion waits for children to go before releasing the finalizer.
    pub cleanup_budget: std::time::Duration,
}

/// The oldest Kubernetes (`major`, `minor`) supported: the oldest whose API the client is
/// built against (k8s-openapi's feature, kube-rs' advice: the lowest version supported) and
/// that the test suite has run on (`make test-oldest`). CEL's quantity library is GA in
/// 1.29, but 1.33's API server refuses the WebApp CRD: it cannot cost `isQuantity(x)`
/// called as a function (fixed in 1.34), so the `resources` rules exceed the budget.
pub const MINIMUM_KUBERNETES: (u32, u32) = (1, 34);

/// Whether an API server of version `major`.`minor` (as `/version` gives them: `"1"`,
/// `"29+"` on some distributions) is recent enough; `None` when they do not parse.
pub fn supported(major: &str, minor: &str) -> Option<bool> {
    let number = |text: &str| text.trim_end_matches('+').parse::<u32>().ok();
    Some((number(major)?, number(minor)?) >= MINIMUM_KUBERNETES)
}

/// Why the manager stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ManagerError {
    /// No usable kubeconfig or in-cluster configuration.
    #[error("cannot configure the Kubernetes client")]
    Config(#[source] kube::config::InferConfigError),
    /// The client could not be built from the configuration.
    #[error("cannot build the Kubernetes client")]
    Client(#[source] kube::Error),
    /// The metrics server could not bind.
    #[error("cannot serve metrics on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// Leader election failed.
    #[error("leader election failed")]
    Leader(#[source] kube_lease_manager::LeaseManagerError),
    /// The cluster is older than the oldest Kubernetes the CRDs work on.
    #[error(
        "Kubernetes {found} is older than {}.{}, the oldest this operator supports (the oldest API it is \
         built against and tested on): upgrade the cluster",
        MINIMUM_KUBERNETES.0,
        MINIMUM_KUBERNETES.1
    )]
    Unsupported {
        /// The API server's version, `major.minor`.
        found: String,
    },
    /// Another replica took the Lease over; this one stopped reconciling.
    #[error("lost the leader Lease")]
    LostLeadership,
    /// The conversion webhook could not start.
    #[error(transparent)]
    Webhook(#[from] WebhookError),
}

/// A future that resolves once shutdown was asked for; cheap to clone.
pub type Shutdown = Shared<futures::future::BoxFuture<'static, ()>>;

/// Resolves on SIGTERM or Ctrl-C.
pub fn shutdown_signal() -> Shutdown {
    async {
        #[cfg(unix)]
        {
            let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(term) => term,
                Err(error) => {
                    tracing::warn!(%error, "cannot listen for SIGTERM; Ctrl-C only");
                    let _ = tokio::signal::ctrl_c().await;
                    return;
                }
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = tokio::signal::ctrl_c() => {}
            }
        }
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
        tracing::info!("shutdown requested; finishing in-flight reconciles");
    }
    .boxed()
    .shared()
}

/// Runs the manager until a shutdown signal.
pub async fn run(config: Config) -> Result<(), ManagerError> {
    let kube_config = kube::Config::infer().await.map_err(ManagerError::Config)?;
    run_with(config, kube_config, shutdown_signal()).await
}

/// Runs the manager against `kube_config` until `shutdown` resolves. Tests use this
/// to run the operator in-process against the local control plane.
pub async fn run_with(config: Config, kube_config: kube::Config, shutdown: Shutdown) -> Result<(), ManagerError> {
    let mut registry = Registry::default();
    let client_metrics = ClientMetrics::register(&mut registry);
    let client = client::build(kube_config, &client_metrics).map_err(ManagerError::Client)?;
    // Too old a cluster fails here with a sentence, not later with a CEL error. An API
    // server that does not answer yet is left to the watches, which retry.
    match client.apiserver_version().await {
        Ok(version) if supported(&version.major, &version.minor) == Some(false) => {
            return Err(ManagerError::Unsupported { found: format!("{}.{}", version.major, version.minor) });
        }
        Ok(_) => {}
        Err(error) => tracing::warn!(error = %crate::cli::error_chain(&error), "cannot read the API server's version"),
    }
    let metrics = Metrics::register(&mut registry);
    let podmanager_metrics = podmanager::PodManagerMetrics::register(&mut registry);
    let owner_metric = webhook::owner::OwnerMetric::register(&mut registry);
    let leading = leader::register(&mut registry);
    let webhook_metrics = webhook::server::WebhookMetrics::register(&mut registry);
    process::register(&mut registry);

    let (ready_tx, ready_rx) = watch::channel(false);
    let server = http::serve(config.metrics_addr, Arc::new(registry), ready_rx, shutdown.clone()).await?;
    // Every replica serves conversions (the API server may call any of them), leader or not.
    let webhook_tasks = match &config.webhook {
        Some(webhook) => start_webhook(&client, webhook, (owner_metric, webhook_metrics), shutdown.clone()).await?,
        None => Vec::new(),
    };

    // Ready means able to serve, like controller-runtime's readyz: a standby replica
    // waiting for the Lease is ready too, or a Deployment of two could never roll out.
    let _ = ready_tx.send(true);
    let leadership = if config.leader_elect {
        let namespace = config.leader_election_namespace.clone().unwrap_or_else(|| "default".into());
        match leader::acquire(
            client.clone(),
            (&namespace, &config.leader_election_id),
            config.instance.clone(),
            shutdown.clone(),
            leading,
        )
        .await?
        {
            Some(leadership) => Some(leadership),
            None => return Ok(()),
        }
    } else {
        None
    };
    // Controllers stop gracefully on a shutdown request: in-flight reconciles finish.
    // When another replica took the Lease they stop at once: an in-flight reconcile is
    // cancelled where it waits, because from now on the new leader may be writing the
    // same objects, and a reconcile that goes on (for up to its 120 s budget) would
    // write from a plan the new leader is no longer following.
    let cancel: Shutdown = match &leadership {
        Some(leadership) => leadership.lost.clone(),
        None => futures::future::pending().boxed().shared(),
    };
    let (events, sender) = Events::new(client.clone(), config.instance.clone(), metrics.events_pending.clone());
    let setup = Setup {
        client: client.clone(),
        namespace: config.namespace.clone(),
        events,
        concurrency: config.concurrency,
        metrics,
        podmanager_metrics,
        cleanup_budget: config.cleanup_budget,
    };
    // The controllers run as futures of this one, not as spawned tasks, so that
    // dropping the manager (an aborted task, a test) stops every reconcile with it.
    let controllers = config.controllers.iter().map(|kind| setup.run(*kind, shutdown.clone(), cancel.clone()));
    let controllers: Vec<_> = controllers.collect();
    // The sender ends once the last copy of `events` is gone (the controllers hold the
    // others) and what they told is sent.
    drop(setup);
    // As kubectl would print them: `controllers=webapp,podmanager namespace=demo`.
    let names: Vec<String> = config.controllers.iter().map(ToString::to_string).collect();
    match &config.namespace {
        Some(namespace) => tracing::info!(controllers = %names.join(","), %namespace, "controllers started"),
        None => tracing::info!(controllers = %names.join(","), "controllers started in all namespaces"),
    }
    let controllers = futures::future::join_all(controllers);
    events::run_beside(controllers, sender, EVENTS_DRAIN).await;
    // `release` needs every other clone of `lost`.
    drop(cancel);
    if let Some(leadership) = leadership {
        if leadership.was_lost() {
            return Err(ManagerError::LostLeadership);
        }
        leadership.release().await;
    }
    let _ = server.await;
    for task in webhook_tasks {
        let _ = task.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Serves the conversion webhook, registers it (CA bundle, address) in the PodManager CRD
/// if this release may own it, and keeps both the registration and the certificate
/// fresh until `shutdown`.
async fn start_webhook(
    client: &kube::Client,
    config: &WebhookConfig,
    (owner_metric, metrics): (webhook::owner::OwnerMetric, webhook::server::WebhookMetrics),
    shutdown: Shutdown,
) -> Result<Vec<tokio::task::JoinHandle<()>>, ManagerError> {
    use webhook::rotation::{Rotation, Source};
    let (tls, source) = match (&config.cert_dir, &config.cert_secret) {
        (Some(dir), _) => (webhook::certs::from_dir(dir).map_err(WebhookError::from)?, Source::Dir(dir.clone())),
        (None, Some(secret)) => (
            webhook::secret::shared(client, secret, &config.hosts, config.cert_life).await?,
            Source::Secret(secret.clone()),
        ),
        (None, None) => {
            (webhook::certs::self_signed(&config.hosts, config.cert_life).map_err(WebhookError::from)?, Source::Memory)
        }
    };
    let tls_config = webhook::server::tls_config(&tls)?;
    let (_, server) = webhook::server::serve_with(config.addr, tls_config.clone(), metrics, shutdown.clone())?;
    let registrar = Arc::new(webhook::owner::Registrar::new(
        client.clone(),
        tls.ca_pem.clone(),
        config.target.clone(),
        owner_metric,
    ));
    registrar.sync(true).await?;
    let keeper = tokio::spawn(registrar.clone().keep(shutdown.clone()));
    let rotation = Rotation {
        client: client.clone(),
        source,
        hosts: config.hosts.clone(),
        life: config.cert_life,
        current: tls,
        server: tls_config,
        registrar,
    };
    let rotator = tokio::spawn(rotation.run(shutdown));
    Ok(vec![server, keeper, rotator])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clusters_from_1_34_are_supported() {
        assert_eq!(supported("1", "34"), Some(true));
        assert_eq!(supported("1", "36"), Some(true));
        assert_eq!(supported("1", "35+"), Some(true), "a distribution's suffix");
        assert_eq!(supported("1", "33"), Some(false), "refuses the WebApp CRD's CEL rules");
        assert_eq!(supported("1", "29"), Some(false), "CEL's quantity library alone is not enough");
        assert_eq!(supported("1", "20"), Some(false), "the seeds' 1.20");
        assert_eq!(supported("1", ""), None);
        let message = ManagerError::Unsupported { found: "1.20".into() }.to_string();
        assert!(message.contains("1.20 is older than 1.34"), "{message}");
    }
}
