//! OpenTelemetry export of the reconcile and step spans over OTLP/HTTP (protobuf), the
//! protocol the OpenTelemetry specification makes the default, on the hyper and rustls
//! the Kubernetes client already brings: plain `http://` or `https://` endpoints, the
//! latter checked against the system's roots plus an optional CA file. Only this crate's
//! and the kit's spans are exported: the exporter's own client (hyper, rustls) must never
//! trace itself into the queue it drains.
//!
//! Configured from the specification's variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (the
//! collector's base URL, `/v1/traces` appended), or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! (the whole URL, used as is); `OTEL_EXPORTER_OTLP_CERTIFICATE` (a PEM file of CAs to
//! trust besides the system's); `OTEL_SERVICE_NAME`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The variable naming the collector's base URL, as in the OpenTelemetry specification.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The variable naming the whole traces URL, which wins over [`ENDPOINT_ENV`].
pub const TRACES_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT";
/// The variable naming a PEM file of CAs that sign the collector's certificate.
pub const CERTIFICATE_ENV: &str = "OTEL_EXPORTER_OTLP_CERTIFICATE";
/// The variable naming the service; `webapp-operator` when unset.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// How long one export may take (the specification's default timeout).
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where and how to export.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OtelConfig {
    /// The traces URL, e.g. `http://otel-collector.observability:4318/v1/traces`.
    pub traces_url: String,
    /// The `service.name` of the exported resource.
    pub service: String,
    /// CAs to trust besides the system's, for an `https://` collector.
    pub certificate: Option<PathBuf>,
}

impl OtelConfig {
    /// The configuration the environment gives, `None` when no endpoint is set.
    pub fn from_env() -> Option<OtelConfig> {
        let var = |name| std::env::var(name).ok().filter(|value: &String| !value.is_empty());
        let traces_url = match (var(TRACES_ENDPOINT_ENV), var(ENDPOINT_ENV)) {
            (Some(url), _) => url,
            (None, Some(base)) => traces_url(&base),
            (None, None) => return None,
        };
        Some(OtelConfig {
            traces_url,
            service: var(SERVICE_NAME_ENV).unwrap_or_else(|| "webapp-operator".into()),
            certificate: var(CERTIFICATE_ENV).map(PathBuf::from),
        })
    }
}

/// The traces URL under a collector's base URL, as the specification builds it.
pub fn traces_url(base: &str) -> String {
    format!("{}/v1/traces", base.trim_end_matches('/'))
}

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum OtelError {
    /// The exporter refused its configuration.
    #[error("cannot export traces to {url}")]
    Exporter {
        /// The traces URL.
        url: String,
        /// Cause.
        #[source]
        source: opentelemetry_otlp::ExporterBuildError,
    },
    /// The CA file could not be read or holds no certificate.
    #[error("cannot read the collector's CA from {}: {reason}", path.display())]
    Certificate {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// Not called inside a tokio runtime, on which the exports run.
    #[error("the trace exporter must be set up inside the tokio runtime")]
    NoRuntime,
}

/// The HTTP client of the exporter: hyper over rustls, its requests run on the tokio
/// runtime it was made on. The SDK's batch processor exports from a thread of its own,
/// which has no runtime: it waits there for a request the runtime carries out.
#[derive(Debug, Clone)]
struct OnRuntime {
    client: opentelemetry_http::hyper::HyperClient<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    >,
    runtime: tokio::runtime::Handle,
}

#[async_trait::async_trait]
impl HttpClient for OnRuntime {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let client = self.client.clone();
        self.runtime.spawn(async move { client.send_bytes(request).await }).await?
    }
}

/// rustls' client configuration: the system's roots, and the CAs of `extra`.
fn tls_config(extra: Option<&Path>) -> Result<rustls::ClientConfig, OtelError> {
    let mut roots = rustls::RootCertStore::empty();
    // Roots the system has; one unreadable root is no reason to refuse the others.
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if let Some(path) = extra {
        let refused = |reason: String| OtelError::Certificate { path: path.to_owned(), reason };
        let pem = std::fs::read(path).map_err(|error| refused(error.to_string()))?;
        let certs: Vec<_> = rustls::pki_types::pem::PemObject::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|error: rustls::pki_types::pem::Error| refused(error.to_string()))?;
        if certs.is_empty() {
            return Err(refused("no PEM certificate in it".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|error| refused(error.to_string()))?;
        }
    } else if added == 0 {
        tracing::debug!("no system CA roots: an https:// collector needs OTEL_EXPORTER_OTLP_CERTIFICATE");
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider).with_safe_default_protocol_versions().map_err(
        |error| OtelError::Certificate {
            path: extra.map(Path::to_owned).unwrap_or_default(),
            reason: error.to_string(),
        },
    )?;
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// A tracer exporting to one collector in batches. Dropping it without [`Otel::shutdown`]
/// loses the spans of the last batch.
pub struct Otel {
    tracer: Tracer,
    provider: SdkTracerProvider,
}

impl Otel {
    /// The exporter the environment configures ([`OtelConfig::from_env`]), or `None`.
    pub fn from_env() -> Result<Option<Otel>, OtelError> {
        OtelConfig::from_env().map(|config| Otel::new(&config)).transpose()
    }

    /// An exporter as `config` says. Must be called inside a tokio runtime: the
    /// exports run on it.
    pub fn new(config: &OtelConfig) -> Result<Otel, OtelError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| OtelError::NoRuntime)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls_config(config.certificate.as_deref())?)
            .https_or_http()
            .enable_http1()
            .build();
        let client =
            OnRuntime { client: opentelemetry_http::hyper::HyperClient::new(connector, EXPORT_TIMEOUT, None), runtime };
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_http_client(client)
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(&config.traces_url)
            .with_timeout(EXPORT_TIMEOUT)
            .build()
            .map_err(|source| OtelError::Exporter { url: config.traces_url.clone(), source })?;
        let resource = Resource::builder().with_service_name(config.service.clone()).build();
        let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource).build();
        let tracer = provider.tracer("webapp-operator");
        Ok(Otel { tracer, provider })
    }

    /// The `tracing` layer that turns spans of the operator and the kit into OpenTelemetry
    /// spans (fields become attributes).
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let ours = Targets::new()
            .with_target("webapp_operator", LevelFilter::INFO)
            .with_target("reconcile_kit", LevelFilter::INFO);
        tracing_opentelemetry::layer().with_tracer(self.tracer.clone()).with_filter(ours)
    }

    /// Sends what is buffered now (tests; the end of the process), and says whether the
    /// collector took it. Blocks until the export is answered: inside the runtime, call
    /// it where blocking is allowed.
    pub fn flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.provider.force_flush()
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "could not flush traces at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_traces_url_is_the_base_url_and_the_signal_path() {
        assert_eq!(traces_url("http://collector:4318"), "http://collector:4318/v1/traces");
        assert_eq!(traces_url("https://collector:4318/"), "https://collector:4318/v1/traces");
        assert_eq!(traces_url("http://gateway/otlp"), "http://gateway/otlp/v1/traces");
    }

    #[test]
    fn a_ca_file_without_a_certificate_is_refused_with_its_path() {
        let dir = std::env::temp_dir().join(format!("otel-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let empty = dir.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").unwrap();
        let error = tls_config(Some(&empty)).unwrap_err().to_string();
        assert!(error.contains("empty.pem") && error.contains("no PEM certificate"), "{error}");
        let missing = tls_config(Some(&dir.join("missing.pem"))).unwrap_err().to_string();
        assert!(missing.contains("missing.pem"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
