//! The webhook's serving certificate: read from a mounted directory, or generated (a
//! self-signed CA and a certificate it signs, with a finite life; see
//! [`super::rotation`] for their renewal), and the CA bundle that trusts them.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// A serving certificate and key, and the CA bundle that verifies it (PEM).
#[derive(Clone)]
pub struct Tls {
    /// Certificate chain.
    pub cert_pem: String,
    /// Private key.
    pub key_pem: String,
    /// CA certificate(s) for the CRD's `caBundle`.
    pub ca_pem: String,
    /// When a generated certificate (and its CA) expires; `None` for a mounted one,
    /// which its issuer renews.
    pub expires: Option<SystemTime>,
}

/// How long a generated certificate lives by default: a year, renewed when a third of
/// it is left (cert-manager's default proportion).
pub const DEFAULT_LIFE: Duration = Duration::from_secs(365 * 24 * 3600);

impl Tls {
    /// Whether a generated certificate has less than a third of its `life` left at `now`.
    pub fn due(&self, life: Duration, now: SystemTime) -> bool {
        self.expires.is_some_and(|expires| expires.duration_since(now).map_or(true, |left| left < life / 3))
    }
}

impl std::fmt::Debug for Tls {
    /// Never prints the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls").field("cert_pem", &self.cert_pem).field("ca_pem", &self.ca_pem).finish_non_exhaustive()
    }
}

/// Why no certificate could be had.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// Generating the self-signed certificate failed.
    #[error("cannot generate the webhook certificate")]
    Generate(#[from] rcgen::Error),
    /// A mounted file could not be read.
    #[error("cannot read {path}")]
    Read {
        /// File.
        path: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The certificate or key is not usable by rustls.
    #[error("invalid webhook certificate or key: {0}")]
    Invalid(String),
}

/// A new CA and a serving certificate for `hosts` (DNS names or IPs) signed by it, both
/// valid for `life` from now (and from a minute ago, for clocks a little behind).
pub fn self_signed(hosts: &[String], life: Duration) -> Result<Tls, CertError> {
    let now = SystemTime::now();
    let expires = now + life;
    let (not_before, not_after) =
        (time::OffsetDateTime::from(now - Duration::from_secs(60)), time::OffsetDateTime::from(expires));
    let ca_key = KeyPair::generate()?;
    let mut ca = CertificateParams::new(Vec::<String>::new())?;
    (ca.not_before, ca.not_after) = (not_before, not_after);
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "webapp-operator webhook CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca, ca_key);

    let key = KeyPair::generate()?;
    let mut serving = CertificateParams::new(hosts.to_vec())?;
    (serving.not_before, serving.not_after) = (not_before, not_after);
    serving.distinguished_name.push(DnType::CommonName, "webapp-operator webhook");
    serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = serving.signed_by(&key, &issuer)?;
    Ok(Tls { cert_pem: cert.pem(), key_pem: key.serialize_pem(), ca_pem: ca_cert.pem(), expires: Some(expires) })
}

/// Reads `tls.crt`, `tls.key` and `ca.crt` (cert-manager's names) from `dir`. Without
/// `ca.crt` the certificate is its own bundle (a self-signed one).
pub fn from_dir(dir: &Path) -> Result<Tls, CertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read_to_string(&path).map_err(|source| CertError::Read { path: path.display().to_string(), source })
    };
    let (cert_pem, key_pem) = (read("tls.crt")?, read("tls.key")?);
    let ca_pem = if dir.join("ca.crt").exists() { read("ca.crt")? } else { cert_pem.clone() };
    Ok(Tls { cert_pem, key_pem, ca_pem, expires: None })
}

/// The PEM certificates of `text`, each trimmed.
pub fn pem_blocks(text: &str) -> Vec<String> {
    const END: &str = "-----END CERTIFICATE-----";
    text.split_inclusive(END).map(str::trim).filter(|block| block.ends_with(END)).map(str::to_owned).collect()
}

/// The CA bundle for the CRD: `ours` first, then the certificates of `previous` that are
/// not ours, up to `keep` in all. During a rotation the replicas still serving the old
/// certificate stay trusted, and a replica finding its CA already in the bundle writes
/// nothing, so replicas never take turns overwriting it.
pub fn merge_bundle(ours: &str, previous: &str, keep: usize) -> String {
    let mut blocks = pem_blocks(ours);
    for block in pem_blocks(previous) {
        if blocks.len() >= keep.max(1) {
            break;
        }
        if !blocks.contains(&block) {
            blocks.push(block);
        }
    }
    blocks.iter().map(|b| format!("{b}\n")).collect()
}

/// Whether every certificate of `ours` is in `bundle`.
pub fn trusted_by(ours: &str, bundle: &str) -> bool {
    let bundle = pem_blocks(bundle);
    let ours = pem_blocks(ours);
    !ours.is_empty() && ours.iter().all(|block| bundle.contains(block))
}

/// The rustls configuration serving `tls`, with the ring provider (the one kube uses).
pub fn server_config(tls: &Tls) -> Result<rustls::ServerConfig, CertError> {
    let invalid = |e: &dyn std::fmt::Display| CertError::Invalid(e.to_string());
    let chain = CertificateDer::pem_slice_iter(tls.cert_pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(&e))?;
    if chain.is_empty() {
        return Err(CertError::Invalid("no certificate in tls.crt".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(tls.key_pem.as_bytes()).map_err(|e| invalid(&e))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| invalid(&e))?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_certificate_serves_and_its_ca_is_separate() {
        let tls = self_signed(&["localhost".into(), "127.0.0.1".into()], DEFAULT_LIFE).unwrap();
        assert!(tls.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        assert_ne!(tls.cert_pem, tls.ca_pem);
        server_config(&tls).unwrap();
        assert!(!format!("{tls:?}").contains("PRIVATE KEY"), "Debug never shows the key");
    }

    #[test]
    fn a_mounted_directory_is_read_and_garbage_is_refused() {
        let dir = std::env::temp_dir().join(format!("webhook-certs-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let tls = self_signed(&["localhost".into()], DEFAULT_LIFE).unwrap();
        std::fs::write(dir.join("tls.crt"), &tls.cert_pem).unwrap();
        std::fs::write(dir.join("tls.key"), &tls.key_pem).unwrap();
        let read = from_dir(&dir).unwrap();
        assert_eq!(read.ca_pem, tls.cert_pem, "no ca.crt: the certificate is its own bundle");
        server_config(&read).unwrap();
        std::fs::write(dir.join("tls.key"), "not a key").unwrap();
        assert!(matches!(server_config(&from_dir(&dir).unwrap()), Err(CertError::Invalid(_))));
        assert!(matches!(from_dir(&dir.join("missing")), Err(CertError::Read { .. })));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_generated_certificate_is_due_when_a_third_of_its_life_is_left() {
        let life = Duration::from_secs(300);
        let tls = self_signed(&["localhost".into()], life).unwrap();
        let now = SystemTime::now();
        assert!(!tls.due(life, now));
        assert!(!tls.due(life, now + Duration::from_secs(190)));
        assert!(tls.due(life, now + Duration::from_secs(210)));
        assert!(tls.due(life, now + Duration::from_secs(400)), "expired");
        let mounted = Tls { expires: None, ..tls };
        assert!(!mounted.due(life, now + Duration::from_secs(400)), "a mounted one is its issuer's to renew");
    }

    #[test]
    fn the_bundle_keeps_the_previous_cas_after_ours_and_stays_bounded() {
        let [a, b, c, d] = [1, 2, 3, 4].map(|_| self_signed(&["localhost".into()], DEFAULT_LIFE).unwrap().ca_pem);
        let first = merge_bundle(&a, "", 3);
        assert_eq!(pem_blocks(&first).len(), 1);
        let rotated = merge_bundle(&b, &first, 3);
        assert_eq!(pem_blocks(&rotated), [pem_blocks(&b), pem_blocks(&a)].concat());
        assert!(trusted_by(&a, &rotated) && trusted_by(&b, &rotated));
        assert_eq!(merge_bundle(&a, &rotated, 3), merge_bundle(&a, &format!("{a}{b}"), 3), "no duplicate");
        let long = merge_bundle(&d, &merge_bundle(&c, &rotated, 3), 3);
        assert_eq!(pem_blocks(&long), [pem_blocks(&d), pem_blocks(&c), pem_blocks(&b)].concat(), "the oldest goes");
        assert!(!trusted_by(&a, &long));
        assert!(!trusted_by("", &long), "nothing is not trusted");
    }
}
