//! Logging set-up: `tracing` with an env filter (`RUST_LOG`), as text or JSON, and, in a
//! build with the `otel` feature, OpenTelemetry export of the reconcile and step spans
//! when `OTEL_EXPORTER_OTLP_ENDPOINT` is set.

#[cfg(feature = "otel")]
pub mod otel;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;

/// How logs are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line, with the span fields (controller, object, step), and
    /// one line per finished step with its outcome and duration.
    Json,
}

/// What must live as long as the process traces: the span exporter, if any, which
/// sends its last batch when this is dropped.
#[must_use = "dropping it stops the trace export"]
#[derive(Default)]
pub struct Telemetry {
    #[cfg(feature = "otel")]
    otel: Option<otel::Otel>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        #[cfg(feature = "otel")]
        if let Some(otel) = self.otel.take() {
            otel.shutdown();
        }
    }
}

/// Installs the global subscriber. `RUST_LOG` overrides the default `info,kube=warn`.
/// Call it inside the tokio runtime: the trace exporter's gRPC channel lives there.
pub fn init(format: LogFormat) -> Telemetry {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    #[cfg(feature = "otel")]
    let (telemetry, otel_error) = match otel::Otel::from_env() {
        Ok(otel) => (Telemetry { otel }, None),
        Err(error) => (Telemetry::default(), Some(error)),
    };
    #[cfg(feature = "otel")]
    let export = telemetry.otel.as_ref().map(otel::Otel::layer);
    #[cfg(not(feature = "otel"))]
    let (telemetry, export) = (Telemetry::default(), None::<tracing_subscriber::layer::Identity>);

    let registry = tracing_subscriber::registry().with(filter).with(export);
    let installed = match format {
        LogFormat::Text => registry.with(tracing_subscriber::fmt::layer().with_target(false)).try_init(),
        LogFormat::Json => registry
            .with(
                tracing_subscriber::fmt::layer()
                    .json()
                    .with_current_span(true)
                    .with_span_list(true)
                    .with_span_events(FmtSpan::CLOSE),
            )
            .try_init(),
    };
    // A second init (tests running several managers in one process) keeps the first.
    let _ = installed;

    #[cfg(feature = "otel")]
    if let Some(error) = otel_error {
        tracing::error!(error = %reconcile_kit::events::error_chain(&error), "traces are not exported");
    }
    #[cfg(not(feature = "otel"))]
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_some() {
        tracing::warn!(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build has no `otel` feature: traces are not exported"
        );
    }
    telemetry
}
