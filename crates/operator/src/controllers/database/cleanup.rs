//! Deletion of a Database, in order: the backup CronJob, the Services, the StatefulSet
//! (waited for, with its pod), then the volumes only if `deletionPolicy` is `Delete`.
//! The generated Secret goes through its owner references, with the Database and the
//! data volume (kept with `Retain`, so the data's password is too); a user's Secret is
//! never touched.

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Service};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt;
use kube::api::DeleteParams;
use kube::runtime::controller::Action;
use reconcile_kit::apply::Deletion;
use reconcile_kit::step::{Flow, Pipeline, StepFuture, step, timeout, when};
use reconcile_kit::{Error, Result, status as status_patch};
use webapp_api::Database;
use webapp_api::database::DeletionPolicy;

use super::plan;
use super::status;
use super::steps::Run;
use super::volumes::is_ours;
use super::{Context, STEP_BUDGET};

/// How soon to look again while a child is being deleted.
const DELETE_POLL: Duration = Duration::from_secs(1);

static CLEANUP: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(timeout(STEP_BUDGET, step("delete-cronjob", delete_cronjob)))
        .then(timeout(STEP_BUDGET, step("delete-services", delete_services)))
        .then(timeout(STEP_BUDGET, step("delete-statefulset", delete_statefulset)))
        .then(when(
            |run: &Run| run.db.spec.deletion_policy == DeletionPolicy::Delete,
            timeout(STEP_BUDGET, step("delete-volumes", delete_volumes)),
        ))
});

fn gone_or_wait(deletion: Deletion) -> Flow {
    match deletion {
        Deletion::Gone => Flow::Continue,
        Deletion::Requested | Deletion::InProgress => Flow::Requeue(DELETE_POLL),
    }
}

fn delete_cronjob(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = super::backup::name(&run.name());
        Ok(gone_or_wait(run.owned.delete::<CronJob>(&name).await?))
    })
}

fn delete_services(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = run.name();
        let client = run.owned.delete::<Service>(&name).await?;
        let headless = run.owned.delete::<Service>(&plan::headless_name(&name)).await?;
        Ok(if client == Deletion::Gone && headless == Deletion::Gone {
            Flow::Continue
        } else {
            Flow::Requeue(DELETE_POLL)
        })
    })
}

/// The StatefulSet, then its pod: a volume is only deleted once no pod uses it.
fn delete_statefulset(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let flow = gone_or_wait(run.owned.delete::<StatefulSet>(&run.name()).await?);
        let pods_left = !run.ctx.server_pods(&run.namespace, &run.name()).is_empty();
        Ok(if flow == Flow::Continue && pods_left { Flow::Requeue(DELETE_POLL) } else { flow })
    })
}

/// `deletionPolicy: Delete`: the data and backup claims of this Database (found by its
/// labels; they carry no owner reference) are deleted and waited for.
fn delete_volumes(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = run.name();
        let api = run.api_of::<PersistentVolumeClaim>();
        let claims = api
            .list(
                &kube::api::ListParams::default()
                    .labels(&format!("{}={name}", reconcile_kit::workload::labels::INSTANCE)),
            )
            .await
            .map_err(|e| Error::kube("list PersistentVolumeClaims", e))?;
        let mut left = false;
        for claim in claims.items.iter().filter(|c| is_ours(&c.metadata, &name)) {
            left = true;
            if claim.metadata.deletion_timestamp.is_some() {
                continue;
            }
            let claim_name = claim.name_any();
            match api.delete(&claim_name, &DeleteParams::default()).await {
                Ok(_) => {
                    let note = format!("Deleting PersistentVolumeClaim {claim_name} (deletionPolicy Delete)");
                    run.ctx.events.normal(&run.reference(), "Deleting", note).await;
                }
                Err(kube::Error::Api(status)) if status.code == 404 => {}
                Err(e) => return Err(Error::kube(format!("delete PersistentVolumeClaim {claim_name}"), e)),
            }
        }
        Ok(if left { Flow::Requeue(DELETE_POLL) } else { Flow::Continue })
    })
}

/// Deletes a Database's children in order; returns `Ok` only when all are gone, which
/// lets the finalizer go. Bounded: once the cleanup budget is spent whatever still blocks is
/// reported in a Warning and the finalizer released, so no Database is stuck; what may
/// then be left behind is a volume, never data deleted early.
pub(super) async fn cleanup(ctx: Arc<Context>, db: Arc<Database>) -> Result<Action> {
    let mut run = Run::new(ctx, db.clone());
    let outcome = async {
        let deleting = status::deleting(&db, "removing children", Timestamp::now());
        if let Some(written) =
            status_patch::patch_if_changed(&run.api, db.as_ref(), db.status.as_ref(), &deleting).await?
        {
            run.db = Arc::new(written);
        }
        CLEANUP.run(&mut run).await
    }
    .await;
    let kept = match db.spec.deletion_policy {
        DeletionPolicy::Retain => "; its volumes are kept (deletionPolicy Retain)",
        DeletionPolicy::Delete => "",
    };
    let deleted = format!("All children deleted{kept}");
    let budget = run.ctx.cleanup_budget;
    reconcile_kit::cleanup::conclude(db.as_ref(), outcome, budget, &run.ctx.events, &deleted).await
}
