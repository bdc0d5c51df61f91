//! The invariants, checked after every phase once the churn has stopped: every live
//! object converges (phase Running at its generation) within the bound, deleted objects
//! are gone (no stuck finalizer), children show the last spec written (no lost update),
//! no child outlives its owner (no orphan), and no owner has more children than its
//! spec asks for (no duplicate).

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::ListParams;
use kube::{Api, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use serde_json::Value;
use tokio::time::Instant;

use crate::kinds::{self, Children, Kind};
use crate::workload::{Shared, Target, lock};

/// What the checks found after one phase.
#[derive(Clone, Debug, Default)]
pub struct Verdict {
    /// Objects that should exist.
    pub objects: usize,
    /// Of those, how many converged within the bound.
    pub converged: usize,
    /// Seconds from the end of the churn until everything converged (the bound if never).
    pub converge_seconds: f64,
    /// Objects whose children do not show their last spec, or that vanished.
    pub lost: usize,
    /// Children whose owner is gone.
    pub orphaned: usize,
    /// Children beyond what the owner's spec asks for.
    pub duplicated: usize,
    /// Deleted objects still there after the bound.
    pub stuck: usize,
    /// One line per problem.
    pub problems: Vec<String>,
}

/// One custom object as the checks read it.
struct Parent {
    kind: Kind,
    uid: String,
    spec: Value,
    converged: bool,
    deleting: bool,
}

async fn parents(target: &Target) -> Result<HashMap<(Kind, String), Parent>, kube::Error> {
    let mut out = HashMap::new();
    for kind in Kind::ALL {
        for object in target.api(kind).list(&ListParams::default()).await?.items {
            let generation = object.metadata.generation;
            let status = object.data.get("status");
            let phase = status.and_then(|s| s.get("phase")).and_then(Value::as_str);
            let observed = status.and_then(|s| s.get("observedGeneration")).and_then(Value::as_i64);
            out.insert(
                (kind, object.name_any()),
                Parent {
                    kind,
                    uid: object.uid().unwrap_or_default(),
                    spec: object.data.get("spec").cloned().unwrap_or(Value::Null),
                    converged: phase == Some("Running") && observed == generation,
                    deleting: object.metadata.deletion_timestamp.is_some(),
                },
            );
        }
    }
    Ok(out)
}

/// Waits until every object the model holds live has converged and every deleted one
/// is gone, or `bound` passes; then checks children. The model's uncertain names take
/// the cluster's state as theirs first.
pub async fn check(target: &Target, model: &Shared, bound: Duration) -> Result<Verdict, kube::Error> {
    let start = Instant::now();
    let (mut verdict, mut found) = (Verdict::default(), HashMap::new());
    while start.elapsed() < bound {
        found = parents(target).await?;
        adopt_uncertain(model, &found);
        verdict = convergence(model, &found);
        if verdict.converged == verdict.objects && verdict.stuck == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    verdict.converge_seconds = start.elapsed().as_secs_f64().min(bound.as_secs_f64());
    // Children lag their owners' status by a watch event or the garbage collector's
    // next pass: a difference must persist for a few seconds to count.
    let mut last = children_check(target, model, &found).await?;
    for _ in 0..5 {
        if last.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        found = parents(target).await?;
        last = children_check(target, model, &found).await?;
    }
    for problem in last {
        match problem {
            Problem::Lost(_) => verdict.lost += 1,
            Problem::Orphan(_) => verdict.orphaned += 1,
            Problem::Duplicate(_, n) => verdict.duplicated += n,
        }
        verdict.problems.push(problem.line());
    }
    Ok(verdict)
}

/// A name whose last write had an unknown outcome takes the cluster's state.
fn adopt_uncertain(model: &Shared, found: &HashMap<(Kind, String), Parent>) {
    for slot in lock(model).slots.iter_mut().filter(|s| s.uncertain) {
        match found.get(&(slot.kind, slot.name.clone())) {
            Some(parent) if !parent.deleting => {
                slot.live = true;
                slot.spec = parent.spec.clone();
            }
            _ => slot.live = false,
        }
        slot.uncertain = false;
    }
}

fn convergence(model: &Shared, found: &HashMap<(Kind, String), Parent>) -> Verdict {
    let model = lock(model);
    let mut verdict = Verdict::default();
    for slot in &model.slots {
        let parent = found.get(&(slot.kind, slot.name.clone()));
        if slot.live {
            verdict.objects += 1;
            match parent {
                Some(p) if p.converged && !p.deleting => verdict.converged += 1,
                Some(p) if p.deleting => {
                    verdict.problems.push(format!("{} {} is deleting", slot.kind.name(), slot.name))
                }
                Some(_) => verdict.problems.push(format!("{} {} not converged", slot.kind.name(), slot.name)),
                None => verdict.problems.push(format!("{} {} is gone", slot.kind.name(), slot.name)),
            }
        } else if parent.is_some() {
            verdict.stuck += 1;
            verdict.problems.push(format!("{} {} was deleted but is still there", slot.kind.name(), slot.name));
        }
    }
    verdict
}

enum Problem {
    Lost(String),
    Orphan(String),
    Duplicate(String, usize),
}

impl Problem {
    fn line(&self) -> String {
        match self {
            Problem::Lost(line) => format!("lost update: {line}"),
            Problem::Orphan(line) => format!("orphan: {line}"),
            Problem::Duplicate(line, n) => format!("duplicate: {line} ({n} extra)"),
        }
    }
}

async fn list<K>(target: &Target) -> Result<Vec<K>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(target.client.clone(), &target.namespace).list(&ListParams::default()).await?.items)
}

/// The controlling owner of `meta` among our kinds: `(kind name, uid)`.
fn owner(object: &impl Resource) -> Option<(String, String)> {
    let ours: HashSet<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
    object
        .owner_references()
        .iter()
        .find(|r| r.controller == Some(true) && ours.contains(r.kind.as_str()))
        .map(|r| (r.kind.clone(), r.uid.clone()))
}

async fn children_check(
    target: &Target,
    model: &Shared,
    found: &HashMap<(Kind, String), Parent>,
) -> Result<Vec<Problem>, kube::Error> {
    let mut by_uid: HashMap<String, Children> = HashMap::new();
    let mut owned: Vec<(String, &'static str, String)> = Vec::new(); // (uid, child kind, child name)
    let mut note = |object: &dyn Fn() -> Option<(String, String)>, kind: &'static str, name: String| {
        if let Some((_, uid)) = object() {
            *by_uid.entry(uid.clone()).or_default().count.entry(kind).or_default() += 1;
            owned.push((uid, kind, name));
        }
    };
    let deployments: Vec<Deployment> = list(target).await?;
    let services: Vec<Service> = list(target).await?;
    let ingresses: Vec<Ingress> = list(target).await?;
    let statefulsets: Vec<StatefulSet> = list(target).await?;
    let pods: Vec<Pod> = list(target).await?;
    let secrets: Vec<Secret> = list(target).await?;
    let cronjobs: Vec<CronJob> = list(target).await?;
    for d in &deployments {
        note(&|| owner(d), "Deployment", d.name_any());
    }
    for s in &services {
        note(&|| owner(s), "Service", s.name_any());
    }
    for i in &ingresses {
        note(&|| owner(i), "Ingress", i.name_any());
    }
    for s in &statefulsets {
        note(&|| owner(s), "StatefulSet", s.name_any());
    }
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        note(&|| owner(p), "Pod", p.name_any());
    }
    for s in &secrets {
        note(&|| owner(s), "Secret", s.name_any());
    }
    for c in &cronjobs {
        note(&|| owner(c), "CronJob", c.name_any());
    }
    // Fields of the child named like its owner (the one that carries the spec).
    let named = |uid: &str, name: &str| owned.iter().any(|(u, _, n)| u == uid && n == name);
    for d in &deployments {
        if let Some((_, uid)) = owner(d)
            && named(&uid, &d.name_any())
        {
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
        }
    }
    for s in &statefulsets {
        if let Some((_, uid)) = owner(s) {
            let children = by_uid.entry(uid).or_default();
            let spec = s.spec.as_ref();
            children.replicas = spec.and_then(|s| s.replicas).map(i64::from);
            let container = spec.and_then(|s| s.template.spec.as_ref()).and_then(|p| p.containers.first());
            children.images.extend(container.and_then(|c| c.image.clone()));
        }
    }
    for s in &services {
        if let Some((_, uid)) = owner(s)
            && named(&uid, &s.name_any())
        {
            let port = s.spec.as_ref().and_then(|s| s.ports.as_ref()).and_then(|p| p.first()).map(|p| p.port);
            by_uid.entry(uid).or_default().port = port.map(i64::from);
        }
    }
    for i in &ingresses {
        if let Some((_, uid)) = owner(i)
            && named(&uid, &i.name_any())
        {
            let rules = i.spec.as_ref().and_then(|s| s.rules.as_ref());
            by_uid.entry(uid).or_default().host = rules.and_then(|r| r.first()).and_then(|r| r.host.clone());
        }
    }
    for p in pods.iter().filter(|p| p.metadata.deletion_timestamp.is_none()) {
        if let Some((kind, uid)) = owner(p)
            && kind == Kind::PodManager.name()
        {
            let image = p.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone());
            by_uid.entry(uid).or_default().images.extend(image);
        }
    }

    let mut problems = Vec::new();
    let live: BTreeMap<&str, &Parent> = found.values().map(|p| (p.uid.as_str(), p)).collect();
    for (uid, kind, name) in &owned {
        if !live.contains_key(uid.as_str()) {
            problems.push(Problem::Orphan(format!("{kind} {name} (owner uid {uid} is gone)")));
        }
    }
    let model = lock(model);
    for slot in model.slots.iter().filter(|s| s.live) {
        let Some(parent) = found.get(&(slot.kind, slot.name.clone())) else {
            problems.push(Problem::Lost(format!("{} {} should exist but is gone", slot.kind.name(), slot.name)));
            continue;
        };
        let children = by_uid.get(&parent.uid).cloned().unwrap_or_default();
        // The churn's last accepted write must be what the cluster holds...
        let mut wanted = parent.spec.clone();
        crate::workload::merge(&mut wanted, &slot.spec);
        if wanted != parent.spec {
            problems.push(Problem::Lost(format!(
                "{} {}: spec {} is not the last written {}",
                slot.kind.name(),
                slot.name,
                parent.spec,
                slot.spec
            )));
        }
        // ...and what its children show.
        for line in kinds::differences(parent.kind, &parent.spec, &children) {
            problems.push(Problem::Lost(format!("{} {}: {line}", slot.kind.name(), slot.name)));
        }
        for (child, extra) in kinds::duplicates(parent.kind, &parent.spec, &children) {
            problems.push(Problem::Duplicate(format!("{} {}: {child}", slot.kind.name(), slot.name), extra));
        }
    }
    Ok(problems)
}
