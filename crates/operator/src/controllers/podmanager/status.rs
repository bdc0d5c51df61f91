//! The pure status mapping of a PodManager: Pod counts from what a reconcile saw, and the
//! kit's lifecycle assessment (phase, kstatus conditions, message) from them.
//! Deterministic, so a converged PodManager is never re-written.

use k8s_openapi::jiff::Timestamp;
use reconcile_kit::assess::{self, Assessment, Failure, Previous, Progress};
use webapp_api::{PodManager, PodManagerStatus};

use super::plan::PodView;

/// What one reconcile saw of a PodManager's Pods.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Every Pod of the PodManager.
    pub pods: Vec<PodView>,
    /// Hash of the current template.
    pub hash: String,
    /// Why Pods fail (see `reconcile_kit::workload::pods::pod_problems`).
    pub problems: Vec<String>,
    /// Whether this reconcile created or deleted a Pod (not visible in `pods` yet).
    pub changed: bool,
}

/// Pod counts of the status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    /// Pods that exist and are not being deleted.
    pub current: i32,
    /// Of those, Pods whose Ready condition is True.
    pub ready: i32,
    /// Of those, Pods made from the current template that have not ended.
    pub updated: i32,
}

impl Observed {
    /// The Pod counts.
    pub fn counts(&self) -> Counts {
        let existing = || self.pods.iter().filter(|p| !p.terminating);
        let size = |n: usize| i32::try_from(n).unwrap_or(i32::MAX);
        Counts {
            current: size(existing().count()),
            ready: size(existing().filter(|p| p.ready).count()),
            updated: size(existing().filter(|p| !p.ended && p.hash.as_deref() == Some(self.hash.as_str())).count()),
        }
    }

    /// What decides the phase: ready once exactly `replicas` Pods exist, all Ready and
    /// all on the current template.
    pub fn progress(&self, replicas: i32) -> Progress {
        let counts = self.counts();
        let rolling = counts.updated < counts.current.min(replicas);
        let pods = format!("{}/{replicas} pods ready", counts.ready);
        Progress {
            ready: counts.current == replicas && counts.ready == replicas && counts.updated == replicas,
            changed: self.changed,
            problems: self.problems.clone(),
            summary: if rolling {
                format!("rolling update: {}/{replicas} pods updated, {pods}", counts.updated)
            } else {
                pods
            },
        }
    }
}

/// The status `pm` should carry after observing `observed`, or failing with `failure`.
pub fn compute(pm: &PodManager, observed: &Observed, failure: Option<&Failure>, now: Timestamp) -> PodManagerStatus {
    let previous = pm.status.clone().unwrap_or_default();
    let progress = observed.progress(pm.spec.replicas);
    let assessment = assess::assess(Previous::of(&previous), pm.metadata.generation, &progress, failure, now);
    with(pm, observed.counts(), assessment)
}

/// The first status of a new PodManager: accepted, no Pod created yet.
pub fn pending(pm: &PodManager, now: Timestamp) -> PodManagerStatus {
    with(pm, Counts::default(), assess::pending(pm.metadata.generation, now))
}

/// The status of a PodManager being deleted, `remaining` Pods still to go.
pub fn deleting(pm: &PodManager, remaining: usize, now: Timestamp) -> PodManagerStatus {
    let before = pm.status.clone().unwrap_or_default();
    let what = format!("{remaining} pods left");
    let assessment = assess::deleting(Previous::of(&before), pm.metadata.generation, &what, now);
    PodManagerStatus {
        phase: Some(assessment.phase),
        message: Some(assessment.message),
        conditions: assessment.conditions,
        ..before
    }
}

fn with(pm: &PodManager, counts: Counts, assessment: Assessment) -> PodManagerStatus {
    PodManagerStatus {
        phase: Some(assessment.phase),
        ready_replicas: counts.ready,
        current_replicas: counts.current,
        updated_replicas: counts.updated,
        observed_generation: pm.metadata.generation,
        message: Some(assessment.message),
        conditions: assessment.conditions,
    }
}

#[cfg(test)]
mod tests;
