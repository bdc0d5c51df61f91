use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use proptest::prelude::*;
use webapp_api::webapp::ServiceType;
use webapp_api::{WebApp, WebAppSpec};

use super::*;

fn spec() -> WebAppSpec {
    WebAppSpec {
        image: "nginx:1.20".into(),
        replicas: Some(2),
        port: 80,
        env: BTreeMap::from([("ENV".into(), "production".into())]),
        domain: None,
        resources: None,
        probe_path: None,
        service_type: ServiceType::ClusterIP,
        security_context: None,
    }
}

fn webapp(spec: WebAppSpec) -> WebApp {
    let mut webapp = WebApp::new("web", spec);
    webapp.metadata.namespace = Some("shop".into());
    webapp.metadata.uid = Some("uid-1".into());
    webapp
}

fn owner() -> OwnerReference {
    OwnerReference {
        api_version: "apps.example.com/v1alpha1".into(),
        kind: "WebApp".into(),
        name: "web".into(),
        uid: "uid-1".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    }
}

#[test]
fn children_are_named_like_the_webapp_labelled_and_owned() {
    let children = desired(&webapp(spec()), owner());
    for meta in [&children.deployment.metadata, &children.service.metadata] {
        assert_eq!(meta.name.as_deref(), Some("web"));
        assert_eq!(meta.namespace.as_deref(), Some("shop"));
        assert_eq!(meta.owner_references.as_deref(), Some(&[owner()][..]));
        let labels = meta.labels.as_ref().unwrap();
        assert_eq!(labels["app.kubernetes.io/name"], "webapp");
        assert_eq!(labels["app.kubernetes.io/instance"], "web");
        assert_eq!(labels["app.kubernetes.io/managed-by"], "webapp-operator");
    }
    assert!(children.ingress.is_none());
}

#[test]
fn deployment_carries_image_replicas_port_env_and_a_probe() {
    let deployment = desired(&webapp(spec()), owner()).deployment;
    let spec = deployment.spec.unwrap();
    assert_eq!(spec.replicas, Some(2));
    let pod = spec.template.spec.unwrap();
    let container = &pod.containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.20"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 80);
    let env = container.env.as_ref().unwrap();
    assert_eq!((env[0].name.as_str(), env[0].value.as_deref()), ("ENV", Some("production")));
    assert!(container.readiness_probe.as_ref().unwrap().tcp_socket.is_some());
    // The selector must match the template's labels or the API server refuses it.
    let selector = spec.selector.match_labels.unwrap();
    let template_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert!(selector.iter().all(|(k, v)| template_labels.get(k) == Some(v)));
}

#[test]
fn unset_replicas_are_left_to_the_autoscaler() {
    let deployment = desired(&webapp(WebAppSpec { replicas: None, ..spec() }), owner()).deployment;
    assert_eq!(deployment.spec.unwrap().replicas, None);
    let json =
        serde_json::to_value(desired(&webapp(WebAppSpec { replicas: None, ..spec() }), owner()).deployment).unwrap();
    assert!(json.pointer("/spec/replicas").is_none(), "replicas must not be sent at all");
}

#[test]
fn the_container_is_restricted_unless_the_spec_sets_its_own_security() {
    let container = |spec: WebAppSpec| {
        let deployment = desired(&webapp(spec), owner()).deployment;
        deployment.spec.unwrap().template.spec.unwrap().containers.remove(0)
    };
    let restricted = container(spec()).security_context.unwrap();
    assert_eq!(restricted.run_as_non_root, Some(true));
    assert_eq!(restricted.allow_privilege_escalation, Some(false));
    assert_eq!(restricted.seccomp_profile.unwrap().type_, "RuntimeDefault");
    let lifted = WebAppSpec { security_context: Some(Default::default()), ..spec() };
    let json = serde_json::to_value(container(lifted)).unwrap();
    assert_eq!(json["securityContext"], serde_json::json!({}), "`{{}}` is sent as written, nothing merged in");
}

#[test]
fn service_exposes_the_port_with_the_chosen_type() {
    let service =
        desired(&webapp(WebAppSpec { port: 8080, service_type: ServiceType::NodePort, ..spec() }), owner()).service;
    let spec = service.spec.unwrap();
    assert_eq!(spec.type_.as_deref(), Some("NodePort"));
    let port = &spec.ports.unwrap()[0];
    assert_eq!(port.port, 8080);
    assert_eq!(port.target_port, Some(IntOrString::Int(8080)));
}

#[test]
fn a_domain_adds_an_ingress_to_the_service_and_a_probe_path_an_http_probe() {
    let children = desired(
        &webapp(WebAppSpec { domain: Some("shop.example.com".into()), probe_path: Some("/healthz".into()), ..spec() }),
        owner(),
    );
    let rule = &children.ingress.unwrap().spec.unwrap().rules.unwrap()[0];
    assert_eq!(rule.host.as_deref(), Some("shop.example.com"));
    let backend = rule.http.as_ref().unwrap().paths[0].backend.service.as_ref().unwrap();
    assert_eq!((backend.name.as_str(), backend.port.as_ref().unwrap().number), ("web", Some(80)));
    let probe = children.deployment.spec.unwrap().template.spec.unwrap().containers[0].readiness_probe.clone().unwrap();
    assert_eq!(probe.http_get.unwrap().path.as_deref(), Some("/healthz"));
}

fn any_spec() -> impl Strategy<Value = WebAppSpec> {
    (
        ".{0,40}",
        proptest::option::of(any::<i32>()),
        any::<i32>(),
        proptest::collection::btree_map(".{0,10}", ".{0,10}", 0..5),
        proptest::option::of(".{0,30}"),
        proptest::option::of(".{0,20}"),
        prop_oneof![Just(ServiceType::ClusterIP), Just(ServiceType::NodePort), Just(ServiceType::LoadBalancer)],
    )
        .prop_map(|(image, replicas, port, env, domain, probe_path, service_type)| WebAppSpec {
            image,
            replicas,
            port,
            env,
            domain,
            resources: None,
            probe_path,
            service_type,
            security_context: None,
        })
}

proptest! {
    /// Whatever a spec holds (the API server's bounds aside), planning never panics
    /// and always yields children that serialize.
    #[test]
    fn no_spec_makes_the_plan_panic(spec in any_spec()) {
        let children = desired(&webapp(spec.clone()), owner());
        prop_assert_eq!(children.ingress.is_some(), spec.domain.is_some());
        prop_assert!(serde_json::to_string(&children.deployment).is_ok());
    }
}

#[test]
fn bad_quantities_are_named() {
    let mut bad = spec();
    bad.resources = serde_json::from_value(serde_json::json!({"limits": {"cpu": "lots"}})).unwrap();
    let error = validate(&webapp(bad)).unwrap_err();
    assert!(error.contains("resources.limits.cpu: \"lots\" is not a quantity"), "{error}");
    assert!(validate(&webapp(spec())).is_ok());
}
