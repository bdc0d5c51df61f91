//! The objects of a run: N WebApps, and for the floor the children the operator would
//! make of them, planned by the operator's own pure plan so that both contenders create
//! the same Deployments and Services (same labels, same specs).

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Resource;
use serde_json::json;
use webapp_api::{WebApp, WebAppSpec};
use webapp_operator::controllers::webapp::plan::{self, Children};

use crate::error::Result;

/// The image every WebApp of a run starts with.
pub const IMAGE: &str = "nginx:1.21";

/// Name of the `i`-th WebApp (and of its children).
pub fn name(i: usize) -> String {
    format!("app-{i}")
}

/// The `i`-th WebApp: one replica, one env var, no domain (no Ingress), as the
/// issue's measurements had it. Built through serde so that the schema's defaults
/// (port, Service type) are the ones the API server fills in.
pub fn webapp(namespace: &str, i: usize) -> Result<WebApp> {
    let spec: WebAppSpec = serde_json::from_value(json!({"image": IMAGE, "replicas": 1, "env": {"ENV": "bench"}}))?;
    let mut webapp = WebApp::new(&name(i), spec);
    webapp.metadata.namespace = Some(namespace.to_owned());
    Ok(webapp)
}

/// The Deployment and Service the operator would create for `webapp`, without owner
/// references: they would point at a WebApp that does not exist, and the garbage
/// collector would delete the children under the floor's feet.
pub fn floor_children(webapp: &WebApp) -> (Deployment, Service) {
    let reference = OwnerReference {
        api_version: WebApp::api_version(&()).into_owned(),
        kind: WebApp::kind(&()).into_owned(),
        name: webapp.metadata.name.clone().unwrap_or_default(),
        uid: "floor".into(),
        controller: Some(true),
        block_owner_deletion: Some(true),
    };
    let Children { mut deployment, mut service, .. } = plan::desired(webapp, reference);
    deployment.metadata.owner_references = None;
    service.metadata.owner_references = None;
    (deployment, service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_children_are_the_operators_children_without_owner() {
        let webapp = webapp("ns", 7).unwrap();
        let (deployment, service) = floor_children(&webapp);
        let reference = OwnerReference { uid: "u".into(), ..OwnerReference::default() };
        let operator = plan::desired(&webapp, reference);
        assert_eq!(deployment.spec, operator.deployment.spec);
        assert_eq!(deployment.metadata.labels, operator.deployment.metadata.labels);
        assert_eq!(service.spec, operator.service.spec);
        assert_eq!(service.metadata.labels, operator.service.metadata.labels);
        assert_eq!(deployment.metadata.owner_references, None);
        assert_eq!(deployment.metadata.name.as_deref(), Some("app-7"));
        assert_eq!(deployment.metadata.namespace.as_deref(), Some("ns"));
    }
}
