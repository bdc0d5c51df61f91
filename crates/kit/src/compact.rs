//! Children as the caches hold them: compact records instead of k8s-openapi structs.
//!
//! A k8s-openapi struct's inline size is fixed whatever is left in it: a trimmed
//! Deployment, with nothing in it but what the controller set and reads, still cost
//! 8.4 KiB in its cache, most of it empty `Option`s of `PodSpec`, `Container` and three
//! `ObjectMeta`s, and a `BTreeMap` node of 544 bytes per label map (docs/benchmarks.md,
//! "Peak RSS"). A [`Compact`] keeps the trimmed object as its JSON text, a quarter of
//! that, and next to it, decoded, only what the store and the owner triggers read
//! (name, namespace, uid, resourceVersion, owner references, deletion). A reconcile
//! expands the one copy it needs: a few microseconds, against an API request's
//! milliseconds.
//!
//! [`reflect`] caches a child kind this way, [`ChildCache`] reads it.

use std::borrow::Cow;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::Arc;

use futures::{Stream, StreamExt, TryStreamExt};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::{Error, Result};

/// One cached object of kind `K`: what the store and the owner triggers read, decoded,
/// and the rest of the (trimmed) object as JSON, which [`Compact::expand`] decodes.
pub struct Compact<K> {
    metadata: ObjectMeta,
    json: Box<str>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for Compact<K> {
    fn clone(&self) -> Self {
        Compact { metadata: self.metadata.clone(), json: self.json.clone(), kind: PhantomData }
    }
}

impl<K> Debug for Compact<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Compact").field("metadata", &self.metadata).field("bytes", &self.json.len()).finish()
    }
}

impl<K: Resource + Serialize> Compact<K> {
    /// The record of `object`, as it stands (trim it first), for a child found by its
    /// owner reference: its identity, owners and deletion decoded.
    pub fn new(object: &K) -> Self {
        let meta = object.meta();
        let metadata = ObjectMeta {
            name: meta.name.clone(),
            namespace: meta.namespace.clone(),
            uid: meta.uid.clone(),
            resource_version: meta.resource_version.clone(),
            owner_references: meta.owner_references.clone(),
            deletion_timestamp: meta.deletion_timestamp.clone(),
            ..ObjectMeta::default()
        };
        Compact { metadata, json: to_json(object), kind: PhantomData }
    }

    /// [`Compact::new`], with the labels decoded too (and left out of the JSON), for a
    /// child found by its labels (a Deployment's pods) or indexed by them.
    pub fn labelled(object: &K) -> Self
    where
        K: Clone,
    {
        let mut rest = object.clone();
        let labels = rest.meta_mut().labels.take();
        let mut record = Compact::new(&rest);
        record.metadata.labels = labels;
        record
    }
}

/// An object's JSON. Serialising a decoded API object cannot fail (string keys, no
/// serialiser that refuses); were it to, [`Compact::expand`] says so to the reconcile.
fn to_json<K: Serialize>(object: &K) -> Box<str> {
    serde_json::to_string(object).unwrap_or_default().into_boxed_str()
}

/// A record read straight from an object's JSON, untrimmed and [`Compact::labelled`]:
/// what a `Controller::watches_stream` trigger asks its objects to be.
impl<'de, K> serde::Deserialize<'de> for Compact<K>
where
    K: Resource + Clone + Serialize + serde::Deserialize<'de>,
{
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        K::deserialize(deserializer).map(|object| Compact::labelled(&object))
    }
}

impl<K: Resource<DynamicType = ()> + DeserializeOwned> Compact<K> {
    /// The object as it was cached.
    pub fn expand(&self) -> Result<K> {
        let mut object: K = serde_json::from_str(&self.json).map_err(|error| Error::Unreadable {
            kind: K::kind(&()).into_owned(),
            name: self.metadata.name.clone().unwrap_or_default(),
            reason: error.to_string(),
        })?;
        if let Some(labels) = &self.metadata.labels {
            object.meta_mut().labels = Some(labels.clone());
        }
        Ok(object)
    }
}

/// A record is of its object's kind: the same API paths, so a reflector lists and
/// watches it, and the same metadata for the store's keys and the owner triggers.
impl<K: Resource<DynamicType = ()>> Resource for Compact<K> {
    type DynamicType = ();
    type Scope = K::Scope;

    fn kind(_: &()) -> Cow<'_, str> {
        K::kind(&())
    }

    fn group(_: &()) -> Cow<'_, str> {
        K::group(&())
    }

    fn version(_: &()) -> Cow<'_, str> {
        K::version(&())
    }

    fn api_version(_: &()) -> Cow<'_, str> {
        K::api_version(&())
    }

    fn plural(_: &()) -> Cow<'_, str> {
        K::plural(&())
    }

    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }

    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
}

/// A compact cache of one child kind, read by name: what [`reflect`] fills.
pub struct ChildCache<K: Resource<DynamicType = ()> + 'static> {
    store: Store<Compact<K>>,
}

impl<K: Resource<DynamicType = ()> + 'static> Clone for ChildCache<K> {
    fn clone(&self) -> Self {
        ChildCache { store: self.store.clone() }
    }
}

impl<K: Resource<DynamicType = ()> + DeserializeOwned + 'static> ChildCache<K> {
    fn record(&self, namespace: &str, name: &str) -> Option<Arc<Compact<K>>> {
        self.store.get(&ObjectRef::new(name).within(namespace))
    }

    /// The cached child `name` in `namespace`, expanded.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        self.record(namespace, name).map(|record| record.expand()).transpose()
    }

    /// The cached children `names` in `namespace` that the cache holds, expanded.
    pub fn get_all<'a>(&self, namespace: &str, names: impl IntoIterator<Item = &'a String>) -> Result<Vec<K>> {
        names.into_iter().filter_map(|name| self.get(namespace, name).transpose()).collect()
    }

    /// Whether the cache holds child `name` in `namespace` (nothing is expanded).
    pub fn has(&self, namespace: &str, name: &str) -> bool {
        self.record(namespace, name).is_some()
    }

    /// Resolves once the cache has listed what exists (or its writer is gone, with
    /// nothing more to wait for).
    pub async fn ready(&self) {
        // An error means the writer was dropped: the controller is stopping.
        let _ = self.store.wait_until_ready().await;
    }
}

/// A cache of objects of kind `K` read by name, as a reconcile reads it: a
/// [`ChildCache`], or a reflector's [`Store`] of the API type (a kind whose watch maps
/// its objects to owners by their labels, which a record does not keep).
pub trait ReadCache<K> {
    /// The cached object `name` in `namespace`, as `K`.
    fn read(&self, namespace: &str, name: &str) -> Result<Option<K>>;
}

impl<K: Resource<DynamicType = ()> + DeserializeOwned + 'static> ReadCache<K> for ChildCache<K> {
    fn read(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        self.get(namespace, name)
    }
}

impl<K: Resource<DynamicType = ()> + Clone + 'static> ReadCache<K> for Store<K> {
    fn read(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        Ok(self.get(&ObjectRef::new(name).within(namespace)).map(|object| object.as_ref().clone()))
    }
}

/// A compact cached watch of the objects `config` selects, each trimmed by `trim` (to
/// what the controller reads) and made a record by `record` ([`Compact::new`] or
/// [`Compact::labelled`]): the cache to read, and the stream of touched records to hand
/// to `Controller::owns_stream` or `watches_stream` (which must be polled for the cache
/// to fill). `observe` sees each event the cache takes (an index fed beside it). Of
/// `managedFields` only the marker of our create is kept
/// ([`crate::apply::keep_create_marker`]).
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    record: fn(&K) -> Compact<K>,
    observe: impl Fn(&watcher::Event<Compact<K>>) + Send + 'static,
) -> (ChildCache<K>, impl Stream<Item = Result<Compact<K>, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let (store, writer) = reflector::store::<Compact<K>>();
    let stream = watcher(api, config)
        .default_backoff()
        .map_ok(move |event| {
            event.map(|mut object| {
                crate::apply::keep_create_marker(object.meta_mut());
                trim(&mut object);
                record(&object)
            })
        })
        .reflect(writer)
        .inspect_ok(observe)
        .touched_objects()
        .boxed();
    (ChildCache { store }, stream)
}

/// The record of every event of a watch, mapped.
trait MapEvent<K> {
    fn map<C>(self, f: impl FnMut(K) -> C) -> watcher::Event<C>;
}

impl<K> MapEvent<K> for watcher::Event<K> {
    fn map<C>(self, mut f: impl FnMut(K) -> C) -> watcher::Event<C> {
        match self {
            watcher::Event::Apply(object) => watcher::Event::Apply(f(object)),
            watcher::Event::Delete(object) => watcher::Event::Delete(f(object)),
            watcher::Event::Init => watcher::Event::Init,
            watcher::Event::InitApply(object) => watcher::Event::InitApply(f(object)),
            watcher::Event::InitDone => watcher::Event::InitDone,
        }
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_record_expands_to_the_object_it_was_made_from_and_keeps_what_the_triggers_read() {
        let deployment: Deployment = serde_json::from_value(json!({
            "metadata": {"name": "web", "namespace": "ns", "uid": "d1", "resourceVersion": "42", "generation": 3,
                "labels": {"app.kubernetes.io/name": "webapp", "app.kubernetes.io/instance": "web"},
                "annotations": {"webapp.example.com/applied": "h1"},
                "ownerReferences": [{"apiVersion": "apps.example.com/v1", "kind": "WebApp", "name": "web", "uid": "w1", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/instance": "web"}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/instance": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
            "status": {"observedGeneration": 3, "readyReplicas": 2}
        }))
        .unwrap();
        let record = Compact::new(&deployment);
        assert_eq!(record.expand().unwrap(), deployment);
        let meta = record.meta();
        assert_eq!((meta.name.as_deref(), meta.namespace.as_deref()), (Some("web"), Some("ns")));
        assert_eq!((meta.uid.as_deref(), meta.resource_version.as_deref()), (Some("d1"), Some("42")));
        let owners: &[OwnerReference] = meta.owner_references.as_deref().unwrap();
        assert_eq!(owners[0].uid, "w1");
        assert!(meta.labels.is_none() && meta.annotations.is_none() && meta.generation.is_none());
        assert!(record.json.len() < 700, "{} bytes", record.json.len());
    }

    #[test]
    fn a_labelled_record_keeps_its_labels_decoded_once_and_expands_whole() {
        let pod: crate::workload::pods::CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "ns", "uid": "p1",
                "labels": {"app.kubernetes.io/instance": "web", "pod-template-hash": "abc"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        let record = Compact::labelled(&pod);
        assert_eq!(record.expand().unwrap(), pod);
        assert_eq!(record.meta().labels, pod.metadata.labels);
        assert!(!record.json.contains("pod-template-hash"), "labels are not kept twice");
        let read: Compact<crate::workload::pods::CachedPod> =
            serde_json::from_value(serde_json::to_value(&pod).unwrap()).unwrap();
        assert_eq!(read.meta().labels, pod.metadata.labels);
        assert_eq!(read.expand().unwrap(), pod);
    }

    #[test]
    fn a_record_that_cannot_be_read_back_is_an_error_not_a_default() {
        let mut record = Compact::new(&Deployment::default());
        record.json = "{".into();
        assert!(matches!(record.expand(), Err(Error::Unreadable { .. })));
    }
}
