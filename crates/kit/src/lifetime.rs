//! Children that live as long as their owner *or* another object, whichever lasts
//! longer: a "keeper".
//!
//! The garbage collector deletes a dependent only once every object in its
//! `ownerReferences` is gone, and strips the references of owners that went while
//! others stay. So a child that carries its controller's reference and a second,
//! non-controller reference to a keeper goes with the controller while the keeper is
//! deleted too, and stays (owned by the keeper alone) when the keeper is kept. The
//! Database's credentials use this: kept by the data volume, they outlive the Database
//! exactly as long as the data does, with no step at deletion time that could be
//! skipped.
//!
//! A later owner of the same kind and name [`inherit`]s such a child instead of treating
//! it as a leftover: the controller reference of its deleted predecessor (if the
//! collector has not stripped it yet) is replaced by its own, the keeper's is kept.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::MANAGER;
use crate::error::{Error, Result};

/// A non-controller owner reference to `keeper`, which never blocks its deletion (the
/// keeper's own lifecycle decides, not its dependents).
pub fn keeper_reference<K: Resource<DynamicType = ()>>(keeper: &K) -> Option<OwnerReference> {
    Some(OwnerReference {
        api_version: K::api_version(&()).into_owned(),
        kind: K::kind(&()).into_owned(),
        name: keeper.meta().name.clone()?,
        uid: keeper.meta().uid.clone()?,
        controller: None,
        block_owner_deletion: None,
    })
}

/// Whether the object `meta` describes is kept by the object with `uid`.
pub fn kept_by(meta: &ObjectMeta, uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| r.uid == uid)
}

/// The owner references `meta` needs to be kept by `keeper` too, or `None` when it is
/// already (nothing to write).
pub fn with_keeper(meta: &ObjectMeta, keeper: OwnerReference) -> Option<Vec<OwnerReference>> {
    if kept_by(meta, &keeper.uid) {
        return None;
    }
    let mut references = meta.owner_references.clone().unwrap_or_default();
    references.push(keeper);
    Some(references)
}

/// The owner references of a child `owner` inherits: every non-controller reference
/// (its keepers) stays, any controller reference (a deleted predecessor's) is replaced
/// by `owner`'s. Only for a child [`crate::adopt::ownership`] found to be a leftover of
/// the same kind and name, or without a controller.
pub fn inherited(meta: &ObjectMeta, owner: OwnerReference) -> Vec<OwnerReference> {
    let mut references: Vec<OwnerReference> =
        meta.owner_references.iter().flatten().filter(|r| r.controller != Some(true)).cloned().collect();
    references.push(owner);
    references
}

/// Writes `references` as the owner references of the object `meta` describes, if it
/// is still at the `resourceVersion` they were computed from (a merge patch replaces
/// the list whole). Nothing else of the object is sent, nor read.
pub async fn set_owners<K>(api: &Api<K>, meta: &ObjectMeta, references: Vec<OwnerReference>) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let kind = K::kind(&()).into_owned();
    let name = meta.name.clone().unwrap_or_default();
    let patch = json!({"metadata": {"resourceVersion": meta.resource_version, "ownerReferences": references}});
    let params = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
    // Only metadata comes back that matters; the body (a Secret's data, say) is dropped.
    match api.patch_metadata(&name, &params, &Patch::Merge(&patch)).await {
        Ok(written) => {
            tracing::debug!(kind, name = written.name_any(), "owner references written");
            Ok(())
        }
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Err(Error::Stale { kind, name }),
        Err(e) => Err(Error::kube(format!("write owner references of {kind} {name}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(kind: &str, uid: &str, controller: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: "v1".into(),
            kind: kind.into(),
            name: "x".into(),
            uid: uid.into(),
            controller,
            ..OwnerReference::default()
        }
    }

    fn meta(references: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta { owner_references: Some(references), ..ObjectMeta::default() }
    }

    #[test]
    fn a_keeper_is_added_once() {
        let owned = meta(vec![reference("Database", "db", Some(true))]);
        let keeper = reference("PersistentVolumeClaim", "pvc", None);
        let references = with_keeper(&owned, keeper.clone()).expect("a write");
        assert_eq!(references.len(), 2);
        assert_eq!(references[0].uid, "db", "the controller stays first");
        assert_eq!(with_keeper(&meta(references), keeper), None, "kept already: nothing to write");
    }

    #[test]
    fn an_heir_replaces_the_controller_and_keeps_the_keepers() {
        let left =
            meta(vec![reference("Database", "gone", Some(true)), reference("PersistentVolumeClaim", "pvc", None)]);
        let references = inherited(&left, reference("Database", "new", Some(true)));
        let uids: Vec<&str> = references.iter().map(|r| r.uid.as_str()).collect();
        assert_eq!(uids, ["pvc", "new"]);
        let stripped = meta(vec![reference("PersistentVolumeClaim", "pvc", None)]);
        assert_eq!(inherited(&stripped, reference("Database", "new", Some(true))).len(), 2);
    }

    #[test]
    fn a_keeper_reference_never_controls_nor_blocks() {
        let mut claim = k8s_openapi::api::core::v1::PersistentVolumeClaim::default();
        assert!(keeper_reference(&claim).is_none(), "no uid yet: nothing to keep by");
        claim.metadata.name = Some("data-db-0".into());
        claim.metadata.uid = Some("u".into());
        let reference = keeper_reference(&claim).unwrap();
        assert_eq!((reference.kind.as_str(), reference.api_version.as_str()), ("PersistentVolumeClaim", "v1"));
        assert_eq!((reference.controller, reference.block_owner_deletion), (None, None));
    }
}
