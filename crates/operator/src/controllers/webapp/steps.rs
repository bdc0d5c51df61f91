//! The steps of a WebApp reconcile and of its deletion, and the report that turns
//! their outcome into status and events.

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource, ResourceExt};
use reconcile_kit::apply::{self, Applied, Deletion};
use reconcile_kit::owned::Owned;
use reconcile_kit::step::{Flow, Pipeline, StepContext, StepFuture, branch, step, timeout, when};
use reconcile_kit::{Class, Error, Result, status as status_patch};
use serde::Serialize;
use serde::de::DeserializeOwned;
use webapp_api::{Phase, WebApp};

use super::plan::{self, Children};
use super::status::{self, Failure, Observed};
use super::{CLEANUP_BUDGET, Context, HEALTH_CHECK};
use crate::controllers::children::pod_problems;
use crate::controllers::labels;

/// Budget of one API-bound step.
const STEP_BUDGET: Duration = Duration::from_secs(30);
/// How soon to look again while a child is being deleted.
const DELETE_POLL: Duration = Duration::from_secs(1);

/// One reconcile of one WebApp.
pub(super) struct Run {
    ctx: Arc<Context>,
    webapp: Arc<WebApp>,
    namespace: String,
    api: Api<WebApp>,
    owned: Owned,
    children: Option<Children>,
    observed: Observed,
}

impl StepContext for Run {
    fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.webapp.name_any())
    }
}

impl Run {
    fn new(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Self {
        let namespace = webapp.namespace().unwrap_or_default();
        let api = ctx.api(&namespace);
        let owned = Owned::new(ctx.client.clone(), ctx.events.clone(), webapp.as_ref());
        Run { ctx, webapp, namespace, api, owned, children: None, observed: Observed::default() }
    }

    fn name(&self) -> String {
        self.webapp.name_any()
    }

    fn children(&self) -> Result<&Children> {
        self.children.as_ref().ok_or_else(|| Error::InvalidSpec("plan step did not run".into()))
    }

    fn reference(&self) -> ObjectReference {
        self.webapp.object_ref(&())
    }

    /// Applies one child (its cached copy from `store` first) and returns it as it is now.
    async fn apply_child<K>(&mut self, store: &Store<K>, desired: K, synced: &str) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let cached = store.get(&ObjectRef::new(&self.name()).within(&self.namespace));
        let (outcome, live) = self.owned.apply(cached.as_deref(), desired, synced).await?;
        self.observed.changed |= outcome != Applied::Unchanged;
        Ok(live)
    }

    /// Deletes one child if it is ours; `Continue` once it is gone, `Requeue` while it goes.
    async fn delete_child<K>(&mut self) -> Result<Flow>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        match self.owned.delete::<K>(&self.name()).await? {
            Deletion::Gone => Ok(Flow::Continue),
            Deletion::Requested | Deletion::InProgress => Ok(Flow::Requeue(DELETE_POLL)),
        }
    }
}

/// The reconcile pipeline of a live WebApp.
static APPLY: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(when(|run: &Run| run.webapp.status.is_none(), step("accept", accept)))
        .then(step("plan", plan_children))
        .then(timeout(STEP_BUDGET, step("deployment", apply_deployment)))
        .then(timeout(STEP_BUDGET, step("service", apply_service)))
        .then(timeout(
            STEP_BUDGET,
            branch(
                "ingress",
                |run: &Run| run.webapp.spec.domain.is_some(),
                step("ingress", apply_ingress),
                step("ingress", remove_ingress),
            ),
        ))
        .then(step("observe", observe))
});

/// The deletion pipeline: children go in order, each waited for.
static CLEANUP: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(timeout(STEP_BUDGET, step("delete-ingress", delete_ingress)))
        .then(timeout(STEP_BUDGET, step("delete-service", delete_service)))
        .then(timeout(STEP_BUDGET, step("delete-deployment", delete_deployment)))
});

/// A new WebApp is first marked `Pending` (accepted, nothing created yet), so that
/// `kubectl get webapps -w` shows the whole lifecycle.
fn accept(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let pending = status::pending(&run.webapp, Timestamp::now());
        // The rest of this reconcile starts from what is now written (status and
        // resourceVersion, the precondition of the next status write).
        if let Some(accepted) = status_patch::patch_if_changed(&run.api, run.webapp.as_ref(), None, &pending).await? {
            run.webapp = Arc::new(accepted);
        }
        Ok(Flow::Continue)
    })
}

fn plan_children(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        plan::validate(&run.webapp).map_err(Error::InvalidSpec)?;
        let owner = apply::owner_reference(run.webapp.as_ref())?;
        run.children = Some(plan::desired(&run.webapp, owner));
        run.observed.ingress = run.webapp.spec.domain.is_none();
        Ok(Flow::Continue)
    })
}

fn apply_deployment(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let (ctx, desired) = (run.ctx.clone(), run.children()?.deployment.clone());
        run.observed.deployment = Some(run.apply_child(&ctx.deployments, desired, "DeploymentSynced").await?);
        Ok(Flow::Continue)
    })
}

fn apply_service(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let (ctx, desired) = (run.ctx.clone(), run.children()?.service.clone());
        run.apply_child(&ctx.services, desired, "ServiceSynced").await?;
        run.observed.service = true;
        Ok(Flow::Continue)
    })
}

fn apply_ingress(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let Some(desired) = run.children()?.ingress.clone() else {
            return Ok(Flow::Continue);
        };
        let ctx = run.ctx.clone();
        run.apply_child(&ctx.ingresses, desired, "IngressSynced").await?;
        run.observed.ingress = true;
        Ok(Flow::Continue)
    })
}

/// The domain was removed: the Ingress goes. Nothing else waits for it, so the
/// reconcile goes on while it is deleted.
fn remove_ingress(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        run.delete_child::<Ingress>().await?;
        Ok(Flow::Continue)
    })
}

fn observe(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = run.name();
        let pods = run.ctx.pods.state_filter(|pod| {
            pod.namespace().as_deref() == Some(run.namespace.as_str())
                && pod.labels().get(labels::INSTANCE) == Some(&name)
        });
        run.observed.pod_problems = pod_problems(&pods);
        Ok(Flow::Continue)
    })
}

fn delete_ingress(run: &mut Run) -> StepFuture<'_> {
    Box::pin(run.delete_child::<Ingress>())
}

fn delete_service(run: &mut Run) -> StepFuture<'_> {
    Box::pin(run.delete_child::<Service>())
}

fn delete_deployment(run: &mut Run) -> StepFuture<'_> {
    Box::pin(run.delete_child::<Deployment>())
}

/// Reconciles a live WebApp: runs the pipeline, then reports.
pub(super) async fn apply(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Result<Action> {
    let mut run = Run::new(ctx, webapp);
    match APPLY.run(&mut run).await {
        Ok(Flow::Requeue(after)) => report(&mut run, None).await.map(|_| Action::requeue(after)),
        Ok(_) => report(&mut run, None).await,
        Err(error) => {
            if matches!(error.class(), Class::Permanent | Class::Blocked) {
                let failure =
                    Failure { reason: error.reason().to_owned(), message: reconcile_kit::events::error_chain(&error) };
                // The error goes on to the error policy whatever the report does.
                if let Err(report_error) = report(&mut run, Some(&failure)).await {
                    tracing::warn!(error = %report_error, "could not report failure");
                }
            }
            Err(error)
        }
    }
}

/// Writes the status (only if it changed) and publishes the events about it.
async fn report(run: &mut Run, failure: Option<&Failure>) -> Result<Action> {
    let webapp = run.webapp.clone();
    let previous = webapp.status.clone().unwrap_or_default();
    let next = status::compute(&webapp, &run.observed, failure, Timestamp::now());
    status_patch::patch_if_changed(&run.api, webapp.as_ref(), webapp.status.as_ref(), &next).await?;

    let reference = run.reference();
    let spec_changed = previous.observed_generation.is_some_and(|seen| Some(seen) < webapp.metadata.generation);
    if spec_changed && failure.is_none() {
        let generation = webapp.metadata.generation.unwrap_or_default();
        run.ctx
            .events
            .normal(&reference, "ResourcesSynced", format!("Resources synced to generation {generation}"))
            .await;
    }
    if let Some(failure) = failure
        && previous.conditions.iter().all(|c| c.message != failure.message)
    {
        run.ctx.events.warning(&reference, &failure.reason, &failure.message).await;
    }
    if next.phase != previous.phase
        && let Some(phase) = next.phase
    {
        tracing::info!(from = ?previous.phase, to = %phase, "phase changed");
        if phase == Phase::Running {
            run.ctx.events.normal(&reference, "Running", next.message.clone().unwrap_or_default()).await;
        }
    }
    Ok(Action::requeue(HEALTH_CHECK))
}

/// Deletes a WebApp's children in order (Ingress → Service → Deployment), waiting for
/// each; returns `Ok` only when all are gone, which lets the finalizer go. Bounded: after
/// [`CLEANUP_BUDGET`], whatever still blocks (a child that will not go, an API error
/// that keeps coming) is reported and the finalizer released, so that no WebApp is stuck.
pub(super) async fn cleanup(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Result<Action> {
    let mut run = Run::new(ctx, webapp.clone());
    let outcome = async {
        let deleting = status::deleting(&webapp, "removing children", Timestamp::now());
        if let Some(written) =
            status_patch::patch_if_changed(&run.api, webapp.as_ref(), webapp.status.as_ref(), &deleting).await?
        {
            run.webapp = Arc::new(written);
        }
        CLEANUP.run(&mut run).await
    }
    .await;
    let blocked = match outcome {
        Ok(Flow::Continue | Flow::Done) => {
            run.ctx.events.normal(&run.reference(), "Deleted", "All children deleted; releasing the finalizer").await;
            return Ok(Action::await_change());
        }
        Ok(Flow::Requeue(_)) => "children are still being deleted".to_owned(),
        Err(error) => reconcile_kit::events::error_chain(&error),
    };
    if reconcile_kit::finalizer::overdue(&webapp.metadata, CLEANUP_BUDGET) {
        let note = format!("Cleanup incomplete after {CLEANUP_BUDGET:?} ({blocked}); releasing the finalizer anyway");
        run.ctx.events.warning(&run.reference(), "CleanupTimeout", note).await;
        return Ok(Action::await_change());
    }
    // Even a permanent error is retried here: the deletion must end, and the budget does end it.
    Err(Error::Waiting(blocked))
}
