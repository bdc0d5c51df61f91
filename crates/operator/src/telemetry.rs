//! Logging set-up: `tracing` with an env filter (`RUST_LOG`), as text or JSON.

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

/// Installs the global subscriber. `RUST_LOG` overrides the default `info,kube=warn`.
pub fn init(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
    let registry = tracing_subscriber::registry().with(filter);
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
}
