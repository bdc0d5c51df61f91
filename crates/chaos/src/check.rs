//! The invariants, checked after every phase once the churn has stopped: every live
//! object converges (phase Running at its generation) within the bound, deleted objects
//! are gone (no stuck finalizer); then, over a listing of the namespace, the invariants
//! of [`crate::invariants`] (no lost update, no orphan, no duplicate), which must hold
//! on a listing within 10 s.

use std::collections::HashMap;
use std::time::Duration;

use kube::ResourceExt;
use kube::api::ListParams;
use serde_json::Value;
use tokio::time::Instant;

use crate::invariants::{self, Parent, Problem};
use crate::kinds::Kind;
use crate::listed::Listed;
use crate::workload::{Shared, Target, lock};

/// What the checks found after one phase.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Verdict {
    /// Objects that should exist.
    pub objects: usize,
    /// Of those, how many converged within the bound.
    pub converged: usize,
    /// Seconds from the end of the churn until everything converged (the bound if never).
    pub converge_seconds: f64,
    /// Objects whose children do not show their last spec, or that vanished.
    pub lost: usize,
    /// Children whose owner is gone.
    pub orphaned: usize,
    /// Children beyond what the owner's spec asks for.
    pub duplicated: usize,
    /// Deleted objects still there after the bound.
    pub stuck: usize,
    /// One line per problem.
    pub problems: Vec<String>,
    /// What the last listing's checks compared ([`invariants::coverage`]).
    pub compared: String,
}

async fn parents(target: &Target) -> Result<HashMap<(Kind, String), Parent>, kube::Error> {
    let mut out = HashMap::new();
    for kind in Kind::ALL {
        for object in target.api(kind).list(&ListParams::default()).await?.items {
            let generation = object.metadata.generation;
            let status = object.data.get("status");
            let phase = status.and_then(|s| s.get("phase")).and_then(Value::as_str);
            let observed = status.and_then(|s| s.get("observedGeneration")).and_then(Value::as_i64);
            out.insert(
                (kind, object.name_any()),
                Parent {
                    kind,
                    uid: object.uid().unwrap_or_default(),
                    spec: object.data.get("spec").cloned().unwrap_or(Value::Null),
                    converged: phase == Some("Running") && observed == generation,
                    deleting: object.metadata.deletion_timestamp.is_some(),
                },
            );
        }
    }
    Ok(out)
}

/// Waits until every object the model holds live has converged and every deleted one
/// is gone, or `bound` passes; then checks children. The model's uncertain names take
/// the cluster's state as theirs first.
pub async fn check(target: &Target, model: &Shared, bound: Duration) -> Result<Verdict, kube::Error> {
    let start = Instant::now();
    let (mut verdict, mut found) = (Verdict::default(), HashMap::new());
    while start.elapsed() < bound {
        found = parents(target).await?;
        adopt_uncertain(model, &found);
        verdict = convergence(model, &found);
        if verdict.converged == verdict.objects && verdict.stuck == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    verdict.converge_seconds = start.elapsed().as_secs_f64().min(bound.as_secs_f64());
    // Children lag their owners' status by a watch event or the garbage collector's
    // next pass: a difference must persist for a few seconds to count.
    let (mut last, mut compared) = children_check(target, model, &found).await?;
    for _ in 0..5 {
        if last.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        found = parents(target).await?;
        (last, compared) = children_check(target, model, &found).await?;
    }
    verdict.compared = compared;
    for problem in last {
        match problem {
            Problem::Lost(_) => verdict.lost += 1,
            Problem::Orphan(_) => verdict.orphaned += 1,
            Problem::Duplicate(_, n) => verdict.duplicated += n,
        }
        verdict.problems.push(problem.line());
    }
    Ok(verdict)
}

/// A name whose last write had an unknown outcome takes the cluster's state.
fn adopt_uncertain(model: &Shared, found: &HashMap<(Kind, String), Parent>) {
    for slot in lock(model).slots.iter_mut().filter(|s| s.uncertain) {
        match found.get(&(slot.kind, slot.name.clone())) {
            Some(parent) if !parent.deleting => {
                slot.live = true;
                slot.spec = parent.spec.clone();
            }
            _ => slot.live = false,
        }
        slot.uncertain = false;
    }
}

fn convergence(model: &Shared, found: &HashMap<(Kind, String), Parent>) -> Verdict {
    let model = lock(model);
    let mut verdict = Verdict::default();
    for slot in &model.slots {
        let parent = found.get(&(slot.kind, slot.name.clone()));
        if slot.live {
            verdict.objects += 1;
            match parent {
                Some(p) if p.converged && !p.deleting => verdict.converged += 1,
                Some(p) if p.deleting => {
                    verdict.problems.push(format!("{} {} is deleting", slot.kind.name(), slot.name))
                }
                Some(_) => verdict.problems.push(format!("{} {} not converged", slot.kind.name(), slot.name)),
                None => verdict.problems.push(format!("{} {} is gone", slot.kind.name(), slot.name)),
            }
        } else if parent.is_some() {
            verdict.stuck += 1;
            verdict.problems.push(format!("{} {} was deleted but is still there", slot.kind.name(), slot.name));
        }
    }
    verdict
}

/// The invariants over a fresh listing, and what they compared.
async fn children_check(
    target: &Target,
    model: &Shared,
    found: &HashMap<(Kind, String), Parent>,
) -> Result<(Vec<Problem>, String), kube::Error> {
    let listed = Listed::list(target).await?;
    let slots = lock(model).slots.clone();
    Ok((invariants::problems(&listed, &slots, found), invariants::coverage(&listed, &slots, found)))
}
