//! Every child the checks compare, listed once per check from the suite's namespace
//! (through the admin kubeconfig, so Secrets too), and what an object's metadata says
//! of whose it is: its controller reference, and the project's labels.

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::ListParams;
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use crate::kinds::Kind;
use crate::workload::Target;

/// `app.kubernetes.io/name`: the kind of the custom resource a child belongs to.
pub const NAME: &str = "app.kubernetes.io/name";
/// `app.kubernetes.io/instance`: the name of that custom resource.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// `app.kubernetes.io/managed-by`: the operator.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
/// The operator's name in `MANAGED_BY`.
pub const MANAGER: &str = "webapp-operator";

/// The namespace's objects of every kind a controller makes.
#[derive(Clone, Debug, Default)]
pub struct Listed {
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// Services.
    pub services: Vec<Service>,
    /// Ingresses.
    pub ingresses: Vec<Ingress>,
    /// StatefulSets.
    pub statefulsets: Vec<StatefulSet>,
    /// Pods, those being deleted left out.
    pub pods: Vec<Pod>,
    /// Secrets.
    pub secrets: Vec<Secret>,
    /// CronJobs.
    pub cronjobs: Vec<CronJob>,
    /// PersistentVolumeClaims.
    pub claims: Vec<PersistentVolumeClaim>,
}

async fn list<K>(target: &Target) -> Result<Vec<K>, kube::Error>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + DeserializeOwned
        + std::fmt::Debug,
{
    Ok(Api::<K>::namespaced(target.client.clone(), &target.namespace).list(&ListParams::default()).await?.items)
}

impl Listed {
    /// Lists them all.
    pub async fn list(target: &Target) -> Result<Self, kube::Error> {
        let pods: Vec<Pod> = list(target).await?;
        Ok(Listed {
            deployments: list(target).await?,
            services: list(target).await?,
            ingresses: list(target).await?,
            statefulsets: list(target).await?,
            pods: pods.into_iter().filter(|p| p.metadata.deletion_timestamp.is_none()).collect(),
            secrets: list(target).await?,
            cronjobs: list(target).await?,
            claims: list(target).await?,
        })
    }

    /// Every object's kind and metadata, for the checks that read only metadata.
    pub fn metas(&self) -> impl Iterator<Item = (&'static str, &ObjectMeta)> {
        tagged("Deployment", &self.deployments)
            .chain(tagged("Service", &self.services))
            .chain(tagged("Ingress", &self.ingresses))
            .chain(tagged("StatefulSet", &self.statefulsets))
            .chain(tagged("Pod", &self.pods))
            .chain(tagged("Secret", &self.secrets))
            .chain(tagged("CronJob", &self.cronjobs))
            .chain(tagged("PersistentVolumeClaim", &self.claims))
    }
}

fn tagged<'a, K: Resource>(
    kind: &'static str,
    objects: &'a [K],
) -> impl Iterator<Item = (&'static str, &'a ObjectMeta)> {
    objects.iter().map(move |object| (kind, object.meta()))
}

/// The controller reference of `meta`, if any.
pub fn controller(meta: &ObjectMeta) -> Option<&OwnerReference> {
    meta.owner_references.iter().flatten().find(|r| r.controller == Some(true))
}

/// The controlling owner of `meta` among our kinds: `(kind name, uid)`.
pub fn owner(meta: &ObjectMeta) -> Option<(String, String)> {
    controller(meta).filter(|r| Kind::ALL.iter().any(|k| k.name() == r.kind)).map(|r| (r.kind.clone(), r.uid.clone()))
}

/// Whose the project's labels say `meta` is: the kind and name of a custom resource,
/// when the operator's `managed-by` label is there.
pub fn labelled(meta: &ObjectMeta) -> Option<(Kind, String)> {
    let labels = meta.labels.as_ref()?;
    if labels.get(MANAGED_BY).map(String::as_str) != Some(MANAGER) {
        return None;
    }
    let kind = Kind::ALL.into_iter().find(|k| labels.get(NAME).map(String::as_str) == Some(k.app()))?;
    Some((kind, labels.get(INSTANCE)?.clone()))
}

/// `meta`'s name.
pub fn name(meta: &ObjectMeta) -> &str {
    meta.name.as_deref().unwrap_or_default()
}

#[cfg(test)]
pub mod fixtures {
    //! Objects for the pure checks' tests.

    use std::collections::BTreeMap;

    use super::*;

    /// The labels the operator gives a child of `kind` `instance`.
    pub fn labels(kind: Kind, instance: &str) -> BTreeMap<String, String> {
        [(NAME, kind.app()), (INSTANCE, instance), (MANAGED_BY, MANAGER)]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// A controller reference to `kind` with `uid`.
    pub fn controlled_by(kind: &str, name: &str, uid: &str) -> OwnerReference {
        OwnerReference {
            api_version: "x/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: uid.into(),
            controller: Some(true),
            ..OwnerReference::default()
        }
    }

    /// Metadata named `name`, labelled for `kind` `instance`, with `owners`.
    pub fn meta(name: &str, kind: Kind, instance: &str, owners: Vec<OwnerReference>) -> ObjectMeta {
        ObjectMeta {
            name: Some(name.into()),
            uid: Some(format!("uid-of-{name}")),
            labels: Some(labels(kind, instance)),
            owner_references: (!owners.is_empty()).then_some(owners),
            ..ObjectMeta::default()
        }
    }
}
