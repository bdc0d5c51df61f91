//! The pure status calculation of a PodManager: from the Pods a reconcile saw (and
//! what it did) to `status`. Deterministic, so a converged PodManager is never
//! re-written: the clock only matters for a condition that changes.

use k8s_openapi::jiff::Timestamp;
use reconcile_kit::conditions::{self, Conditions, DEGRADED, PROGRESSING, READY};
use reconcile_kit::phase::{self, Observation, Phase};
use webapp_api::{PodManager, PodManagerStatus};

use super::plan::PodView;

/// What one reconcile saw of a PodManager's Pods.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Every Pod of the PodManager.
    pub pods: Vec<PodView>,
    /// Hash of the current template.
    pub hash: String,
    /// Why Pods fail (see `children::pod_problems`).
    pub problems: Vec<String>,
    /// Whether this reconcile created or deleted a Pod (not visible in `pods` yet).
    pub changed: bool,
}

/// Pod counts of the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Counts {
    current: i32,
    ready: i32,
    updated: i32,
}

fn count(observed: &Observed) -> Counts {
    let existing = || observed.pods.iter().filter(|p| !p.terminating);
    let size = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
    Counts {
        current: size(existing().count()),
        ready: size(existing().filter(|p| p.ready).count()),
        updated: size(existing().filter(|p| !p.ended && p.hash.as_deref() == Some(observed.hash.as_str())).count()),
    }
}

/// One reading of the object: the phase it is in, why (a CamelCase reason) and a
/// sentence, plus a problem when something needs attention.
struct Assessment {
    observation: Observation,
    reason: &'static str,
    message: String,
    problem: Option<(String, String)>,
}

fn assess(replicas: i32, counts: Counts, observed: &Observed, failure: Option<&reconcile_kit::Error>) -> Assessment {
    if let Some(error) = failure {
        let message = reconcile_kit::events::error_chain(error);
        let problem = Some((error.reason().to_owned(), message.clone()));
        return Assessment { observation: Observation::Broken, reason: error.reason(), message, problem };
    }
    let pods = format!("{}/{replicas} pods ready", counts.ready);
    let done = !observed.changed
        && counts.current == replicas
        && counts.ready == replicas
        && counts.updated == replicas
        && observed.problems.is_empty();
    if done {
        return Assessment { observation: Observation::Ready, reason: "Running", message: pods, problem: None };
    }
    let (reason, message) = if counts.updated < counts.current.min(replicas) {
        ("RollingUpdate", format!("rolling update: {}/{replicas} pods updated, {pods}", counts.updated))
    } else {
        ("Creating", format!("waiting: {pods}"))
    };
    let problem = (!observed.problems.is_empty()).then(|| ("PodsFailing".to_owned(), observed.problems.join("; ")));
    let message = problem.as_ref().map_or(message, |(_, problems)| problems.clone());
    Assessment { observation: Observation::Progressing, reason, message, problem }
}

/// The status `pm` should carry after observing `observed`, or failing with `failure`.
pub fn compute(
    pm: &PodManager,
    observed: &Observed,
    failure: Option<&reconcile_kit::Error>,
    now: Timestamp,
) -> PodManagerStatus {
    let previous = pm.status.clone().unwrap_or_default();
    let counts = count(observed);
    let assessment = assess(pm.spec.replicas, counts, observed, failure);
    let phase = phase::next(previous.phase.unwrap_or_default(), assessment.observation);
    let ready = phase == Phase::Running;
    let progressing = assessment.observation == Observation::Progressing;
    let (degraded_reason, degraded_message) = assessment.problem.clone().unwrap_or(("Healthy".into(), String::new()));
    let progress = if progressing {
        assessment.message.clone()
    } else if ready {
        "all pods are up to date".into()
    } else {
        "stopped until the cause is fixed".into()
    };
    let conditions = Conditions::new(&previous.conditions, pm.metadata.generation, now)
        .set(READY, ready, assessment.reason, &assessment.message)
        .set(PROGRESSING, progressing, if ready { "Complete" } else { assessment.reason }, progress)
        .set(DEGRADED, assessment.problem.is_some(), &degraded_reason, degraded_message)
        .build();
    PodManagerStatus {
        phase: Some(phase),
        ready_replicas: counts.ready,
        current_replicas: counts.current,
        updated_replicas: counts.updated,
        observed_generation: pm.metadata.generation,
        message: Some(assessment.message),
        conditions,
    }
}

/// The first status of a new PodManager: accepted, no Pod created yet.
pub fn pending(pm: &PodManager, now: Timestamp) -> PodManagerStatus {
    let message = "accepted; creating pods".to_owned();
    PodManagerStatus {
        phase: Some(Phase::Pending),
        observed_generation: pm.metadata.generation,
        message: Some(message.clone()),
        conditions: conditions::pending(pm.metadata.generation, now, &message),
        ..PodManagerStatus::default()
    }
}

/// The status of a PodManager being deleted: phase Deleting, `remaining` Pods to go.
pub fn deleting(pm: &PodManager, remaining: usize, now: Timestamp) -> PodManagerStatus {
    let previous = pm.status.clone().unwrap_or_default();
    let message = format!("deleting: {remaining} pods left");
    PodManagerStatus {
        phase: Some(phase::next(previous.phase.unwrap_or_default(), Observation::Deleting)),
        message: Some(message.clone()),
        conditions: conditions::deleting(&previous.conditions, pm.metadata.generation, now, &message),
        ..previous
    }
}

#[cfg(test)]
mod tests;
