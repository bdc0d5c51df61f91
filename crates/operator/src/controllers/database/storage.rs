//! Pure decisions about a Database's volumes and image: whether a claim must grow, and
//! whether a version change crosses a PostgreSQL major version.
//!
//! A StatefulSet's claim templates cannot change, so a larger `storage.size` is carried
//! to the claims themselves (PersistentVolumeClaim expansion), which works only when
//! the claim's StorageClass sets `allowVolumeExpansion`.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use reconcile_kit::quantity;

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

/// A change of PostgreSQL major version: `(from, to)`, when the running image's tag and
/// the new version have different major versions.
pub fn major_change(live_image: &str, version: &str) -> Option<(String, String)> {
    let tag = live_image.rsplit_once(':').map(|(_, tag)| tag)?;
    let (from, to) = (major(tag), major(version));
    (from != to).then_some((from, to))
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
    fn major_versions_compare_the_tags_major_part() {
        assert_eq!(major_change("postgres:13", "16"), Some(("13".into(), "16".into())));
        assert_eq!(major_change("postgres:16.2", "16.4-alpine"), None);
        assert_eq!(major_change("postgres:9.6.24", "9.6"), None);
        assert_eq!(major_change("postgres:9.5", "9.6"), Some(("9.5".into(), "9.6".into())));
        assert_eq!(major_change("postgres", "16"), None, "no tag, nothing to compare");
    }
}
