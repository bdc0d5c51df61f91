//! The steps of a PodManager reconcile and of its deletion, and the report that turns
//! their outcome into status and events.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use reconcile_kit::apply::{self, Applied, Deletion, is_controlled_by};
use reconcile_kit::assess::Failure;
use reconcile_kit::owned::Owned;
use reconcile_kit::phase::Phase;
use reconcile_kit::step::{Flow, Pipeline, StepContext, StepFuture, step, timeout, when};
use reconcile_kit::workload::pods::pod_problems;
use reconcile_kit::{Error, Result, status as status_patch};
use webapp_api::PodManager;
use webapp_api::podmanager::conversion;
use webapp_api::podmanager::v2::PodTemplate;

use super::plan::{self, Changes, PodView};
use super::status::{self, Observed};
use super::{Context, HEALTH_CHECK};

/// Budget of one API-bound step.
const STEP_BUDGET: Duration = Duration::from_secs(30);

/// One reconcile of one PodManager.
pub(super) struct Run {
    ctx: Arc<Context>,
    pm: Arc<PodManager>,
    api: Api<PodManager>,
    owned: Owned,
    template: PodTemplate,
    observed: Observed,
    changes: Changes,
}

impl StepContext for Run {
    fn object(&self) -> String {
        reconcile_kit::driver::object_key(self.pm.as_ref())
    }
}

impl Run {
    fn new(ctx: Arc<Context>, pm: Arc<PodManager>) -> Self {
        let api = Api::namespaced(ctx.client.clone(), &pm.namespace().unwrap_or_default());
        let owned = Owned::new(ctx.client.clone(), ctx.events.clone(), pm.as_ref());
        Run {
            ctx,
            pm,
            api,
            owned,
            template: PodTemplate::default(),
            observed: Observed::default(),
            changes: Changes::default(),
        }
    }

    /// The cached Pods this PodManager controls (never one we do not own, whatever its
    /// labels say).
    fn pods(&self) -> Vec<Arc<Pod>> {
        let (namespace, uid) = (self.pm.namespace(), self.pm.uid().unwrap_or_default());
        self.ctx.pods.state_filter(|pod| pod.namespace() == namespace && is_controlled_by(&pod.metadata, &uid))
    }
}

/// The reconcile pipeline of a live PodManager.
static APPLY: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(when(|run: &Run| run.pm.status.is_none(), step("accept", accept)))
        .then(step("plan", plan_template))
        .then(step("observe", observe))
        .then(timeout(STEP_BUDGET, step("delete", delete_pods)))
        .then(timeout(STEP_BUDGET, step("create", create_pods)))
});

/// A new PodManager is first marked `Pending`, so that a watch shows the whole lifecycle.
fn accept(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let pending = status::pending(&run.pm, Timestamp::now());
        if let Some(accepted) = status_patch::patch_if_changed(&run.api, run.pm.as_ref(), None, &pending).await? {
            run.pm = Arc::new(accepted);
        }
        Ok(Flow::Continue)
    })
}

/// The Pod template: v1's image and labels, completed by what a v2 client set.
fn plan_template(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        run.template = conversion::template(&run.pm).map_err(|e| Error::InvalidSpec(e.to_string()))?;
        run.observed.hash = plan::template_hash(&run.template);
        Ok(Flow::Continue)
    })
}

/// Reads the Pods from the cache and decides what to change.
fn observe(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = run.pm.name_any();
        let pods = run.pods();
        run.observed.problems = pod_problems(pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()));
        run.observed.pods = pods.iter().map(|pod| PodView::of(&name, pod)).collect();
        run.changes = plan::changes(run.pm.spec.replicas, &run.observed.hash, &run.observed.pods);
        Ok(Flow::Continue)
    })
}

fn delete_pods(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        for (name, why) in std::mem::take(&mut run.changes.delete) {
            let note = format!("Deleted pod {name}: {}", why.as_str());
            // The uid the plan saw: never a Pod that replaced it since.
            let uid = run.observed.pods.iter().find(|p| p.name == name).and_then(|p| p.uid.clone());
            run.owned.delete_planned::<Pod>(&name, uid, "Deleted", note).await?;
            run.observed.changed = true;
        }
        Ok(Flow::Continue)
    })
}

fn create_pods(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let owner = apply::owner_reference(run.pm.as_ref())?;
        for ordinal in std::mem::take(&mut run.changes.create) {
            let pod = plan::desired_pod(&run.pm, &run.template, &run.observed.hash, owner.clone(), ordinal);
            // Only missing ordinals get here. A Pod is replaced, never changed: the kit
            // creates it, and never writes one that stands under the name (ours, if the
            // cache lags our own create across a spec change: plan again; not ours:
            // NotOwned, left alone).
            let (outcome, _) = run.owned.create(pod).await?;
            run.observed.changed |= outcome != Applied::Unchanged;
        }
        Ok(Flow::Continue)
    })
}

/// Reconciles a live PodManager: runs the pipeline, then reports.
pub(super) async fn apply(ctx: Arc<Context>, pm: Arc<PodManager>) -> Result<Action> {
    let mut run = Run::new(ctx, pm);
    let error = match APPLY.run(&mut run).await {
        Ok(_) => return report(&run, None).await,
        Err(error) => error,
    };
    // A failure the next attempt will not fix by itself, or one that persists, is shown
    // in status; the error still goes to the error policy whatever the report does.
    if let Some(failure) = Failure::to_report(&error)
        && let Err(report_error) = report(&run, Some(&failure)).await
    {
        tracing::warn!(error = %report_error, "could not report failure");
    }
    Err(error)
}

/// Writes the status (only if it changed) and publishes the events about it: Warning
/// `Failed` (the source document's reason) once per distinct failure, `Running` when
/// the PodManager becomes ready.
async fn report(run: &Run, failure: Option<&Failure>) -> Result<Action> {
    let pm = run.pm.as_ref();
    let previous = pm.status.clone().unwrap_or_default();
    let next = status::compute(pm, &run.observed, failure, Timestamp::now());
    status_patch::patch_if_changed(&run.api, pm, pm.status.as_ref(), &next).await?;

    let reference = pm.object_ref(&());
    if let Some(failure) = failure
        && previous.message.as_deref() != Some(failure.message.as_str())
    {
        run.ctx.events.warning(&reference, "Failed", format!("{}: {}", failure.reason, failure.message)).await;
    }
    reconcile_kit::status::log_phase_change(previous.phase, next.phase);
    if next.phase != previous.phase && next.phase == Some(Phase::Running) {
        run.ctx.events.normal(&reference, "Running", next.message.clone().unwrap_or_default()).await;
    }
    Ok(Action::requeue(HEALTH_CHECK))
}

/// Deletes every Pod of a PodManager and waits until they are gone; returns `Ok` (which
/// releases the finalizer) only then, or once the cleanup budget is spent, with a warning
/// naming what still blocks, so that no PodManager is stuck.
pub(super) async fn cleanup(ctx: Arc<Context>, pm: Arc<PodManager>) -> Result<Action> {
    let run = Run::new(ctx, pm.clone());
    let outcome = async {
        let pods = run.pods();
        let deleting = status::deleting(&pm, pods.len(), Timestamp::now());
        status_patch::patch_if_changed(&run.api, pm.as_ref(), pm.status.as_ref(), &deleting).await?;
        let mut remaining = 0;
        for pod in &pods {
            let note = format!("Deleted pod {}: its PodManager is being deleted", pod.name_any());
            if run.owned.delete_because::<Pod>(&pod.name_any(), "Deleted", note).await? != Deletion::Gone {
                remaining += 1;
            }
        }
        Ok::<_, Error>(remaining)
    }
    .await;
    let outcome = outcome.and_then(|remaining| match remaining {
        0 => Ok(Flow::Continue),
        remaining => Err(Error::Waiting(format!("{remaining} pods are still being deleted"))),
    });
    let deleted = "All pods deleted; releasing the finalizer";
    let budget = run.ctx.cleanup_budget;
    reconcile_kit::cleanup::conclude(pm.as_ref(), outcome, budget, &run.ctx.events, deleted).await
}
