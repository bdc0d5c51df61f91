//! The generated CRDs carry the bounds, defaults, rules, columns and subresources the
//! API server needs to reject bad input and to show objects well.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use kube::CustomResourceExt;
use serde_json::Value;
use webapp_api::{Database, Memcached, PodManager, WebApp, WebServer};

fn version(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Value {
    serde_json::to_value(&crd.spec.versions[0]).unwrap()
}

fn prop(crd: &Value, path: &str) -> Value {
    let mut node = &crd["schema"]["openAPIV3Schema"];
    for part in path.split('.') {
        node = &node["properties"][part];
    }
    assert!(!node.is_null(), "no schema at {path}");
    node.clone()
}

fn rules(node: &Value) -> Vec<String> {
    node["x-kubernetes-validations"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| r["rule"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn webserver_replicas_are_1_to_10_and_image_and_port_default() {
    let v = version(&WebServer::crd());
    let replicas = prop(&v, "spec.replicas");
    assert_eq!((replicas["minimum"].as_f64(), replicas["maximum"].as_f64()), (Some(1.0), Some(10.0)));
    assert_eq!(prop(&v, "spec.image")["default"], "nginx:latest");
    assert_eq!(prop(&v, "spec.port")["default"], 80);
    let required = v["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"].as_array().unwrap().clone();
    assert!(required.contains(&"replicas".into()), "replicas is required");
}

#[test]
fn memcached_size_is_1_to_10_with_default_image_and_port() {
    let v = version(&Memcached::crd());
    let size = prop(&v, "spec.size");
    assert_eq!((size["minimum"].as_f64(), size["maximum"].as_f64()), (Some(1.0), Some(10.0)));
    assert_eq!(prop(&v, "spec.image")["default"], "memcached:1.6");
    assert_eq!(prop(&v, "spec.port")["default"], 11211);
}

#[test]
fn podmanager_replicas_default_to_3_and_are_at_least_1() {
    let v = version(&PodManager::crd());
    let replicas = prop(&v, "spec.replicas");
    assert_eq!(replicas["default"], 3);
    assert_eq!(replicas["minimum"].as_f64(), Some(1.0));
}

#[test]
fn webapp_bounds_ports_images_env_names_and_domains() {
    let v = version(&WebApp::crd());
    let port = prop(&v, "spec.port");
    assert_eq!(
        (port["minimum"].as_f64(), port["maximum"].as_f64(), port["default"].as_i64()),
        (Some(1.0), Some(65535.0), Some(80))
    );
    assert_eq!(prop(&v, "spec.image")["minLength"], 1);
    assert!(rules(&prop(&v, "spec.env"))[0].contains("matches"));
    assert!(rules(&prop(&v, "spec.domain"))[0].contains("matches"));
    assert!(prop(&v, "spec.replicas")["nullable"].as_bool().unwrap_or(false), "replicas is optional");
}

#[test]
fn webapp_admission_refuses_bad_images_names_and_quantities_by_cel() {
    let v = version(&WebApp::crd());
    let image = rules(&prop(&v, "spec.image"));
    assert_eq!(image.len(), 3, "{image:?}");
    assert!(
        image[0].contains("[[:space:]]") && image[1].contains("@sha256:") && image[2].starts_with("self.matches('^")
    );
    let name = rules(&v["schema"]["openAPIV3Schema"]);
    assert_eq!(name[0], "size(self.metadata.name) <= 63");
    assert!(name[1].starts_with("self.metadata.name.matches('^[a-z]"), "{name:?}");
    let resources = rules(&prop(&v, "spec.resources"));
    assert!(resources.iter().all(|r| r.contains("isQuantity")) && resources.len() == 2, "{resources:?}");
    // Every rule carries a message a person can act on, not the CEL expression.
    for node in [prop(&v, "spec.image"), prop(&v, "spec.resources"), v["schema"]["openAPIV3Schema"].clone()] {
        for rule in node["x-kubernetes-validations"].as_array().unwrap() {
            assert!(rule["message"].as_str().is_some_and(|m| m.len() > 20), "{rule}");
        }
    }
}

#[test]
fn database_type_is_an_enum_and_backup_schedule_is_required_when_enabled() {
    let v = version(&Database::crd());
    assert_eq!(prop(&v, "spec.type")["enum"], serde_json::json!(["postgresql"]));
    assert_eq!(rules(&prop(&v, "spec.backup")), ["!self.enabled || has(self.schedule)"]);
    assert_eq!(prop(&v, "spec.storage.size")["default"], "1Gi");
    assert_eq!(prop(&v, "spec.deletionPolicy")["default"], "Retain", "volumes are kept unless asked");
    assert_eq!(prop(&v, "spec.deletionPolicy")["enum"], serde_json::json!(["Retain", "Delete"]));
    assert_eq!(prop(&v, "spec.backup.retain")["default"], 7);
    assert!(rules(&prop(&v, "spec.backup.schedule"))[0].contains("@(yearly"));
}

/// What cannot be changed safely on a live database is refused by transition rules
/// (`oldSelf`), which the API server checks on every update.
#[test]
fn database_transition_rules_refuse_unsafe_changes() {
    let v = version(&Database::crd());
    assert_eq!(rules(&prop(&v, "spec.type")), ["self == oldSelf"]);
    let size = rules(&prop(&v, "spec.storage.size"));
    assert!(size.iter().any(|r| r.contains("quantity(self).compareTo(quantity(oldSelf)) >= 0")), "{size:?}");
    let storage = rules(&prop(&v, "spec.storage"));
    assert!(storage.iter().any(|r| r.contains("oldSelf.storageClassName")), "{storage:?}");
    // The backup volume is a Storage too, with the same rules.
    assert_eq!(rules(&prop(&v, "spec.backup.storage.size")), size);
    let spec = rules(&prop(&v, "spec"));
    assert!(spec.iter().any(|r| r.contains("oldSelf.credentialsSecret")), "{spec:?}");
}

#[test]
fn every_crd_has_status_printer_columns_short_name_and_category() {
    for crd in webapp_api::crds() {
        let kind = &crd.spec.names.kind;
        let v = version(&crd);
        assert!(v["subresources"]["status"].is_object(), "{kind}: status subresource");
        let columns: Vec<&str> =
            v["additionalPrinterColumns"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
        assert!(columns.contains(&"Age"), "{kind}: {columns:?}");
        assert!(crd.spec.names.short_names.as_ref().is_some_and(|s| !s.is_empty()), "{kind}: short name");
        assert_eq!(crd.spec.names.categories.as_deref(), Some(&[webapp_api::CATEGORY.to_owned()][..]), "{kind}");
        let conditions = prop(&v, "status.conditions");
        assert_eq!(conditions["x-kubernetes-list-type"], "map", "{kind}");
        assert_eq!(conditions["x-kubernetes-list-map-keys"], serde_json::json!(["type"]), "{kind}");
        assert!(prop(&v, "status.conditions")["items"]["properties"]["observedGeneration"].is_object(), "{kind}");
    }
}

#[test]
fn kinds_with_replicas_have_a_scale_subresource() {
    let scale = |v: Value| v["subresources"]["scale"].clone();
    assert_eq!(scale(version(&WebApp::crd()))["specReplicasPath"], ".spec.replicas");
    assert_eq!(scale(version(&WebApp::crd()))["labelSelectorPath"], ".status.selector");
    assert_eq!(scale(version(&WebServer::crd()))["specReplicasPath"], ".spec.replicas");
    assert_eq!(scale(version(&WebServer::crd()))["labelSelectorPath"], ".status.selector");
    assert_eq!(scale(version(&Memcached::crd()))["labelSelectorPath"], ".status.selector");
    assert_eq!(scale(version(&PodManager::crd()))["specReplicasPath"], ".spec.replicas");
    assert_eq!(scale(version(&Memcached::crd()))["specReplicasPath"], ".spec.size");
    assert!(scale(version(&Database::crd())).is_null());
}

/// The columns `kubectl get` shows by default (no priority).
fn default_columns(
    crd: &k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
) -> Vec<String> {
    version(crd)["additionalPrinterColumns"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["priority"].is_null())
        .map(|c| c["name"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn webapp_printer_columns_show_phase_ready_and_replicas() {
    assert_eq!(default_columns(&WebApp::crd()), ["Phase", "Ready", "Replicas", "Age"]);
}

#[test]
fn webserver_and_memcached_columns_lead_with_the_phase() {
    assert_eq!(default_columns(&WebServer::crd()), ["Phase", "Ready", "Replicas", "Age"]);
    assert_eq!(default_columns(&Memcached::crd()), ["Phase", "Size", "Ready", "Age"]);
}

#[test]
fn field_docs_reach_kubectl_explain() {
    let v = version(&WebApp::crd());
    assert!(prop(&v, "spec.replicas")["description"].as_str().unwrap().contains("autoscaler"));
    assert!(prop(&v, "status.phase")["description"].as_str().unwrap().contains("Pending"));
}

#[test]
fn podmanager_serves_v1_as_storage_and_v2_through_the_conversion_webhook() {
    use webapp_api::WebhookEndpoint;
    use webapp_api::podmanager::crd;
    let merged = crd(&WebhookEndpoint::Service);
    let versions: Vec<(&str, bool, bool)> =
        merged.spec.versions.iter().map(|v| (v.name.as_str(), v.served, v.storage)).collect();
    assert_eq!(versions, [("v1", true, true), ("v2", true, false)]);
    let conversion = serde_json::to_value(merged.spec.conversion.as_ref().unwrap()).unwrap();
    assert_eq!(conversion["strategy"], "Webhook");
    assert_eq!(conversion["webhook"]["conversionReviewVersions"], serde_json::json!(["v1"]));
    let service = &conversion["webhook"]["clientConfig"]["service"];
    assert_eq!(
        (service["name"].as_str(), service["path"].as_str()),
        (Some("webapp-operator-webhook"), Some("/convert"))
    );

    let local = crd(&WebhookEndpoint::Url("https://127.0.0.1:9443/convert".into()));
    let config = &local.spec.conversion.unwrap().webhook.unwrap().client_config.unwrap();
    assert_eq!(config.url.as_deref(), Some("https://127.0.0.1:9443/convert"));
    assert!(config.service.is_none());

    let v2 = serde_json::to_value(&merged.spec.versions[1]).unwrap();
    let containers = prop(&v2, "spec.template.spec.containers");
    assert_eq!(containers["minItems"], 1);
    assert_eq!(prop(&v2, "spec.replicas")["minimum"].as_f64(), Some(1.0));
    assert!(v2["subresources"]["scale"].is_object() && v2["subresources"]["status"].is_object());
}

#[test]
fn workload_kinds_start_pending_by_the_api_servers_default() {
    for crd in webapp_api::crds() {
        let status = prop(&version(&crd), "status");
        let kind = crd.spec.names.kind.as_str();
        match kind {
            "WebApp" | "WebServer" | "Memcached" => {
                assert_eq!(status["default"], serde_json::json!({"phase": "Pending"}), "{kind}");
            }
            _ => assert!(status["default"].is_null(), "{kind} writes its own Pending"),
        }
    }
}
