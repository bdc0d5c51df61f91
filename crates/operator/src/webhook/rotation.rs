//! Keeps the served certificate fresh without a restart.
//!
//! - A mounted certificate (cert-manager) is read again from disk every [`period`]; when
//!   its issuer renewed it, the server serves the new one.
//! - A generated certificate has a finite life ([`certs::DEFAULT_LIFE`] unless set) and is
//!   replaced when a third of it is left: in memory for a single process, in the shared
//!   Secret for replicas (the first replica to find it due replaces it, under the
//!   resourceVersion it read; the others read the new one on their next look).
//!
//! A new CA goes into the CRD's bundle before the server presents a certificate it
//! signed, and the previous CA stays in the bundle ([`certs::merge_bundle`]), so
//! replicas still serving the old certificate keep converting during the rotation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum_server::tls_rustls::RustlsConfig;
use kube::Client;

use super::certs::{self, Tls};
use super::owner::Registrar;
use super::{NamespacedName, WebhookError, secret};

/// Where the served certificate comes from.
#[derive(Clone, Debug)]
pub enum Source {
    /// A mounted directory, renewed by its issuer.
    Dir(PathBuf),
    /// Generated, shared by the replicas through this Secret.
    Secret(NamespacedName),
    /// Generated, in this process's memory only.
    Memory,
}

/// As a log reads it: `dir /etc/tls`, `secret ns/name`, `memory`.
impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Dir(dir) => write!(f, "dir {}", dir.display()),
            Source::Secret(secret) => write!(f, "secret {secret}"),
            Source::Memory => f.write_str("memory"),
        }
    }
}

/// How often the source is looked at: every minute, or ten times per life of a
/// generated certificate when that is shorter (a short-lived one in a test).
pub fn period(life: Duration) -> Duration {
    (life / 10).clamp(Duration::from_secs(1), Duration::from_secs(60))
}

/// How long the API server may take to pick a new CA bundle up from the CRD (its
/// informer sees the write a moment later) before the server presents a certificate
/// that only the new CA verifies.
const BUNDLE_PROPAGATION: Duration = Duration::from_secs(2);

/// The served certificate, its source, and what must follow it when it changes.
pub struct Rotation {
    /// The client, for the shared Secret.
    pub client: Client,
    /// Where the certificate comes from.
    pub source: Source,
    /// Host names of a generated certificate.
    pub hosts: Vec<String>,
    /// Life of a generated certificate.
    pub life: Duration,
    /// The certificate served now.
    pub current: Tls,
    /// The server's TLS configuration, reloaded in place.
    pub server: RustlsConfig,
    /// Writes the new CA into the CRD.
    pub registrar: Arc<Registrar>,
}

impl Rotation {
    /// Looks at the source every [`period`] until `stop` resolves.
    pub async fn run(mut self, stop: impl std::future::Future<Output = ()>) {
        let mut stop = std::pin::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(period(self.life)) => {}
            }
            if let Err(error) = self.look().await {
                tracing::warn!(%error, "could not renew or reload the webhook certificate; serving the current one");
            }
        }
    }

    /// One look: a renewed certificate is served from now on.
    async fn look(&mut self) -> Result<(), WebhookError> {
        let Some(next) = self.next().await? else { return Ok(()) };
        let config = certs::server_config(&next)?;
        if next.ca_pem != self.current.ca_pem {
            self.registrar.publish(&next.ca_pem).await?;
            tokio::time::sleep(BUNDLE_PROPAGATION).await;
        }
        self.server.reload_from_config(Arc::new(config));
        tracing::info!(source = %self.source, "serving a renewed webhook certificate");
        self.current = next;
        Ok(())
    }

    /// The certificate to serve instead of the current one, if any.
    async fn next(&self) -> Result<Option<Tls>, WebhookError> {
        let now = SystemTime::now();
        match &self.source {
            Source::Dir(dir) => {
                let read = certs::from_dir(dir)?;
                let changed = read.cert_pem != self.current.cert_pem || read.key_pem != self.current.key_pem;
                Ok(changed.then_some(read))
            }
            Source::Memory if self.current.due(self.life, now) => Ok(Some(certs::self_signed(&self.hosts, self.life)?)),
            Source::Memory => Ok(None),
            Source::Secret(name) => {
                let found = secret::get(&self.client, name).await?;
                let stored = secret::read(name, &found)?;
                if stored.cert_pem != self.current.cert_pem {
                    // Another replica renewed it.
                    return Ok(Some(stored));
                }
                if !stored.due(self.life, now) {
                    return Ok(None);
                }
                let renewed = certs::self_signed(&self.hosts, self.life)?;
                match secret::replace(&self.client, name, &found, &renewed).await {
                    Ok(()) => {
                        tracing::info!(secret = %name, "renewed the webhook certificate");
                        Ok(Some(renewed))
                    }
                    // Another replica renewed it first: read on the next look.
                    Err(kube::Error::Api(status)) if status.code == 409 => Ok(None),
                    Err(error) => {
                        Err(WebhookError::Secret { secret: name.to_string(), message: crate::cli::error_chain(&error) })
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_looked_at_ten_times_per_life_at_most_once_a_minute() {
        assert_eq!(period(certs::DEFAULT_LIFE), Duration::from_secs(60));
        assert_eq!(period(Duration::from_secs(60)), Duration::from_secs(6));
        assert_eq!(period(Duration::from_secs(3)), Duration::from_secs(1));
    }
}
