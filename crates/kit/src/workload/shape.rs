//! The pure plan shared by kinds whose pods run in a Deployment behind a Service: from a
//! small description ([`Shape`]) to the two children, labelled, selected and owned the
//! same way for every kind. Each kind keeps only its own spec → [`Shape`] mapping.

use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    Container, PodSecurityContext, PodSpec, PodTemplateSpec, Service, ServicePort, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};

use super::labels::{child_labels, selector_labels};

/// Who the children belong to: their name (the owner's), namespace, kind label and
/// controller owner reference.
#[derive(Clone, Debug, PartialEq)]
pub struct Owner {
    /// Name of the owner, and of its children.
    pub name: String,
    /// Namespace of the owner and its children.
    pub namespace: Option<String>,
    /// `app.kubernetes.io/name` of the children, e.g. `webserver`.
    pub app: &'static str,
    /// The controller owner reference every child carries.
    pub reference: OwnerReference,
}

impl Owner {
    /// Metadata of a child named like the owner.
    pub fn child_meta(&self) -> ObjectMeta {
        ObjectMeta {
            name: Some(self.name.clone()),
            namespace: self.namespace.clone(),
            labels: Some(child_labels(self.app, &self.name)),
            owner_references: Some(vec![self.reference.clone()]),
            ..ObjectMeta::default()
        }
    }
}

/// How the Service exposes the pods.
#[derive(Clone, Debug, Default, PartialEq)]
pub enum Exposure {
    /// A virtual IP of `type` (`ClusterIP`, `NodePort`, `LoadBalancer`).
    Typed(String),
    /// Headless (`clusterIP: None`): DNS returns every ready pod, for clients that
    /// spread keys over the pods themselves (memcached).
    #[default]
    Headless,
}

/// What a kind asks of its Deployment and Service.
#[derive(Clone, Debug, PartialEq)]
pub struct Shape {
    /// Pods wanted; `None` leaves the count to an autoscaler (never sent).
    pub replicas: Option<i32>,
    /// The one container of every pod.
    pub container: Container,
    /// Pod-level security settings.
    pub security_context: Option<PodSecurityContext>,
    /// How the Service exposes the pods.
    pub exposure: Exposure,
    /// The Service's ports.
    pub ports: Vec<ServicePort>,
    /// Labels the pods carry beside the recommended ones (a kind's own, such as the
    /// labels its source document selects pods by); never in the selector, which cannot
    /// change, and never one of the recommended ones.
    pub pod_labels: std::collections::BTreeMap<String, String>,
}

/// The two children a [`Shape`] asks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Plan {
    /// The pods.
    pub deployment: Deployment,
    /// The stable address in front of them.
    pub service: Service,
}

/// The Deployment and Service of `owner` shaped by `shape`.
pub fn plan(owner: &Owner, shape: Shape) -> Plan {
    let selector = selector_labels(owner.app, &owner.name);
    let (type_, cluster_ip) = match shape.exposure {
        Exposure::Typed(type_) => (Some(type_), None),
        Exposure::Headless => (None, Some("None".to_owned())),
    };
    let service = Service {
        metadata: owner.child_meta(),
        spec: Some(ServiceSpec {
            type_,
            cluster_ip,
            selector: Some(selector.clone()),
            ports: Some(shape.ports),
            ..ServiceSpec::default()
        }),
        status: None,
    };
    let deployment = Deployment {
        metadata: owner.child_meta(),
        spec: Some(DeploymentSpec {
            replicas: shape.replicas,
            selector: LabelSelector { match_labels: Some(selector), ..LabelSelector::default() },
            template: PodTemplateSpec {
                metadata: Some(ObjectMeta {
                    labels: Some(shape.pod_labels.into_iter().chain(child_labels(owner.app, &owner.name)).collect()),
                    ..ObjectMeta::default()
                }),
                spec: Some(PodSpec {
                    containers: vec![shape.container],
                    security_context: shape.security_context,
                    ..PodSpec::default()
                }),
            },
            ..DeploymentSpec::default()
        }),
        status: None,
    };
    Plan { deployment, service }
}

impl Plan {
    /// The plan, selecting pods by `live`, the selector of the Deployment that already
    /// exists under the owner's name, when that differs from ours. A Deployment's
    /// selector cannot change, so one made by hand (`kubectl create deployment` selects
    /// `app=<name>`) keeps its own when it is adopted, and every later apply keeps it
    /// too: the pods also carry the selector's labels, and the Service selects what the
    /// Deployment selects, so it goes on serving the pods that already run while the
    /// template is brought to the spec. Refused (with a sentence for the status) when
    /// `live` selects by expressions, which a Service cannot.
    pub fn keeping_selector(mut self, live: &LabelSelector) -> Result<Self, String> {
        let Some(spec) = self.deployment.spec.as_mut() else { return Ok(self) };
        if &spec.selector == live {
            return Ok(self);
        }
        let name = self.deployment.metadata.name.as_deref().unwrap_or_default();
        let labels = live.match_labels.clone().unwrap_or_default();
        if live.match_expressions.as_ref().is_some_and(|e| !e.is_empty()) || labels.is_empty() {
            return Err(format!(
                "Deployment {name} cannot be adopted: it selects its pods by expressions, which its Service cannot \
                 select by, and a Deployment's selector cannot change; delete it and the operator makes its own"
            ));
        }
        spec.selector = live.clone();
        let template = spec.template.metadata.get_or_insert_with(ObjectMeta::default);
        template.labels.get_or_insert_with(Default::default).extend(labels.clone());
        if let Some(service) = self.service.spec.as_mut() {
            service.selector = Some(labels);
        }
        Ok(self)
    }
}

/// The owner of the kit's unit tests: object `ns/web` of a kind `X`, app `x`.
#[cfg(test)]
pub(crate) fn test_owner() -> Owner {
    let reference = OwnerReference {
        api_version: "x/v1".into(),
        kind: "X".into(),
        name: "web".into(),
        uid: "u1".into(),
        controller: Some(true),
        ..OwnerReference::default()
    };
    Owner { name: "web".into(), namespace: Some("ns".into()), app: "x", reference }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner() -> Owner {
        test_owner()
    }

    fn shape(exposure: Exposure) -> Shape {
        Shape {
            replicas: Some(2),
            container: Container { name: "app".into(), image: Some("nginx".into()), ..Container::default() },
            security_context: None,
            exposure,
            ports: vec![ServicePort { port: 80, ..ServicePort::default() }],
            pod_labels: Default::default(),
        }
    }

    #[test]
    fn a_kind_s_own_pod_labels_join_the_recommended_ones_and_never_replace_them() {
        let mut shaped = shape(Exposure::Headless);
        let name = super::super::labels::INSTANCE.to_owned();
        shaped.pod_labels = [("app".to_owned(), "memcached".to_owned()), (name.clone(), "not-web".to_owned())].into();
        let spec = plan(&owner(), shaped).deployment.spec.unwrap();
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["app"], "memcached");
        assert_eq!(labels[&name], "web", "a recommended label wins");
        assert!(!spec.selector.match_labels.unwrap().contains_key("app"), "never in the selector");
    }

    #[test]
    fn children_are_named_labelled_owned_and_select_the_pods() {
        let plan = plan(&owner(), shape(Exposure::Typed("ClusterIP".into())));
        for meta in [&plan.deployment.metadata, &plan.service.metadata] {
            assert_eq!(meta.name.as_deref(), Some("web"));
            assert_eq!(meta.namespace.as_deref(), Some("ns"));
            assert_eq!(meta.owner_references.as_ref().unwrap()[0].uid, "u1");
            assert_eq!(meta.labels.as_ref().unwrap()[super::super::labels::MANAGED_BY], "webapp-operator");
        }
        let spec = plan.deployment.spec.unwrap();
        let template_labels = spec.template.metadata.unwrap().labels.unwrap();
        let selector = spec.selector.match_labels.unwrap();
        assert!(selector.iter().all(|(k, v)| template_labels.get(k) == Some(v)));
        assert_eq!(plan.service.spec.as_ref().unwrap().selector.as_ref(), Some(&selector));
        assert_eq!(plan.service.spec.unwrap().type_.as_deref(), Some("ClusterIP"));
    }

    #[test]
    fn an_adopted_deployment_keeps_its_selector_and_the_service_follows_it() {
        let by_hand = LabelSelector {
            match_labels: Some([("app".to_owned(), "web".to_owned())].into()),
            ..LabelSelector::default()
        };
        let kept = plan(&owner(), shape(Exposure::Headless)).keeping_selector(&by_hand).unwrap();
        let spec = kept.deployment.spec.unwrap();
        assert_eq!(spec.selector, by_hand);
        let labels = spec.template.metadata.unwrap().labels.unwrap();
        assert_eq!(labels["app"], "web", "the pods carry the kept selector's labels");
        assert_eq!(labels[super::super::labels::INSTANCE], "web", "and ours beside them");
        assert_eq!(kept.service.spec.unwrap().selector, by_hand.match_labels);
    }

    #[test]
    fn our_own_selector_changes_nothing_and_expressions_are_refused_in_words() {
        let ours = plan(&owner(), shape(Exposure::Headless));
        let selector = ours.deployment.spec.as_ref().unwrap().selector.clone();
        assert_eq!(ours.clone().keeping_selector(&selector).unwrap(), ours);
        let expressions =
            LabelSelector { match_expressions: Some(vec![Default::default()]), ..LabelSelector::default() };
        let refused = ours.keeping_selector(&expressions).unwrap_err();
        assert!(refused.starts_with("Deployment web cannot be adopted"), "{refused}");
    }

    #[test]
    fn a_headless_service_has_no_cluster_ip() {
        let service = plan(&owner(), shape(Exposure::Headless)).service.spec.unwrap();
        assert_eq!((service.cluster_ip.as_deref(), service.type_), (Some("None"), None));
    }
}
