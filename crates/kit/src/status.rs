//! Status writes, only when the status changed, and only from a current view.
//!
//! A status that is written on every reconcile re-triggers the controller through its
//! own watch (kube#354). Controllers compute the whole status deterministically, and
//! this patches it only when it differs from what the object already carries.
//!
//! A reconcile can start from a cached object that lags behind the API server (a burst
//! of child events runs reconciles before the watch delivers our own last status
//! write). A status computed from such a view would move the object backwards, so the
//! write carries the `resourceVersion` it was computed from as a precondition: a stale
//! view gets [`Error::Stale`] and the reconcile runs again from the fresh object.
//!
//! Not every change is written at once ([`Statuses`]). A *transition* — a new phase, a
//! new `observedGeneration`, a condition whose status, reason or observedGeneration
//! changes, or the first status — is written in the reconcile that finds it. A change
//! of detail only (the pod counts of a rollout, the wording of a message) waits until
//! it has been pending for [`DETAIL_MAX_AGE`], or until a transition carries it:
//! a Deployment's counts change several times on its way to ready, and each count
//! written on its own costs a write, a watch event and a reconcile, while the phase
//! change that follows writes the final counts anyway. So a status shows every phase
//! at once, and its counts are never more than a few seconds old.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Patch, PatchParams};
use kube::core::object::HasStatus;
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::MANAGER;
use crate::error::{Error, Result};
use crate::phase::{LifecycleStatus, Phase};

/// Logs a change of phase the way kubectl prints phases: `phase changed from=<none>
/// to=Pending`, unquoted. Nothing when the phase stays. Every controller logs its
/// transitions through this one line, so they read (and grep) the same.
pub fn log_phase_change(from: Option<Phase>, to: Option<Phase>) {
    if from != to {
        tracing::info!(from = %Phase::or_none(from), to = %Phase::or_none(to), "phase changed");
    }
}

/// How long a change of detail only may wait for a transition before it is written.
pub const DETAIL_MAX_AGE: Duration = Duration::from_secs(5);

/// Server-side applies `desired` as the status of `object` unless `current` equals it.
/// Returns the object as written, or `None` when nothing had to be written.
pub async fn patch_if_changed<K, S>(api: &Api<K>, object: &K, current: Option<&S>, desired: &S) -> Result<Option<K>>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(None);
    }
    let kind = K::kind(&()).into_owned();
    let name = object.meta().name.clone().unwrap_or_default();
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": kind,
        "metadata": {"name": name, "resourceVersion": object.meta().resource_version},
        "status": desired,
    });
    let params = PatchParams::apply(MANAGER).force();
    match api.patch_status(&name, &params, &Patch::Apply(&patch)).await {
        Ok(written) => Ok(Some(written)),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(Error::Stale { kind, name }),
        Err(e) => Err(Error::kube(format!("patch status of {kind} {name}"), e)),
    }
}

/// Whether going from `current` to `next` is a transition, which is written at once: a
/// different phase or `observedGeneration`, or a condition that appears, goes, or
/// changes its status, reason or `observedGeneration`. Anything else (counts,
/// messages, the time-free detail a kind reports) is detail.
pub fn is_transition<S: LifecycleStatus>(current: &S, next: &S) -> bool {
    fn states(conditions: &[Condition]) -> Vec<(&str, &str, &str, Option<i64>)> {
        let mut states: Vec<_> = conditions
            .iter()
            .map(|c| (c.type_.as_str(), c.status.as_str(), c.reason.as_str(), c.observed_generation))
            .collect();
        states.sort_unstable();
        states
    }
    current.phase() != next.phase()
        || current.observed_generation() != next.observed_generation()
        || states(current.conditions()) != states(next.conditions())
}

/// What to do with a computed status.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// It equals the current one: nothing to write.
    Unchanged,
    /// Write it now.
    Write,
    /// A change of detail only, which may wait this much longer.
    Wait(Duration),
}

/// The pure rule of [`Statuses`]: `next` against `current`, given since when a change of
/// detail has been waiting (`None`: since now).
pub fn decide<S: LifecycleStatus + PartialEq>(
    current: Option<&S>,
    next: &S,
    waiting_since: Option<Instant>,
    now: Instant,
    max_age: Duration,
) -> Decision {
    let Some(current) = current else { return Decision::Write };
    if current == next {
        return Decision::Unchanged;
    }
    if is_transition(current, next) {
        return Decision::Write;
    }
    let waited = now.saturating_duration_since(waiting_since.unwrap_or(now));
    match max_age.checked_sub(waited) {
        Some(left) if !left.is_zero() => Decision::Wait(left),
        _ => Decision::Write,
    }
}

/// What [`Statuses::write`] did.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome<K> {
    /// The status already said this; nothing was sent.
    Unchanged,
    /// Written; the object as the API server returned it.
    Written(K),
    /// A change of detail, left for later: look again after this long.
    Deferred(Duration),
}

/// The status writes of one controller: transitions at once, detail at most
/// [`DETAIL_MAX_AGE`] late (see the module docs). Remembers, per object uid, since when
/// a change of detail has been waiting.
#[derive(Debug)]
pub struct Statuses {
    max_age: Duration,
    waiting: Mutex<HashMap<String, Instant>>,
}

impl Default for Statuses {
    fn default() -> Self {
        Statuses::new(DETAIL_MAX_AGE)
    }
}

impl Statuses {
    /// Changes of detail wait at most `max_age`.
    pub fn new(max_age: Duration) -> Self {
        Statuses { max_age, waiting: Mutex::default() }
    }

    /// Writes `desired` as the status of `object` when [`decide`] says so (with the
    /// `resourceVersion` precondition of [`patch_if_changed`]).
    pub async fn write<K, S>(&self, api: &Api<K>, object: &K, desired: &S) -> Result<Outcome<K>>
    where
        K: Resource<DynamicType = ()> + HasStatus<Status = S> + Clone + Debug + DeserializeOwned,
        S: LifecycleStatus + Serialize + PartialEq,
    {
        let uid = object.uid().unwrap_or_default();
        let now = Instant::now();
        let since = self.lock().get(&uid).copied();
        match decide(object.status(), desired, since, now, self.max_age) {
            Decision::Unchanged => {
                self.lock().remove(&uid);
                Ok(Outcome::Unchanged)
            }
            Decision::Wait(left) => {
                let mut waiting = self.lock();
                // Objects deleted while a change of theirs waited.
                waiting.retain(|_, since| now.saturating_duration_since(*since) <= self.max_age * 10);
                waiting.entry(uid).or_insert(now);
                Ok(Outcome::Deferred(left))
            }
            Decision::Write => {
                let written = patch_if_changed(api, object, None, desired).await?;
                self.lock().remove(&uid);
                Ok(written.map_or(Outcome::Unchanged, Outcome::Written))
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Instant>> {
        self.waiting.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests;
