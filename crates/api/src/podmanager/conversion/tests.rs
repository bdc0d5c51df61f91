use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{ContainerPort, EnvVar, Probe, ResourceRequirements, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::podmanager::PodManagerStatus;
use crate::podmanager::v2::TemplateMetadata;

fn labels() -> impl Strategy<Value = BTreeMap<String, String>> {
    prop::collection::btree_map("[a-z]{1,8}", "[a-z0-9]{0,8}", 0..3)
}

/// Object annotations: absent, or some (the API server drops an empty map).
fn annotations() -> impl Strategy<Value = Option<BTreeMap<String, String>>> {
    prop::option::of(prop::collection::btree_map("[a-z]{1,8}", "[a-z0-9 ]{0,8}", 1..3))
}

fn container() -> impl Strategy<Value = Container> {
    let port = (1..65535i32, prop::option::of("[a-z]{1,6}")).prop_map(|(container_port, name)| ContainerPort {
        container_port,
        name,
        ..ContainerPort::default()
    });
    let env = ("[A-Z]{1,6}", prop::option::of("[a-z0-9]{0,6}")).prop_map(|(name, value)| EnvVar {
        name,
        value,
        ..EnvVar::default()
    });
    let resources = "[1-9]00m".prop_map(|cpu| ResourceRequirements {
        limits: Some(BTreeMap::from([("cpu".to_owned(), Quantity(cpu))])),
        ..ResourceRequirements::default()
    });
    let probe = (1..65535i32).prop_map(|port| Probe {
        tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(port), ..TCPSocketAction::default() }),
        ..Probe::default()
    });
    (
        "[a-z]{1,8}",
        "[a-z]{1,8}:[0-9]\\.[0-9]{1,2}",
        prop::collection::vec(port, 0..2),
        prop::collection::vec(env, 0..2),
        prop::option::of(resources),
        prop::option::of(probe.clone()),
        prop::option::of(probe),
    )
        .prop_map(|(name, image, ports, env, resources, readiness_probe, liveness_probe)| Container {
            name,
            image,
            ports,
            env,
            resources,
            readiness_probe,
            liveness_probe,
        })
}

fn status() -> impl Strategy<Value = Option<PodManagerStatus>> {
    prop::option::of((0..5i32, 0..5i32, prop::option::of(1..9i64)).prop_map(|(ready, current, generation)| {
        PodManagerStatus {
            ready_replicas: ready,
            current_replicas: current,
            observed_generation: generation,
            ..PodManagerStatus::default()
        }
    }))
}

fn meta(name: String, annotations: Option<BTreeMap<String, String>>) -> ObjectMeta {
    ObjectMeta { name: Some(name), namespace: Some("ns".into()), annotations, ..ObjectMeta::default() }
}

prop_compose! {
    fn any_v2()(
        name in "[a-z]{1,10}",
        annotations in annotations(),
        replicas in 1..1000i32,
        containers in prop::collection::vec(container(), 1..3),
        labels in labels(),
        pod_annotations in labels(),
        status in status(),
    ) -> v2::PodManager {
        let template = PodTemplate {
            metadata: TemplateMetadata { labels, annotations: pod_annotations },
            spec: TemplateSpec { containers },
        };
        v2::PodManager { metadata: meta(name, annotations), spec: v2::PodManagerSpec { replicas, template }, status }
    }
}

prop_compose! {
    /// A PodManager as a v1 client writes it: no annotation of ours.
    fn any_v1()(
        name in "[a-z]{1,10}",
        annotations in annotations(),
        replicas in 1..1000i32,
        image in "[a-z]{1,8}:[0-9]",
        pod_labels in labels(),
        status in status(),
    ) -> v1::PodManager {
        v1::PodManager { metadata: meta(name, annotations), spec: v1::PodManagerSpec { replicas, image, pod_labels }, status }
    }
}

proptest! {
    #[test]
    fn v2_to_v1_to_v2_gives_the_input_back(pm in any_v2()) {
        let v1 = to_v1(&pm).unwrap();
        prop_assert_eq!(to_v2(&v1).unwrap(), pm);
    }

    #[test]
    fn v1_to_v2_to_v1_gives_the_input_back(pm in any_v1()) {
        let v2 = to_v2(&pm).unwrap();
        prop_assert_eq!(to_v1(&v2).unwrap(), pm);
    }

    /// A v1 object that came from v2 (annotation and all), then edited by a v1 client:
    /// the edit shows in v2, nothing else is lost, and the trip back is exact.
    #[test]
    fn v1_edits_of_a_v2_object_survive_both_ways(pm in any_v2(), image in "[a-z]{1,8}:[0-9]", pod_labels in labels()) {
        let mut v1 = to_v1(&pm).unwrap();
        v1.spec.image = image.clone();
        v1.spec.pod_labels = pod_labels.clone();
        let v2 = to_v2(&v1).unwrap();
        prop_assert_eq!(&v2.spec.template.spec.containers[0].image, &image);
        prop_assert_eq!(&v2.spec.template.metadata.labels, &pod_labels);
        prop_assert_eq!(&v2.spec.template.spec.containers[1..], &pm.spec.template.spec.containers[1..]);
        prop_assert_eq!(to_v1(&v2).unwrap(), v1);
    }

    /// The webhook's entry point: JSON in, JSON out, both directions.
    #[test]
    fn json_round_trip_through_convert(pm in any_v2()) {
        let original = serde_json::to_value(&pm).unwrap();
        let stored = convert(original.clone(), "apps.mycompany.com/v1").unwrap();
        prop_assert_eq!(&stored["apiVersion"], "apps.mycompany.com/v1");
        prop_assert_eq!(convert(stored, "apps.mycompany.com/v2").unwrap(), original);
    }

    /// Whatever arrives, conversion answers with a value or an error, never a panic.
    #[test]
    fn convert_never_panics(
        version in prop::sample::select(vec!["apps.mycompany.com/v1", "apps.mycompany.com/v2", "v1", ""]),
        desired in prop::sample::select(vec!["apps.mycompany.com/v1", "apps.mycompany.com/v2", "x/v3"]),
        spec in prop::option::of(prop::collection::btree_map("[a-z]{1,8}", any::<i32>(), 0..3)),
        annotation in prop::option::of("[{}\\[\\]a-z:\"]{0,20}"),
    ) {
        let object = json!({"apiVersion": version, "kind": "PodManager", "metadata": {"name": "x",
            "annotations": annotation.map(|a| json!({V2_TEMPLATE: a}))}, "spec": spec});
        let _ = convert(object, desired);
    }
}

#[test]
fn a_template_v1_can_hold_needs_no_annotation() {
    let pm = v1::PodManager::new(
        "p",
        v1::PodManagerSpec { replicas: 2, image: "nginx:1".into(), pod_labels: BTreeMap::new() },
    );
    let v2 = to_v2(&pm).unwrap();
    assert_eq!(v2.spec.template.spec.containers.len(), 1);
    assert_eq!(v2.spec.template.spec.containers[0].name, CONTAINER);
    assert!(to_v1(&v2).unwrap().metadata.annotations.is_none());
}

#[test]
fn what_v1_cannot_hold_travels_in_the_annotation() {
    let mut pm = v2::PodManager::new(
        "p",
        v2::PodManagerSpec {
            replicas: 1,
            template: PodTemplate {
                metadata: TemplateMetadata::default(),
                spec: TemplateSpec {
                    containers: vec![Container {
                        name: "web".into(),
                        image: "nginx:1".into(),
                        ports: vec![ContainerPort { container_port: 8080, ..ContainerPort::default() }],
                        ..Container::default()
                    }],
                },
            },
        },
    );
    pm.metadata.annotations = Some(BTreeMap::from([("mine".to_owned(), "x".to_owned())]));
    let v1 = to_v1(&pm).unwrap();
    assert_eq!(v1.spec.image, "nginx:1");
    let annotation = &v1.metadata.annotations.as_ref().unwrap()[V2_TEMPLATE];
    assert!(annotation.contains("8080") && annotation.contains("web"), "{annotation}");
    assert!(!annotation.contains("nginx"), "v1's own fields are not copied: {annotation}");
    assert_eq!(v1.metadata.annotations.as_ref().unwrap()["mine"], "x");
}

#[test]
fn bad_input_gets_a_clear_error() {
    let mut pm =
        v1::PodManager::new("p", v1::PodManagerSpec { replicas: 1, image: "x".into(), pod_labels: BTreeMap::new() });
    pm.metadata.annotations = Some(BTreeMap::from([(V2_TEMPLATE.to_owned(), "{not json".to_owned())]));
    assert!(matches!(to_v2(&pm), Err(ConversionError::BadAnnotation(_))));
    pm.metadata.annotations =
        Some(BTreeMap::from([(V2_TEMPLATE.to_owned(), r#"{"spec":{"containers":[]}}"#.to_owned())]));
    assert_eq!(to_v2(&pm), Err(ConversionError::NoContainers));

    let other = json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp"});
    let error = convert(other, "apps.mycompany.com/v2").unwrap_err().to_string();
    assert!(error.contains("apps.example.com/v1alpha1") && error.contains("apps.mycompany.com/v1"), "{error}");
    let malformed = json!({"apiVersion": "apps.mycompany.com/v2", "kind": "PodManager", "metadata": {}, "spec": {"replicas": "three"}});
    assert!(matches!(convert(malformed, "apps.mycompany.com/v1"), Err(ConversionError::Malformed { .. })));
}

#[test]
fn an_object_already_in_the_desired_version_is_returned_as_is() {
    let object = json!({"apiVersion": "apps.mycompany.com/v1", "kind": "PodManager", "extra": 1});
    assert_eq!(convert(object.clone(), "apps.mycompany.com/v1").unwrap(), object);
}
