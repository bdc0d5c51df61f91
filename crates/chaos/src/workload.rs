//! The churn: a fixed set of names per kind, and random operations on them from the
//! seed (create, spec change, scale through the scale subresource, delete, re-create
//! with the same name). The [`Model`] remembers the last spec the churn wrote to each
//! name, which the checks compare the cluster against.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use k8s_openapi::api::core::v1::PersistentVolume;
use kube::api::{DeleteParams, Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Api, Client};
use serde_json::{Value, json};
use tokio::task::JoinHandle;

use crate::kinds::Kind;
use crate::rng::Rng;

/// Label on everything the suite creates outside the namespace (PersistentVolumes).
pub const LABEL: &str = "chaos.webapp-operator.example.com/namespace";

/// What the churn last did to one name.
#[derive(Clone, Debug)]
pub struct Slot {
    /// Its kind.
    pub kind: Kind,
    /// Its name.
    pub name: String,
    /// Whether it should exist (created and not deleted since).
    pub live: bool,
    /// The spec it should have: what was created, with every accepted change merged in.
    pub spec: Value,
    /// A write whose outcome is unknown (the connection broke: it may or may not have
    /// been applied); the checks then take the cluster's word for this name.
    pub uncertain: bool,
    /// How many times it was created.
    pub incarnations: u32,
    /// Databases: what the last deletion left of the volumes.
    pub volumes: Volumes,
}

/// What a deleted Database leaves of its volumes (data and backup claims, and the
/// credentials Secret they keep), by the `deletionPolicy` it had when deleted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Volumes {
    /// Nothing: never deleted, or deleted under `Delete`.
    #[default]
    Gone,
    /// Kept on purpose: deleted under `Retain` (the default).
    Kept,
    /// Either: a write of unknown outcome came before the deletion, so the policy it
    /// had is not known.
    Unknown,
}

impl Volumes {
    /// What deleting a Database with `spec` leaves.
    pub fn after_deleting(spec: &Value) -> Self {
        match spec.get("deletionPolicy").and_then(Value::as_str) {
            Some("Delete") => Volumes::Gone,
            _ => Volumes::Kept,
        }
    }
}

/// The operations made so far, by type.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ops {
    /// First creations.
    pub creates: u64,
    /// Creations of a name that existed before.
    pub recreates: u64,
    /// Spec changes (merge patches).
    pub updates: u64,
    /// Changes through the scale subresource.
    pub scales: u64,
    /// Deletions.
    pub deletes: u64,
    /// Refused writes (e.g. a re-create while the old object is still finalizing).
    pub refused: u64,
    /// Writes whose outcome is unknown (API server or etcd down).
    pub unknown: u64,
}

impl Ops {
    /// All writes attempted.
    pub fn total(&self) -> u64 {
        self.creates + self.recreates + self.updates + self.scales + self.deletes + self.refused + self.unknown
    }
}

/// The expected state of every name, shared by the churn task and the checks.
#[derive(Debug, Default)]
pub struct Model {
    /// Every name the churn uses.
    pub slots: Vec<Slot>,
    /// Operations so far.
    pub ops: Ops,
}

/// The model, shared.
pub type Shared = Arc<Mutex<Model>>;

/// Locks the model (a panicked holder leaves consistent data: every change is one assignment).
pub fn lock(model: &Shared) -> std::sync::MutexGuard<'_, Model> {
    model.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Model {
    /// `per_kind` names of each kind, none created yet.
    pub fn new(per_kind: &BTreeMap<Kind, usize>) -> Self {
        let slots = per_kind
            .iter()
            .flat_map(|(kind, n)| {
                (0..*n).map(|i| Slot {
                    kind: *kind,
                    name: format!("{}-{i}", kind.prefix()),
                    live: false,
                    spec: Value::Null,
                    uncertain: false,
                    incarnations: 0,
                    volumes: Volumes::Gone,
                })
            })
            .collect();
        Model { slots, ops: Ops::default() }
    }
}

/// Where the churn writes.
#[derive(Clone)]
pub struct Target {
    /// The suite's client.
    pub client: Client,
    /// The namespace of every object.
    pub namespace: String,
}

impl Target {
    /// The dynamic API of `kind` in the namespace.
    pub fn api(&self, kind: Kind) -> Api<DynamicObject> {
        Api::namespaced_with(self.client.clone(), &self.namespace, &kind.resource())
    }
}

/// What one operation will do, chosen under the lock, run without it.
enum Op {
    Create { spec: Value, again: bool },
    Update(Value),
    Scale(&'static str, u64),
    Delete,
}

/// The outcome of a write.
enum Outcome {
    Done,
    Refused,
    Unknown,
}

fn outcome<T>(result: Result<T, kube::Error>) -> Outcome {
    match result {
        Ok(_) => Outcome::Done,
        // The API server answered: the write was not applied. A 5xx may still hide
        // an applied write (etcd timed out after committing), so it counts as unknown.
        Err(kube::Error::Api(status)) if status.code < 500 => Outcome::Refused,
        Err(_) => Outcome::Unknown,
    }
}

/// Makes one random operation on slot `index`.
pub async fn step(target: &Target, model: &Shared, rng: &mut Rng, index: usize) {
    let (kind, name, op) = {
        let model = lock(model);
        let slot = &model.slots[index];
        let op = if !slot.live {
            Op::Create { spec: slot.kind.spec(rng), again: slot.incarnations > 0 }
        } else {
            match (rng.below(100), slot.kind.scale_field()) {
                (0..60, _) | (60..80, None) => Op::Update(slot.kind.change(rng)),
                (60..80, Some(field)) => Op::Scale(field, rng.between(1, 3)),
                _ => Op::Delete,
            }
        };
        (slot.kind, slot.name.clone(), op)
    };
    let api = target.api(kind);
    let result = match &op {
        Op::Create { spec, .. } => {
            if kind == Kind::Database {
                // A failed volume only delays this Database's convergence, which the checks report.
                let _ = volume(target, &name).await;
            }
            outcome(api.create(&PostParams::default(), &object(kind, &name, spec)).await)
        }
        Op::Update(change) => {
            outcome(api.patch(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": change}))).await)
        }
        Op::Scale(_, replicas) => outcome(
            api.patch_scale(&name, &PatchParams::default(), &Patch::Merge(json!({"spec": {"replicas": replicas}})))
                .await,
        ),
        Op::Delete => outcome(api.delete(&name, &DeleteParams::default()).await),
    };
    let mut model = lock(model);
    let model = &mut *model;
    let slot = &mut model.slots[index];
    // The spec the cluster holds is only known when no earlier write's outcome is unknown.
    let known = !slot.uncertain;
    match result {
        Outcome::Refused => {
            model.ops.refused += 1;
            return;
        }
        Outcome::Unknown => {
            model.ops.unknown += 1;
            slot.uncertain = true;
        }
        Outcome::Done => {}
    }
    match op {
        Op::Create { spec, again } => {
            slot.live = true;
            slot.spec = spec;
            slot.incarnations += 1;
            if again { model.ops.recreates += 1 } else { model.ops.creates += 1 }
        }
        Op::Update(change) => {
            merge(&mut slot.spec, &change);
            model.ops.updates += 1;
        }
        Op::Scale(field, replicas) => {
            slot.spec[field] = json!(replicas);
            model.ops.scales += 1;
        }
        Op::Delete => {
            slot.live = false;
            slot.volumes = if known { Volumes::after_deleting(&slot.spec) } else { Volumes::Unknown };
            model.ops.deletes += 1;
        }
    }
}

/// A JSON merge patch (RFC 7386) of `change` into `target`.
pub fn merge(target: &mut Value, change: &Value) {
    let (Some(target), Some(change)) = (target.as_object_mut(), change.as_object()) else { return };
    for (key, value) in change {
        if value.is_null() {
            target.remove(key);
        } else if value.is_object() && target.get(key).is_some_and(Value::is_object) {
            if let Some(inner) = target.get_mut(key) {
                merge(inner, value);
            }
        } else {
            target.insert(key.clone(), value.clone());
        }
    }
}

fn object(kind: Kind, name: &str, spec: &Value) -> DynamicObject {
    let mut object = DynamicObject::new(name, &kind.resource());
    object.data = json!({"spec": spec});
    object
}

/// A PersistentVolume pre-bound to Database `name`'s data claim, as the cluster's
/// storage driver would provide (kwok has none). One per creation: a volume released by
/// an earlier claim of the same name does not bind again.
async fn volume(target: &Target, name: &str) -> Result<(), kube::Error> {
    let api: Api<PersistentVolume> = Api::all(target.client.clone());
    let claim = webapp_operator::controllers::database::plan::data_claim_name(name);
    let volume: PersistentVolume = serde_json::from_value(json!({
        "metadata": {"generateName": format!("chaos-{name}-"), "labels": {LABEL: target.namespace}},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"], "storageClassName": "standard",
            "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": "/tmp/webapp-chaos"},
            "claimRef": {"namespace": target.namespace, "name": claim}}
    }))
    .map_err(kube::Error::SerdeError)?;
    api.create(&PostParams::default(), &volume).await.map(drop)
}

/// Creates every name of the model that does not exist yet, a few at a time.
pub async fn populate(target: &Target, model: &Shared, rng: &mut Rng) {
    use futures::StreamExt;
    let missing: Vec<(usize, Rng)> = lock(model)
        .slots
        .iter()
        .enumerate()
        .filter(|(_, s)| !s.live)
        .map(|(i, _)| i)
        .collect::<Vec<_>>()
        .into_iter()
        .map(|i| (i, rng.fork()))
        .collect();
    futures::stream::iter(missing)
        .for_each_concurrent(8, |(i, mut rng)| async move { step(target, model, &mut rng, i).await })
        .await;
}

/// The churn running in the background: one random operation after another, with a
/// random pause of `pause` milliseconds between them.
pub struct Churn {
    stop: Arc<AtomicBool>,
    task: JoinHandle<()>,
}

impl Churn {
    /// Starts it.
    pub fn start(target: Target, model: Shared, mut rng: Rng, pause: (u64, u64)) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let task = tokio::spawn(async move {
            let n = lock(&model).slots.len() as u64;
            while !stopping.load(Ordering::Relaxed) {
                let index = rng.below(n) as usize;
                // Bounded: a write stuck on a dead API server must not hold the phase.
                let _ = tokio::time::timeout(Duration::from_secs(20), step(&target, &model, &mut rng, index)).await;
                tokio::time::sleep(Duration::from_millis(rng.between(pause.0, pause.1))).await;
            }
        });
        Churn { stop, task }
    }

    /// Stops it after the operation in flight.
    pub async fn stop(self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_deleted_under_retain_keeps_its_volumes_by_default() {
        assert_eq!(Volumes::after_deleting(&json!({"deletionPolicy": "Delete"})), Volumes::Gone);
        assert_eq!(Volumes::after_deleting(&json!({"deletionPolicy": "Retain"})), Volumes::Kept);
        assert_eq!(Volumes::after_deleting(&json!({})), Volumes::Kept, "Retain is the default");
    }

    #[test]
    fn merge_replaces_adds_and_removes() {
        let mut spec = json!({"image": "a", "domain": "d", "env": {"A": "1"}});
        merge(&mut spec, &json!({"image": "b", "domain": null, "env": {"B": "2"}}));
        assert_eq!(spec, json!({"image": "b", "env": {"A": "1", "B": "2"}}));
    }
}
