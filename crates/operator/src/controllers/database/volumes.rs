//! The Database's volumes: the backup volume (made once, never owned by the Database so
//! that its dumps outlive it), the backup CronJob that writes to it, and the growth of
//! both claims when the spec asks for more space.

use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use reconcile_kit::step::{Flow, StepFuture};
use reconcile_kit::{Error, MANAGER, Result};

use super::backup;
use super::plan::{self, APP};
use super::status::Volumes;
use super::steps::Run;
use super::storage::{self, Growth};
use reconcile_kit::workload::labels;

/// Whether `meta` is a volume this operator made for Database `instance` (volumes carry
/// no owner reference, so the labels say whose they are).
pub fn is_ours(meta: &ObjectMeta, instance: &str) -> bool {
    let label = |key: &str| meta.labels.as_ref().and_then(|l| l.get(key)).map(String::as_str);
    label(labels::MANAGED_BY) == Some(MANAGER)
        && label(labels::NAME) == Some(APP)
        && label(labels::INSTANCE) == Some(instance)
}

/// Backups enabled: the backup volume (made once; a volume kept from an earlier
/// Database of the same name is used again), then the CronJob.
pub(super) fn apply_backup(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let ctx = run.ctx.clone();
        let Some(claim) = run.children.as_ref().and_then(|c| c.backup_claim.clone()) else {
            return Ok(Flow::Continue);
        };
        let name = claim.name_any();
        match run.cached_or_read(&ctx.claims, &name).await? {
            Some(existing) if is_ours(&existing.metadata, &run.name()) => {}
            Some(_) => {
                return Err(Error::NotOwned { kind: "PersistentVolumeClaim".into(), name, owner: "Database".into() });
            }
            None => {
                create_claim(run, &claim, "backups").await?;
            }
        }
        if let Some(cronjob) = run.children.as_ref().and_then(|c| c.cronjob.clone()) {
            let (ctx, synced) = (run.ctx.clone(), "CronJobSynced");
            let (_, live) = run.apply_child(&ctx.cronjobs, cronjob, synced).await?;
            run.observed.cronjob = Some(live);
        }
        Ok(Flow::Continue)
    })
}

/// Creates `claim` (made once; never owned by the Database), for `purpose`, and returns
/// it as created (with its uid).
pub(super) async fn create_claim(
    run: &mut Run,
    claim: &PersistentVolumeClaim,
    purpose: &str,
) -> Result<PersistentVolumeClaim> {
    let name = claim.name_any();
    let params = PostParams { field_manager: Some(MANAGER.into()), ..PostParams::default() };
    let created = match run.api_of::<PersistentVolumeClaim>().create(&params, claim).await {
        Ok(created) => created,
        Err(kube::Error::Api(status)) if status.code == 409 => {
            return Err(Error::Stale { kind: "PersistentVolumeClaim".into(), name });
        }
        Err(e) => return Err(Error::kube(format!("create PersistentVolumeClaim {name}"), e)),
    };
    let note = format!(
        "Created PersistentVolumeClaim {name} for {purpose} (kept when the Database is deleted unless its deletionPolicy is Delete)"
    );
    run.ctx.events.normal(&run.reference(), "Created", note).await;
    run.observed.changed = true;
    Ok(created)
}

/// Grows the data and backup claims to the sizes the spec asks for, and reports how
/// far that got: requested and waiting for the volume, or impossible.
pub(super) fn grow(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let ctx = run.ctx.clone();
        let name = run.name();
        let within = |claim: String| kube::runtime::reflector::ObjectRef::new(&claim).within(&run.namespace);
        let data = ctx.claims.get(&within(plan::data_claim_name(&name)));
        run.observed.data_claim = data.as_deref().cloned();
        let mut wanted = vec![(data, run.db.spec.storage.size.clone())];
        if run.db.spec.backup.enabled {
            wanted.push((ctx.claims.get(&within(backup::name(&name))), backup::storage(&run.db).size.clone()));
        }
        let mut notes = Vec::new();
        let mut expandable = true;
        for (claim, size) in wanted {
            let Some(claim) = claim.filter(|c| is_ours(&c.metadata, &name)) else { continue };
            if let Some(growth) = storage::growth(&claim, &size) {
                match expand(run, &growth).await? {
                    Ok(note) => notes.push(note),
                    Err(why) => {
                        expandable = false;
                        notes.push(why);
                    }
                }
            } else if storage::resizing(&claim) {
                let to = storage::requested(&claim).unwrap_or_default();
                let has = storage::capacity(&claim).unwrap_or_default();
                notes.push(format!("volume {} is growing to {to} (has {has})", claim.name_any()));
            }
        }
        run.observed.volumes = match (notes.is_empty(), expandable) {
            (true, _) => Volumes::AsSpecified,
            (false, true) => Volumes::Resizing(notes.join("; ")),
            (false, false) => Volumes::NotExpandable(notes.join("; ")),
        };
        Ok(Flow::Continue)
    })
}

/// Asks for a larger claim if its StorageClass allows expansion. `Ok(Ok(note))` when
/// asked, `Ok(Err(why))` when it cannot grow (nothing is sent then).
async fn expand(run: &Run, growth: &Growth) -> Result<std::result::Result<String, String>> {
    let Growth { claim, class, from, to } = growth;
    let cannot = |why: String| Ok(Err(format!("volume {claim} cannot grow from {from} to {to}: {why}")));
    let Some(class) = class else {
        return cannot("it has no StorageClass".into());
    };
    let classes: Api<StorageClass> = Api::all(run.ctx.client.clone());
    let found = classes.get_opt(class).await.map_err(|e| Error::kube(format!("get StorageClass {class}"), e))?;
    if found.and_then(|c| c.allow_volume_expansion) != Some(true) {
        return cannot(format!("StorageClass {class} does not allow volume expansion (allowVolumeExpansion)"));
    }
    let patch = serde_json::json!({"spec": {"resources": {"requests": {"storage": to}}}});
    let params = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
    match run.api_of::<PersistentVolumeClaim>().patch(claim, &params, &Patch::Merge(&patch)).await {
        Ok(_) => {}
        // The API server's resize admission has the last word (a claim not bound yet,
        // a statically provisioned volume).
        Err(kube::Error::Api(status)) if matches!(status.code, 403 | 422) => return cannot(status.message),
        Err(e) => return Err(Error::kube(format!("expand PersistentVolumeClaim {claim}"), e)),
    }
    let note = format!("Asked for volume {claim} to grow from {from} to {to}");
    run.ctx.events.normal(&run.reference(), "VolumeExpansion", note).await;
    Ok(Ok(format!("volume {claim} is growing to {to} (has {from})")))
}
