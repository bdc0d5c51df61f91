//! The pure plan of a PodManager: what its Pods look like, and which Pods to create
//! and delete given the ones that exist. No I/O, no clock.
//!
//! Pods are named `<name>-<ordinal>`, ordinals `0..replicas`. One reconcile:
//! - creates every missing ordinal (scale up, a Pod deleted by hand or evicted);
//! - deletes ordinals at or above `replicas`, highest first (scale down);
//! - deletes Pods that ended (`Failed`, `Succeeded`): nobody restarts a bare Pod, so
//!   the next reconcile creates them again;
//! - replaces Pods made from an older template one at a time, highest ordinal first,
//!   and only while every other Pod is in place and Ready: a rolling update with at
//!   most one Pod down.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::ResourceExt;
use webapp_api::PodManager;
use webapp_api::podmanager::v2::PodTemplate;

use reconcile_kit::workload::labels::child_labels;
use reconcile_kit::workload::pods::is_ready;

/// The `app.kubernetes.io/name` of PodManager Pods.
pub const APP: &str = "podmanager";
/// Label naming the PodManager of a Pod (the seed's label).
pub const OWNER_LABEL: &str = "podmanager";
/// Label holding the uid of the PodManager of a Pod (the seed's label).
pub const OWNER_UID_LABEL: &str = "podmanager-uid";
/// Label holding the hash of the template a Pod was made from.
pub const TEMPLATE_HASH: &str = "apps.mycompany.com/template-hash";

/// The name of Pod `ordinal` of PodManager `name`.
pub fn pod_name(name: &str, ordinal: i32) -> String {
    format!("{name}-{ordinal}")
}

/// The ordinal of Pod `pod` of PodManager `name`, if the Pod is named like one of its
/// Pods (`<name>-<i>`, `i` a plain decimal number).
pub fn ordinal(name: &str, pod: &str) -> Option<i32> {
    let digits = pod.strip_prefix(name)?.strip_prefix('-')?;
    let canonical =
        !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) && (digits == "0" || !digits.starts_with('0'));
    canonical.then(|| digits.parse().ok()).flatten()
}

/// The hash of a template: Pods carrying another hash were made from an older spec.
pub fn template_hash(template: &PodTemplate) -> String {
    reconcile_kit::apply::hash(template)
}

/// Pod `ordinal` of `pm` as it should be created from `template` (whose hash is
/// `hash`). `owner` is the controller owner reference pointing at `pm`.
pub fn desired_pod(pm: &PodManager, template: &PodTemplate, hash: &str, owner: OwnerReference, ordinal: i32) -> Pod {
    let name = pm.name_any();
    let mut labels = template.metadata.labels.clone();
    labels.extend(child_labels(APP, &name));
    labels.insert(OWNER_LABEL.into(), name.clone());
    labels.insert(OWNER_UID_LABEL.into(), pm.uid().unwrap_or_default());
    labels.insert(TEMPLATE_HASH.into(), hash.to_owned());
    let annotations: BTreeMap<String, String> = template.metadata.annotations.clone();
    let containers = template
        .spec
        .containers
        .iter()
        .map(|c| Container {
            name: c.name.clone(),
            image: Some(c.image.clone()),
            ports: (!c.ports.is_empty()).then(|| c.ports.clone()),
            env: (!c.env.is_empty()).then(|| c.env.clone()),
            resources: c.resources.clone(),
            readiness_probe: c.readiness_probe.clone(),
            liveness_probe: c.liveness_probe.clone(),
            ..Container::default()
        })
        .collect();
    Pod {
        metadata: ObjectMeta {
            name: Some(pod_name(&name, ordinal)),
            namespace: pm.namespace(),
            labels: Some(labels),
            annotations: (!annotations.is_empty()).then_some(annotations),
            owner_references: Some(vec![owner]),
            ..ObjectMeta::default()
        },
        spec: Some(PodSpec { containers, ..PodSpec::default() }),
        status: None,
    }
}

/// What the plan needs to know of one existing Pod.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PodView {
    /// Pod name.
    pub name: String,
    /// Its uid when the plan read it: a deletion the plan decides carries it, so a Pod
    /// re-created under the name meanwhile (by a new leader, say) is never deleted.
    pub uid: Option<String>,
    /// Its ordinal, `None` for a Pod of ours that is not named like one.
    pub ordinal: Option<i32>,
    /// The template hash it was made from.
    pub hash: Option<String>,
    /// Whether its phase is `Failed` or `Succeeded`: it will never run again.
    pub ended: bool,
    /// Whether its Ready condition is True.
    pub ready: bool,
    /// Whether it is being deleted.
    pub terminating: bool,
}

impl PodView {
    /// Reads `pod`, a Pod of PodManager `name`.
    pub fn of(name: &str, pod: &Pod) -> Self {
        let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
        let ended = matches!(phase, Some("Failed" | "Succeeded"));
        PodView {
            name: pod.name_any(),
            uid: pod.metadata.uid.clone(),
            ordinal: ordinal(name, &pod.name_any()),
            hash: pod.labels().get(TEMPLATE_HASH).cloned(),
            ended,
            // A Pod that ended may keep its last Ready condition; it serves nothing.
            ready: is_ready(pod) && !ended,
            terminating: pod.metadata.deletion_timestamp.is_some(),
        }
    }

    /// Whether it counts: it exists and is not on its way out.
    pub fn live(&self) -> bool {
        !self.terminating && !self.ended
    }
}

#[cfg(test)]
impl PodView {
    /// A live Pod `pm-<ordinal>` made from template `hash`, for tests.
    pub(crate) fn test(ordinal: i32, hash: &str, ready: bool) -> Self {
        PodView {
            name: pod_name("pm", ordinal),
            uid: Some(format!("uid-{ordinal}")),
            ordinal: Some(ordinal),
            hash: Some(hash.into()),
            ended: false,
            ready,
            terminating: false,
        }
    }
}

/// Why a Pod is deleted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Why {
    /// Its ordinal is at or above `replicas`.
    ScaleDown,
    /// It ended (`Failed` or `Succeeded`) and will be created again.
    Ended,
    /// It was made from an older template and will be created again from the current one.
    Outdated,
    /// It is ours but not named like one of our Pods.
    Stray,
}

impl Why {
    /// A short phrase for events.
    pub fn as_str(self) -> &'static str {
        match self {
            Why::ScaleDown => "scaled down",
            Why::Ended => "ended; replacing it",
            Why::Outdated => "outdated template; replacing it",
            Why::Stray => "not one of the ordinals",
        }
    }
}

/// What one reconcile does to the Pods.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Changes {
    /// Ordinals to create, lowest first.
    pub create: Vec<i32>,
    /// Pods to delete, highest ordinal first.
    pub delete: Vec<(String, Why)>,
}

impl Changes {
    /// Whether nothing is to be done.
    pub fn is_empty(&self) -> bool {
        self.create.is_empty() && self.delete.is_empty()
    }
}

/// The changes that move `pods` towards `replicas` Pods made from the template with
/// hash `hash`.
pub fn changes(replicas: i32, hash: &str, pods: &[PodView]) -> Changes {
    let replicas = replicas.max(0);
    let mut sorted: Vec<&PodView> = pods.iter().collect();
    // Highest ordinal first; strays (no ordinal) before everything.
    sorted.sort_by_key(|p| (std::cmp::Reverse(p.ordinal.map_or(i64::MAX, i64::from)), p.name.clone()));
    let mut changes = Changes::default();
    for pod in sorted.iter().filter(|p| !p.terminating) {
        let why = match pod.ordinal {
            None => Some(Why::Stray),
            Some(i) if i >= replicas => Some(Why::ScaleDown),
            Some(_) if pod.ended => Some(Why::Ended),
            Some(_) => None,
        };
        if let Some(why) = why {
            changes.delete.push((pod.name.clone(), why));
        }
    }
    let wanted = |p: &&&PodView| p.ordinal.is_some_and(|i| i < replicas);
    let present: Vec<i32> = sorted.iter().filter(wanted).filter_map(|p| p.ordinal).collect();
    changes.create = (0..replicas).filter(|i| !present.contains(i)).collect();

    // Rolling update: only when every ordinal has a live Pod and every up-to-date one is
    // Ready, so that replacing one more leaves at most one Pod down.
    let in_place: Vec<&&PodView> = sorted.iter().filter(wanted).collect();
    let settled = changes.create.is_empty()
        && in_place.iter().all(|p| p.live())
        && in_place.iter().filter(|p| p.hash.as_deref() == Some(hash)).all(|p| p.ready);
    if settled {
        let outdated = || in_place.iter().filter(|p| p.hash.as_deref() != Some(hash));
        // An outdated Pod that is not Ready anyway goes first: replacing it costs nothing.
        if let Some(pod) = outdated().find(|p| !p.ready).or_else(|| outdated().next()) {
            changes.delete.push((pod.name.clone(), Why::Outdated));
        }
    }
    changes
}

#[cfg(test)]
mod tests;
