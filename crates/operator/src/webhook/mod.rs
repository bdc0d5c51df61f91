//! PodManager's CRD conversion webhook, served by the operator over HTTPS (rustls).
//!
//! - [`review`]: a `ConversionReview` in, one out; pure, on top of
//!   `webapp_api::podmanager::conversion`.
//! - [`certs`]: the serving certificate, mounted (`--webhook-cert-dir`, e.g. from
//!   cert-manager) or generated at start with a self-signed CA.
//! - [`secret`]: a generated certificate shared by every replica through a Secret
//!   (`--webhook-cert-secret`), the default of the chart and of `config/default`.
//! - [`crd`]: writes the CA bundle (and the Service or URL) into the CRD so the API
//!   server trusts and finds this server.
//! - [`owner`]: one release owns the CRD's webhook and keeps it in place.
//! - [`rotation`]: renews a generated certificate before it expires and reloads a
//!   mounted one, without a restart.
//! - [`server`]: the HTTPS server with `POST /convert`.

pub mod certs;
pub mod crd;
pub mod owner;
pub mod review;
pub mod rotation;
pub mod secret;
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
    /// Without `cert_dir`: the Secret that shares the generated certificate between
    /// replicas (created by the first one to start). Unset: each process generates its
    /// own, which only works for a single replica.
    pub cert_secret: Option<NamespacedName>,
    /// Where the API server should call, written into the CRD.
    pub target: crd::Target,
    /// Host names and IPs of the generated certificate.
    pub hosts: Vec<String>,
    /// Life of a generated certificate (renewed when a third is left).
    pub cert_life: std::time::Duration,
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
    /// The Secret of the shared certificate could not be read or created, or holds no
    /// certificate.
    #[error("webhook certificate Secret {secret}: {message}")]
    Secret {
        /// `namespace/name`.
        secret: String,
        /// What went wrong.
        message: String,
    },
}

/// A namespaced object's `namespace/name`, as the webhook flags take it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NamespacedName {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
}

impl std::str::FromStr for NamespacedName {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.split_once('/') {
            Some((namespace, name)) if !namespace.is_empty() && !name.is_empty() && !name.contains('/') => {
                Ok(NamespacedName { namespace: namespace.into(), name: name.into() })
            }
            _ => Err(format!("expected NAMESPACE/NAME, got {s:?}")),
        }
    }
}

impl std::fmt::Display for NamespacedName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The host names a generated certificate covers by default: local runs and the
/// in-cluster Service of `config/`.
pub fn default_hosts() -> Vec<String> {
    let (namespace, name) = webapp_api::podmanager::WEBHOOK_SERVICE;
    service_hosts(&NamespacedName { namespace: namespace.into(), name: name.into() })
}

/// The host names a generated certificate covers for `service`: its in-cluster DNS
/// names, and localhost for local runs.
pub fn service_hosts(service: &NamespacedName) -> Vec<String> {
    let NamespacedName { namespace, name } = service;
    vec![
        "localhost".into(),
        "127.0.0.1".into(),
        format!("{name}.{namespace}.svc"),
        format!("{name}.{namespace}.svc.cluster.local"),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_namespaced_name_parses_and_prints_as_namespace_slash_name() {
        let parsed: NamespacedName = "ops/release-webhook".parse().unwrap();
        assert_eq!(parsed, NamespacedName { namespace: "ops".into(), name: "release-webhook".into() });
        assert_eq!(parsed.to_string(), "ops/release-webhook");
        for bad in ["no-slash", "/name", "ns/", "a/b/c"] {
            assert!(bad.parse::<NamespacedName>().is_err(), "{bad}");
        }
        assert!(service_hosts(&parsed).contains(&"release-webhook.ops.svc".to_owned()));
    }
}
