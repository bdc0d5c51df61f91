//! The part of every status that does not depend on the kind: the phase and the kstatus
//! conditions, decided from what one reconcile found. Besides `Ready`, `Progressing`
//! and `Degraded`, kstatus's abnormal-true `Reconciling` (while working towards the spec)
//! and `Stalled` (when Failed) are set, so that kstatus, and the GitOps tools built on it,
//! read Running as `Current`, Pending/Creating as `InProgress` and Failed as `Failed`. Pure and deterministic (same
//! inputs, same result whatever the clock says, apart from new transitions), so a
//! converged object computes the status it already has and nothing is written.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::jiff::Timestamp;

use crate::conditions::{Conditions, DEGRADED, PROGRESSING, READY, RECONCILING, STALLED};
use crate::phase::{self, Observation, Phase};

/// What a reconcile found, reduced to what decides phase and conditions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Every child exists and is ready (the kind decides what ready means).
    pub ready: bool,
    /// This reconcile changed a child: the rollout it starts is not visible yet.
    pub changed: bool,
    /// Why pods fail, one line each (see [`crate::workload::pods::pod_problems`]).
    pub problems: Vec<String>,
    /// How far along the children are, for humans: `2/3 pods ready`.
    pub summary: String,
}

/// A reconcile failure to report: a CamelCase reason and a message for humans.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// Reason, e.g. `NotOwned`.
    pub reason: String,
    /// Message for humans.
    pub message: String,
    /// A retryable error that persists: the operator keeps trying, so the phase stays
    /// what it was and only `Degraded` says what is wrong (see [`Failure::to_report`]).
    pub retrying: bool,
}

impl Failure {
    /// The failure an error reports: its reason and its whole chain of causes.
    pub fn of(error: &crate::Error) -> Self {
        Failure { reason: error.reason().to_owned(), message: crate::events::error_chain(error), retrying: false }
    }

    /// What a failed reconcile shows in status, if anything: a permanent or blocking
    /// error at once (phase Failed); a retryable one only once its object has been
    /// failing for [`PERSISTENT_AFTER`](crate::driver::PERSISTENT_AFTER) (Degraded, phase
    /// kept), so that a blip never reaches status and an outage always does. Normal
    /// operation (waiting, a stale read) never does.
    pub fn to_report(error: &crate::Error) -> Option<Self> {
        Self::report_after(error, crate::driver::failing_for())
    }

    fn report_after(error: &crate::Error, failing_for: Option<std::time::Duration>) -> Option<Self> {
        match error.class() {
            crate::Class::Permanent | crate::Class::Blocked => Some(Self::of(error)),
            crate::Class::Retryable
                if !error.is_expected() && failing_for.is_some_and(|d| d >= crate::driver::PERSISTENT_AFTER) =>
            {
                Some(Failure { retrying: true, ..Self::of(error) })
            }
            crate::Class::Retryable => None,
        }
    }
}

/// The lifecycle part of a status.
#[derive(Clone, Debug, PartialEq)]
pub struct Assessment {
    /// The new phase, reached by an allowed edge from the previous one.
    pub phase: Phase,
    /// One line for `status.message`.
    pub message: String,
    /// Ready, Progressing and Degraded, merged with the previous conditions.
    pub conditions: Vec<Condition>,
}

/// The lifecycle part of a status as it is now, which the next one is computed from.
#[derive(Clone, Copy, Debug, Default)]
pub struct Previous<'a> {
    /// `status.phase`.
    pub phase: Option<Phase>,
    /// `status.observedGeneration`.
    pub observed_generation: Option<i64>,
    /// `status.conditions`.
    pub conditions: &'a [Condition],
}

impl<'a> Previous<'a> {
    /// The lifecycle part of `status`.
    pub fn of(status: &'a impl crate::phase::LifecycleStatus) -> Self {
        Previous {
            phase: status.phase(),
            observed_generation: status.observed_generation(),
            conditions: status.conditions(),
        }
    }
}

/// How many problems a status names; the rest are counted. A status is read by people
/// and written on every change, so a thousand failing pods must not make it a thousand
/// lines (the object would grow towards etcd's size limit).
pub const LISTED_PROBLEMS: usize = 3;
/// The longest one listed problem may be, in bytes (a container's waiting message can be
/// a long pull error).
pub const PROBLEM_LENGTH: usize = 256;

/// `problems` as one line: the first [`LISTED_PROBLEMS`], each cut to
/// [`PROBLEM_LENGTH`], then how many more there are.
pub fn listed(problems: &[String]) -> String {
    let mut shown: Vec<String> = problems.iter().take(LISTED_PROBLEMS).map(|p| cut(p, PROBLEM_LENGTH)).collect();
    if problems.len() > LISTED_PROBLEMS {
        shown.push(format!("and {} more", problems.len() - LISTED_PROBLEMS));
    }
    shown.join("; ")
}

/// `text` cut to at most `max` bytes at a character boundary, with an ellipsis.
fn cut(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_owned();
    }
    let mut end = max.saturating_sub('…'.len_utf8());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// Phase and conditions after a reconcile of generation `generation` that found
/// `progress`, or failed with `failure`.
pub fn assess(
    previous: Previous<'_>,
    generation: Option<i64>,
    progress: &Progress,
    failure: Option<&Failure>,
    now: Timestamp,
) -> Assessment {
    if let Some(failure) = failure.filter(|f| f.retrying) {
        return retrying(previous, generation, failure, now);
    }
    let ready = failure.is_none() && progress.ready && !progress.changed && progress.problems.is_empty();
    let observation = match (failure, ready) {
        (Some(_), _) => Observation::Broken,
        (None, true) => Observation::Ready,
        (None, false) => Observation::Progressing,
    };
    let phase = phase::next(previous.phase.unwrap_or_default(), observation);
    let conditions = Conditions::new(previous.conditions, generation, now);
    let problems = listed(&progress.problems);
    let (message, conditions) = match (failure, phase) {
        (Some(failure), _) => (
            failure.message.clone(),
            conditions
                .set(READY, false, &failure.reason, &failure.message)
                .set(PROGRESSING, false, &failure.reason, "stopped until the cause is fixed")
                .set(DEGRADED, true, &failure.reason, &failure.message)
                .set(RECONCILING, false, &failure.reason, "stopped until the cause is fixed")
                .set(STALLED, true, &failure.reason, &failure.message),
        ),
        (None, Phase::Running) => (
            progress.summary.clone(),
            conditions
                .set(READY, true, "Running", &progress.summary)
                .set(PROGRESSING, false, "Complete", "all resources are up to date")
                .set(DEGRADED, false, "Healthy", "")
                .set(RECONCILING, false, "Complete", "")
                .set(STALLED, false, "Healthy", ""),
        ),
        (None, _) if !problems.is_empty() => (
            problems.clone(),
            conditions
                .set(READY, false, "PodsFailing", &problems)
                .set(PROGRESSING, true, "Creating", &progress.summary)
                .set(DEGRADED, true, "PodsFailing", &problems)
                .set(RECONCILING, true, "Creating", &progress.summary)
                .set(STALLED, false, "PodsFailing", ""),
        ),
        (None, _) => {
            let waiting = if progress.changed {
                "resources updated, rollout starting".to_owned()
            } else {
                format!("waiting: {}", progress.summary)
            };
            (
                waiting.clone(),
                conditions
                    .set(READY, false, "Creating", &waiting)
                    .set(PROGRESSING, true, "Creating", &waiting)
                    .set(DEGRADED, false, "Healthy", "")
                    .set(RECONCILING, true, "Creating", &waiting)
                    .set(STALLED, false, "Healthy", ""),
            )
        }
    };
    Assessment { phase, message, conditions: conditions.build() }
}

/// A retryable error that persists: the operator keeps trying, nothing is known to be
/// wrong with the object or its children, so the phase and the other conditions stay
/// as they were (a Running app keeps serving); `Degraded` and the message say what
/// keeps failing. The next successful reconcile computes them afresh, which clears it.
fn retrying(previous: Previous<'_>, generation: Option<i64>, failure: &Failure, now: Timestamp) -> Assessment {
    let conditions =
        Conditions::new(previous.conditions, generation, now).set(DEGRADED, true, &failure.reason, &failure.message);
    Assessment {
        phase: previous.phase.unwrap_or_default(),
        message: failure.message.clone(),
        conditions: conditions.build(),
    }
}

/// The first assessment of a new object: accepted, nothing created yet.
pub fn pending(generation: Option<i64>, now: Timestamp) -> Assessment {
    let message = "accepted; creating resources".to_owned();
    let conditions = Conditions::new(&[], generation, now)
        .set(READY, false, "Pending", &message)
        .set(PROGRESSING, true, "Pending", &message)
        .set(RECONCILING, true, "Pending", &message)
        .build();
    Assessment { phase: Phase::Pending, message, conditions }
}

/// The assessment of an object being deleted, `what` saying what deletion waits for.
pub fn deleting(previous: Previous<'_>, generation: Option<i64>, what: &str, now: Timestamp) -> Assessment {
    let message = format!("deleting: {what}");
    let conditions = Conditions::new(previous.conditions, generation, now)
        .set(READY, false, "Deleting", &message)
        .set(PROGRESSING, true, "Deleting", &message)
        .set(RECONCILING, true, "Deleting", &message)
        .build();
    Assessment { phase: phase::next(previous.phase.unwrap_or_default(), Observation::Deleting), message, conditions }
}

#[cfg(test)]
mod tests;
