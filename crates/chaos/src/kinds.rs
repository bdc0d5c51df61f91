//! The five kinds the churn drives, as dynamic objects: how to address each, a random
//! valid spec, a random spec change, and what its children must show for a given spec
//! (the lost-update and duplicate checks).

use std::collections::BTreeMap;

use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{Value, json};

use crate::rng::Rng;

/// A kind with a controller.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// apps.example.com/v1alpha1 WebApp: Deployment, Service, Ingress with a domain.
    WebApp,
    /// webserver.example.com/v1 WebServer: Deployment, Service.
    WebServer,
    /// cache.example.com/v1alpha1 Memcached: Deployment, Service.
    Memcached,
    /// apps.mycompany.com/v1 PodManager: bare Pods `<name>-<i>`.
    PodManager,
    /// database.example.com/v1alpha1 Database: StatefulSet, two Services, Secret.
    Database,
}

impl Kind {
    /// Every kind, in the order the report lists them.
    pub const ALL: [Kind; 5] = [Kind::WebApp, Kind::WebServer, Kind::Memcached, Kind::PodManager, Kind::Database];

    /// Its kind name.
    pub fn name(self) -> &'static str {
        match self {
            Kind::WebApp => "WebApp",
            Kind::WebServer => "WebServer",
            Kind::Memcached => "Memcached",
            Kind::PodManager => "PodManager",
            Kind::Database => "Database",
        }
    }

    /// Its children's `app.kubernetes.io/name` label.
    pub fn app(self) -> &'static str {
        match self {
            Kind::WebApp => "webapp",
            Kind::WebServer => "webserver",
            Kind::Memcached => "memcached",
            Kind::PodManager => "podmanager",
            Kind::Database => "database",
        }
    }

    /// Prefix of the names the churn gives its objects.
    pub fn prefix(self) -> &'static str {
        match self {
            Kind::WebApp => "wa",
            Kind::WebServer => "ws",
            Kind::Memcached => "mc",
            Kind::PodManager => "pm",
            Kind::Database => "db",
        }
    }

    /// The resource, for `Api<DynamicObject>`. PodManager through v1, its storage
    /// version, so no conversion webhook is needed.
    pub fn resource(self) -> ApiResource {
        let (group, version, plural) = match self {
            Kind::WebApp => ("apps.example.com", "v1alpha1", "webapps"),
            Kind::WebServer => ("webserver.example.com", "v1", "webservers"),
            Kind::Memcached => ("cache.example.com", "v1alpha1", "memcacheds"),
            Kind::PodManager => ("apps.mycompany.com", "v1", "podmanagers"),
            Kind::Database => ("database.example.com", "v1alpha1", "databases"),
        };
        ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, self.name()), plural)
    }

    /// Whether it has a scale subresource, and the spec field it maps to.
    pub fn scale_field(self) -> Option<&'static str> {
        match self {
            Kind::WebApp | Kind::WebServer | Kind::PodManager => Some("replicas"),
            Kind::Memcached => Some("size"),
            Kind::Database => None,
        }
    }

    /// A random valid spec.
    pub fn spec(self, rng: &mut Rng) -> Value {
        let replicas = rng.between(1, 3);
        let tag = rng.between(1, 9);
        match self {
            Kind::WebApp => {
                let mut spec = json!({"image": format!("nginx:1.2{tag}"), "replicas": replicas,
                    "port": port(rng), "env": {"ENV": format!("v{tag}")}});
                if rng.percent(30) {
                    spec["domain"] = json!(format!("d{tag}.example.com"));
                }
                if rng.percent(30) {
                    set(&mut spec, "resources", resources(rng));
                }
                spec
            }
            Kind::WebServer => json!({"replicas": replicas, "image": format!("nginx:1.2{tag}"), "port": port(rng)}),
            Kind::Memcached => {
                let mut spec = json!({"size": replicas, "image": format!("memcached:1.6.{tag}"),
                    "port": memcached_port(rng)});
                set(&mut spec, "resources", resources(rng));
                spec
            }
            Kind::PodManager => json!({"replicas": replicas, "image": format!("busybox:1.3{tag}")}),
            Kind::Database => json!({"type": "postgresql", "version": db_version(rng),
                "storage": {"size": "1Gi"}, "backup": backup(rng), "deletionPolicy": deletion_policy(rng)}),
        }
    }

    /// A random change of `spec`, as the merge patch of its `spec` (null removes a field).
    pub fn change(self, rng: &mut Rng) -> Value {
        let tag = rng.between(1, 9);
        match (self, rng.below(6)) {
            (Kind::WebApp, 0) => json!({"replicas": rng.between(1, 3)}),
            (Kind::WebApp, 1) => json!({"port": port(rng)}),
            (Kind::WebApp, 2) => json!({"env": {"ENV": format!("v{tag}")}}),
            (Kind::WebApp, 3) => {
                if rng.percent(50) {
                    json!({"domain": format!("d{tag}.example.com")})
                } else {
                    json!({"domain": null})
                }
            }
            (Kind::WebApp | Kind::Memcached, 4) => json!({"resources": resources(rng)}),
            (Kind::WebApp | Kind::WebServer, _) => json!({"image": format!("nginx:1.2{tag}")}),
            (Kind::Memcached, 0 | 1) => json!({"size": rng.between(1, 3)}),
            (Kind::Memcached, 2) => json!({"port": memcached_port(rng)}),
            (Kind::Memcached, _) => json!({"image": format!("memcached:1.6.{tag}")}),
            (Kind::PodManager, 0 | 1) => json!({"replicas": rng.between(1, 3)}),
            (Kind::PodManager, _) => json!({"image": format!("busybox:1.3{tag}")}),
            (Kind::Database, 0 | 1) => json!({"version": db_version(rng)}),
            (Kind::Database, 2 | 3) => json!({"backup": backup(rng)}),
            (Kind::Database, _) => json!({"deletionPolicy": deletion_policy(rng)}),
        }
    }
}

/// Sets `field` unless `value` is null: a new object's spec holds no nulls.
fn set(spec: &mut Value, field: &str, value: Value) {
    if !value.is_null() {
        spec[field] = value;
    }
}

fn port(rng: &mut Rng) -> u64 {
    [80, 8080, 8443][rng.below(3) as usize]
}

fn memcached_port(rng: &mut Rng) -> u64 {
    [11211, 11311, 12000][rng.below(3) as usize]
}

/// Resources, or none (null). Every key is written each time, so a merge patch leaves
/// exactly these (a request above a limit left from an earlier write would be refused).
fn resources(rng: &mut Rng) -> Value {
    match rng.below(4) {
        0 => Value::Null,
        n => {
            let (cpu, memory) = [("50m", "32Mi"), ("100m", "64Mi"), ("200m", "128Mi")][n as usize - 1];
            let (cpu_limit, memory_limit) = [("100m", "64Mi"), ("200m", "128Mi"), ("500m", "256Mi")][n as usize - 1];
            json!({"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu_limit, "memory": memory_limit}})
        }
    }
}

/// Backups on (a schedule that does not fire during a run: no backup Job is ever
/// started) or off (the schedule left as it is, which is allowed).
fn backup(rng: &mut Rng) -> Value {
    if rng.percent(50) {
        let schedule = ["@yearly", "0 3 1 1 *", "30 4 1 1 *"][rng.below(3) as usize];
        json!({"enabled": true, "schedule": schedule})
    } else {
        json!({"enabled": false})
    }
}

fn deletion_policy(rng: &mut Rng) -> &'static str {
    if rng.percent(50) { "Delete" } else { "Retain" }
}

/// Same major version: a major upgrade is a different story (and refused).
fn db_version(rng: &mut Rng) -> &'static str {
    ["16", "16.3", "16.4"][rng.below(3) as usize]
}

/// The children of one object, as the checks see them (only what they compare).
#[derive(Clone, Debug, Default)]
pub struct Children {
    /// Owned objects per child kind ("Deployment", "Service", ...), Pods being deleted left out.
    pub count: BTreeMap<&'static str, usize>,
    /// Replicas of the Deployment or StatefulSet named like the object.
    pub replicas: Option<i64>,
    /// Image of the first container of that Deployment or StatefulSet, or of every live Pod.
    pub images: Vec<String>,
    /// Env of that first container.
    pub env: BTreeMap<String, String>,
    /// Its first port.
    pub container_port: Option<i64>,
    /// Its resources, empty lists left out (none: null).
    pub resources: Value,
    /// Its arguments.
    pub args: Vec<String>,
    /// First port of the Service named like the object.
    pub port: Option<i64>,
    /// Host of the first rule of the Ingress named like the object, if there is one.
    pub host: Option<String>,
}

/// What children of `kind` must show for `spec`; one line per difference (empty: none).
/// Counts above the expected number are duplicates, reported separately by [`duplicates`].
pub fn differences(kind: Kind, spec: &Value, children: &Children) -> Vec<String> {
    let mut out = Vec::new();
    let mut want = |what: &str, wanted: Option<Value>, got: Option<Value>| {
        if let Some(wanted) = wanted
            && Some(&wanted) != got.as_ref()
        {
            out.push(format!(
                "{what}: want {wanted}, children show {}",
                got.map_or("nothing".into(), |g| g.to_string())
            ));
        }
    };
    let image = children.images.first().map(|i| json!(i));
    match kind {
        Kind::WebApp | Kind::WebServer | Kind::Memcached => {
            let field = kind.scale_field().unwrap_or("replicas");
            want("replicas", spec.get(field).cloned(), children.replicas.map(|r| json!(r)));
            want("image", spec.get("image").cloned(), image);
            want("port", spec.get("port").cloned(), children.port.map(|p| json!(p)));
            want("container port", spec.get("port").cloned(), children.container_port.map(|p| json!(p)));
            if kind != Kind::WebServer {
                let resources = spec.get("resources").map_or(Value::Null, resources_shown);
                want("resources", Some(resources), Some(children.resources.clone()));
            }
            if kind == Kind::WebApp {
                // The host, not only the presence: a domain change must reach the Ingress,
                // and no Ingress may stand without a domain.
                let domain = spec.get("domain").filter(|d| !d.is_null()).cloned();
                want("ingress host", Some(domain.unwrap_or(Value::Null)), Some(json!(children.host)));
                for (key, value) in spec.get("env").and_then(Value::as_object).into_iter().flatten() {
                    want(&format!("env {key}"), Some(value.clone()), children.env.get(key).map(|v| json!(v)));
                }
            }
            if kind == Kind::Memcached {
                out.extend(memcached_args(spec, &children.args));
            }
        }
        Kind::PodManager => {
            // The Pods themselves, by ordinal and uid: crate::podmanager.
            if let Some(wanted) = spec.get("image").and_then(Value::as_str) {
                for other in children.images.iter().filter(|i| *i != wanted) {
                    out.push(format!("image: want {wanted}, a pod runs {other}"));
                }
            }
        }
        Kind::Database => {
            let version = spec.get("version").and_then(Value::as_str).unwrap_or_default();
            want("image", Some(json!(format!("postgres:{version}"))), image);
        }
    }
    out
}

/// Resources as the checks compare them: only non-empty lists (a container's
/// `resources: {}` and a spec without resources are the same).
pub fn resources_shown(resources: &Value) -> Value {
    let lists: serde_json::Map<String, Value> = resources
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, list)| list.as_object().is_some_and(|l| !l.is_empty()))
        .map(|(key, list)| (key.clone(), list.clone()))
        .collect();
    if lists.is_empty() { Value::Null } else { Value::Object(lists) }
}

/// memcached's command line: `-p <port>`, and `-m` exactly when a memory limit sizes
/// the cache.
fn memcached_args(spec: &Value, args: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let port = spec.get("port").map(Value::to_string);
    let given = args.iter().position(|a| a == "-p").and_then(|i| args.get(i + 1));
    if port.is_some() && port.as_ref() != given {
        out.push(format!("memcached -p: want {}, the container runs {args:?}", port.unwrap_or_default()));
    }
    let limited = spec.pointer("/resources/limits/memory").is_some();
    if limited != args.iter().any(|a| a == "-m") {
        out.push(format!(
            "memcached -m: want it {}, the container runs {args:?}",
            if limited { "set" } else { "unset" }
        ));
    }
    out
}

/// Owned children beyond the expected number per child kind, as `(kind, extra)`. The
/// children have fixed names, so a second one would have to be under another name;
/// PodManager Pods, the one kind whose number varies, are checked by ordinal and uid
/// ([`crate::podmanager`]).
pub fn duplicates(kind: Kind, children: &Children) -> Vec<(&'static str, usize)> {
    let expected: &[(&'static str, usize)] = match kind {
        Kind::WebApp => &[("Deployment", 1), ("Service", 1), ("Ingress", 1)],
        Kind::WebServer | Kind::Memcached => &[("Deployment", 1), ("Service", 1)],
        Kind::PodManager => &[],
        Kind::Database => &[("StatefulSet", 1), ("Service", 2), ("Secret", 1), ("CronJob", 1)],
    };
    expected
        .iter()
        .filter_map(|(child, max)| {
            let n = children.count.get(child).copied().unwrap_or(0);
            (n > *max).then(|| (*child, n - max))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_and_changes_are_deterministic_per_seed() {
        let (mut a, mut b) = (Rng::new(1), Rng::new(1));
        for kind in Kind::ALL {
            assert_eq!(kind.spec(&mut a), kind.spec(&mut b));
            assert_eq!(kind.change(&mut a), kind.change(&mut b));
        }
    }

    #[test]
    fn children_that_match_the_spec_show_no_difference() {
        let spec =
            json!({"image": "nginx:1.21", "replicas": 2, "port": 80, "env": {"ENV": "v1"}, "domain": "a.example.com"});
        let mut children = Children {
            replicas: Some(2),
            images: vec!["nginx:1.21".into()],
            env: [("ENV".to_owned(), "v1".to_owned())].into(),
            port: Some(80),
            container_port: Some(80),
            ..Children::default()
        };
        children.count.insert("Ingress", 1);
        children.host = Some("a.example.com".into());
        assert!(differences(Kind::WebApp, &spec, &children).is_empty());
        children.replicas = Some(3);
        children.host = Some("old.example.com".into());
        assert_eq!(differences(Kind::WebApp, &spec, &children).len(), 2, "another host is a lost update");
        children.host = None;
        assert_eq!(differences(Kind::WebApp, &spec, &children).len(), 2, "no Ingress");
        let no_domain = json!({"image": "nginx:1.21", "replicas": 2, "port": 80, "env": {"ENV": "v1"}});
        children.replicas = Some(2);
        assert!(differences(Kind::WebApp, &no_domain, &children).is_empty());
        children.host = Some("a.example.com".into());
        assert_eq!(differences(Kind::WebApp, &no_domain, &children).len(), 1, "an Ingress without a domain");
    }

    #[test]
    fn resources_and_the_container_port_must_reach_the_container() {
        let limits = json!({"requests": {"cpu": "50m", "memory": "32Mi"}, "limits": {"cpu": "100m", "memory": "64Mi"}});
        let spec = json!({"image": "nginx:1.21", "replicas": 1, "port": 8080, "resources": limits});
        let mut children = Children {
            replicas: Some(1),
            images: vec!["nginx:1.21".into()],
            port: Some(8080),
            container_port: Some(8080),
            resources: limits.clone(),
            ..Children::default()
        };
        assert!(differences(Kind::WebApp, &spec, &children).is_empty());
        children.resources = resources_shown(&json!({"limits": {}, "requests": {}}));
        assert_eq!(differences(Kind::WebApp, &spec, &children).len(), 1, "resources left out");
        children.resources = limits;
        children.container_port = Some(80);
        assert_eq!(differences(Kind::WebApp, &spec, &children).len(), 1, "the container on the old port");
        let without = json!({"image": "nginx:1.21", "replicas": 1, "port": 8080});
        children.container_port = Some(8080);
        assert_eq!(differences(Kind::WebApp, &without, &children).len(), 1, "resources removed from the spec stay");
        children.resources = resources_shown(&json!({}));
        assert!(differences(Kind::WebApp, &without, &children).is_empty());
    }

    #[test]
    fn a_memcached_port_change_reaches_the_service_the_container_and_its_command_line() {
        let spec = json!({"size": 1, "image": "memcached:1.6.1", "port": 12000,
            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}, "requests": {"cpu": "50m", "memory": "32Mi"}}});
        let mut children = Children {
            replicas: Some(1),
            images: vec!["memcached:1.6.1".into()],
            port: Some(12000),
            container_port: Some(12000),
            resources: spec["resources"].clone(),
            args: ["-p", "12000", "-m", "51"].map(String::from).to_vec(),
            ..Children::default()
        };
        assert!(differences(Kind::Memcached, &spec, &children).is_empty());
        children.args = ["-p", "11211", "-m", "51"].map(String::from).to_vec();
        children.port = Some(11211);
        assert_eq!(differences(Kind::Memcached, &spec, &children).len(), 2, "Service and -p on the old port");
        children.args = ["-p", "12000"].map(String::from).to_vec();
        children.port = Some(12000);
        assert_eq!(differences(Kind::Memcached, &spec, &children).len(), 1, "no -m with a memory limit");
    }

    #[test]
    fn a_second_deployment_is_a_duplicate() {
        let mut children = Children::default();
        children.count.insert("Deployment", 2);
        children.count.insert("Service", 1);
        assert_eq!(duplicates(Kind::WebServer, &children), vec![("Deployment", 1)]);
    }
}
