//! Logging set-up: `tracing` with an env filter (`RUST_LOG`), as text or JSON, and, in a
//! build with the `otel` feature (the default), OpenTelemetry export of the reconcile and
//! step spans when `OTEL_EXPORTER_OTLP_ENDPOINT` is set. Text is coloured only on a terminal:
//! `make run > log`, CI and `kubectl logs` get plain lines.

use std::io::IsTerminal;

#[cfg(feature = "otel")]
pub mod otel;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;

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
            // The last export runs on the runtime while this waits for it: on a worker of
            // a multi-thread runtime, hand the worker's other tasks to the rest first.
            let on_worker = tokio::runtime::Handle::try_current()
                .is_ok_and(|handle| handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
            if on_worker { tokio::task::block_in_place(|| otel.shutdown()) } else { otel.shutdown() }
        }
    }
}

/// How much the operator logs (`--log-level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Level {
    /// Errors only.
    Error,
    /// Errors and warnings.
    Warn,
    /// The default: what the operator does.
    Info,
    /// Also each decision, and each field a change alters.
    Debug,
    /// Everything.
    Trace,
}

impl Level {
    /// klog's `-v=N`: 0 to 3 info, 4 and 5 debug, 6 and up trace.
    pub fn from_verbosity(verbosity: u8) -> Self {
        match verbosity {
            0..=3 => Level::Info,
            4..=5 => Level::Debug,
            _ => Level::Trace,
        }
    }

    /// The filter for this level: the operator's crates at the level, the client
    /// libraries no chattier than `warn`/`info` (their debug output is per request).
    pub fn filter(self) -> String {
        let level = match self {
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Debug => "debug",
            Level::Trace => "trace",
        };
        format!("{level},kube=warn,hyper=info,hyper_util=info,tower=info,h2=info,rustls=info")
    }
}

/// Installs the global subscriber: `RUST_LOG` if set, else `level`'s filter (default
/// info). Call it inside the tokio runtime: the trace exporter's requests run there.
pub fn init(format: LogFormat, level: Option<Level>) -> Telemetry {
    let default = level.unwrap_or(Level::Info).filter();
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
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
        LogFormat::Text => {
            // The NO_COLOR convention (no-color.org) turns colours off on a terminal too.
            let colour = std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            registry.with(text_layer(std::io::stdout, colour)).try_init()
        }
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
            "OTEL_EXPORTER_OTLP_ENDPOINT is set, but this build was made without the `otel` feature: traces are not exported"
        );
    }
    telemetry
}

/// Human-readable lines to `writer`, with ANSI colours only when `colour` says so: when
/// the writer is a terminal (escape codes in a file or a log collector are noise).
fn text_layer<S, W>(writer: W, colour: bool) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    tracing_subscriber::fmt::layer().with_target(false).with_ansi(colour).with_writer(writer)
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// A writer into a shared buffer: not a terminal.
    #[derive(Clone, Default)]
    struct Buffer(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Buffer {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(terminal: bool) -> String {
        let buffer = Buffer::default();
        let writer = buffer.clone();
        let subscriber = tracing_subscriber::registry().with(text_layer(move || writer.clone(), terminal));
        tracing::subscriber::with_default(subscriber, || {
            let span = tracing::info_span!("reconcile", object = "ns/web");
            span.in_scope(|| tracing::warn!(error = "boom", "reconcile failed"));
        });
        let bytes = buffer.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone();
        String::from_utf8(bytes).unwrap_or_default()
    }

    #[test]
    fn text_logs_carry_no_colour_codes_unless_written_to_a_terminal() {
        let plain = logged(false);
        assert!(plain.contains("WARN") && plain.contains("reconcile failed"), "{plain}");
        assert!(!plain.contains('\u{1b}'), "escape codes in plain logs: {plain:?}");
        assert!(logged(true).contains('\u{1b}'), "a terminal gets colours");
    }
}
