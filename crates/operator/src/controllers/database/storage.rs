//! Pure decisions about a Database's volumes and image: whether a claim must grow, and
//! whether a version change puts the data at risk (another major version, another C
//! library), which needs the user's approval.
//!
//! A StatefulSet's claim templates cannot change, so a larger `storage.size` is carried
//! to the claims themselves (PersistentVolumeClaim expansion), which works only when
//! the claim's StorageClass sets `allowVolumeExpansion`.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use kube::ResourceExt;
use reconcile_kit::quantity;
use webapp_api::Database;

use super::plan::{CONTAINER, major};

/// A claim that must grow.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Growth {
    /// The claim.
    pub claim: String,
    /// Its StorageClass, if it has one.
    pub class: Option<String>,
    /// The size it asks for now.
    pub from: String,
    /// The size to ask for.
    pub to: String,
}

/// The storage request of `claim`.
pub fn requested(claim: &PersistentVolumeClaim) -> Option<&str> {
    let requests = claim.spec.as_ref()?.resources.as_ref()?.requests.as_ref()?;
    requests.get("storage").map(|q| q.0.as_str())
}

/// The size `claim` has been given (`status.capacity`), once bound.
pub fn capacity(claim: &PersistentVolumeClaim) -> Option<&str> {
    claim.status.as_ref()?.capacity.as_ref()?.get("storage").map(|q| q.0.as_str())
}

/// Whether `claim` must grow to `wanted` (compared by value: `1Gi` is `1024Mi`). A claim
/// never shrinks (admission refuses it; this never asks).
pub fn growth(claim: &PersistentVolumeClaim, wanted: &str) -> Option<Growth> {
    let current = requested(claim)?;
    let bigger = quantity::parse(wanted)? > quantity::parse(current)?;
    bigger.then(|| Growth {
        claim: claim.metadata.name.clone().unwrap_or_default(),
        class: claim.spec.as_ref().and_then(|s| s.storage_class_name.clone()),
        from: current.to_owned(),
        to: wanted.to_owned(),
    })
}

/// Whether a grown claim is still waiting for its volume to grow.
pub fn resizing(claim: &PersistentVolumeClaim) -> bool {
    match (requested(claim).and_then(quantity::parse), capacity(claim).and_then(quantity::parse)) {
        (Some(requested), Some(capacity)) => capacity < requested,
        _ => false,
    }
}

/// The image of the server container of `statefulset`.
pub fn live_image(statefulset: &StatefulSet) -> Option<&str> {
    let pod = statefulset.spec.as_ref()?.template.spec.as_ref()?;
    pod.containers.iter().find(|c| c.name == CONTAINER)?.image.as_deref()
}

/// The version (image tag) the server of `statefulset` runs.
pub fn live_version(statefulset: &StatefulSet) -> Option<&str> {
    live_image(statefulset)?.rsplit_once(':').map(|(_, tag)| tag)
}

/// The version `db`'s data directory has: the one its server was last rolled out at as
/// the status records it (a hand edit of the StatefulSet's image changes no data), else
/// the running StatefulSet's (a Database reconciled before the status recorded it).
pub fn data_version<'a>(db: &'a Database, live: Option<&'a StatefulSet>) -> Option<&'a str> {
    db.status.as_ref().and_then(|s| s.version.as_deref()).or_else(|| live.and_then(live_version))
}

/// The annotation with which a user approves a risky version change. Its value must be
/// the new `spec.version`, so an approval given once never covers a later change.
pub const APPROVE_VERSION_CHANGE: &str = "database.example.com/approve-version-change";

/// A change of server image that the data directory may not survive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VersionChange {
    /// Another PostgreSQL major version: the new server cannot read the old data
    /// directory (an upgrade needs pg_upgrade or a dump and restore; a downgrade, a
    /// restore of a dump).
    Major {
        /// The running major version.
        from: String,
        /// The requested one.
        to: String,
    },
    /// Another C library (Debian's glibc, Alpine's musl): text collations sort
    /// differently, so every index on text is silently wrong until it is rebuilt.
    Libc {
        /// The running image's C library.
        from: &'static str,
        /// The requested image's.
        to: &'static str,
    },
}

impl VersionChange {
    /// The risky change, if any, from the server's version `from` (an image tag) to
    /// `version`.
    pub fn between(from: &str, version: &str) -> Option<Self> {
        let (from_major, to_major) = (major(from), major(version));
        if from_major != to_major {
            return Some(VersionChange::Major { from: from_major, to: to_major });
        }
        let (from, to) = (libc(from), libc(version));
        (from != to).then_some(VersionChange::Libc { from, to })
    }

    /// What happens to the data, and what the user can do about it.
    pub fn risk(&self) -> String {
        match self {
            VersionChange::Major { from, to } => format!(
                "PostgreSQL {to} cannot read the data directory of version {from}; migrate the data \
                 (pg_upgrade, or pg_dumpall with {from} and a restore into {to})"
            ),
            VersionChange::Libc { from, to } => format!(
                "the C library changes from {from} to {to}, which sorts text differently: every index on text \
                 is silently wrong until it is rebuilt (REINDEX)"
            ),
        }
    }
}

/// The C library of an official postgres image tag: the Alpine variants use musl, the
/// Debian ones (bare version, `bookworm`, `bullseye`...) glibc.
fn libc(tag: &str) -> &'static str {
    if tag.contains("alpine") { "musl" } else { "glibc" }
}

/// Whether `db` approves moving to its `spec.version` despite the risk.
pub fn approved(db: &Database) -> bool {
    db.annotations().get(APPROVE_VERSION_CHANGE).is_some_and(|v| v.trim() == db.spec.version)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claim(requested: &str, capacity: Option<&str>) -> PersistentVolumeClaim {
        let mut value = json!({"metadata": {"name": "data-db-0"},
            "spec": {"storageClassName": "fast", "resources": {"requests": {"storage": requested}}}});
        if let Some(capacity) = capacity {
            value["status"] = json!({"phase": "Bound", "capacity": {"storage": capacity}});
        }
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_claim_grows_only_to_a_larger_size_compared_by_value() {
        let grown = growth(&claim("10Gi", None), "20Gi").unwrap();
        assert_eq!(
            grown,
            Growth { claim: "data-db-0".into(), class: Some("fast".into()), from: "10Gi".into(), to: "20Gi".into() }
        );
        assert_eq!(growth(&claim("10Gi", None), "10240Mi"), None, "same size written differently");
        assert_eq!(growth(&claim("10Gi", None), "5Gi"), None, "never shrinks");
        assert_eq!(growth(&claim("10Gi", None), "lots"), None);
    }

    #[test]
    fn a_claim_resizes_until_its_capacity_reaches_the_request() {
        assert!(resizing(&claim("20Gi", Some("10Gi"))));
        assert!(!resizing(&claim("20Gi", Some("20Gi"))));
        assert!(!resizing(&claim("20Gi", None)), "an unbound claim is not resizing");
    }

    #[test]
    fn version_changes_compare_the_major_version_and_the_c_library() {
        let major = |from: &str, to: &str| Some(VersionChange::Major { from: from.into(), to: to.into() });
        let libc = |from, to| Some(VersionChange::Libc { from, to });
        assert_eq!(VersionChange::between("13", "16"), major("13", "16"));
        assert_eq!(VersionChange::between("16", "15"), major("16", "15"), "a downgrade too");
        assert_eq!(VersionChange::between("16.2", "16.4"), None);
        assert_eq!(VersionChange::between("16.2-bookworm", "16.4"), None, "both glibc");
        assert_eq!(VersionChange::between("16", "16-alpine"), libc("glibc", "musl"));
        assert_eq!(VersionChange::between("16-alpine3.20", "16.4"), libc("musl", "glibc"));
        assert_eq!(VersionChange::between("16-alpine", "16.4-alpine3.21"), None);
        assert_eq!(VersionChange::between("9.6.24", "9.6"), None);
        assert_eq!(VersionChange::between("9.5", "9.6"), major("9.5", "9.6"));
    }

    #[test]
    fn the_data_version_is_the_recorded_one_not_a_hand_edited_image() {
        let statefulset: StatefulSet = serde_json::from_value(json!({"spec": {"selector": {}, "serviceName": "db",
            "template": {"spec": {"containers": [{"name": CONTAINER, "image": "postgres:hacked"}]}}}}))
        .unwrap();
        let mut db: Database = serde_json::from_value(
            json!({"metadata": {"name": "db"}, "spec": {"type": "postgresql", "version": "16"}}),
        )
        .unwrap();
        assert_eq!(data_version(&db, Some(&statefulset)), Some("hacked"), "nothing recorded yet");
        db.status = Some(webapp_api::DatabaseStatus { version: Some("16".into()), ..Default::default() });
        assert_eq!(data_version(&db, Some(&statefulset)), Some("16"));
        assert_eq!(data_version(&db, None), Some("16"));
        assert_eq!(VersionChange::between("16", &db.spec.version), None, "the drift is undone, not refused");
    }

    #[test]
    fn only_an_approval_naming_the_new_version_approves_it() {
        let db = |annotation: Option<&str>| -> Database {
            let mut value = json!({"metadata": {"name": "db"}, "spec": {"type": "postgresql", "version": "16"}});
            if let Some(annotation) = annotation {
                value["metadata"]["annotations"] = json!({APPROVE_VERSION_CHANGE: annotation});
            }
            serde_json::from_value(value).unwrap()
        };
        assert!(approved(&db(Some("16"))));
        assert!(!approved(&db(Some("15"))), "an approval of an earlier change");
        assert!(!approved(&db(Some("true"))));
        assert!(!approved(&db(None)));
    }
}
