//! What can stop a benchmark run.

use std::time::Duration;

/// A failed benchmark step. Figures are never asserted: only a run that cannot go on is
/// an error.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// No cluster could be found from `$KUBECONFIG` (or the in-cluster config).
    #[error("find the cluster of $KUBECONFIG: {0}")]
    Kubeconfig(#[from] kube::config::InferConfigError),
    /// A request to the API server failed.
    #[error("{0}: {1}")]
    Kube(String, #[source] kube::Error),
    /// A local file, process or socket failed.
    #[error("{0}: {1}")]
    Io(String, #[source] std::io::Error),
    /// The operator process misbehaved (exited, no metrics).
    #[error("operator: {0}")]
    Operator(String),
    /// A task of the bench itself failed (panicked or was cancelled).
    #[error("bench task: {0}")]
    Task(String),
    /// Something did not happen in time.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    /// A results file could not be read or written.
    #[error("results: {0}")]
    Json(#[from] serde_json::Error),
}

/// Result of a benchmark step.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;

/// Wraps a kube error with what was being done.
pub fn kube(what: impl Into<String>) -> impl FnOnce(kube::Error) -> BenchError {
    let what = what.into();
    move |error| BenchError::Kube(what, error)
}

/// Wraps an I/O error with what was being done.
pub fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BenchError {
    let what = what.into();
    move |error| BenchError::Io(what, error)
}
