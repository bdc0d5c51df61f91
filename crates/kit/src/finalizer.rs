//! kube's [`finalizer`] with its errors mapped to
//! the kit's, and one race closed: removing our finalizer from an object that is
//! already gone (another reconcile got there first, kube#964) is success, not an error.
//! Also the clock of a bounded cleanup ([`cleanup_started`], [`overdue`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, LazyLock, Mutex};

use std::time::Duration;

use k8s_openapi::jiff::Timestamp;
use kube::api::{Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Error as FinalizerError, Event, finalizer};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

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
    // kube's helper ends the reconcile that adds the finalizer and waits for the watch
    // event of that very patch: a new object then waited its turn in the queue twice
    // before its children were made (at 1000 new WebApps, 1.25 times as long as an
    // operator that goes on). The patch answers the object as stored, finalizer
    // included, so the reconcile goes on with it; the helper then sees the finalizer
    // and applies.
    let object =
        if needs_finalizer(&*object, name) { Arc::new(add_finalizer(api, name, &object).await?) } else { object };
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

/// Whether `object` is live and lacks the finalizer `name`.
fn needs_finalizer<K: Resource>(object: &K, name: &str) -> bool {
    object.meta().deletion_timestamp.is_none() && !object.finalizers().iter().any(|f| f == name)
}

/// Adds the finalizer `name` to `object` and returns the object as stored. The patch is
/// kube's: it tests the list it extends, so a finalizer someone added meanwhile fails
/// it (409/422, retried) rather than being duplicated or lost (kube#964).
async fn add_finalizer<K>(api: &Api<K>, name: &str, object: &K) -> Result<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + std::fmt::Debug,
{
    let current = object.finalizers();
    let operations = if current.is_empty() {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": null},
            {"op": "add", "path": "/metadata/finalizers", "value": [name]},
        ])
    } else {
        json!([
            {"op": "test", "path": "/metadata/finalizers", "value": current},
            {"op": "add", "path": "/metadata/finalizers/-", "value": name},
        ])
    };
    let patch = serde_json::from_value(operations).map_err(|e| Error::InvalidSpec(format!("finalizer patch: {e}")))?;
    let object_name = object.meta().name.as_deref().ok_or_else(|| Error::InvalidSpec("object has no name".into()))?;
    api.patch(object_name, &PatchParams::default(), &Patch::<()>::Json(patch))
        .await
        .map_err(|e| Error::from(FinalizerError::<Error>::AddFinalizer(e)))
}

/// [`run`] for a namespaced object, with the controller's shared state `ctx` handed to
/// `apply` or `cleanup`: what every controller with a finalizer does in its reconcile.
pub async fn guard<K, C, A, D>(
    client: &kube::Client,
    name: &str,
    object: Arc<K>,
    ctx: &Arc<C>,
    apply: impl FnOnce(Arc<C>, Arc<K>) -> A,
    cleanup: impl FnOnce(Arc<C>, Arc<K>) -> D,
) -> Result<Action>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + DeserializeOwned
        + Serialize
        + std::fmt::Debug,
    A: Future<Output = Result<Action>>,
    D: Future<Output = Result<Action>>,
{
    let kind = K::kind(&());
    let namespace =
        object.meta().namespace.clone().ok_or_else(|| Error::InvalidSpec(format!("{kind} has no namespace")))?;
    let api: Api<K> = Api::namespaced(client.clone(), &namespace);
    let (for_apply, for_cleanup) = (ctx.clone(), ctx.clone());
    run(&api, name, object, |o| apply(for_apply, o), |o| cleanup(for_cleanup, o)).await
}

/// When this process first tried to clean up each object being deleted, by uid.
///
/// Kept in memory, where no user can write it. It used to be an annotation on the
/// object, which anyone allowed to edit the object could backdate to release the
/// finalizer at once, before the children were gone. A restart or a new leader starts
/// the clock again: the budget then counts from that process's first attempt, which
/// can only make a cleanup wait longer, never give up earlier. So an operator that was
/// down for longer than the budget still cleans up in order.
static CLEANUP_CLOCK: LazyLock<Mutex<HashMap<String, Timestamp>>> = LazyLock::new(Mutex::default);

/// When cleanup of `object` started in this process (now, for its first attempt).
pub fn cleanup_started<K: Resource>(object: &K) -> Timestamp {
    let uid = object.meta().uid.clone().unwrap_or_default();
    let mut clock = CLEANUP_CLOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    *clock.entry(uid).or_insert_with(Timestamp::now)
}

/// The cleanup of `object` ended (done, or given up): its clock goes.
pub fn cleanup_ended<K: Resource>(object: &K) {
    let uid = object.meta().uid.clone().unwrap_or_default();
    CLEANUP_CLOCK.lock().unwrap_or_else(std::sync::PoisonError::into_inner).remove(&uid);
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

    #[test]
    fn the_cleanup_clock_starts_at_the_first_attempt_and_ignores_annotations() {
        let mut object = k8s_openapi::api::core::v1::ConfigMap::default();
        object.metadata.uid = Some("clock-test".into());
        // What a user could write on the object has no say.
        object.metadata.annotations =
            Some([("apps.example.com/cleanup-started".to_owned(), "2000-01-01T00:00:00Z".to_owned())].into());
        let first = cleanup_started(&object);
        assert!(!overdue(first, Duration::from_secs(60)), "a backdated annotation was believed");
        assert_eq!(cleanup_started(&object), first, "the clock restarted");
        cleanup_ended(&object);
        assert!(cleanup_started(&object) >= first);
        cleanup_ended(&object);
    }
}
