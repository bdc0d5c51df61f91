//! A generated certificate shared by every replica through a Secret. The API server
//! trusts one CA (the CRD's `caBundle`) and the Service sends each review to any
//! replica, so all replicas must serve the same certificate: the first to start
//! generates it and creates the Secret, the others (and every restart) read it back.
//! No cert-manager needed; with cert-manager the certificate is mounted instead
//! ([`super::certs::from_dir`]). The certificate's expiry is noted on the Secret, and
//! the replica that first finds it due replaces it ([`super::rotation`]); the others
//! read the new one.

use std::collections::BTreeMap;
use std::time::{Duration, UNIX_EPOCH};

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ObjectMeta, PostParams};
use kube::{Api, Client};

use super::certs::{self, Tls};
use super::{NamespacedName, WebhookError};

/// Keys of the Secret: cert-manager's and `kubernetes.io/tls`'s names.
const CERT: &str = "tls.crt";
const KEY: &str = "tls.key";
const CA: &str = "ca.crt";
/// The annotation noting when a generated certificate expires (seconds since 1970).
const EXPIRES: &str = "webapp-operator.example.com/expires";

/// The certificate of `secret`, generated for `hosts` with `life` and stored there if the
/// Secret does not exist yet. When two replicas race to create it, the loser serves the
/// winner's.
pub async fn shared(
    client: &Client,
    secret: &NamespacedName,
    hosts: &[String],
    life: Duration,
) -> Result<Tls, WebhookError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
    let failed =
        |e: kube::Error| WebhookError::Secret { secret: secret.to_string(), message: crate::cli::error_chain(&e) };
    if let Some(found) = api.get_opt(&secret.name).await.map_err(failed)? {
        return read(secret, &found);
    }
    let tls = certs::self_signed(hosts, life)?;
    match api.create(&PostParams::default(), &to_secret(&secret.name, &tls)).await {
        Ok(_) => {
            tracing::info!(%secret, hosts = %hosts.join(","), "generated the webhook certificate and stored it");
            Ok(tls)
        }
        // Another replica was first: serve its certificate, not ours.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            read(secret, &api.get(&secret.name).await.map_err(failed)?)
        }
        Err(error) => Err(failed(error)),
    }
}

/// Replaces the certificate in `found` (the Secret as last read: its resourceVersion makes
/// the replacement fail with 409 if another replica rotated it first) with `tls`.
pub async fn replace(client: &Client, secret: &NamespacedName, found: &Secret, tls: &Tls) -> Result<(), kube::Error> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
    let mut renewed = to_secret(&secret.name, tls);
    renewed.metadata.resource_version = found.metadata.resource_version.clone();
    api.replace(&secret.name, &PostParams::default(), &renewed).await.map(|_| ())
}

/// The Secret `secret` as it is now.
pub async fn get(client: &Client, secret: &NamespacedName) -> Result<Secret, WebhookError> {
    let api: Api<Secret> = Api::namespaced(client.clone(), &secret.namespace);
    api.get(&secret.name)
        .await
        .map_err(|e| WebhookError::Secret { secret: secret.to_string(), message: crate::cli::error_chain(&e) })
}

/// The Secret holding `tls` (a `kubernetes.io/tls` Secret with the CA beside it).
pub fn to_secret(name: &str, tls: &Tls) -> Secret {
    let entries = [(CERT, &tls.cert_pem), (KEY, &tls.key_pem), (CA, &tls.ca_pem)];
    let data: BTreeMap<String, ByteString> =
        entries.into_iter().map(|(key, value)| (key.to_owned(), ByteString(value.clone().into_bytes()))).collect();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_owned()),
            labels: Some(BTreeMap::from([
                ("app.kubernetes.io/name".to_owned(), "webapp-operator".to_owned()),
                ("app.kubernetes.io/component".to_owned(), "webhook".to_owned()),
            ])),
            annotations: tls
                .expires
                .and_then(|at| at.duration_since(UNIX_EPOCH).ok())
                .map(|since| BTreeMap::from([(EXPIRES.to_owned(), since.as_secs().to_string())])),
            ..ObjectMeta::default()
        },
        type_: Some("kubernetes.io/tls".to_owned()),
        data: Some(data),
        ..Secret::default()
    }
}

/// The certificate in `found`; without `ca.crt` the certificate is its own bundle, as
/// for a mounted directory.
pub fn read(secret: &NamespacedName, found: &Secret) -> Result<Tls, WebhookError> {
    let data = found.data.clone().unwrap_or_default();
    let text = |key: &str| {
        let bytes = data.get(key).ok_or_else(|| WebhookError::Secret {
            secret: secret.to_string(),
            message: format!("has no {key} (delete it to have a new one generated)"),
        })?;
        String::from_utf8(bytes.0.clone())
            .map_err(|_| WebhookError::Secret { secret: secret.to_string(), message: format!("{key} is not PEM text") })
    };
    let (cert_pem, key_pem) = (text(CERT)?, text(KEY)?);
    let ca_pem = if data.contains_key(CA) { text(CA)? } else { cert_pem.clone() };
    // A Secret without the note was generated before certificates had a finite life (they
    // ran to the year 4096): due now, so it is replaced by one that expires.
    let expires = found.metadata.annotations.as_ref().and_then(|a| a.get(EXPIRES)).and_then(|s| s.parse().ok());
    let expires = Some(expires.map_or(UNIX_EPOCH, |secs| UNIX_EPOCH + Duration::from_secs(secs)));
    Ok(Tls { cert_pem, key_pem, ca_pem, expires })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::SystemTime;

    fn name() -> NamespacedName {
        NamespacedName { namespace: "ops".into(), name: "webhook-tls".into() }
    }

    #[test]
    fn a_stored_certificate_reads_back_the_same_and_serves() {
        let tls = certs::self_signed(&["localhost".into()], certs::DEFAULT_LIFE).unwrap();
        let mut secret = to_secret("webhook-tls", &tls);
        assert_eq!(secret.type_.as_deref(), Some("kubernetes.io/tls"));
        let back = read(&name(), &secret).unwrap();
        assert_eq!((back.cert_pem.as_str(), back.ca_pem.as_str()), (tls.cert_pem.as_str(), tls.ca_pem.as_str()));
        certs::server_config(&back).unwrap();
        let seconds = |t: Option<SystemTime>| t.unwrap().duration_since(UNIX_EPOCH).unwrap().as_secs();
        assert_eq!(seconds(back.expires), seconds(tls.expires), "the expiry is noted on the Secret");
        secret.metadata.annotations = None;
        let old = read(&name(), &secret).unwrap();
        assert!(old.due(certs::DEFAULT_LIFE, SystemTime::now()), "one from before finite lives is due");
    }

    #[test]
    fn a_secret_without_a_key_is_refused_by_name_and_one_without_a_ca_is_its_own_bundle() {
        let tls = certs::self_signed(&["localhost".into()], certs::DEFAULT_LIFE).unwrap();
        let mut secret = to_secret("webhook-tls", &tls);
        secret.data.as_mut().unwrap().remove(CA);
        assert_eq!(read(&name(), &secret).unwrap().ca_pem, tls.cert_pem);
        secret.data.as_mut().unwrap().remove(KEY);
        let error = read(&name(), &secret).unwrap_err().to_string();
        assert!(error.contains("ops/webhook-tls") && error.contains("tls.key"), "{error}");
    }
}
