//! Cached, label-filtered watches of a controller's children: one reflector per child
//! kind, whose store the steps read and whose stream of touched objects triggers the
//! owner's reconcile.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::de::DeserializeOwned;

use super::index::InstanceIndex;
use super::labels::{INSTANCE, kind_selector};

/// How long one watch request lasts before it is made again (from the last
/// resourceVersion seen: no relist, no event lost). kube's default is 290 s: a watch
/// that goes silent without being closed (a connection kept up by something between us
/// and an API server that went away) would leave a controller blind that long. A minute
/// bounds it, for one request per watch and minute.
const WATCH_TIMEOUT_SECS: u32 = 60;

/// The watch of every cache: bounded (see [`WATCH_TIMEOUT_SECS`]), and listed with the
/// default, most recent, semantic. An "any" list (`resourceVersion=0`) is whatever the
/// API server's watch cache holds, which may be older than what this operator already
/// saw or wrote (kubernetes#59848: an API server that lags, or one just restarted), so
/// a relist could go back in time. A most recent list is served from the watch cache
/// too once it has caught up (consistent reads from cache, on by default since
/// Kubernetes 1.31), so it costs the API server little more.
fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS)
}

/// An API for namespaced kind `K`: in one namespace, or all when `None`.
pub fn scoped_api<K>(client: &kube::Client, namespace: Option<&str>) -> Api<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
{
    match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    }
}

/// A cached watch of children selected by `labels`: the store to read, and the stream of
/// touched objects to hand to `Controller::owns_stream` (which must be polled for the
/// store to fill). `managedFields` are dropped before caching: they are large and we
/// never read them.
pub fn reflect<K>(
    api: Api<K>,
    labels: &str,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    reflect_with(api, labels, |_| {}, None)
}

/// [`reflect`], with the cached objects trimmed by `trim` to what the controller reads,
/// and `index` (if any) fed with the same events as the store.
pub fn reflect_with<K>(
    api: Api<K>,
    labels: &str,
    trim: fn(&mut K),
    index: Option<Arc<InstanceIndex>>,
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let config = watch_config().labels(labels);
    let stream = watcher(api, config)
        .default_backoff()
        .modify(move |object| {
            object.meta_mut().managed_fields = None;
            trim(object);
        })
        .reflect(writer)
        .inspect_ok(move |event| {
            if let Some(index) = &index {
                index.observe(event);
            }
        })
        .touched_objects()
        .boxed();
    (store, stream)
}

/// What the workload layer reads of a pod: its identity, labels, deletion and status.
/// The spec (containers, volumes, ...) and annotations are most of a pod's size.
pub fn trim_pod(pod: &mut Pod) {
    pod.spec = None;
    pod.metadata.annotations = None;
}

/// The controller of kind `K`, in one namespace or all, reconciling at most
/// `concurrency` objects at a time. Its own cache of `K` drops `managedFields`, like the
/// children's: every object carries an entry per field manager (its creator, our
/// finalizer, our status), larger than the rest of a small object, and never read.
pub fn controller<K>(client: &Client, namespace: Option<&str>, concurrency: u16) -> Controller<K>
where
    K: Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + Debug
        + DeserializeOwned
        + Send
        + Sync
        + 'static,
{
    let (reader, writer) = reflector::store();
    let objects = watcher(scoped_api::<K>(client, namespace), watch_config())
        .default_backoff()
        .modify(|object| object.meta_mut().managed_fields = None)
        .reflect(writer)
        .applied_objects();
    Controller::for_stream(objects, reader)
        .with_config(kube::runtime::controller::Config::default().concurrency(concurrency))
        .trigger_backoff(NoSharedBackoff)
}

/// The backoff of a controller's merged trigger stream: none. kube's `Controller` puts
/// one backoff (0.8 s doubling to 30 s, plus jitter) on the merge of all its watches,
/// so an error from any one of them pauses every other: after an API server restart,
/// each watch's 410 Gone in turn grew that shared pause to 47 s, and the chaos suite saw
/// a controller take no change at all for three minutes while its healthy watches
/// waited. Each watch here already backs off by itself (`default_backoff` in
/// [`reflect_with`] and [`controller`]): a failing watch waits, the others go on.
struct NoSharedBackoff;

impl Iterator for NoSharedBackoff {
    type Item = std::time::Duration;

    fn next(&mut self) -> Option<Self::Item> {
        Some(std::time::Duration::ZERO)
    }
}

impl kube::runtime::utils::Backoff for NoSharedBackoff {
    fn reset(&mut self) {}
}

/// The caches of a kind whose pods run in a Deployment behind a Service: its
/// Deployments, Services and Pods, found by the labels of [`super::labels`].
#[derive(Clone)]
pub struct WorkloadCaches {
    /// Deployments of the kind.
    pub deployments: Store<Deployment>,
    /// Services of the kind.
    pub services: Store<Service>,
    /// Pods of the kind (owned by ReplicaSets, found by label), trimmed by [`trim_pod`].
    pub pods: Store<Pod>,
    /// The pods of each instance.
    pub pod_index: Arc<InstanceIndex>,
}

impl WorkloadCaches {
    /// Watches the children of kind `app` and wires them into `controller`: a change to
    /// an owned Deployment or Service, or to one of their Pods, reconciles the owner.
    pub fn watch<K>(
        client: &Client,
        namespace: Option<&str>,
        app: &str,
        controller: Controller<K>,
    ) -> (Controller<K>, Self)
    where
        K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    {
        let selector = kind_selector(app);
        let (deployments, deployment_events) = reflect(scoped_api::<Deployment>(client, namespace), &selector);
        let (services, service_events) = reflect(scoped_api::<Service>(client, namespace), &selector);
        let pod_index = Arc::new(InstanceIndex::default());
        let (pods, pod_events) =
            reflect_with(scoped_api::<Pod>(client, namespace), &selector, trim_pod, Some(pod_index.clone()));
        let controller = controller
            .owns_stream(deployment_events)
            .owns_stream(service_events)
            .watches_stream(pod_events, owner_by_instance_label::<K, Pod>);
        (controller, WorkloadCaches { deployments, services, pods, pod_index })
    }

    /// The cached pods of instance `instance` in `namespace`, found through the index.
    pub fn pods_of(&self, namespace: &str, instance: &str) -> Vec<Arc<Pod>> {
        let names = self.pod_index.names(namespace, instance);
        names.iter().filter_map(|name| self.pods.get(&ObjectRef::new(name).within(namespace))).collect()
    }
}

/// The owner of a child that does not carry an owner reference to it (a Deployment's
/// pods belong to its ReplicaSet), found by the instance label.
pub fn owner_by_instance_label<K: Resource<DynamicType = ()>, C: Resource>(child: C) -> Option<ObjectRef<K>> {
    let instance = child.meta().labels.as_ref()?.get(INSTANCE)?.clone();
    Some(ObjectRef::new(&instance).within(child.meta().namespace.as_deref()?))
}
