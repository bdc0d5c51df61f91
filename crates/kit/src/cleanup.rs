//! The end of a cleanup run behind a finalizer, the same for every kind: done (a
//! `Deleted` event, and the finalizer may go), still waiting (retried with backoff), or
//! over its time budget (a `CleanupTimeout` warning, and the finalizer goes anyway, so
//! that no object, and no namespace being deleted, is stuck on it for ever).

use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;

use crate::events::{Events, error_chain};
use crate::step::Flow;
use crate::{Error, Result};

/// How one cleanup run ended, turned into what the finalizer does. `outcome` is the
/// cleanup pipeline's result, `deleting_since` the object's `deletionTimestamp`,
/// `deleted` the note of the `Deleted` event.
pub async fn conclude(
    outcome: Result<Flow>,
    deleting_since: Option<&Time>,
    budget: Duration,
    events: &Events,
    object: &ObjectReference,
    deleted: &str,
) -> Result<Action> {
    let blocked = match outcome {
        Ok(Flow::Continue | Flow::Done) => {
            events.normal(object, "Deleted", deleted).await;
            return Ok(Action::await_change());
        }
        Ok(Flow::Requeue(_)) => "children are still being deleted".to_owned(),
        Err(error) => error_chain(&error),
    };
    if over_budget(deleting_since, budget, Timestamp::now()) {
        let note = format!("Cleanup incomplete after {budget:?} ({blocked}); releasing the finalizer anyway");
        events.warning(object, "CleanupTimeout", note).await;
        return Ok(Action::await_change());
    }
    // Even a permanent error is retried here: the deletion must end, and the budget does end it.
    Err(Error::Waiting(blocked))
}

/// Whether a deletion that started at `since` has waited `budget` by `now`.
pub fn over_budget(since: Option<&Time>, budget: Duration, now: Timestamp) -> bool {
    since.is_some_and(|since| now.duration_since(since.0).as_secs() >= budget.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_budget_counts_from_the_deletion_timestamp() {
        let since = Time(Timestamp::from_second(1_000).unwrap());
        let budget = Duration::from_secs(120);
        assert!(!over_budget(Some(&since), budget, Timestamp::from_second(1_119).unwrap()));
        assert!(over_budget(Some(&since), budget, Timestamp::from_second(1_120).unwrap()));
        assert!(!over_budget(None, budget, Timestamp::from_second(9_999).unwrap()), "not being deleted");
    }
}
