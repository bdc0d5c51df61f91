//! OpenTelemetry export of the reconcile and step spans over OTLP/gRPC (cargo feature
//! `otel`). Only this crate's and the kit's spans are exported: the exporter's own
//! client (tonic, h2, hyper) must never trace itself into the queue it drains.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{SdkTracerProvider, Tracer};
use tracing::Subscriber;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::registry::LookupSpan;

/// The variable naming the collector, as in the OpenTelemetry SDK specification.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";
/// The variable naming the service; `webapp-operator` when unset.
pub const SERVICE_NAME_ENV: &str = "OTEL_SERVICE_NAME";

/// Why the exporter could not be set up.
#[derive(Debug, thiserror::Error)]
#[error("cannot export traces to {endpoint}")]
pub struct OtelError {
    /// The collector's address.
    pub endpoint: String,
    /// Cause.
    #[source]
    pub source: opentelemetry_otlp::ExporterBuildError,
}

/// A tracer exporting to one collector in batches. Dropping it without [`Otel::shutdown`]
/// loses the spans of the last batch.
pub struct Otel {
    tracer: Tracer,
    provider: SdkTracerProvider,
}

impl Otel {
    /// The exporter for `OTEL_EXPORTER_OTLP_ENDPOINT`, or `None` when it is unset.
    pub fn from_env() -> Result<Option<Otel>, OtelError> {
        let Some(endpoint) = std::env::var(ENDPOINT_ENV).ok().filter(|e| !e.is_empty()) else {
            return Ok(None);
        };
        let service = std::env::var(SERVICE_NAME_ENV).unwrap_or_else(|_| "webapp-operator".into());
        Otel::new(&endpoint, &service).map(Some)
    }

    /// An exporter to the OTLP/gRPC `endpoint` (e.g. `http://collector:4317`), naming the
    /// service `service`. Must be called inside a tokio runtime (the gRPC channel's).
    pub fn new(endpoint: &str, service: &str) -> Result<Otel, OtelError> {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|source| OtelError { endpoint: endpoint.to_owned(), source })?;
        let resource = Resource::builder().with_service_name(service.to_owned()).build();
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

    /// Sends what is buffered now (tests; the end of the process).
    pub fn flush(&self) {
        if let Err(error) = self.provider.force_flush() {
            tracing::warn!(%error, "could not flush traces");
        }
    }

    /// Flushes and stops the exporter.
    pub fn shutdown(self) {
        if let Err(error) = self.provider.shutdown() {
            tracing::warn!(%error, "could not flush traces at shutdown");
        }
    }
}
