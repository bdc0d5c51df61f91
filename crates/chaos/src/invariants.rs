//! The invariants over one listing, as pure functions: every live object's spec is the
//! churn's last write and its children show it (no lost update), no child outlives its
//! owner (no orphan), no owner has more children than its spec asks for (no duplicate).

use std::collections::HashMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde_json::Value;

use crate::kinds::{self, Children, Kind};
use crate::listed::{Listed, controller, labelled, name, owner};
use crate::orphans::{self, Live};
use crate::workload::{Slot, Volumes};
use crate::{database, podmanager};

/// One custom object as the checks read it.
#[derive(Clone, Debug)]
pub struct Parent {
    /// Its kind.
    pub kind: Kind,
    /// Its uid.
    pub uid: String,
    /// Its spec.
    pub spec: Value,
    /// Phase Running at its generation.
    pub converged: bool,
    /// Being deleted.
    pub deleting: bool,
}

/// One broken invariant.
#[derive(Clone, Debug, PartialEq)]
pub enum Problem {
    /// A spec or a child that does not show the last write.
    Lost(String),
    /// A child whose owner is gone.
    Orphan(String),
    /// Children beyond what the spec asks for, and how many.
    Duplicate(String, usize),
}

impl Problem {
    /// The line the report prints.
    pub fn line(&self) -> String {
        match self {
            Problem::Lost(line) => format!("lost update: {line}"),
            Problem::Orphan(line) => format!("orphan: {line}"),
            Problem::Duplicate(line, n) => format!("duplicate: {line} ({n} extra)"),
        }
    }
}

/// What the children controlled by each uid show (the fields the checks compare).
pub fn summarize(listed: &Listed) -> HashMap<String, Children> {
    let mut by_uid: HashMap<String, Children> = HashMap::new();
    for (kind, meta) in listed.metas().filter(|(kind, _)| *kind != "PersistentVolumeClaim") {
        if let Some((_, uid)) = owner(meta) {
            *by_uid.entry(uid).or_default().count.entry(kind).or_default() += 1;
        }
    }
    // The child named like its owner carries the spec.
    let named = |meta: &ObjectMeta| {
        let own_name = controller(meta).is_some_and(|r| r.name == name(meta));
        owner(meta).filter(|_| own_name).map(|(_, uid)| uid)
    };
    for d in &listed.deployments {
        if let Some(uid) = named(&d.metadata) {
            let children = by_uid.entry(uid).or_default();
            let spec = d.spec.as_ref();
            children.replicas = spec.and_then(|s| s.replicas).map(i64::from);
            let container = spec.and_then(|s| s.template.spec.as_ref()).and_then(|p| p.containers.first());
            children.images.extend(container.and_then(|c| c.image.clone()));
            children.env = container
                .and_then(|c| c.env.as_ref())
                .into_iter()
                .flatten()
                .filter_map(|e| Some((e.name.clone(), e.value.clone()?)))
                .collect();
            let port = container.and_then(|c| c.ports.as_ref()).and_then(|p| p.first());
            children.container_port = port.map(|p| i64::from(p.container_port));
            let resources = container.and_then(|c| serde_json::to_value(&c.resources).ok()).unwrap_or(Value::Null);
            children.resources = kinds::resources_shown(&resources);
            children.args = container.and_then(|c| c.args.clone()).unwrap_or_default();
        }
    }
    for s in &listed.statefulsets {
        if let Some((_, uid)) = owner(&s.metadata) {
            let children = by_uid.entry(uid).or_default();
            let spec = s.spec.as_ref();
            children.replicas = spec.and_then(|s| s.replicas).map(i64::from);
            let container = spec.and_then(|s| s.template.spec.as_ref()).and_then(|p| p.containers.first());
            children.images.extend(container.and_then(|c| c.image.clone()));
        }
    }
    for s in &listed.services {
        if let Some(uid) = named(&s.metadata) {
            let port = s.spec.as_ref().and_then(|s| s.ports.as_ref()).and_then(|p| p.first()).map(|p| p.port);
            by_uid.entry(uid).or_default().port = port.map(i64::from);
        }
    }
    for i in &listed.ingresses {
        if let Some(uid) = named(&i.metadata) {
            let rules = i.spec.as_ref().and_then(|s| s.rules.as_ref());
            by_uid.entry(uid).or_default().host = rules.and_then(|r| r.first()).and_then(|r| r.host.clone());
        }
    }
    for p in &listed.pods {
        if let Some((kind, uid)) = owner(&p.metadata)
            && kind == Kind::PodManager.name()
        {
            let image = p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone());
            by_uid.entry(uid).or_default().images.extend(image);
        }
    }
    by_uid
}

/// Every broken invariant of `listed` against the churn's `slots` and the custom
/// objects `found`.
pub fn problems(listed: &Listed, slots: &[Slot], found: &HashMap<(Kind, String), Parent>) -> Vec<Problem> {
    let by_uid = summarize(listed);
    let live: Live = found.iter().map(|(key, parent)| (key.clone(), parent.uid.clone())).collect();
    let volumes = |db: &str| {
        slots.iter().find(|s| s.kind == Kind::Database && s.name == db).map(|s| s.volumes).unwrap_or_default()
    };
    let mut problems: Vec<Problem> =
        orphans::orphans(listed, &live, &volumes).into_iter().map(Problem::Orphan).collect();
    for slot in slots.iter().filter(|s| s.live) {
        let what = format!("{} {}", slot.kind.name(), slot.name);
        let Some(parent) = found.get(&(slot.kind, slot.name.clone())) else {
            problems.push(Problem::Lost(format!("{what} should exist but is gone")));
            continue;
        };
        let children = by_uid.get(&parent.uid).cloned().unwrap_or_default();
        // The churn's last accepted write must be what the cluster holds...
        let mut wanted = parent.spec.clone();
        crate::workload::merge(&mut wanted, &slot.spec);
        if wanted != parent.spec {
            problems.push(Problem::Lost(format!("{what}: spec {} is not the last written {}", parent.spec, slot.spec)));
        }
        // ...and what its children show.
        let mut lost = kinds::differences(parent.kind, &parent.spec, &children);
        match parent.kind {
            Kind::Database => lost.extend(database::differences(&slot.name, &parent.uid, &parent.spec, listed)),
            Kind::PodManager => {
                let pods = podmanager::check(&slot.name, &parent.uid, &parent.spec, listed);
                lost.extend(pods.lost);
                problems.extend(pods.extra.into_iter().map(|line| Problem::Duplicate(format!("{what}: {line}"), 1)));
            }
            _ => {}
        }
        problems.extend(lost.into_iter().map(|line| Problem::Lost(format!("{what}: {line}"))));
        for (child, extra) in kinds::duplicates(parent.kind, &children) {
            problems.push(Problem::Duplicate(format!("{what}: {child}"), extra));
        }
    }
    problems
}

/// What the checks of one listing compared, so that a check that found nothing can be
/// seen to have looked: children carrying the project's labels, Databases with backups
/// on and under `Delete`, claims kept of deleted Databases (and how many were deleted
/// under each policy, whose claims must be gone or may stay), PodManager Pods, and the
/// objects whose resources and (Memcached) non-default port were compared.
pub fn coverage(listed: &Listed, slots: &[Slot], found: &HashMap<(Kind, String), Parent>) -> String {
    let carried = listed.metas().filter(|(_, meta)| labelled(meta).is_some()).count();
    let live = |kind: Kind| found.values().filter(move |p| p.kind == kind && !p.deleting);
    let with = |kind: Kind, pointer: &str, value: &Value| {
        live(kind).filter(|p| p.spec.pointer(pointer) == Some(value)).count()
    };
    let databases = live(Kind::Database).count();
    let backups = with(Kind::Database, "/backup/enabled", &Value::Bool(true));
    let delete = with(Kind::Database, "/deletionPolicy", &Value::from("Delete"));
    let kept = listed
        .claims
        .iter()
        .filter_map(|c| labelled(&c.metadata))
        .filter(|(kind, name)| *kind == Kind::Database && !found.contains_key(&(*kind, name.clone())))
        .count();
    let pods =
        listed.pods.iter().filter(|p| owner(&p.metadata).is_some_and(|(k, _)| k == Kind::PodManager.name())).count();
    let resources = [Kind::WebApp, Kind::Memcached]
        .into_iter()
        .flat_map(live)
        .filter(|p| p.spec.get("resources").is_some_and(|r| !r.is_null()))
        .count();
    let deleted = |volumes: Volumes| {
        let gone = |s: &&Slot| s.kind == Kind::Database && !s.live && s.incarnations > 0 && s.volumes == volumes;
        slots.iter().filter(gone).count()
    };
    let (under_delete, under_retain) = (deleted(Volumes::Gone), deleted(Volumes::Kept));
    let ports = live(Kind::Memcached).filter(|p| p.spec.get("port") != Some(&Value::from(11211))).count();
    format!(
        "{carried} labelled children; {databases} Databases ({backups} with backups, {delete} under Delete), \
         {kept} claims kept of deleted Databases \
         ({under_delete} Databases last deleted under Delete, {under_retain} under Retain); {pods} PodManager Pods; {resources} WebApps and Memcacheds \
         with resources; {ports} Memcacheds off port 11211"
    )
}
