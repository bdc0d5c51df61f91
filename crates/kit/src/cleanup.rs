//! The end of a cleanup run behind a finalizer, the same for every kind: done (a
//! `Deleted` event, and the finalizer may go), still waiting (retried with backoff), or
//! over its time budget (a `CleanupTimeout` warning, and the finalizer goes anyway, so
//! that no object, and no namespace being deleted, is stuck on it for ever). The budget
//! counts from this process's first cleanup attempt ([`crate::finalizer::cleanup_started`],
//! kept in memory where users cannot backdate it), so an operator that was down for
//! longer still cleans up in order.

use std::time::Duration;

use std::fmt::Debug;

use kube::Resource;
use kube::runtime::controller::Action;
use serde::de::DeserializeOwned;

use crate::events::{Events, error_chain};
use crate::finalizer::{cleanup_ended, cleanup_started, overdue};
use crate::step::Flow;
use crate::{Error, Result};

/// How one cleanup run of `object` ended, turned into what the finalizer does.
/// `outcome` is the cleanup pipeline's result, `deleted` the note of the `Deleted` event.
pub async fn conclude<K>(
    object: &K,
    outcome: Result<Flow>,
    budget: Duration,
    events: &Events,
    deleted: &str,
) -> Result<Action>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + Debug,
{
    let reference = object.object_ref(&());
    let object_ref = &reference;
    let blocked = match outcome {
        Ok(Flow::Continue | Flow::Done) => {
            events.normal(object_ref, "Deleted", deleted).await;
            cleanup_ended(object);
            return Ok(Action::await_change());
        }
        Ok(Flow::Requeue(_)) => "children are still being deleted".to_owned(),
        Err(error) => error_chain(&error),
    };
    if overdue(cleanup_started(object), budget) {
        let note = format!("Cleanup incomplete after {budget:?} ({blocked}); releasing the finalizer anyway");
        events.warning(object_ref, "CleanupTimeout", note).await;
        cleanup_ended(object);
        return Ok(Action::await_change());
    }
    // Even a permanent error is retried here: the deletion must end, and the budget does end it.
    Err(Error::Waiting(blocked))
}
