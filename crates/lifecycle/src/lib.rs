//! The lifecycle of a custom resource: `Pending → Creating → Running`, with `Failed`
//! and `Deleting` reachable from any live phase. [`next`] is the one place that decides
//! a phase; [`transition`] refuses the moves the machine does not have.
//!
//! A crate of its own, knowing no kind and no client: the API types put [`Phase`] in
//! their status schemas and implement [`LifecycleStatus`], and the reconcile kit drives
//! them, without either depending on the other.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A kstatus condition (`Ready`, `Progressing`, `Degraded`), as Kubernetes defines it.
pub use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// What every status of a kind with a lifecycle carries: the phase, the generation it
/// describes and its kstatus conditions. The reconcile kit computes the next status
/// from these without knowing the kind.
pub trait LifecycleStatus {
    /// `status.phase`.
    fn phase(&self) -> Option<Phase>;
    /// `status.observedGeneration`.
    fn observed_generation(&self) -> Option<i64>;
    /// `status.conditions`.
    fn conditions(&self) -> &[Condition];
}

/// Lifecycle phase: Pending (accepted), Creating (children being made ready), Running
/// (everything ready), Failed (needs a change to make progress), Deleting (cleaning up).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// Children are being created or updated and are not all ready yet.
    Creating,
    /// Every child exists and is ready.
    Running,
    /// The operator cannot make progress without a change of the spec or of the cluster.
    Failed,
    /// The object is being deleted; children are being cleaned up.
    Deleting,
}

impl Phase {
    /// The phase as it is written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Creating => "Creating",
            Phase::Running => "Running",
            Phase::Failed => "Failed",
            Phase::Deleting => "Deleting",
        }
    }

    /// A phase that may not be set yet, as kubectl prints it (`<none>`), for logs that
    /// read like kubectl (`from=<none> to=Pending`).
    pub fn or_none(phase: Option<Self>) -> &'static str {
        phase.map_or("<none>", Self::as_str)
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a reconcile observed, reduced to what decides the phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Observation {
    /// `metadata.deletionTimestamp` is set.
    Deleting,
    /// A permanent error stops progress until the spec or the cluster changes.
    Broken,
    /// Children exist but are not all ready yet (or were just changed).
    Progressing,
    /// Every child exists and is ready.
    Ready,
}

/// A move the state machine does not allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("phase cannot move from {from} to {to}")]
pub struct IllegalTransition {
    /// Phase before.
    pub from: Phase,
    /// Phase refused.
    pub to: Phase,
}

/// Whether the machine has an edge `from → to` (staying put is always allowed).
pub fn transition(from: Phase, to: Phase) -> Result<Phase, IllegalTransition> {
    use Phase::*;
    let allowed = from == to
        || matches!(
            (from, to),
            (Pending, Creating)
                | (Creating, Running)
                // A spec change or a pod going unready sends a running app back to work.
                | (Running, Creating)
                // Retrying after the cause of a failure went away.
                | (Failed, Creating)
                | (Pending | Creating | Running, Failed)
                | (Pending | Creating | Running | Failed, Deleting)
        );
    if allowed { Ok(to) } else { Err(IllegalTransition { from, to }) }
}

/// The phase after `from` given what was observed. Never skips a step: a new object
/// that is already ready still passes through `Creating`, and a failed one retries
/// through `Creating`, so every phase a user sees was reached by an allowed edge.
pub fn next(from: Phase, observed: Observation) -> Phase {
    use Observation as O;
    use Phase::*;
    let wanted = match (from, observed) {
        (_, O::Deleting) => Deleting,
        (Deleting, _) => Deleting,
        (_, O::Broken) => Failed,
        (Pending | Failed, O::Progressing | O::Ready) => Creating,
        (Creating | Running, O::Progressing) => Creating,
        (Creating | Running, O::Ready) => Running,
    };
    // `wanted` is built from allowed edges only; the check keeps it that way.
    transition(from, wanted).unwrap_or(from)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Observation as O;
    use Phase::*;

    const ALL: [Phase; 5] = [Pending, Creating, Running, Failed, Deleting];

    #[test]
    fn every_allowed_and_refused_transition() {
        let allowed = [
            (Pending, Creating),
            (Creating, Running),
            (Running, Creating),
            (Failed, Creating),
            (Pending, Failed),
            (Creating, Failed),
            (Running, Failed),
            (Pending, Deleting),
            (Creating, Deleting),
            (Running, Deleting),
            (Failed, Deleting),
        ];
        for from in ALL {
            for to in ALL {
                let expected = from == to || allowed.contains(&(from, to));
                assert_eq!(transition(from, to).is_ok(), expected, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn next_phase_table() {
        let table = [
            (Pending, O::Progressing, Creating),
            (Pending, O::Ready, Creating),
            (Pending, O::Broken, Failed),
            (Pending, O::Deleting, Deleting),
            (Creating, O::Progressing, Creating),
            (Creating, O::Ready, Running),
            (Creating, O::Broken, Failed),
            (Running, O::Ready, Running),
            (Running, O::Progressing, Creating),
            (Running, O::Broken, Failed),
            (Running, O::Deleting, Deleting),
            (Failed, O::Broken, Failed),
            (Failed, O::Progressing, Creating),
            (Failed, O::Ready, Creating),
            (Failed, O::Deleting, Deleting),
            (Deleting, O::Ready, Deleting),
            (Deleting, O::Broken, Deleting),
        ];
        for (from, observed, expected) in table {
            assert_eq!(next(from, observed), expected, "{from} + {observed:?}");
        }
    }

    #[test]
    fn next_only_takes_allowed_edges() {
        for from in ALL {
            for observed in [O::Deleting, O::Broken, O::Progressing, O::Ready] {
                assert!(transition(from, next(from, observed)).is_ok());
            }
        }
    }
}
