//! kube's [`finalizer`](kube::runtime::finalizer::finalizer) with its errors mapped to
//! the kit's, and one race closed: removing our finalizer from an object that is
//! already gone (another reconcile got there first, kube#964) is success, not an error.
//! Also the clock of a bounded cleanup ([`cleanup_started`], [`overdue`]).

use std::future::Future;
use std::sync::Arc;

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Error as FinalizerError, Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Runs `apply` for a live object (after making sure it carries `name` as a finalizer)
/// or `cleanup` for one being deleted (removing the finalizer once it succeeds).
pub async fn run<K, A, C>(
    api: &Api<K>,
    name: &str,
    object: Arc<K>,
    apply: impl FnOnce(Arc<K>) -> A,
    cleanup: impl FnOnce(Arc<K>) -> C,
) -> Result<Action>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
    A: Future<Output = Result<Action>>,
    C: Future<Output = Result<Action>>,
{
    let outcome = finalizer(api, name, object, |event| async move {
        match event {
            Event::Apply(object) => apply(object).await,
            Event::Cleanup(object) => cleanup(object).await,
        }
    })
    .await;
    match outcome {
        Err(FinalizerError::RemoveFinalizer(kube::Error::Api(status))) if status.code == 404 => {
            Ok(Action::await_change())
        }
        other => other.map_err(Error::from),
    }
}

/// Annotation recording when the operator first tried to clean an object up.
pub const CLEANUP_STARTED: &str = "apps.example.com/cleanup-started";

/// When cleanup of `object` started: its [`CLEANUP_STARTED`] annotation, which the first
/// attempt writes. A cleanup budget counted from here rather than from
/// `deletionTimestamp` still lets an operator that was down longer than the budget
/// clean up in order instead of giving up at once.
pub async fn cleanup_started<K>(api: &Api<K>, object: &K) -> Result<Timestamp>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    if let Some(started) = object.annotations().get(CLEANUP_STARTED).and_then(|t| t.parse().ok()) {
        return Ok(started);
    }
    let now = Timestamp::now();
    let name = object.name_any();
    let patch = serde_json::json!({"metadata": {"annotations": {CLEANUP_STARTED: now.to_string()}}});
    match api.patch(&name, &PatchParams::default(), &Patch::Merge(&patch)).await {
        Ok(_) => Ok(now),
        // Gone meanwhile: nothing is left to budget.
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(now),
        Err(e) => Err(Error::kube(format!("record cleanup start of {name}"), e)),
    }
}

/// Whether a cleanup that started at `started` has used up `budget`.
pub fn overdue(started: Timestamp, budget: Duration) -> bool {
    let elapsed = Timestamp::now().duration_since(started);
    elapsed.as_secs() >= i64::try_from(budget.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cleanup_is_overdue_once_its_budget_is_spent() {
        let now = Timestamp::now();
        assert!(!overdue(now, Duration::from_secs(60)));
        let long_ago = now.checked_sub(k8s_openapi::jiff::SignedDuration::from_secs(61)).unwrap();
        assert!(overdue(long_ago, Duration::from_secs(60)));
    }
}
