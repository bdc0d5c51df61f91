//! The pure status mapping: the kit's lifecycle assessment plus what a WebApp reports of
//! its Deployment. Deterministic, so a converged WebApp is never re-written.

use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use reconcile_kit::assess::{self, Assessment, Previous};
use reconcile_kit::workload::Observed;
use reconcile_kit::workload::labels::selector_labels;
use webapp_api::{WebApp, WebAppStatus};

use super::plan::APP;

/// The status `webapp` should carry given `assessment` and what was `observed`.
pub fn compute(webapp: &WebApp, observed: &Observed, assessment: Assessment) -> WebAppStatus {
    let rollout = observed.rollout();
    let deployed = observed.deployment.is_some();
    WebAppStatus {
        phase: Some(assessment.phase),
        observed_generation: webapp.metadata.generation,
        replicas: deployed.then_some(rollout.current),
        ready_replicas: deployed.then_some(rollout.ready),
        selector: Some(observed.pod_selector(&selector_labels(APP, &webapp.name_any()))),
        message: Some(assessment.message),
        conditions: assessment.conditions,
    }
}

/// The status of a WebApp being deleted: phase Deleting, the rest kept.
pub fn deleting(webapp: &WebApp, step: &str, now: Timestamp) -> WebAppStatus {
    let before = webapp.status.clone().unwrap_or_default();
    let assessment = assess::deleting(Previous::of(&before), webapp.metadata.generation, step, now);
    WebAppStatus {
        phase: Some(assessment.phase),
        message: Some(assessment.message),
        conditions: assessment.conditions,
        ..before
    }
}

#[cfg(test)]
mod tests;
