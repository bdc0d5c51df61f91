//! PodManager's CRD conversion webhook, served by the operator over HTTPS (rustls).
//!
//! - [`review`]: a `ConversionReview` in, one out; pure, on top of
//!   `webapp_api::podmanager::conversion`.
//! - [`certs`]: the serving certificate, mounted (`--webhook-cert-dir`, e.g. from
//!   cert-manager) or generated at start with a self-signed CA.
//! - [`crd`]: writes the CA bundle (and, out of cluster, the URL) into the CRD so the
//!   API server trusts and finds this server.
//! - [`server`]: the HTTPS server with `POST /convert`.

pub mod certs;
pub mod crd;
pub mod review;
pub mod server;

use std::net::SocketAddr;
use std::path::PathBuf;

/// Settings of the webhook server.
#[derive(Clone, Debug)]
pub struct WebhookConfig {
    /// Address to listen on.
    pub addr: SocketAddr,
    /// Directory with `tls.crt`, `tls.key` and optionally `ca.crt`; a self-signed
    /// certificate is generated when unset.
    pub cert_dir: Option<PathBuf>,
    /// URL the API server should call (an operator outside the cluster); when unset the
    /// CRD keeps its client config (the in-cluster Service of `config/`).
    pub url: Option<String>,
    /// Host names and IPs of the generated certificate.
    pub hosts: Vec<String>,
}

/// Why the webhook could not start.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// No usable certificate.
    #[error(transparent)]
    Certs(#[from] certs::CertError),
    /// The listening socket could not be bound.
    #[error("cannot serve the conversion webhook on {addr}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The CRD could not be updated with the CA bundle.
    #[error("cannot write the conversion webhook's client config into the PodManager CRD: {0}")]
    Crd(String),
}

/// The host names a generated certificate covers by default: local runs and the
/// in-cluster Service of `config/`.
pub fn default_hosts() -> Vec<String> {
    let (namespace, service) = webapp_api::podmanager::WEBHOOK_SERVICE;
    vec![
        "localhost".into(),
        "127.0.0.1".into(),
        format!("{service}.{namespace}.svc"),
        format!("{service}.{namespace}.svc.cluster.local"),
    ]
}
