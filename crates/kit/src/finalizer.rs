//! kube's [`finalizer`](kube::runtime::finalizer::finalizer) with its errors mapped to
//! the kit's, and one race closed: removing our finalizer from an object that is
//! already gone (another reconcile got there first, kube#964) is success, not an error.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::jiff::Timestamp;

use kube::runtime::controller::Action;
use kube::runtime::finalizer::{Error as FinalizerError, Event, finalizer};
use kube::{Api, Resource};
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

/// Whether an object being deleted has been at it for `budget` or longer: cleanup then
/// gives up on what still blocks it and releases the finalizer, so nothing is stuck.
pub fn overdue(meta: &ObjectMeta, budget: Duration) -> bool {
    let Some(since) = &meta.deletion_timestamp else {
        return false;
    };
    let elapsed = Timestamp::now().duration_since(since.0);
    elapsed.as_secs() >= i64::try_from(budget.as_secs()).unwrap_or(i64::MAX)
}
