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
//! The references are written when the child is created, so nothing needs the right
//! to update it afterwards (the Database's Secrets: create-only). A later owner of the
//! same kind and name finds a child kept this way with [`kept_by`] and uses it as it is.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::Resource;

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kept_by_looks_at_every_owner() {
        let meta = ObjectMeta {
            owner_references: Some(vec![reference("Database", "db", Some(true)), reference("Claim", "pvc", None)]),
            ..ObjectMeta::default()
        };
        assert!(kept_by(&meta, "pvc") && kept_by(&meta, "db"));
        assert!(!kept_by(&meta, "other") && !kept_by(&ObjectMeta::default(), "pvc"));
    }

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
