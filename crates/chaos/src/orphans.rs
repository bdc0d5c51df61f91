//! No orphan: no child outlives its owner. Found two ways, so that neither blind spot
//! hides one: by controller reference (a reference to one of our kinds whose uid is no
//! longer live), and by the project's labels (`app.kubernetes.io/managed-by`, `name`,
//! `instance`), which find what carries no reference to us: a child whose reference was
//! stripped, a Deployment's Pod whose WebApp is gone, and the Database volumes, which
//! never carry one.
//!
//! Kept on purpose, so not orphans: the data and backup claims of a Database deleted
//! under `deletionPolicy: Retain` (the default), and the credentials Secret such a
//! claim keeps through its owner reference (docs/reliability.md, "Security and data
//! safety"). Under `Delete` the finalizer deletes the claims, and the Secret goes with
//! them.

use std::collections::{HashMap, HashSet};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::kinds::Kind;
use crate::listed::{Listed, controller, labelled, name, owner};
use crate::workload::Volumes;

/// Live custom objects by kind and name: their uid.
pub type Live = HashMap<(Kind, String), String>;

/// One line per orphan. `volumes` says what the last deletion of a Database name left.
pub fn orphans(listed: &Listed, live: &Live, volumes: &dyn Fn(&str) -> Volumes) -> Vec<String> {
    let uids: HashSet<&str> = live.values().map(String::as_str).collect();
    let claims: HashSet<&str> = listed.claims.iter().filter_map(|c| c.metadata.uid.as_deref()).collect();
    let mut out = Vec::new();
    for (kind, meta) in listed.metas() {
        let what = format!("{kind} {}", name(meta));
        if let Some((owner_kind, uid)) = owner(meta) {
            if !uids.contains(uid.as_str()) {
                out.push(format!("{what} (its owner {owner_kind} uid {uid} is gone)"));
            }
            continue;
        }
        let Some((parent_kind, parent)) = labelled(meta) else { continue };
        let of = format!("labelled for {} {parent}", parent_kind.name());
        if live.contains_key(&(parent_kind, parent.clone())) {
            // A live owner's own child: it must be controlled by something (its owner,
            // or a ReplicaSet or StatefulSet of it), or the garbage collector will never
            // take it; volumes and the kept Secret carry no controller by design.
            if controller(meta).is_none() && !kept_by_design(kind, meta, &claims) {
                out.push(format!("{what} ({of}) has no controller reference: it was stripped"));
            }
            continue;
        }
        let retained = parent_kind == Kind::Database && volumes(&parent) != Volumes::Gone;
        match kind {
            "PersistentVolumeClaim" if retained => {}
            "PersistentVolumeClaim" => {
                out.push(format!("{what} ({of}, deleted under deletionPolicy Delete) is still there"))
            }
            "Secret" if kept_by_design(kind, meta, &claims) => {}
            _ => out.push(format!("{what} ({of}, which is gone) is still there")),
        }
    }
    out
}

/// Objects that carry no controller reference on purpose: volumes (their Database's
/// `deletionPolicy` decides their fate, not the garbage collector), and the generated
/// Secret while a listed claim keeps it.
fn kept_by_design(kind: &str, meta: &ObjectMeta, claims: &HashSet<&str>) -> bool {
    match kind {
        "PersistentVolumeClaim" => true,
        "Secret" => meta.owner_references.iter().flatten().any(|r| claims.contains(r.uid.as_str())),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;
    use crate::listed::fixtures::{controlled_by, meta};

    fn claim(name: &str, db: &str) -> PersistentVolumeClaim {
        PersistentVolumeClaim { metadata: meta(name, Kind::Database, db, vec![]), ..Default::default() }
    }

    fn kept_secret(db: &str, claim_uid: &str) -> Secret {
        let keeper =
            OwnerReference { kind: "PersistentVolumeClaim".into(), uid: claim_uid.into(), ..Default::default() };
        Secret { metadata: meta(&format!("{db}-credentials"), Kind::Database, db, vec![keeper]), ..Default::default() }
    }

    fn live(entries: &[(Kind, &str, &str)]) -> Live {
        entries.iter().map(|(k, n, u)| ((*k, (*n).to_owned()), (*u).to_owned())).collect()
    }

    #[test]
    fn a_child_whose_owner_reference_was_stripped_is_an_orphan() {
        let mut deployment = Deployment { metadata: meta("wa-0", Kind::WebApp, "wa-0", vec![]), ..Default::default() };
        let listed = Listed { deployments: vec![deployment.clone()], ..Listed::default() };
        let orphans = orphans(&listed, &live(&[(Kind::WebApp, "wa-0", "u1")]), &|_| Volumes::Gone);
        assert_eq!(orphans.len(), 1, "{orphans:?}");
        assert!(orphans[0].contains("stripped"), "{orphans:?}");
        deployment.metadata.owner_references = Some(vec![controlled_by("WebApp", "wa-0", "u1")]);
        let listed = Listed { deployments: vec![deployment], ..Listed::default() };
        assert!(super::orphans(&listed, &live(&[(Kind::WebApp, "wa-0", "u1")]), &|_| Volumes::Gone).is_empty());
    }

    #[test]
    fn a_child_of_a_dead_uid_is_an_orphan_by_its_reference() {
        let owned = meta("wa-0", Kind::WebApp, "wa-0", vec![controlled_by("WebApp", "wa-0", "old")]);
        let listed =
            Listed { deployments: vec![Deployment { metadata: owned, ..Default::default() }], ..Default::default() };
        let orphans = orphans(&listed, &live(&[(Kind::WebApp, "wa-0", "new")]), &|_| Volumes::Gone);
        assert_eq!(orphans, ["Deployment wa-0 (its owner WebApp uid old is gone)"]);
    }

    #[test]
    fn a_pod_of_a_gone_webapp_is_found_by_its_labels() {
        let replicaset = controlled_by("ReplicaSet", "wa-0-abc", "rs");
        let pod = Pod { metadata: meta("wa-0-abc-x", Kind::WebApp, "wa-0", vec![replicaset]), ..Default::default() };
        let listed = Listed { pods: vec![pod], ..Listed::default() };
        assert_eq!(orphans(&listed, &live(&[]), &|_| Volumes::Gone).len(), 1);
        assert!(orphans(&listed, &live(&[(Kind::WebApp, "wa-0", "u")]), &|_| Volumes::Gone).is_empty());
    }

    #[test]
    fn volumes_of_a_database_deleted_under_delete_are_orphans_under_retain_kept() {
        let mut data = claim("data-db-0", "db");
        data.metadata.uid = Some("claim-uid".into());
        let listed = Listed {
            claims: vec![data, claim("db-backup", "db")],
            secrets: vec![kept_secret("db", "claim-uid")],
            ..Listed::default()
        };
        assert!(orphans(&listed, &live(&[]), &|_| Volumes::Kept).is_empty(), "kept on purpose");
        assert!(orphans(&listed, &live(&[]), &|_| Volumes::Unknown).is_empty(), "policy unknown: either");
        let deleted = orphans(&listed, &live(&[]), &|_| Volumes::Gone);
        assert_eq!(deleted.len(), 2, "both claims; the Secret is kept by a claim still listed: {deleted:?}");
        assert!(deleted.iter().all(|o| o.contains("deletionPolicy Delete")), "{deleted:?}");
    }

    #[test]
    fn a_secret_kept_by_no_listed_claim_is_an_orphan() {
        let listed = Listed { secrets: vec![kept_secret("db", "gone-claim")], ..Listed::default() };
        assert_eq!(orphans(&listed, &live(&[]), &|_| Volumes::Kept).len(), 1);
        let with_db = live(&[(Kind::Database, "db", "u")]);
        assert_eq!(orphans(&listed, &with_db, &|_| Volumes::Kept).len(), 1, "no controller, no keeper");
    }
}
