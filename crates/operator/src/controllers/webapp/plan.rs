//! The pure plan: what a WebApp's children should look like. No I/O, no clock.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, PodSpec, PodTemplateSpec, Probe, Service, ServicePort,
    ServiceSpec, TCPSocketAction,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use webapp_api::WebApp;

use crate::controllers::{child_labels, selector_labels};

/// The `app.kubernetes.io/name` of WebApp children.
pub const APP: &str = "webapp";
/// Name of the one container of a WebApp pod.
pub const CONTAINER: &str = "app";

/// Everything a WebApp should own.
#[derive(Clone, Debug, PartialEq)]
pub struct Children {
    /// The pods.
    pub deployment: Deployment,
    /// The stable address in front of them.
    pub service: Service,
    /// Routing from `spec.domain`, when set.
    pub ingress: Option<Ingress>,
}

/// Checks what the schema cannot: resource quantities (the API server would refuse
/// the Deployment with an opaque error). Returns the first bad field.
pub fn validate(webapp: &WebApp) -> Result<(), String> {
    let Some(resources) = &webapp.spec.resources else { return Ok(()) };
    for (list, values) in [("limits", &resources.limits), ("requests", &resources.requests)] {
        for (name, quantity) in values.iter().flatten() {
            if reconcile_kit::quantity::parse(&quantity.0).is_none() {
                return Err(format!(
                    "resources.{list}.{name}: {:?} is not a quantity (examples: 500m, 1, 128Mi, 1Gi)",
                    quantity.0
                ));
            }
        }
    }
    Ok(())
}

/// What `webapp` should own. `owner` is its controller owner reference. Children are
/// named like the WebApp, as users of the seeds expect (`kubectl get deploy <name>`).
pub fn desired(webapp: &WebApp, owner: OwnerReference) -> Children {
    let name = webapp.name_any();
    let metadata = ObjectMeta {
        name: Some(name.clone()),
        namespace: webapp.namespace(),
        labels: Some(child_labels(APP, &name)),
        owner_references: Some(vec![owner]),
        ..ObjectMeta::default()
    };
    Children {
        deployment: deployment(webapp, metadata.clone()),
        service: service(webapp, metadata.clone()),
        ingress: webapp.spec.domain.as_ref().map(|domain| ingress(webapp, domain, metadata)),
    }
}

fn deployment(webapp: &WebApp, metadata: ObjectMeta) -> Deployment {
    let spec = &webapp.spec;
    let selector = selector_labels(APP, &webapp.name_any());
    let probe = match &spec.probe_path {
        Some(path) => Probe {
            http_get: Some(HTTPGetAction {
                path: Some(path.clone()),
                port: IntOrString::Int(spec.port),
                ..HTTPGetAction::default()
            }),
            ..Probe::default()
        },
        None => Probe {
            tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(spec.port), ..TCPSocketAction::default() }),
            ..Probe::default()
        },
    };
    let env: Vec<EnvVar> = spec
        .env
        .iter()
        .map(|(name, value)| EnvVar { name: name.clone(), value: Some(value.clone()), ..EnvVar::default() })
        .collect();
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        ports: Some(vec![ContainerPort {
            name: Some("http".into()),
            container_port: spec.port,
            ..ContainerPort::default()
        }]),
        env: (!env.is_empty()).then_some(env),
        resources: spec.resources.clone(),
        readiness_probe: Some(probe),
        ..Container::default()
    };
    Deployment {
        metadata,
        spec: Some(DeploymentSpec {
            // Unset: an autoscaler owns the count; sending it would fight the autoscaler.
            replicas: spec.replicas,
            selector: LabelSelector { match_labels: Some(selector.clone()), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(child_labels(APP, &webapp.name_any())),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec { containers: vec![container], ..PodSpec::default() }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    }
}

fn service(webapp: &WebApp, metadata: ObjectMeta) -> Service {
    let spec = &webapp.spec;
    Service {
        metadata,
        spec: Some(ServiceSpec {
            type_: Some(spec.service_type.as_str().into()),
            selector: Some(selector_labels(APP, &webapp.name_any())),
            ports: Some(vec![ServicePort {
                name: Some("http".into()),
                port: spec.port,
                target_port: Some(IntOrString::Int(spec.port)),
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }]),
            ..ServiceSpec::default()
        }),
        status: None,
    }
}

fn ingress(webapp: &WebApp, domain: &str, metadata: ObjectMeta) -> Ingress {
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: webapp.name_any(),
            port: Some(ServiceBackendPort { number: Some(webapp.spec.port), ..ServiceBackendPort::default() }),
        }),
        ..IngressBackend::default()
    };
    Ingress {
        metadata,
        spec: Some(IngressSpec {
            rules: Some(vec![IngressRule {
                host: Some(domain.to_owned()),
                http: Some(HTTPIngressRuleValue {
                    paths: vec![HTTPIngressPath { path: Some("/".into()), path_type: "Prefix".into(), backend }],
                }),
            }]),
            ..IngressSpec::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests;
