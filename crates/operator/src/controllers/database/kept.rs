//! The generated credentials, kept by the data volume.
//!
//! The Secret is created with two owner references: its Database (the controller) and
//! the data claim `data-<name>-0` ([`reconcile_kit::lifetime`]), which the operator
//! makes first for that reason (the StatefulSet then uses it). The garbage collector
//! deletes the Secret once both are gone: under `deletionPolicy: Delete` the finalizer
//! deletes the claim, under `Retain` it stays and so does the Secret. A Database
//! re-created under the same name finds both and uses the Secret as it is, so clients
//! and the backup Job keep the password PostgreSQL was initialised with.
//!
//! Nothing here writes to a Secret after creating it: the operator's role may create
//! Secrets but never update or patch them.

use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::ResourceExt;
use kube::api::{Patch, PatchParams, PostParams};
use reconcile_kit::workload::cache::retain_annotations;
use reconcile_kit::{Error, MANAGER, Result};

use webapp_api::{Database, Phase};

use super::status::CREDENTIALS_MISSING;
use super::steps::Run;
use super::{plan, volumes};

/// On a data claim the operator made for a Secret it has not created yet.
const AWAITING_CREDENTIALS: &str = "database.example.com/awaiting-credentials";

/// On a marked data claim once the Secret's create has been sent: whether it was made is
/// then unknown until an answer says (the operator may be killed, or the connection
/// drop, between the create and the removal of [`AWAITING_CREDENTIALS`]).
const CREATE_SENT: &str = "database.example.com/credentials-create-sent";

/// Whether `claim` was made by the credentials step, which has not made the Secret yet
/// (interrupted): no server can have started on it, so it holds no data.
pub(super) fn awaiting_credentials(claim: &PersistentVolumeClaim) -> bool {
    claim.annotations().get(AWAITING_CREDENTIALS).is_some_and(|v| v == "true")
}

/// The trim of the cached claims: of their annotations only the mark above (and none
/// of what a tenant may write on them).
pub(super) fn trim_claim(claim: &mut PersistentVolumeClaim) {
    retain_annotations(&mut claim.metadata, &[AWAITING_CREDENTIALS, CREATE_SENT]);
}

/// Whether the Secret's create was sent for `claim` by an earlier attempt whose answer
/// was never acted on.
pub(super) fn create_sent(claim: &PersistentVolumeClaim) -> bool {
    claim.annotations().get(CREATE_SENT).is_some_and(|v| v == "true")
}

/// Marks `claim` before the Secret's create is sent (`true`), or after a 409 proved the
/// Secret someone else's (`false`, the mark removed). A later 409 on a claim so marked
/// is the answer to our own earlier create, lost: the Secret is ours.
pub(super) async fn mark_create_sent(run: &Run, claim: &PersistentVolumeClaim, sent: bool) -> Result<()> {
    let value = if sent { serde_json::json!("true") } else { serde_json::Value::Null };
    patch_annotations(run, claim, serde_json::json!({CREATE_SENT: value})).await
}

/// `claim` as the API server stores it now, not as the cache last saw it.
pub(super) async fn stored(run: &Run, claim: &PersistentVolumeClaim) -> Result<PersistentVolumeClaim> {
    let name = claim.name_any();
    run.api_of::<PersistentVolumeClaim>()
        .get(&name)
        .await
        .map_err(|e| Error::kube(format!("read PersistentVolumeClaim {name}"), e))
}

async fn patch_annotations(run: &Run, claim: &PersistentVolumeClaim, annotations: serde_json::Value) -> Result<()> {
    let name = claim.name_any();
    let patch = serde_json::json!({"metadata": {"annotations": annotations}});
    let params = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
    run.api_of::<PersistentVolumeClaim>()
        .patch(&name, &params, &Patch::Merge(&patch))
        .await
        .map_err(|e| Error::kube(format!("patch PersistentVolumeClaim {name}"), e))?;
    Ok(())
}

/// Makes the data claim, marked as awaiting its credentials.
pub(super) async fn create_data_claim(run: &mut Run) -> Result<PersistentVolumeClaim> {
    let mut claim = plan::data_claim(&run.db);
    claim.annotations_mut().insert(AWAITING_CREDENTIALS.into(), "true".into());
    volumes::create_claim(run, &claim, "the data").await
}

/// The Secret exists: the claim no longer awaits it.
pub(super) async fn credentials_made(run: &Run, claim: &PersistentVolumeClaim) -> Result<()> {
    patch_annotations(run, claim, serde_json::json!({AWAITING_CREDENTIALS: null, CREATE_SENT: null})).await
}

/// Whether `db` should make sure its kept credentials still exist: once when it is new
/// to them (Pending), and again while they are missing (the periodic re-check then
/// finds them restored). Otherwise the unmarked data claim says they were made.
pub(super) fn should_check(db: &Database) -> bool {
    let status = db.status.as_ref();
    let pending = status.and_then(|s| s.phase).is_none_or(|phase| phase == Phase::Pending);
    let missing = status.is_some_and(|s| s.conditions.iter().any(|c| c.reason == CREDENTIALS_MISSING));
    pending || missing
}

/// Whether the generated Secret exists, asked without reading it: a dry-run create is
/// refused with 409 when it does, and stores nothing when it does not. The operator's
/// role may create Secrets, nothing else.
pub(super) async fn still_there(run: &Run) -> Result<bool> {
    let name = plan::generated_secret_name(&run.name());
    let probe =
        Secret { metadata: ObjectMeta { name: Some(name.clone()), ..ObjectMeta::default() }, ..Secret::default() };
    let params = PostParams { dry_run: true, field_manager: Some(MANAGER.into()) };
    match run.api_of::<Secret>().create(&params, &probe).await {
        Ok(_) => Ok(false),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(true),
        Err(e) => Err(Error::kube(format!("dry-run create Secret {name}"), e)),
    }
}

/// A Database of this name was deleted under `Retain`; its Secret, kept with the data,
/// is used as it is. Said once, when the server is about to be made again.
pub(super) async fn reuse(run: &Run) {
    if run.ctx.statefulsets.has(&run.namespace, &run.name()) {
        return;
    }
    let note = format!(
        "Reusing Secret {} kept with volume {}: the data's password is unchanged",
        plan::generated_secret_name(&run.name()),
        plan::data_claim_name(&run.name())
    );
    run.ctx.events.normal_about(&run.reference(), run.secret_reference(), "CredentialsReused", note).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_claim_cache_keeps_the_credentials_mark_and_nothing_else_of_the_annotations() {
        let mut claim = PersistentVolumeClaim::default();
        claim.metadata.annotations = Some(
            [(AWAITING_CREDENTIALS.to_owned(), "true".to_owned()), ("tenant/blob".to_owned(), "x".repeat(256 << 10))]
                .into(),
        );
        trim_claim(&mut claim);
        assert!(awaiting_credentials(&claim));
        assert_eq!(claim.metadata.annotations.as_ref().map(|a| a.len()), Some(1));
    }
}
