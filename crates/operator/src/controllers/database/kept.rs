//! The generated credentials, kept by the data volume.
//!
//! The Secret is owned by its Database, which deletes it with the Database, and once the
//! StatefulSet controller has made the data volume, it is kept by that volume too
//! ([`reconcile_kit::lifetime`]). Under `deletionPolicy: Delete` both go and the
//! garbage collector takes the Secret; under `Retain` the volume stays and so does the
//! Secret. A Database re-created under the same name finds both and takes the Secret
//! over, so clients and the backup Job keep logging in with the password PostgreSQL was
//! initialised with.

use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::runtime::reflector::ObjectRef;
use reconcile_kit::lifetime;
use reconcile_kit::step::{Flow, StepFuture};
use reconcile_kit::{Error, Result};

use super::plan;
use super::steps::Run;

/// Once the data volume exists, the generated Secret is kept by it too. One write per
/// Database, ever: the cached Secret says when it is done.
pub(super) fn keep_with_data(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = plan::generated_secret_name(&run.name());
        let Some(secret) = run.ctx.secrets.get(&ObjectRef::new(&name).within(&run.namespace)) else {
            // Just made, or missing (reported by the credentials step): next time.
            return Ok(Flow::Continue);
        };
        let Some(claim) = run.data_claim().await? else { return Ok(Flow::Continue) };
        let keeper = lifetime::keeper_reference(&claim)
            .ok_or_else(|| Error::Waiting(format!("volume {} has no uid yet", plan::data_claim_name(&run.name()))))?;
        let Some(references) = lifetime::with_keeper(&secret.metadata, keeper) else { return Ok(Flow::Continue) };
        lifetime::set_owners::<Secret>(&run.api_of(), &secret.metadata, references).await?;
        let note = format!(
            "Secret {name} is kept with volume {}: under deletionPolicy Retain it outlives the Database as the data does",
            plan::data_claim_name(&run.name())
        );
        run.ctx.events.normal_about(&run.reference(), run.secret_reference(), "CredentialsKept", note).await;
        Ok(Flow::Continue)
    })
}

/// Takes over the generated Secret a deleted Database of this name left with its data.
pub(super) async fn inherit(run: &mut Run, meta: &ObjectMeta, owner: OwnerReference) -> Result<()> {
    lifetime::set_owners::<Secret>(&run.api_of(), meta, lifetime::inherited(meta, owner)).await?;
    let note = format!(
        "Reusing Secret {} kept with volume {}: the data's password is unchanged",
        plan::generated_secret_name(&run.name()),
        plan::data_claim_name(&run.name())
    );
    run.ctx.events.normal_about(&run.reference(), run.secret_reference(), "CredentialsReused", note).await;
    Ok(())
}
