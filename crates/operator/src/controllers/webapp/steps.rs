//! The steps of a WebApp reconcile and of its deletion, and the report that turns
//! their outcome into status and events.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use k8s_openapi::api::core::v1::ObjectReference;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Resource, ResourceExt};
use reconcile_kit::apply::{self, Applied, Deletion};
use reconcile_kit::step::{Flow, Pipeline, StepContext, StepFuture, branch, step, timeout, when};
use reconcile_kit::{Class, Error, Result, status as status_patch};
use webapp_api::{Phase, WebApp};

use super::plan::{self, Children};
use super::status::{self, Failure, Observed};
use super::{CLEANUP_BUDGET, Context, HEALTH_CHECK, selector};
use crate::controllers::children::{check_resources, pod_problems};
use crate::controllers::labels;

/// Budget of one API-bound step.
const STEP_BUDGET: Duration = Duration::from_secs(30);

/// One reconcile of one WebApp.
pub(super) struct Run {
    ctx: Arc<Context>,
    webapp: Arc<WebApp>,
    namespace: String,
    children: Option<Children>,
    observed: Observed,
    /// Events to publish once the status is written: (reason, message).
    notes: Vec<(&'static str, String)>,
}

impl StepContext for Run {
    fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.webapp.name_any())
    }
}

impl Run {
    fn new(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Self {
        let namespace = webapp.namespace().unwrap_or_default();
        Run {
            ctx,
            webapp,
            namespace,
            children: None,
            observed: Observed::default(),
            notes: Vec::new(),
        }
    }

    fn name(&self) -> String {
        self.webapp.name_any()
    }

    fn children(&self) -> Result<&Children> {
        self.children
            .as_ref()
            .ok_or_else(|| Error::InvalidSpec("plan step did not run".into()))
    }

    fn cached<K>(&self, store: &Store<K>) -> Option<K>
    where
        K: Resource<DynamicType = ()> + Clone,
    {
        store
            .get(&ObjectRef::new(&self.name()).within(&self.namespace))
            .map(|k| (*k).clone())
    }

    fn reference(&self) -> ObjectReference {
        self.webapp.object_ref(&())
    }

    /// Records what applying one child did: a Created event on creation, `<Kind>Synced`
    /// when an existing child had to change (a spec change or drift made by hand).
    fn applied(&mut self, kind: &str, synced_reason: &'static str, outcome: Applied) {
        let name = self.name();
        match outcome {
            Applied::Unchanged => {}
            Applied::Created => {
                self.observed.changed = true;
                self.notes
                    .push(("Created", format!("Created {kind} {name}")));
            }
            Applied::Updated => {
                self.observed.changed = true;
                self.notes.push((
                    synced_reason,
                    format!("{kind} {name} synced to the WebApp spec"),
                ));
            }
        }
    }
}

/// The reconcile pipeline of a live WebApp.
static APPLY: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(when(
            |run: &Run| run.webapp.status.is_none(),
            step("accept", accept),
        ))
        .then(step("plan", plan_children))
        .then(timeout(STEP_BUDGET, step("deployment", apply_deployment)))
        .then(timeout(STEP_BUDGET, step("service", apply_service)))
        .then(timeout(
            STEP_BUDGET,
            branch(
                "ingress",
                |run: &Run| run.webapp.spec.domain.is_some(),
                step("ingress", apply_ingress),
                step("ingress", delete_ingress),
            ),
        ))
        .then(timeout(STEP_BUDGET, step("observe", observe)))
});

/// The deletion pipeline: children go in order, each waited for.
static CLEANUP: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(timeout(STEP_BUDGET, step("delete-ingress", delete_ingress)))
        .then(timeout(STEP_BUDGET, step("delete-service", delete_service)))
        .then(timeout(
            STEP_BUDGET,
            step("delete-deployment", delete_deployment),
        ))
});

/// A new WebApp is first marked `Pending` (accepted, nothing created yet), so that
/// `kubectl get webapps -w` shows the whole lifecycle.
fn accept(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let pending = status::pending(&run.webapp, Timestamp::now());
        let api = run.ctx.api::<WebApp>(&run.namespace);
        // The rest of this reconcile starts from what is now written (status and
        // resourceVersion, the precondition of the next status write).
        if let Some(accepted) =
            status_patch::patch_if_changed(&api, run.webapp.as_ref(), None, &pending).await?
        {
            run.webapp = Arc::new(accepted);
        }
        Ok(Flow::Continue)
    })
}

fn plan_children(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        if let Some(resources) = &run.webapp.spec.resources {
            check_resources(resources).map_err(Error::InvalidSpec)?;
        }
        let owner = apply::owner_reference(run.webapp.as_ref())?;
        run.children = Some(plan::desired(&run.webapp, owner));
        run.observed.selector = selector(&run.webapp);
        run.observed.ingress = run.webapp.spec.domain.is_none();
        Ok(Flow::Continue)
    })
}

fn apply_deployment(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let desired = run.children()?.deployment.clone();
        let outcome = apply::apply(
            &run.ctx.api(&run.namespace),
            run.cached(&run.ctx.deployments).as_ref(),
            desired,
        )
        .await?;
        run.applied("Deployment", "DeploymentSynced", outcome);
        Ok(Flow::Continue)
    })
}

fn apply_service(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let desired = run.children()?.service.clone();
        let outcome = apply::apply(
            &run.ctx.api(&run.namespace),
            run.cached(&run.ctx.services).as_ref(),
            desired,
        )
        .await?;
        run.applied("Service", "ServiceSynced", outcome);
        run.observed.service = true;
        Ok(Flow::Continue)
    })
}

fn apply_ingress(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let Some(desired) = run.children()?.ingress.clone() else {
            return Ok(Flow::Continue);
        };
        let outcome = apply::apply(
            &run.ctx.api(&run.namespace),
            run.cached(&run.ctx.ingresses).as_ref(),
            desired,
        )
        .await?;
        run.applied("Ingress", "IngressSynced", outcome);
        run.observed.ingress = true;
        Ok(Flow::Continue)
    })
}

fn observe(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        run.observed.deployment = match run.cached(&run.ctx.deployments) {
            Some(deployment) => Some(deployment),
            // Just created: the cache has not seen it yet.
            None => run
                .ctx
                .api(&run.namespace)
                .get_opt(&run.name())
                .await
                .map_err(|e| Error::kube("get Deployment", e))?,
        };
        let name = run.name();
        let pods = run.ctx.pods.state_filter(|pod| {
            pod.namespace().as_deref() == Some(run.namespace.as_str())
                && pod.labels().get(labels::INSTANCE) == Some(&name)
        });
        run.observed.pod_problems = pod_problems(&pods);
        Ok(Flow::Continue)
    })
}

/// Deletes one child kind in the cleanup order; waits (requeues) until it is gone.
async fn delete_child<K>(run: &mut Run, kind: &str) -> Result<Flow>
where
    K: Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let uid = run.webapp.uid().unwrap_or_default();
    let name = run.name();
    match apply::delete::<K>(&run.ctx.api(&run.namespace), &name, &uid).await? {
        Deletion::Gone => Ok(Flow::Continue),
        Deletion::Requested => {
            run.ctx
                .events
                .normal(
                    &run.reference(),
                    "Deleting",
                    format!("Deleting {kind} {name}"),
                )
                .await;
            Ok(Flow::Requeue(Duration::from_secs(1)))
        }
        Deletion::InProgress => Ok(Flow::Requeue(Duration::from_secs(1))),
    }
}

fn delete_ingress(run: &mut Run) -> StepFuture<'_> {
    Box::pin(delete_child::<k8s_openapi::api::networking::v1::Ingress>(
        run, "Ingress",
    ))
}

fn delete_service(run: &mut Run) -> StepFuture<'_> {
    Box::pin(delete_child::<k8s_openapi::api::core::v1::Service>(
        run, "Service",
    ))
}

fn delete_deployment(run: &mut Run) -> StepFuture<'_> {
    Box::pin(delete_child::<k8s_openapi::api::apps::v1::Deployment>(
        run,
        "Deployment",
    ))
}

/// Reconciles a live WebApp: runs the pipeline, then reports.
pub(super) async fn apply(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Result<Action> {
    let mut run = Run::new(ctx, webapp);
    match APPLY.run(&mut run).await {
        Ok(_) => report(&mut run, None).await,
        Err(error) => {
            match error.class() {
                Class::Permanent | Class::Blocked => {
                    let failure = Failure {
                        reason: error.reason().to_owned(),
                        message: reconcile_kit::events::error_chain(&error),
                    };
                    // The error goes on to the error policy whatever the report does.
                    if let Err(report_error) = report(&mut run, Some(&failure)).await {
                        tracing::warn!(error = %report_error, "could not report failure");
                    }
                }
                Class::Retryable => {}
            }
            Err(error)
        }
    }
}

/// Writes the status (only if it changed) and publishes the reconcile's events.
async fn report(run: &mut Run, failure: Option<&Failure>) -> Result<Action> {
    let webapp = run.webapp.clone();
    let previous = webapp.status.clone().unwrap_or_default();
    let next = status::compute(&webapp, &run.observed, failure, Timestamp::now());
    let api = run.ctx.api::<WebApp>(&run.namespace);
    status_patch::patch_if_changed(&api, webapp.as_ref(), webapp.status.as_ref(), &next).await?;

    let reference = run.reference();
    for (reason, note) in run.notes.drain(..) {
        run.ctx.events.normal(&reference, reason, note).await;
    }
    let spec_changed = previous
        .observed_generation
        .is_some_and(|seen| Some(seen) < webapp.metadata.generation);
    if spec_changed && failure.is_none() {
        let generation = webapp.metadata.generation.unwrap_or_default();
        run.ctx
            .events
            .normal(
                &reference,
                "ResourcesSynced",
                format!("Resources synced to generation {generation}"),
            )
            .await;
    }
    if let Some(failure) = failure
        && previous
            .conditions
            .iter()
            .all(|c| c.message != failure.message)
    {
        run.ctx
            .events
            .warning(&reference, &failure.reason, &failure.message)
            .await;
    }
    if next.phase != previous.phase
        && let Some(phase) = next.phase
    {
        tracing::info!(from = ?previous.phase, to = %phase, "phase changed");
        if phase == Phase::Running {
            run.ctx
                .events
                .normal(
                    &reference,
                    "Running",
                    next.message.clone().unwrap_or_default(),
                )
                .await;
        }
    }
    Ok(Action::requeue(HEALTH_CHECK))
}

/// Deletes a WebApp's children in order (Ingress → Service → Deployment), waiting for
/// each; returns `Ok` only when all are gone, which lets the finalizer go.
pub(super) async fn cleanup(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Result<Action> {
    let mut run = Run::new(ctx, webapp.clone());
    let api = run.ctx.api::<WebApp>(&run.namespace);
    let deleting = status::deleting(&webapp, "removing children", Timestamp::now());
    status_patch::patch_if_changed(&api, webapp.as_ref(), webapp.status.as_ref(), &deleting)
        .await?;

    match CLEANUP.run(&mut run).await? {
        Flow::Continue | Flow::Done => {
            run.ctx
                .events
                .normal(
                    &run.reference(),
                    "Deleted",
                    "All children deleted; releasing the finalizer",
                )
                .await;
            Ok(Action::await_change())
        }
        Flow::Requeue(_) if over_budget(&webapp) => {
            let note = format!(
                "Children still present after {CLEANUP_BUDGET:?}; releasing the finalizer anyway"
            );
            run.ctx
                .events
                .warning(&run.reference(), "CleanupTimeout", note)
                .await;
            Ok(Action::await_change())
        }
        Flow::Requeue(_) => Err(Error::Waiting("children are being deleted".into())),
    }
}

fn over_budget(webapp: &WebApp) -> bool {
    let Some(since) = &webapp.metadata.deletion_timestamp else {
        return false;
    };
    let elapsed = Timestamp::now().duration_since(since.0);
    elapsed.as_secs() >= CLEANUP_BUDGET.as_secs() as i64
}
