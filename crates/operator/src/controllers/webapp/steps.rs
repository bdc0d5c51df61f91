//! What a WebApp adds to the workload layer's steps: the Ingress (applied with a domain,
//! removed without one), and the ordered cleanup run by the finalizer.

use std::sync::{Arc, LazyLock};

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::jiff::Timestamp;
use kube::runtime::controller::Action;
use reconcile_kit::step::{Flow, Pipeline, StepFuture, branch, step, timeout};
use reconcile_kit::workload::Run;
use reconcile_kit::workload::run::{self, STEP_BUDGET};
use reconcile_kit::{Result, status as status_patch};
use webapp_api::WebApp;

use super::{Context, WebAppKind, plan, status};

/// The reconcile pipeline of a live WebApp: the workload layer's steps, the Ingress,
/// then the pods.
static APPLY: LazyLock<Pipeline<Run<WebAppKind>>> = LazyLock::new(|| {
    run::pipeline::<WebAppKind>()
        .then(timeout(
            STEP_BUDGET,
            branch(
                "ingress",
                |run: &Run<WebAppKind>| run.object.spec.domain.is_some(),
                step("ingress", apply_ingress),
                step("ingress", remove_ingress),
            ),
        ))
        .then(run::observe::<WebAppKind>())
});

/// The deletion pipeline: children go in order, each waited for.
static CLEANUP: LazyLock<Pipeline<Run<WebAppKind>>> = LazyLock::new(|| {
    Pipeline::new()
        .then(timeout(STEP_BUDGET, run::delete::<WebAppKind, Ingress>("delete-ingress")))
        .then(timeout(STEP_BUDGET, run::delete::<WebAppKind, Service>("delete-service")))
        .then(timeout(STEP_BUDGET, run::delete::<WebAppKind, Deployment>("delete-deployment")))
});

fn apply_ingress(run: &mut Run<WebAppKind>) -> StepFuture<'_> {
    Box::pin(async move {
        let Some(desired) = plan::ingress(&run.object, &run.owner()?) else {
            return Ok(Flow::Continue);
        };
        let ctx = run.ctx.clone();
        run.apply_child(&ctx.extra.ingresses, desired, "IngressSynced").await?;
        Ok(Flow::Continue)
    })
}

/// The domain was removed: the Ingress goes. Nothing else waits for it, so the
/// reconcile goes on while it is deleted. Without a domain, the cache knows there is no
/// Ingress of ours, and no request is sent.
fn remove_ingress(run: &mut Run<WebAppKind>) -> StepFuture<'_> {
    Box::pin(async move {
        let ctx = run.ctx.clone();
        run.delete_cached_child::<Ingress>(&ctx.extra.ingresses).await?;
        Ok(Flow::Continue)
    })
}

/// Reconciles a live WebApp.
pub(super) async fn apply(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Result<Action> {
    run::reconcile(Run::new(ctx, webapp), &APPLY).await
}

/// Deletes a WebApp's children in order (Ingress → Service → Deployment), waiting for
/// each; returns `Ok` only when all are gone, which lets the finalizer go. Bounded: once
/// the cleanup budget (counted from the first attempt) is spent, whatever still blocks
/// (a child that will not go, an API error that keeps coming) is reported and the
/// finalizer released, so that no WebApp is stuck.
pub(super) async fn cleanup(ctx: Arc<Context>, webapp: Arc<WebApp>) -> Result<Action> {
    let mut run = Run::new(ctx, webapp.clone());
    let outcome = async {
        let deleting = status::deleting(&webapp, "removing children", Timestamp::now());
        if let Some(written) =
            status_patch::patch_if_changed(&run.api, webapp.as_ref(), webapp.status.as_ref(), &deleting).await?
        {
            run.object = Arc::new(written);
        }
        CLEANUP.run(&mut run).await
    }
    .await;
    let deleted = "All children deleted; releasing the finalizer";
    let budget = run.ctx.extra.cleanup_budget;
    reconcile_kit::cleanup::conclude(webapp.as_ref(), outcome, budget, &run.ctx.events, deleted).await
}
