//! The WebApp controller: a Deployment, a Service and, with `spec.domain`, an Ingress,
//! driven through `Pending → Creating → Running` (with `Failed` and `Deleting`).
//!
//! [`plan`] and [`status`] are pure; this module and [`steps`] do the I/O: the
//! reconcile is a pipeline of named steps (`plan`, `deployment`, `service`, `ingress`,
//! `observe`), and deletion a pipeline that removes the children in order.

pub mod plan;
pub mod status;
mod steps;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::api::networking::v1::Ingress;
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{Controller, watcher};
use kube::{Api, Client, ResourceExt};
use reconcile_kit::driver::Reconciler;
use reconcile_kit::events::Events;
use reconcile_kit::{Error, Result};
use webapp_api::WebApp;

use crate::controllers::children::{reflect, scoped_api};
use crate::controllers::kind_selector;
use crate::controllers::labels;

/// Finalizer that holds a WebApp until its children are cleaned up.
pub const FINALIZER: &str = "apps.example.com/webapp-cleanup";
/// How often a healthy WebApp is looked at again even when nothing happens.
pub const HEALTH_CHECK: Duration = Duration::from_secs(30);
/// How long deletion waits for a child to go before giving up on it.
pub const CLEANUP_BUDGET: Duration = Duration::from_secs(120);

/// Shared state of the WebApp controller: the client, events and the child caches.
pub struct Context {
    client: Client,
    events: Events,
    deployments: Store<Deployment>,
    services: Store<Service>,
    ingresses: Store<Ingress>,
    pods: Store<Pod>,
}

impl Context {
    fn api<K>(&self, namespace: &str) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), namespace)
    }
}

/// The WebApp reconciler.
pub struct WebAppReconciler {
    ctx: Arc<Context>,
}

/// Builds the WebApp controller: watches of WebApps and of their children (filtered on
/// our labels, cached once and shared with the reconciler), and the reconciler.
pub fn controller(
    client: Client,
    namespace: Option<&str>,
    events: Events,
    concurrency: u16,
) -> (Controller<WebApp>, WebAppReconciler) {
    let selector = kind_selector(plan::APP);
    let (deployments, deployment_events) = reflect(scoped_api::<Deployment>(&client, namespace), &selector);
    let (services, service_events) = reflect(scoped_api::<Service>(&client, namespace), &selector);
    let (ingresses, ingress_events) = reflect(scoped_api::<Ingress>(&client, namespace), &selector);
    let (pods, pod_events) = reflect(scoped_api::<Pod>(&client, namespace), &selector);

    let controller =
        Controller::new(scoped_api::<WebApp>(&client, namespace), watcher::Config::default().any_semantic())
            .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
            .owns_stream(deployment_events)
            .owns_stream(service_events)
            .owns_stream(ingress_events)
            // Pods are not owned by the WebApp (their ReplicaSet is), so map them by label.
            .watches_stream(pod_events, |pod: Pod| {
                let instance = pod.labels().get(labels::INSTANCE)?.clone();
                Some(ObjectRef::new(&instance).within(&pod.namespace()?))
            });
    let ctx = Context { client, events, deployments, services, ingresses, pods };
    (controller, WebAppReconciler { ctx: Arc::new(ctx) })
}

impl Reconciler for WebAppReconciler {
    type Object = WebApp;
    const NAME: &'static str = "webapp";

    async fn reconcile(&self, webapp: Arc<WebApp>) -> Result<Action> {
        let namespace = webapp.namespace().ok_or_else(|| Error::InvalidSpec("WebApp has no namespace".into()))?;
        let api: Api<WebApp> = self.ctx.api(&namespace);
        let (ctx, cleanup_ctx) = (self.ctx.clone(), self.ctx.clone());
        reconcile_kit::finalizer::run(
            &api,
            FINALIZER,
            webapp,
            |w| steps::apply(ctx, w),
            |w| steps::cleanup(cleanup_ctx, w),
        )
        .await
    }
}
