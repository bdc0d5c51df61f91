//! Fuzzing the pure core against the API server's rules: for any spec and name the CRDs
//! accept, every planner yields children whose names, labels and ports are valid, and
//! the status functions never panic (`planned_children_are_valid_*`, no cluster). A
//! sample of them is then created with a server-side dry run on the local control plane
//! (`a_sample_of_planned_children_passes_a_server_side_dry_run`), which applies the real
//! validation, and names one character over each kind's bound are refused by its CRD.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::{DynamicObject, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, Resource};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{Value, json};
use webapp_api::database::Database;
use webapp_api::podmanager::v1::PodManager;
use webapp_api::{Memcached, WebApp, WebServer};
use webapp_operator::controllers::{database, memcached, podmanager, webapp, webserver};

/// A name the kind's CRD accepts: a DNS-1035 label of at most `max` characters.
fn name(max: usize) -> impl Strategy<Value = String> {
    proptest::string::string_regex(&format!("[a-z]([-a-z0-9]{{0,{}}}[a-z0-9])?", max - 2)).unwrap()
}

fn image() -> impl Strategy<Value = String> {
    "[a-z][a-z0-9-]{0,20}(/[a-z0-9-]{1,10})?(:[a-z0-9.]{1,10})?"
}

/// `(kind, name, spec)` for any kind, within its schema's bounds.
fn any_object() -> impl Strategy<Value = (&'static str, String, Value)> {
    prop_oneof![
        (
            name(63),
            image(),
            proptest::option::of(1..=10i32),
            1..=65535i32,
            proptest::option::of("[a-z]{1,10}\\.example\\.com"),
            proptest::collection::btree_map("[A-Z_]{1,8}", "[a-z0-9]{0,8}", 0..3)
        )
            .prop_map(|(n, image, replicas, port, domain, env)| (
                "WebApp",
                n,
                json!({"image": image, "replicas": replicas, "port": port, "domain": domain, "env": env})
            )),
        (name(63), image(), 1..=10i32, 1..=65535i32).prop_map(|(n, image, replicas, port)| (
            "WebServer",
            n,
            json!({"image": image, "replicas": replicas, "port": port})
        )),
        (name(63), image(), 1..=10i32, 1..=65535i32).prop_map(|(n, image, size, port)| (
            "Memcached",
            n,
            json!({"image": image, "size": size, "port": port})
        )),
        (name(60), image(), 1..=20i32, proptest::collection::btree_map("[a-z]{1,10}", "[a-z0-9]{1,10}", 0..3))
            .prop_map(|(n, image, replicas, labels)| (
                "PodManager",
                n,
                json!({"image": image, "replicas": replicas, "podLabels": labels})
            )),
        (name(45), "1[0-9](\\.[0-9])?", "[1-9]Gi", any::<bool>()).prop_map(|(n, version, size, backup)| (
            "Database",
            n,
            json!({"type": "postgresql", "version": version, "storage": {"size": size},
            "backup": {"enabled": backup, "schedule": "0 3 * * *", "storage": {"size": size}}})
        )),
    ]
}

fn owner(kind: &str, name: &str) -> OwnerReference {
    OwnerReference {
        api_version: "x/v1".into(),
        kind: kind.into(),
        name: name.into(),
        uid: "u".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

fn object<K: Resource<DynamicType = ()> + serde::de::DeserializeOwned>(name: &str, namespace: &str, spec: &Value) -> K {
    serde_json::from_value(json!({"apiVersion": K::api_version(&()), "kind": K::kind(&()),
        "metadata": {"name": name, "namespace": namespace, "uid": "u", "generation": 1}, "spec": spec}))
    .unwrap()
}

/// Every child the planners make of `(kind, name, spec)`, as JSON.
fn planned(kind: &str, name: &str, namespace: &str, spec: &Value) -> Vec<Value> {
    let json = |v: &dyn erased::Ser| v.value();
    let reference = owner(kind, name);
    match kind {
        "WebApp" => {
            let wa: WebApp = object(name, namespace, spec);
            let c = webapp::plan::desired(&wa, reference);
            let mut out = vec![json(&c.deployment), json(&c.service)];
            out.extend(c.ingress.as_ref().map(|i| json(i)));
            out
        }
        "WebServer" | "Memcached" => {
            let (app, shape) = if kind == "WebServer" {
                (webserver::plan::APP, webserver::plan::shape(&object::<WebServer>(name, namespace, spec)))
            } else {
                (memcached::plan::APP, memcached::plan::shape(&object::<Memcached>(name, namespace, spec)).unwrap())
            };
            let owner = reconcile_kit::workload::shape::Owner {
                name: name.into(),
                namespace: Some(namespace.into()),
                app,
                reference,
            };
            let plan = reconcile_kit::workload::shape::plan(&owner, shape);
            vec![json(&plan.deployment), json(&plan.service)]
        }
        "PodManager" => {
            let pm: PodManager = object(name, namespace, spec);
            let template = webapp_api::podmanager::conversion::template(&pm).unwrap();
            let hash = podmanager::plan::template_hash(&template);
            (0..pm.spec.replicas)
                .map(|i| json(&podmanager::plan::desired_pod(&pm, &template, &hash, reference.clone(), i)))
                .collect()
        }
        _ => {
            let db: Database = object(name, namespace, spec);
            let c = database::plan::desired(&db, reference, &database::plan::Live::default());
            let mut out = vec![json(&c.statefulset), json(&c.headless), json(&c.service)];
            out.extend(c.cronjob.as_ref().map(|c| json(c)));
            out.extend(c.backup_claim.as_ref().map(|c| json(c)));
            out
        }
    }
}

/// Serializes any child to JSON with its apiVersion and kind.
mod erased {
    pub trait Ser {
        fn value(&self) -> serde_json::Value;
    }
    impl<K: kube::Resource<DynamicType = ()> + serde::Serialize> Ser for K {
        fn value(&self) -> serde_json::Value {
            let mut v = serde_json::to_value(self).unwrap();
            v["apiVersion"] = K::api_version(&()).into();
            v["kind"] = K::kind(&()).into();
            v
        }
    }
}

fn dns_label(s: &str, max: usize) -> bool {
    let b = s.as_bytes();
    !b.is_empty()
        && b.len() <= max
        && b[0].is_ascii_alphanumeric()
        && b[b.len() - 1].is_ascii_alphanumeric()
        && b.iter().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
}

fn subdomain(s: &str) -> bool {
    s.len() <= 253 && s.split('.').all(|part| dns_label(part, 63))
}

fn label_value(s: &str) -> bool {
    let b = s.as_bytes();
    b.is_empty()
        || (b.len() <= 63
            && b[0].is_ascii_alphanumeric()
            && b[b.len() - 1].is_ascii_alphanumeric()
            && b.iter().all(|c| c.is_ascii_alphanumeric() || b"-_.".contains(c)))
}

fn label_key(s: &str) -> bool {
    match s.rsplit_once('/') {
        Some((prefix, name)) => subdomain(prefix) && !name.is_empty() && label_value(name),
        None => !s.is_empty() && label_value(s),
    }
}

/// What the API server would refuse in `child`: its name, every label map, every port.
fn invalid(child: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let kind = child["kind"].as_str().unwrap_or_default();
    let name = child["metadata"]["name"].as_str().unwrap_or_default();
    let name_ok = match kind {
        "Service" => dns_label(name, 63),
        "CronJob" => subdomain(name) && name.len() <= 52,
        _ => subdomain(name),
    };
    if !name_ok {
        out.push(format!("{kind} name {name:?}"));
    }
    fn walk(v: &Value, path: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(map) => {
                for (key, value) in map {
                    let here = format!("{path}.{key}");
                    if matches!(key.as_str(), "labels" | "matchLabels" | "selector") && value.is_object() {
                        for (k, val) in value.as_object().into_iter().flatten() {
                            let val = val.as_str().unwrap_or("");
                            if !label_key(k) || !label_value(val) {
                                out.push(format!("label {here} {k}={val}"));
                            }
                        }
                    }
                    if matches!(key.as_str(), "port" | "containerPort" | "targetPort")
                        && let Some(port) = value.as_i64()
                        && !(1..=65535).contains(&port)
                    {
                        out.push(format!("port {here} = {port}"));
                    }
                    walk(value, &here, out);
                }
            }
            Value::Array(items) => items.iter().for_each(|i| walk(i, path, out)),
            _ => {}
        }
    }
    walk(child, "", &mut out);
    out
}

proptest! {
    #![proptest_config(Config { cases: 256, ..Config::default() })]
    /// For any name and spec its CRD accepts, every kind's planned children carry valid
    /// names, labels and ports.
    #[test]
    fn planned_children_are_valid_for_every_kind((kind, name, spec) in any_object()) {
        for child in planned(kind, &name, "ns", &spec) {
            let problems = invalid(&child);
            prop_assert!(problems.is_empty(), "{kind} {name}: {problems:?}");
        }
    }
}

#[test]
fn the_validators_refuse_what_the_api_server_refuses() {
    assert!(
        dns_label("web-1", 63) && !dns_label("Web", 63) && !dns_label(&"a".repeat(64), 63) && !dns_label("a.b", 63)
    );
    assert!(subdomain("a.b-c") && !subdomain("-a"));
    assert!(label_key("app.kubernetes.io/name") && !label_key("a/b/c") && label_value("") && !label_value("a b"));
    let service = json!({"kind": "Service", "metadata": {"name": "a.b", "labels": {"ok": "-bad"}}, "spec": {"ports": [{"port": 0}]}});
    assert_eq!(invalid(&service).len(), 3);
}

/// The names of each kind its CRD must refuse: one character over its bound.
const BOUNDS: [(&str, &str, &str, &str, usize); 5] = [
    ("apps.example.com", "v1alpha1", "WebApp", "webapps", 63),
    ("webserver.example.com", "v1", "WebServer", "webservers", 63),
    ("cache.example.com", "v1alpha1", "Memcached", "memcacheds", 63),
    ("apps.mycompany.com", "v1", "PodManager", "podmanagers", 60),
    ("database.example.com", "v1alpha1", "Database", "databases", 45),
];

#[tokio::test]
async fn a_sample_of_planned_children_passes_a_server_side_dry_run() {
    let client = common::client().await;
    common::install_crds(&client).await;
    let ns = common::TestNamespace::new(&client, "dryrun").await;
    let dry = PostParams { dry_run: true, ..PostParams::default() };

    // A fixed sample (the runner's seed is fixed), each child created for real, dry.
    let mut runner = TestRunner::deterministic();
    let strategy = any_object();
    for _ in 0..40 {
        let (kind, name, spec) = strategy.new_tree(&mut runner).unwrap().current();
        for child in planned(kind, &name, &ns.name, &spec) {
            let (group, version) = match child["apiVersion"].as_str().unwrap().split_once('/') {
                Some((g, v)) => (g.to_owned(), v.to_owned()),
                None => (String::new(), child["apiVersion"].as_str().unwrap().to_owned()),
            };
            let gvk = GroupVersionKind::gvk(&group, &version, child["kind"].as_str().unwrap());
            let plural = format!("{}s", gvk.kind.to_lowercase()).replace("ingresss", "ingresses");
            let api: Api<DynamicObject> =
                Api::namespaced_with(client.clone(), &ns.name, &ApiResource::from_gvk_with_plural(&gvk, &plural));
            let object: DynamicObject = serde_json::from_value(child.clone()).unwrap();
            if let Err(error) = api.create(&dry, &object).await {
                panic!("{kind} {name} {spec}: the API server refuses its planned {}: {error}\n{child:#}", gvk.kind);
            }
        }
    }

    // Each CRD refuses a name one character over its bound, and takes one at it.
    for (group, version, kind, plural, max) in BOUNDS {
        let resource = ApiResource::from_gvk_with_plural(&GroupVersionKind::gvk(group, version, kind), plural);
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), &ns.name, &resource);
        let spec = match kind {
            "Database" => json!({"type": "postgresql", "version": "16"}),
            "Memcached" => json!({"size": 1, "image": "memcached:1.6"}),
            _ => json!({"image": "nginx:1.21", "replicas": 1}),
        };
        for (length, accepted) in [(max, true), (max + 1, false)] {
            let mut object = DynamicObject::new(&format!("a{}", "b".repeat(length - 1)), &resource);
            object.data = json!({"spec": spec});
            let result = api.create(&dry, &object).await;
            assert_eq!(result.is_ok(), accepted, "{kind} with a name of {length} characters: {result:?}");
        }
    }
}
