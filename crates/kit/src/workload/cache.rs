//! Cached, label-filtered watches of a controller's children: one reflector per child
//! kind, whose store the steps read and whose stream of touched objects triggers the
//! owner's reconcile.

use std::fmt::Debug;
use std::hash::Hash;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::{Deployment, DeploymentSpec};
use k8s_openapi::api::core::v1::{
    ContainerState, ContainerStatus, Pod, PodSpec, PodStatus, PodTemplateSpec, Service, ServiceSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{Controller, WatchStreamExt, watcher};
use kube::{Api, Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::index::InstanceIndex;
use super::labels::{INSTANCE, kind_selector};
use super::pods::CachedPod;
use super::rollout::is_stuck;
use crate::compact::ChildCache;
use crate::metrics::Metrics;

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
///
/// Lists come in pages of [`LIST_PAGE`] objects.
fn watch_config() -> watcher::Config {
    watcher::Config::default().timeout(WATCH_TIMEOUT_SECS).page_size(LIST_PAGE)
}

/// Objects per page of a cache's list. A page is read whole and decoded whole, with
/// every object's `managedFields`, before the trims make each one small: at kube's
/// default of 500, a restart beside 1000 WebApps (four kinds listed at once) held
/// 27 MB of heap at its peak, three times the first process's, 9.6 MB of it
/// `managedFields` decoded as JSON values (heaptrack; docs/benchmarks.md, "The
/// restart's peak"). A smaller page bounds that transient at the price of more list
/// requests: one per hundred objects, only when a cache lists (at start, or when the
/// resourceVersion its watch resumes from has expired). At 10 000 WebApps that is 403
/// requests and a 9.6 s restart against 83 and 4.7 s with pages of 500 ("N = 10 000
/// again"): there the 10 s restart target, not memory, is what bounds the page.
/// kube's streaming lists would bound it better, one object at a time, but kube-rs
/// asks for them from resourceVersion 0, an "any" read that [`watch_config`] avoids.
const LIST_PAGE: u32 = 100;

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
    reflect_with(api, labels, |_| {})
}

/// [`reflect`], with the cached objects trimmed by `trim` to what the controller reads.
pub fn reflect_with<K>(
    api: Api<K>,
    labels: &str,
    trim: fn(&mut K),
) -> (Store<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned + Send + Sync + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    let (store, writer) = reflector::store();
    let config = watch_config().labels(labels);
    let stream = watcher(api, config)
        .default_backoff()
        .modify(move |object| crate::compact::trim_child(object, trim))
        .reflect(writer)
        .touched_objects()
        .boxed();
    (store, stream)
}

/// [`crate::compact::reflect`] with the watch of every cache: a compact cached watch of
/// children selected by `labels`, trimmed by `trim`.
pub fn reflect_compact<K>(
    api: Api<K>,
    labels: &str,
    trim: fn(&mut K),
) -> (ChildCache<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    crate::compact::reflect(api, watch_config().labels(labels), trim, |_| {})
}

/// Drops every annotation of `meta` but those named in `keep`. Annotations are the part of
/// an object anyone who may edit it can make large (256 KiB each): a tenant's labelled
/// objects must not be able to inflate the operator's caches past its memory limit.
pub fn retain_annotations(meta: &mut ObjectMeta, keep: &[&str]) {
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.retain(|key, _| keep.contains(&key.as_str()));
        if annotations.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The trim of a cached child the kit applies: of its annotations only the hash of our
/// last intent ([`crate::apply::APPLIED_HASH`]), which decides whether it needs a write.
pub fn trim_to_intent<K: Resource>(object: &mut K) {
    retain_annotations(object.meta_mut(), &[crate::apply::APPLIED_HASH]);
}

/// What the workload layer reads of a pod: its identity, labels (the instance index),
/// deletion, and of its status the `Ready` and `PodScheduled` conditions and the
/// containers' waiting states ([`super::pods`]). A [`CachedPod`] has no spec to begin
/// with; annotations, owner references, addresses and the rest of the container
/// statuses (images, ids, running states) are most of what is left.
pub fn trim_pod(pod: &mut CachedPod) {
    let meta = &mut pod.metadata;
    (meta.annotations, meta.owner_references, meta.generate_name) = (None, None, None);
    pod.status = pod.status.take().map(trim_pod_status);
}

/// What a controller that owns pods directly (bare pods, no ReplicaSet or StatefulSet
/// in between) reads of them: what [`trim_pod`] keeps (identity, labels, deletion, the
/// `Ready` and `PodScheduled` conditions, the containers' waiting states), plus the
/// owner references, by which it tells its own pods from others that wear its labels.
/// Every annotation goes: anyone who may create a labelled pod can make them 256 KiB
/// each. The spec goes too: such a controller wrote it, from its own object, and a
/// tenant's labelled pod can carry a large one. `managedFields` are dropped here as
/// well as by [`reflect_with`], so that this function alone is the whole trim.
pub fn trim_owned_pod(pod: &mut Pod) {
    pod.spec = None;
    let meta = &mut pod.metadata;
    (meta.annotations, meta.managed_fields, meta.generate_name) = (None, None, None);
    pod.status = pod.status.take().map(trim_pod_status);
}

/// The part of a pod's status [`super::pods`] reads: the phase, the `Ready` and
/// `PodScheduled` conditions, and of each container its name, readiness, restarts and
/// waiting state. Addresses, times, images, ids and running states are dropped.
fn trim_pod_status(status: PodStatus) -> PodStatus {
    let conditions = status
        .conditions
        .map(|conditions| conditions.into_iter().filter(|c| c.type_ == "Ready" || c.type_ == "PodScheduled").collect());
    let containers = status.container_statuses.map(|containers| {
        containers
            .into_iter()
            .map(|c| ContainerStatus {
                name: c.name,
                ready: c.ready,
                restart_count: c.restart_count,
                state: c
                    .state
                    .and_then(|s| s.waiting)
                    .map(|waiting| ContainerState { waiting: Some(waiting), ..ContainerState::default() }),
                ..ContainerStatus::default()
            })
            .collect()
    });
    PodStatus { phase: status.phase, conditions, container_statuses: containers, ..PodStatus::default() }
}

/// What the workload layer reads of a Deployment: the fields [`super::shape::plan`]
/// sets (the apply compares them with what it wants), the metadata, and the status,
/// whose conditions it reads only when they say the rollout is stuck
/// ([`super::rollout::deployment_problems`]). `shape::plan` sets nothing of the spec but
/// the replicas, the selector and the template, and nothing of the pod spec but the
/// containers and the security context: the server's defaults of the rest (strategy,
/// DNS and restart policies, scheduler, ...) and the conditions of a healthy rollout
/// (with their messages) are dropped. The containers are kept whole: a kind may set
/// any of their fields.
pub fn trim_deployment(deployment: &mut Deployment) {
    if let Some(spec) = deployment.spec.take() {
        let template = spec.template;
        let labels = template.metadata.and_then(|meta| meta.labels);
        let pod = template.spec.map(|pod| PodSpec {
            containers: pod.containers,
            security_context: pod.security_context,
            ..PodSpec::default()
        });
        deployment.spec = Some(DeploymentSpec {
            replicas: spec.replicas,
            selector: spec.selector,
            template: PodTemplateSpec { metadata: Some(ObjectMeta { labels, ..ObjectMeta::default() }), spec: pod },
            ..DeploymentSpec::default()
        });
    }
    if let Some(conditions) = deployment.status.as_mut().and_then(|s| s.conditions.as_mut()) {
        conditions.retain(is_stuck);
    }
    trim_to_intent(deployment);
}

/// What the workload layer reads of a Service: the fields [`super::shape::plan`] sets
/// (type, `clusterIP`, selector, ports), which the apply compares, and the metadata; the
/// allocated `clusterIP` and node ports stay with them. The rest of the server's
/// allocations and defaults (`clusterIPs`, IP families, policies, session affinity) and
/// the status are dropped.
pub fn trim_service(service: &mut Service) {
    if let Some(spec) = service.spec.take() {
        service.spec = Some(ServiceSpec {
            type_: spec.type_,
            cluster_ip: spec.cluster_ip,
            selector: spec.selector,
            ports: spec.ports,
            ..ServiceSpec::default()
        });
    }
    service.status = None;
    trim_to_intent(service);
}

/// The annotations every controller reads of its own objects: the pause
/// ([`crate::driver::PAUSED`]) and the opt-in to adoption ([`crate::adopt::ADOPT`]).
pub const OWN_ANNOTATIONS: &[&str] = &[crate::driver::PAUSED, crate::adopt::ADOPT];

/// The trim of a controller's own objects in its cache: no `managedFields` (an entry per
/// field manager, larger than the rest of a small object, and never read), and of the
/// annotations only [`OWN_ANNOTATIONS`] and the kind's `annotations`. A tenant may put
/// 256 KiB in each annotation of its objects, and `kubectl apply` (client-side) puts the
/// whole object in one: none of it may grow the cache every tenant's objects share.
pub fn trim_own<K: Resource>(object: &mut K, annotations: &[&str]) {
    let meta = object.meta_mut();
    meta.managed_fields = None;
    if let Some(all) = meta.annotations.as_mut() {
        all.retain(|key, _| OWN_ANNOTATIONS.contains(&key.as_str()) || annotations.contains(&key.as_str()));
        if all.is_empty() {
            meta.annotations = None;
        }
    }
}

/// The controller of kind `K`, in one namespace or all, reconciling at most
/// `concurrency` objects at a time. Its own cache of `K` is trimmed by [`trim_own`],
/// keeping `annotations` (those the kind reads beyond [`OWN_ANNOTATIONS`]). Each event
/// of a `K` is noted in `metrics`' [`crate::arrivals::Arrivals`], to time its wait for
/// the reconcile that handles it.
pub fn controller<K>(
    client: &Client,
    namespace: Option<&str>,
    concurrency: u16,
    annotations: &'static [&'static str],
    metrics: &Metrics,
) -> Controller<K>
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
    let arrivals = metrics.arrivals.clone();
    let objects = watcher(scoped_api::<K>(client, namespace), watch_config())
        .default_backoff()
        .modify(move |object| trim_own(object, annotations))
        .reflect(writer)
        .applied_objects()
        .inspect_ok(move |object| arrivals.note(object));
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
    /// Deployments of the kind, trimmed by [`trim_deployment`].
    pub deployments: ChildCache<Deployment>,
    /// Services of the kind, trimmed by [`trim_service`].
    pub services: ChildCache<Service>,
    /// Pods of the kind (owned by ReplicaSets, found by label), trimmed by [`trim_pod`].
    pub pods: ChildCache<CachedPod>,
    /// The pods of each instance.
    pub pod_index: Arc<InstanceIndex>,
}

/// Resolves once `store` has listed what exists (or its writer is gone, with nothing
/// more to wait for): one of the futures a [`crate::driver::Reconciler::caches_ready`]
/// joins.
pub async fn ready<K>(store: &Store<K>)
where
    K: Resource + Clone + 'static,
    K::DynamicType: Eq + Hash + Clone,
{
    // An error means the writer was dropped: the controller is stopping.
    let _ = store.wait_until_ready().await;
}

impl WorkloadCaches {
    /// Resolves once the Deployment, Service and Pod caches have listed.
    pub async fn ready(&self) {
        futures::join!(self.deployments.ready(), self.services.ready(), self.pods.ready());
    }

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
        let (deployments, deployment_events) =
            reflect_compact(scoped_api::<Deployment>(client, namespace), &selector, trim_deployment);
        let (services, service_events) =
            reflect_compact(scoped_api::<Service>(client, namespace), &selector, trim_service);
        let pod_index = Arc::new(InstanceIndex::default());
        let index = pod_index.clone();
        let (pods, pod_events) = crate::compact::reflect(
            scoped_api::<CachedPod>(client, namespace),
            watch_config().labels(&selector),
            trim_pod,
            move |event| index.observe(event),
        );
        let controller = controller
            .owns_stream(deployment_events)
            .owns_stream(service_events)
            .watches_stream(pod_events, owner_by_instance_label::<K, CachedPod>);
        (controller, WorkloadCaches { deployments, services, pods, pod_index })
    }

    /// The cached pods of instance `instance` in `namespace`, found through the index.
    pub fn pods_of(&self, namespace: &str, instance: &str) -> crate::Result<Vec<Arc<CachedPod>>> {
        let names = self.pod_index.names(namespace, instance);
        Ok(self.pods.get_all(namespace, &names)?.into_iter().map(Arc::new).collect())
    }
}

/// The owner of a child that does not carry an owner reference to it (a Deployment's
/// pods belong to its ReplicaSet), found by the instance label.
pub fn owner_by_instance_label<K: Resource<DynamicType = ()>, C: Resource>(child: C) -> Option<ObjectRef<K>> {
    let instance = child.meta().labels.as_ref()?.get(INSTANCE)?.clone();
    Some(ObjectRef::new(&instance).within(child.meta().namespace.as_deref()?))
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::{
        Container, EnvVar, PodSecurityContext, Probe, ResourceRequirements, ServicePort, TCPSocketAction,
    };
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
    use serde_json::{Value, json};

    use super::*;
    use crate::apply::contains;
    use crate::workload::pods::{is_ready, pod_problems};
    use crate::workload::rollout::{deployment_problems, rollout};
    use crate::workload::shape::{self, Exposure, Shape};

    #[test]
    fn an_own_object_keeps_only_the_annotations_its_controller_reads() {
        let mut webapp = k8s_openapi::api::core::v1::ConfigMap::default();
        let kept = [crate::driver::PAUSED, crate::adopt::ADOPT, "db.example.com/approve"];
        let mut annotations: std::collections::BTreeMap<String, String> =
            kept.iter().map(|key| (key.to_string(), "true".to_owned())).collect();
        annotations.insert("kubectl.kubernetes.io/last-applied-configuration".into(), "x".repeat(256 << 10));
        webapp.metadata.annotations = Some(annotations);
        webapp.metadata.managed_fields = Some(vec![Default::default()]);
        trim_own(&mut webapp, &["db.example.com/approve"]);
        let left: Vec<&str> = webapp.metadata.annotations.iter().flatten().map(|(k, _)| k.as_str()).collect();
        assert_eq!(left, ["apps.example.com/adopt", "apps.example.com/paused", "db.example.com/approve"]);
        assert!(webapp.metadata.managed_fields.is_none());
        let mut plain = k8s_openapi::api::core::v1::ConfigMap::default();
        plain.metadata.annotations = Some([("a".to_owned(), "b".to_owned())].into());
        trim_own(&mut plain, &[]);
        assert_eq!(plain.metadata.annotations, None, "an emptied map is dropped");
    }

    #[test]
    fn a_tenants_large_annotations_do_not_survive_the_trim_but_our_intent_hash_does() {
        let mut ingress = k8s_openapi::api::networking::v1::Ingress::default();
        ingress.metadata.annotations = Some(
            [
                ("tenant.example.org/blob".to_owned(), "x".repeat(256 << 10)),
                (crate::apply::APPLIED_HASH.to_owned(), "h1".to_owned()),
            ]
            .into(),
        );
        trim_to_intent(&mut ingress);
        let kept: Vec<&String> = ingress.metadata.annotations.iter().flatten().map(|(k, _)| k).collect();
        assert_eq!(kept, [crate::apply::APPLIED_HASH]);
        let mut meta =
            ObjectMeta { annotations: Some([("a".to_owned(), "b".to_owned())].into()), ..ObjectMeta::default() };
        retain_annotations(&mut meta, &[]);
        assert_eq!(meta.annotations, None, "an emptied map is dropped");
    }

    /// A plan with every field a [`Shape`] can carry set.
    fn planned(exposure: Exposure) -> shape::Plan {
        let container = Container {
            name: "app".into(),
            image: Some("nginx:1".into()),
            image_pull_policy: Some("Always".into()),
            args: Some(vec!["-v".into()]),
            env: Some(vec![EnvVar { name: "A".into(), value: Some("1".into()), ..EnvVar::default() }]),
            resources: Some(ResourceRequirements {
                limits: Some([("memory".to_owned(), Quantity("128Mi".into()))].into()),
                ..ResourceRequirements::default()
            }),
            readiness_probe: Some(Probe {
                tcp_socket: Some(TCPSocketAction { port: IntOrString::Int(80), ..TCPSocketAction::default() }),
                ..Probe::default()
            }),
            ..Container::default()
        };
        let shape = Shape {
            replicas: Some(2),
            container,
            security_context: Some(PodSecurityContext { run_as_non_root: Some(true), ..PodSecurityContext::default() }),
            exposure,
            ports: vec![ServicePort {
                name: Some("http".into()),
                port: 80,
                protocol: Some("TCP".into()),
                ..ServicePort::default()
            }],
            pod_labels: Default::default(),
        };
        shape::plan(&shape::test_owner(), shape)
    }

    /// `wanted` as the API server returns it: `extra` merged in (defaults, status).
    fn served<K: serde::Serialize + serde::de::DeserializeOwned>(wanted: &K, extra: Value) -> K {
        fn merge(into: &mut Value, extra: Value) {
            match (into, extra) {
                (Value::Object(into), Value::Object(extra)) => {
                    for (key, value) in extra {
                        merge(into.entry(key).or_insert(Value::Null), value);
                    }
                }
                (into, extra) => *into = extra,
            }
        }
        let mut value = serde_json::to_value(wanted).unwrap();
        merge(&mut value, extra);
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_trimmed_deployment_still_matches_its_plan_and_its_rollout() {
        let wanted = planned(Exposure::Typed("ClusterIP".into())).deployment;
        let mut container =
            serde_json::to_value(&wanted.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0]).unwrap();
        container["terminationMessagePath"] = json!("/dev/termination-log");
        let mut live = served(
            &wanted,
            json!({
                "metadata": {"uid": "d1", "generation": 3, "annotations": {"deployment.kubernetes.io/revision": "3"}},
                "spec": {
                    "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}},
                    "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600,
                    "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "now"}},
                        "spec": {"containers": [container], "dnsPolicy": "ClusterFirst", "restartPolicy": "Always",
                            "schedulerName": "default-scheduler", "terminationGracePeriodSeconds": 30}}},
                "status": {"observedGeneration": 3, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2, "availableReplicas": 2,
                    "conditions": [
                        {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable", "message": "Deployment has minimum availability."},
                        {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable", "message": "ReplicaSet \"web-1\" has successfully progressed."},
                        {"type": "ReplicaFailure", "status": "True", "reason": "FailedCreate", "message": "quota"}]}
            }),
        );
        let (problems, rolled_out) = (deployment_problems(&live), rollout(&live));
        trim_deployment(&mut live);

        // Every field we set is still there: a trimmed cache costs no write at rest.
        assert!(contains(&serde_json::to_value(&live).unwrap(), &serde_json::to_value(&wanted).unwrap()));
        assert_eq!((deployment_problems(&live), rollout(&live)), (problems, rolled_out));
        let spec = live.spec.as_ref().unwrap();
        assert!(spec.strategy.is_none() && spec.revision_history_limit.is_none());
        let pod = spec.template.spec.as_ref().unwrap();
        assert!(pod.dns_policy.is_none() && pod.scheduler_name.is_none() && pod.security_context.is_some());
        assert!(spec.template.metadata.as_ref().unwrap().annotations.is_none());
        let conditions = live.status.as_ref().unwrap().conditions.as_ref().unwrap();
        assert_eq!(conditions.iter().map(|c| c.type_.as_str()).collect::<Vec<_>>(), ["ReplicaFailure"]);
        assert_eq!(live.metadata.uid.as_deref(), Some("d1"));
    }

    #[test]
    fn a_trimmed_service_still_matches_its_plan() {
        for exposure in [Exposure::Typed("NodePort".into()), Exposure::Headless] {
            let wanted = planned(exposure).service;
            let mut live = served(
                &wanted,
                json!({
                    "metadata": {"uid": "s1"},
                    "spec": {"clusterIPs": ["10.0.0.1"], "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                        "sessionAffinity": "None", "internalTrafficPolicy": "Cluster"},
                    "status": {"loadBalancer": {}}
                }),
            );
            trim_service(&mut live);
            assert!(contains(&serde_json::to_value(&live).unwrap(), &serde_json::to_value(&wanted).unwrap()));
            let spec = live.spec.as_ref().unwrap();
            assert!(spec.cluster_ips.is_none() && spec.ip_families.is_none() && live.status.is_none());
        }
    }

    #[test]
    fn a_trimmed_pod_reads_the_same() {
        let pods = [
            json!({"metadata": {"name": "a", "labels": {"app.kubernetes.io/instance": "web"}, "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-1", "uid": "r"}]},
                "spec": {"containers": [{"name": "app"}]},
                "status": {"phase": "Running", "podIP": "10.1.0.1", "qosClass": "BestEffort",
                    "conditions": [{"type": "Initialized", "status": "True"}, {"type": "Ready", "status": "True"}, {"type": "PodScheduled", "status": "True"}],
                    "containerStatuses": [{"name": "app", "image": "nginx:1", "imageID": "sha", "containerID": "c", "ready": true, "restartCount": 0,
                        "state": {"running": {"startedAt": "2026-11-23T00:00:00Z"}}}]}}),
            json!({"metadata": {"name": "b"},
                "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                    "containerStatuses": [{"name": "app", "image": "nginx:1", "imageID": "", "ready": false, "restartCount": 3,
                        "state": {"waiting": {"reason": "CrashLoopBackOff", "message": "back-off"}}}]}}),
            json!({"metadata": {"name": "c"},
                "status": {"phase": "Pending", "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": "0/2 nodes"}]}}),
        ];
        for value in pods {
            let pod: CachedPod = serde_json::from_value(value).unwrap();
            let mut trimmed = pod.clone();
            trim_pod(&mut trimmed);
            let (pod, trimmed) = (Arc::new(pod), Arc::new(trimmed));
            assert_eq!(is_ready(&trimmed), is_ready(&pod));
            assert_eq!(pod_problems([&trimmed]), pod_problems([&pod]));
            assert_eq!((&trimmed.metadata.name, &trimmed.metadata.labels), (&pod.metadata.name, &pod.metadata.labels));
            let status = trimmed.status.as_ref().unwrap();
            assert!(trimmed.metadata.owner_references.is_none() && status.pod_ip.is_none());
            assert!(status.container_statuses.iter().flatten().all(|c| c.image.is_empty() && c.container_id.is_none()));
        }
    }
}
