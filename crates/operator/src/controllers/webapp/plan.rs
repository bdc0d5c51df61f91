//! The pure plan: what a WebApp's children should look like. No I/O, no clock.

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvVar, HTTPGetAction, Probe, Service, ServicePort, TCPSocketAction,
};
use k8s_openapi::api::networking::v1::{
    HTTPIngressPath, HTTPIngressRuleValue, Ingress, IngressBackend, IngressRule, IngressServiceBackend, IngressSpec,
    ServiceBackendPort,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use reconcile_kit::security;
use reconcile_kit::workload::{self, Exposure, Owner, Plan, Shape};
use webapp_api::WebApp;

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

/// Who a WebApp's children belong to.
pub fn owner(webapp: &WebApp, reference: OwnerReference) -> Owner {
    Owner { name: webapp.name_any(), namespace: webapp.namespace(), app: APP, reference }
}

/// What `webapp` should own. `owner` is its controller owner reference. Children are
/// named like the WebApp, as users of the seeds expect (`kubectl get deploy <name>`).
pub fn desired(webapp: &WebApp, owner_reference: OwnerReference) -> Children {
    let owner = owner(webapp, owner_reference);
    let Plan { deployment, service } = workload::shape::plan(&owner, shape(webapp));
    Children { deployment, service, ingress: ingress(webapp, &owner) }
}

/// The Deployment and Service of `webapp`, in the workload layer's terms.
pub fn shape(webapp: &WebApp) -> Shape {
    let spec = &webapp.spec;
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
        resources: spec.resources.as_deref().cloned(),
        readiness_probe: Some(probe),
        security_context: Some(security::container_or_restricted(spec.security_context.as_deref())),
        ..Container::default()
    };
    Shape {
        // Unset: an autoscaler owns the count; sending it would fight the autoscaler.
        replicas: spec.replicas,
        container,
        security_context: None,
        exposure: Exposure::Typed(spec.service_type.as_str().into()),
        ports: vec![ServicePort {
            name: Some("http".into()),
            port: spec.port,
            target_port: Some(IntOrString::Int(spec.port)),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }],
        // Its source document selects its pods by no label of its own.
        pod_labels: Default::default(),
    }
}

/// The Ingress routing `spec.domain` to the Service, when a domain is set.
pub fn ingress(webapp: &WebApp, owner: &Owner) -> Option<Ingress> {
    let domain = webapp.spec.domain.as_deref()?;
    let backend = IngressBackend {
        service: Some(IngressServiceBackend {
            name: webapp.name_any(),
            port: Some(ServiceBackendPort { number: Some(webapp.spec.port), ..ServiceBackendPort::default() }),
        }),
        ..IngressBackend::default()
    };
    Some(Ingress {
        metadata: owner.child_meta(),
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
    })
}

#[cfg(test)]
mod tests;
