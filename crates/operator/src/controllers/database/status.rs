//! The pure status mapping: the kit's lifecycle assessment of the server's rollout,
//! plus what only a database reports: where to connect, which Secret to read (never
//! anything read from it), the last backup, and the volumes' growth. Deterministic, so
//! a converged Database is never re-written.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;
use k8s_openapi::jiff::Timestamp;
use reconcile_kit::assess::{self, Assessment, Failure, Previous, Progress};
use reconcile_kit::conditions::{Conditions, DEGRADED, PROGRESSING};
use reconcile_kit::workload::pods::{CachedPod, pod_problems};
use webapp_api::common::Condition;
use webapp_api::{Database, DatabaseStatus};

use super::storage;
use super::{backup, plan};

/// The reason of a Database whose kept data lost its credentials.
pub const CREDENTIALS_MISSING: &str = "CredentialsMissing";

/// What one reconcile found of a Database's volumes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Volumes {
    /// Every claim has the size the spec asks for.
    #[default]
    AsSpecified,
    /// A claim was grown and waits for its volume: the message says which.
    Resizing(String),
    /// A claim cannot grow (its StorageClass does not allow expansion): why.
    NotExpandable(String),
}

/// What one reconcile saw of a Database's children.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The StatefulSet as applied (never an older cached copy).
    pub statefulset: Option<StatefulSet>,
    /// The server's pods.
    pub pods: Vec<Arc<CachedPod>>,
    /// The data claim of the server's pod, once the StatefulSet controller made it.
    pub data_claim: Option<PersistentVolumeClaim>,
    /// The backup CronJob as applied, when backups are enabled.
    pub cronjob: Option<CronJob>,
    /// The volumes' sizes.
    pub volumes: Volumes,
    /// The credentials Secret of kept data is gone: why that blocks.
    pub credentials_missing: Option<String>,
    /// Whether this reconcile changed a child (the rollout it starts is not visible yet).
    pub changed: bool,
}

/// Whether the StatefulSet controller has rolled the latest spec out to a ready pod.
pub fn rolled_out(statefulset: &StatefulSet) -> bool {
    let Some(status) = &statefulset.status else { return false };
    let wanted = statefulset.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let observed = status.observed_generation.unwrap_or(0) >= statefulset.metadata.generation.unwrap_or(0);
    let revision_done = status.update_revision.is_none() || status.current_revision == status.update_revision;
    observed
        && revision_done
        && status.updated_replicas.unwrap_or(0) == wanted
        && status.ready_replicas.unwrap_or(0) == wanted
}

impl Observed {
    /// What decides the phase: ready once the StatefulSet rolled out and no pod fails.
    pub fn progress(&self) -> Progress {
        let ready = self.statefulset.as_ref().and_then(|s| s.status.as_ref()).and_then(|s| s.ready_replicas);
        Progress {
            ready: self.statefulset.as_ref().is_some_and(rolled_out),
            changed: self.changed,
            problems: pod_problems(&self.pods),
            summary: format!("{}/1 pods ready", ready.unwrap_or(0)),
        }
    }

    /// The failure this observation is: a missing Secret the server needs.
    pub fn failure(&self) -> Option<Failure> {
        let message = self.credentials_missing.clone()?;
        Some(Failure { reason: CREDENTIALS_MISSING.into(), message, retrying: false })
    }
}

/// The status `db` should carry after observing `observed`, or failing with `failure`.
pub fn compute(db: &Database, observed: &Observed, failure: Option<&Failure>, now: Timestamp) -> DatabaseStatus {
    let before = db.status.clone().unwrap_or_default();
    let generation = db.metadata.generation;
    let missing = observed.failure();
    let failure = failure.or(missing.as_ref());
    let previous = Previous::of(&before);
    let mut assessment = assess::assess(previous, generation, &observed.progress(), failure, now);
    // Volumes grow while the server serves: that is progress, or degradation when the
    // class cannot expand, but never a reason to leave Running.
    // So do failing backups: the server serves, but the data is not being saved, which
    // Degraded (reason BackupFailing) says until a run succeeds.
    if failure.is_none() {
        let volumes = match &observed.volumes {
            Volumes::AsSpecified => None,
            Volumes::Resizing(note) => Some((PROGRESSING, "Resizing", note.clone())),
            Volumes::NotExpandable(note) => Some((DEGRADED, "StorageNotExpandable", note.clone())),
        };
        let backups = observed.cronjob.as_ref().and_then(|c| backup::failing(c).or_else(|| backup::overdue(c, now)));
        let backups = backups.map(|note| (DEGRADED, "BackupFailing", note));
        for (type_, reason, note) in [volumes, backups].into_iter().flatten() {
            let degraded = assessment.conditions.iter().any(|c| c.type_ == DEGRADED && c.status == "True");
            if type_ == DEGRADED && degraded {
                // One Degraded reason at a time (the first found); the message says both.
                assessment.message = format!("{}; {note}", assessment.message);
                continue;
            }
            let condition =
                Conditions::new(previous.conditions, generation, now).set(type_, true, reason, &note).build();
            replace(&mut assessment, condition.into_iter().find(|c| c.type_ == type_));
            assessment.message = format!("{}; {note}", assessment.message);
        }
    }
    let last_backup = observed
        .cronjob
        .as_ref()
        .and_then(|c| c.status.as_ref())
        .and_then(|s| s.last_successful_time.clone())
        .or(before.last_backup);
    DatabaseStatus {
        phase: Some(assessment.phase),
        observed_generation: generation,
        endpoint: Some(plan::endpoint(db)),
        credentials_secret: Some(plan::secret_name(db)),
        last_backup,
        // Recorded once the server runs at the applied version (a refused change applies
        // nothing and keeps the version the data has).
        version: observed
            .statefulset
            .as_ref()
            .filter(|s| rolled_out(s))
            .and_then(storage::live_version)
            .map(str::to_owned)
            .or(before.version),
        capacity: observed.data_claim.as_ref().and_then(storage::capacity).map(str::to_owned),
        message: Some(assessment.message),
        conditions: assessment.conditions,
    }
}

fn replace(assessment: &mut Assessment, condition: Option<Condition>) {
    if let Some(condition) = condition
        && let Some(slot) = assessment.conditions.iter_mut().find(|c| c.type_ == condition.type_)
    {
        *slot = condition;
    }
}

/// The first status of a new Database: accepted, nothing created yet.
pub fn pending(db: &Database, now: Timestamp) -> DatabaseStatus {
    let assessment = assess::pending(db.metadata.generation, now);
    DatabaseStatus {
        phase: Some(assessment.phase),
        observed_generation: db.metadata.generation,
        endpoint: Some(plan::endpoint(db)),
        credentials_secret: Some(plan::secret_name(db)),
        message: Some(assessment.message),
        conditions: assessment.conditions,
        ..DatabaseStatus::default()
    }
}

/// The status of a Database being deleted: phase Deleting, the rest kept.
pub fn deleting(db: &Database, what: &str, now: Timestamp) -> DatabaseStatus {
    let before = db.status.clone().unwrap_or_default();
    let assessment = assess::deleting(Previous::of(&before), db.metadata.generation, what, now);
    DatabaseStatus {
        phase: Some(assessment.phase),
        message: Some(assessment.message),
        conditions: assessment.conditions,
        ..before
    }
}

#[cfg(test)]
mod tests;
