//! The pure status calculation: from what a reconcile observed to the WebApp's status.
//! Deterministic (same observation, same status, whatever the clock says apart from
//! new transitions), so a converged WebApp is never re-written.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::jiff::Timestamp;
use reconcile_kit::conditions::{self, Conditions, DEGRADED, PROGRESSING, READY};
use reconcile_kit::phase::{self, Observation, Phase};
use webapp_api::{WebApp, WebAppStatus};

use kube::ResourceExt;

use super::plan::APP;
use crate::controllers::children::rollout;
use crate::controllers::{selector_labels, selector_string};

/// What one reconcile saw of a WebApp's children.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The live Deployment, if any.
    pub deployment: Option<Deployment>,
    /// Whether the Service exists.
    pub service: bool,
    /// Whether the Ingress exists, or is not wanted.
    pub ingress: bool,
    /// Why pods fail (see `children::pod_problems`).
    pub pod_problems: Vec<String>,
    /// Whether this reconcile changed a child (the rollout it starts is not visible yet).
    pub changed: bool,
}

/// A reconcile failure to report: reason (CamelCase) and message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Reason, e.g. `NotOwned`.
    pub reason: String,
    /// Message for humans.
    pub message: String,
}

/// The status `webapp` should carry after observing `observed`, or failing with `failure`.
pub fn compute(webapp: &WebApp, observed: &Observed, failure: Option<&Failure>, now: Timestamp) -> WebAppStatus {
    let previous = webapp.status.clone().unwrap_or_default();
    let generation = webapp.metadata.generation;
    let rollout = observed.deployment.as_ref().map(rollout).unwrap_or_default();
    let problems = observed.pod_problems.join("; ");

    let ready = failure.is_none()
        && !observed.changed
        && observed.service
        && observed.ingress
        && observed.deployment.is_some()
        && rollout.complete
        && observed.pod_problems.is_empty();
    let observation = match (failure, ready) {
        (Some(_), _) => Observation::Broken,
        (None, true) => Observation::Ready,
        (None, false) => Observation::Progressing,
    };
    let phase = phase::next(previous.phase.unwrap_or_default(), observation);

    let pods = format!("{}/{} pods ready", rollout.ready, rollout.desired);
    let (message, conditions) = match (failure, phase) {
        (Some(failure), _) => (
            failure.message.clone(),
            Conditions::new(&previous.conditions, generation, now)
                .set(READY, false, &failure.reason, &failure.message)
                .set(PROGRESSING, false, &failure.reason, "stopped until the cause is fixed")
                .set(DEGRADED, true, &failure.reason, &failure.message),
        ),
        (None, Phase::Running) => (
            pods.clone(),
            Conditions::new(&previous.conditions, generation, now)
                .set(READY, true, "Running", &pods)
                .set(PROGRESSING, false, "Complete", "all resources are up to date")
                .set(DEGRADED, false, "Healthy", ""),
        ),
        (None, _) if !problems.is_empty() => (
            problems.clone(),
            Conditions::new(&previous.conditions, generation, now)
                .set(READY, false, "PodsFailing", &problems)
                .set(PROGRESSING, true, "Creating", &pods)
                .set(DEGRADED, true, "PodsFailing", &problems),
        ),
        (None, _) => {
            let waiting = if observed.changed {
                "resources updated, rollout starting".to_owned()
            } else {
                format!("waiting: {pods}")
            };
            (
                waiting.clone(),
                Conditions::new(&previous.conditions, generation, now)
                    .set(READY, false, "Creating", &waiting)
                    .set(PROGRESSING, true, "Creating", &waiting)
                    .set(DEGRADED, false, "Healthy", ""),
            )
        }
    };

    WebAppStatus {
        phase: Some(phase),
        observed_generation: generation,
        replicas: observed.deployment.as_ref().map(|_| rollout.current),
        ready_replicas: observed.deployment.as_ref().map(|_| rollout.ready),
        selector: Some(selector_string(&selector_labels(APP, &webapp.name_any()))),
        message: Some(message),
        conditions: conditions.build(),
    }
}

/// The first status of a new WebApp: accepted, nothing created yet.
pub fn pending(webapp: &WebApp, now: Timestamp) -> WebAppStatus {
    let message = "accepted; creating resources".to_owned();
    WebAppStatus {
        phase: Some(Phase::Pending),
        observed_generation: webapp.metadata.generation,
        message: Some(message.clone()),
        conditions: conditions::pending(webapp.metadata.generation, now, &message),
        ..WebAppStatus::default()
    }
}

/// The status of a WebApp being deleted: phase Deleting, the rest kept.
pub fn deleting(webapp: &WebApp, step: &str, now: Timestamp) -> WebAppStatus {
    let previous = webapp.status.clone().unwrap_or_default();
    let message = format!("deleting: {step}");
    WebAppStatus {
        phase: Some(phase::next(previous.phase.unwrap_or_default(), Observation::Deleting)),
        message: Some(message.clone()),
        conditions: conditions::deleting(&previous.conditions, webapp.metadata.generation, now, &message),
        ..previous
    }
}

#[cfg(test)]
mod tests;
