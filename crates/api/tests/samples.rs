//! Every sample under config/samples deserializes into its type and serializes back to
//! the same document (no field lost or renamed), with defaults filled in.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use webapp_api::database::DeletionPolicy;
use webapp_api::{Database, Memcached, PodManager, WebApp, WebServer};

fn sample(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/samples").join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Parses `file` as `T`, and checks that every field of the file survives the trip.
fn round_trip<T: DeserializeOwned + Serialize>(file: &str) -> T {
    let text = sample(file);
    let typed: T = serde_saphyr::from_str(&text).unwrap();
    let raw: Value = serde_saphyr::from_str(&text).unwrap();
    let back = serde_json::to_value(&typed).unwrap();
    assert!(is_subset(&back, &raw), "{file}: {raw} became {back}");
    typed
}

fn is_subset(big: &Value, small: &Value) -> bool {
    match (big, small) {
        (Value::Object(b), Value::Object(s)) => s.iter().all(|(k, v)| b.get(k).is_some_and(|bv| is_subset(bv, v))),
        (b, s) => b == s,
    }
}

#[test]
fn webapp_sample() {
    let webapp: WebApp = round_trip("apps_v1alpha1_webapp.yaml");
    assert_eq!(webapp.spec.replicas, Some(3));
    assert_eq!(webapp.spec.domain.as_deref(), Some("example.com"));
}

#[test]
fn podmanager_sample() {
    let pm: PodManager = round_trip("apps_v1_podmanager.yaml");
    assert_eq!(pm.spec.replicas, 3);
}

#[test]
fn webserver_sample() {
    let ws: WebServer = round_trip("webserver_v1_webserver.yaml");
    assert_eq!((ws.spec.replicas, ws.spec.port), (3, 80));
}

#[test]
fn memcached_sample_gets_the_default_port() {
    let mc: Memcached = round_trip("cache_v1alpha1_memcached.yaml");
    assert_eq!((mc.spec.size, mc.spec.port), (3, 11211));
}

#[test]
fn database_sample() {
    let db: Database = round_trip("database_v1alpha1_database.yaml");
    assert_eq!(db.spec.backup.schedule.as_deref(), Some("0 2 * * *"));
    assert_eq!(db.spec.storage.size, "10Gi");
    assert_eq!(db.spec.deletion_policy, DeletionPolicy::Retain, "volumes are kept by default");
    assert_eq!((db.spec.backup.retain, db.spec.credentials_secret), (7, None));
}
