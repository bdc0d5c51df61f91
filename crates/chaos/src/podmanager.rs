//! A PodManager's Pods, by ordinal and uid: the one kind of child whose number varies,
//! so the one where a duplicate can happen (two leaders, a replay after a kill, a scale
//! down that missed a Pod). Every Pod it controls (by its uid) must be named
//! `<name>-<ordinal>` with an ordinal below `replicas` and carry its uid in the
//! `podmanager-uid` label; every ordinal below `replicas` must have its Pod.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::listed::{Listed, controller, name};

/// The label holding the PodManager's uid on each of its Pods (the seed's label).
pub const UID_LABEL: &str = "podmanager-uid";

/// What the Pods of PodManager `pm` (uid `uid`) show against `spec`.
#[derive(Debug, Default, PartialEq)]
pub struct Pods {
    /// Missing ordinals and Pods that do not say whose they are: lost updates.
    pub lost: Vec<String>,
    /// Pods beyond the ordinals `replicas` asks for, or not named by an ordinal.
    pub extra: Vec<String>,
}

/// The ordinal of Pod `pod` of PodManager `pm`: `<pm>-<i>`, `i` plain decimal.
fn ordinal(pm: &str, pod: &str) -> Option<u64> {
    let digits = pod.strip_prefix(pm)?.strip_prefix('-')?;
    let plain = digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    plain.then(|| digits.parse().ok()).flatten()
}

/// Checks the live Pods of PodManager `pm` (uid `uid`) against `spec.replicas`.
pub fn check(pm: &str, uid: &str, spec: &Value, listed: &Listed) -> Pods {
    let replicas = spec.get("replicas").and_then(Value::as_u64).unwrap_or(1);
    let mut out = Pods::default();
    let mut seen = BTreeSet::new();
    let mine = listed.pods.iter().filter(|p| controller(&p.metadata).is_some_and(|r| r.uid == uid));
    for pod in mine {
        let pod_name = name(&pod.metadata);
        match ordinal(pm, pod_name) {
            None => out.extra.push(format!("Pod {pod_name} is not named {pm}-<ordinal>")),
            Some(i) if i >= replicas => out.extra.push(format!("Pod {pod_name}: ordinal {i}, replicas {replicas}")),
            Some(i) => {
                seen.insert(i);
            }
        }
        let label = pod.metadata.labels.as_ref().and_then(|l| l.get(UID_LABEL));
        if label.map(String::as_str) != Some(uid) {
            out.lost.push(format!("Pod {pod_name}: label {UID_LABEL} {label:?}, its owner's uid is {uid}"));
        }
    }
    for missing in (0..replicas).filter(|i| !seen.contains(i)) {
        out.lost.push(format!("Pod {pm}-{missing} is missing (replicas {replicas})"));
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;
    use crate::kinds::Kind;
    use crate::listed::fixtures::{controlled_by, meta};

    fn pod(name: &str, owner_uid: &str) -> Pod {
        let mut metadata = meta(name, Kind::PodManager, "pm", vec![controlled_by("PodManager", "pm", owner_uid)]);
        metadata.labels.get_or_insert_default().insert(UID_LABEL.into(), owner_uid.into());
        Pod { metadata, ..Pod::default() }
    }

    fn listed(pods: Vec<Pod>) -> Listed {
        Listed { pods, ..Listed::default() }
    }

    #[test]
    fn one_pod_per_ordinal_below_replicas_is_right() {
        let found = check("pm", "u", &json!({"replicas": 2}), &listed(vec![pod("pm-0", "u"), pod("pm-1", "u")]));
        assert_eq!(found, Pods::default());
    }

    #[test]
    fn a_pod_beyond_replicas_or_not_named_by_an_ordinal_is_a_duplicate() {
        let pods = vec![pod("pm-0", "u"), pod("pm-1", "u"), pod("pm-2", "u"), pod("pm-01", "u"), pod("pm-x", "u")];
        let found = check("pm", "u", &json!({"replicas": 2}), &listed(pods));
        assert_eq!(found.extra.len(), 3, "{found:?}");
        assert!(found.lost.is_empty(), "{found:?}");
    }

    #[test]
    fn a_missing_ordinal_is_a_lost_update_and_a_predecessors_pod_is_not_counted() {
        // pm-1 belongs to an earlier PodManager of the name (another uid): not this one's.
        let found = check("pm", "u", &json!({"replicas": 2}), &listed(vec![pod("pm-0", "u"), pod("pm-1", "old")]));
        assert_eq!(found.lost, ["Pod pm-1 is missing (replicas 2)"]);
        assert!(found.extra.is_empty());
    }

    #[test]
    fn a_pod_whose_uid_label_names_another_owner_is_found() {
        let mut wrong = pod("pm-0", "u");
        wrong.metadata.labels.get_or_insert_default().insert(UID_LABEL.into(), "old".into());
        let found = check("pm", "u", &json!({"replicas": 1}), &listed(vec![wrong]));
        assert_eq!(found.lost.len(), 1, "{found:?}");
    }
}
