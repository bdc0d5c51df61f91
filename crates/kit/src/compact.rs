//! Children as the caches hold them: each one's trimmed JSON, keyed by namespace and name.
//!
//! A k8s-openapi struct's inline size is fixed whatever is left in it: a trimmed
//! Deployment, with nothing in it but what the controller set and reads, still cost
//! 8.4 KiB in a reflector's store, most of it empty `Option`s of `PodSpec`, `Container`
//! and three `ObjectMeta`s, and a `BTreeMap` node of 544 bytes per label map
//! (docs/benchmarks.md, "Peak RSS"). A [`ChildCache`] keeps the trimmed object as its
//! JSON text, and nothing else: no decoded metadata beside it and no kube `ObjectRef`
//! as its key (about 0.9 KiB per child between them: "Cache records" in
//! docs/benchmarks.md). What the owner triggers and the instance index read (owner
//! references, labels) they read from the watch event, before the object is dropped.
//!
//! The text is LZ4-compressed against a dictionary: the JSON of the first object the
//! cache took. The children of one kind are made from one template and differ in a
//! few names, uids and versions, so each record keeps little more than what makes it
//! different (the tests require a third of the JSON at most). The dictionary
//! is fixed for the cache's life, so a relist changes nothing of how records read; an
//! odd first object only compresses the others less. A reconcile expands the one copy
//! it needs: a few microseconds, against an API request's milliseconds.
//!
//! [`reflect`] caches a child kind this way, [`ChildCache`] reads it.

use std::collections::HashMap;
use std::fmt::Debug;
use std::marker::PhantomData;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use futures::{Stream, StreamExt, TryStreamExt};
use kube::runtime::reflector::{ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::watch;

use crate::{Error, Result};

/// The cached objects' compressed JSON by namespace, then name: a namespace's name is
/// held once, however many children live in it.
type Namespaces = HashMap<Box<str>, HashMap<Box<str>, Box<[u8]>>>;

/// The longest dictionary kept: more than any trimmed child's JSON, and a quarter of
/// LZ4's window.
const DICTIONARY_MAX: usize = 16 << 10;

/// What a [`ChildCache`] and its [`Writer`] share.
struct Records {
    live: RwLock<Namespaces>,
    /// What every record is compressed against: the first object's JSON, set once.
    dictionary: OnceLock<Box<[u8]>>,
    /// Whether the first list has been taken in; the writer holds the sender, so a
    /// dropped writer (a stopping controller) releases whoever waits.
    ready: watch::Receiver<bool>,
    /// The highest resourceVersion of the events taken in: a watch delivers one
    /// resource's events in resourceVersion order, so every event up to it is in.
    seen: AtomicU64,
    /// Whether some event carried a resourceVersion that is not an integer (see
    /// [`crate::fresh::compare_versions`]): then `seen` says nothing.
    uncomparable: AtomicBool,
}

/// A compact cache of one child kind, read by name: what [`reflect`] fills.
pub struct ChildCache<K> {
    records: Arc<Records>,
    kind: PhantomData<fn() -> K>,
}

impl<K> Clone for ChildCache<K> {
    fn clone(&self) -> Self {
        ChildCache { records: self.records.clone(), kind: PhantomData }
    }
}

impl<K> ChildCache<K> {
    /// An empty cache, and the writer that fills it from watch events.
    fn new() -> (Self, Writer<K>) {
        let (ready_tx, ready) = watch::channel(false);
        let records = Arc::new(Records {
            live: RwLock::default(),
            dictionary: OnceLock::new(),
            ready,
            seen: AtomicU64::new(0),
            uncomparable: AtomicBool::new(false),
        });
        let writer =
            Writer { records: records.clone(), relist: None, relist_seen: 0, ready: ready_tx, kind: PhantomData };
        (ChildCache { records, kind: PhantomData }, writer)
    }

    /// The record of `name` in `namespace`, as the cache holds it (compressed).
    fn record(&self, namespace: &str, name: &str) -> Option<Box<[u8]>> {
        let live = self.records.live.read().unwrap_or_else(PoisonError::into_inner);
        live.get(namespace)?.get(name).cloned()
    }

    /// Whether the cache has taken in every event of its kind up to `resource_version`
    /// (an object written at that version is in it, or was deleted since). False when
    /// it cannot tell: a version that is not an integer, in the question or in an event.
    pub fn has_seen(&self, resource_version: &str) -> bool {
        let comparable = !self.records.uncomparable.load(Ordering::Acquire);
        comparable && version_number(resource_version).is_some_and(|v| self.records.seen.load(Ordering::Acquire) >= v)
    }

    /// Whether the cache holds child `name` in `namespace` (nothing is expanded).
    pub fn has(&self, namespace: &str, name: &str) -> bool {
        let live = self.records.live.read().unwrap_or_else(PoisonError::into_inner);
        live.get(namespace).is_some_and(|names| names.contains_key(name))
    }

    /// Resolves once the cache has listed what exists (or its writer is gone, with
    /// nothing more to wait for).
    pub async fn ready(&self) {
        // An error means the writer was dropped: the controller is stopping.
        let _ = self.records.ready.clone().wait_for(|ready| *ready).await;
    }
}

impl<K: Resource<DynamicType = ()> + DeserializeOwned> ChildCache<K> {
    /// The cached child `name` in `namespace`, expanded.
    pub fn get(&self, namespace: &str, name: &str) -> Result<Option<K>> {
        // The lock is not held while the copy is expanded.
        let Some(record) = self.record(namespace, name) else { return Ok(None) };
        let unreadable =
            |reason: String| Error::Unreadable { kind: K::kind(&()).into_owned(), name: name.to_owned(), reason };
        let json = self.records.expand(&record).map_err(|error| unreadable(error.to_string()))?;
        serde_json::from_slice(&json).map(Some).map_err(|error| unreadable(error.to_string()))
    }

    /// The cached children `names` in `namespace` that the cache holds, expanded.
    pub fn get_all<'a>(&self, namespace: &str, names: impl IntoIterator<Item = &'a String>) -> Result<Vec<K>> {
        names.into_iter().filter_map(|name| self.get(namespace, name).transpose()).collect()
    }
}

/// Fills a [`ChildCache`] from a watch, as kube's reflector fills its store: an event
/// at a time, and a relist into a fresh map that replaces the old one when complete,
/// so that what was deleted while the watch was down goes away.
struct Writer<K> {
    records: Arc<Records>,
    /// The map a relist is filling (between `Init` and `InitDone`).
    relist: Option<Namespaces>,
    /// The highest resourceVersion of that relist: seen once the relist is readable.
    relist_seen: u64,
    ready: watch::Sender<bool>,
    kind: PhantomData<fn() -> K>,
}

impl<K: Resource + Serialize> Writer<K> {
    fn apply(&mut self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) | watcher::Event::Delete(object) => {
                let seen = self.records.version(object);
                self.records.seen.fetch_max(seen, Ordering::AcqRel);
            }
            watcher::Event::InitApply(object) => self.relist_seen = self.relist_seen.max(self.records.version(object)),
            watcher::Event::Init | watcher::Event::InitDone => {}
        }
        match event {
            watcher::Event::Apply(object) => self.records.insert(&mut self.live(), object),
            watcher::Event::Delete(object) => {
                let meta = object.meta();
                let mut live = self.live();
                let namespace = meta.namespace.as_deref().unwrap_or_default();
                if let Some(names) = live.get_mut(namespace) {
                    names.remove(meta.name.as_deref().unwrap_or_default());
                    if names.is_empty() {
                        live.remove(namespace);
                    }
                }
            }
            watcher::Event::Init => (self.relist, self.relist_seen) = (Some(Namespaces::new()), 0),
            watcher::Event::InitApply(object) => self.records.insert(self.relist.get_or_insert_default(), object),
            watcher::Event::InitDone => {
                let listed = self.relist.take().unwrap_or_default();
                *self.live() = listed;
                // Only now: until the relist replaced the map, its objects were not readable.
                self.records.seen.fetch_max(std::mem::take(&mut self.relist_seen), Ordering::AcqRel);
                self.ready.send_replace(true);
            }
        }
    }

    fn live(&self) -> std::sync::RwLockWriteGuard<'_, Namespaces> {
        self.records.live.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Records {
    /// `object`'s resourceVersion as a number to take into the highest seen; 0 (and the
    /// cache cannot tell any longer) when it is not an integer.
    fn version<K: Resource>(&self, object: &K) -> u64 {
        version_number(object.meta().resource_version.as_deref().unwrap_or_default()).unwrap_or_else(|| {
            self.uncomparable.store(true, Ordering::Release);
            0
        })
    }

    /// Records `object` in `map` under its namespace and name.
    fn insert<K: Resource + Serialize>(&self, map: &mut Namespaces, object: &K) {
        let meta = object.meta();
        let (Some(name), namespace) = (meta.name.as_deref(), meta.namespace.as_deref().unwrap_or_default()) else {
            return;
        };
        let record = self.compress(&to_json(object));
        match map.get_mut(namespace) {
            Some(names) => {
                names.insert(name.into(), record);
            }
            None => {
                map.insert(namespace.into(), HashMap::from([(name.into(), record)]));
            }
        }
    }

    /// `json`, compressed against the dictionary (which the first JSON becomes).
    fn compress(&self, json: &[u8]) -> Box<[u8]> {
        let dictionary = self.dictionary.get_or_init(|| json[..json.len().min(DICTIONARY_MAX)].into());
        lz4_flex::block::compress_prepend_size_with_dict(json, dictionary).into_boxed_slice()
    }

    /// The JSON of `record`.
    fn expand(&self, record: &[u8]) -> std::result::Result<Vec<u8>, lz4_flex::block::DecompressError> {
        let dictionary = self.dictionary.get().map_or(&[][..], |dictionary| dictionary);
        lz4_flex::block::decompress_size_prepended_with_dict(record, dictionary)
    }
}

/// A resourceVersion as the integer KEP-5504 makes it (see
/// [`crate::fresh::compare_versions`]); `None` when it is not one, or longer than 64 bits.
fn version_number(resource_version: &str) -> Option<u64> {
    crate::fresh::compare_versions(resource_version, "1")?;
    resource_version.parse().ok()
}

/// An object's JSON. Serialising a decoded API object cannot fail (string keys, no
/// serialiser that refuses); were it to, the empty text is refused by
/// [`ChildCache::get`] as [`Error::Unreadable`], a retryable error, not a default.
fn to_json<K: Serialize>(object: &K) -> Vec<u8> {
    serde_json::to_vec(object).unwrap_or_default()
}

/// A cache of objects of kind `K` read by name, as a reconcile reads it: a
/// [`ChildCache`], or a reflector's [`Store`] of the API type (a kind the controller
/// also scans with a filter, which records could only answer by expanding each one).
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
/// what the controller reads): the cache to read, and the stream of touched (trimmed)
/// objects to hand to `Controller::owns_stream` or `watches_stream` (which must be
/// polled for the cache to fill). `observe` sees each event the cache takes (an index
/// fed beside it). Of `managedFields` only the marker of our create is kept
/// ([`crate::apply::keep_create_marker`]).
pub fn reflect<K>(
    api: Api<K>,
    config: watcher::Config,
    trim: fn(&mut K),
    observe: impl Fn(&watcher::Event<K>) + Send + 'static,
) -> (ChildCache<K>, impl Stream<Item = Result<K, watcher::Error>> + Send + 'static)
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned + Send + Sync + 'static,
{
    let (cache, mut writer) = ChildCache::new();
    let stream = watcher(api, config)
        .default_backoff()
        .modify(move |object| trim_child(object, trim))
        .inspect_ok(move |event| {
            writer.apply(event);
            observe(event);
        })
        .touched_objects()
        .boxed();
    (cache, stream)
}

/// What every child cache keeps of a watched child: of `managedFields` only the marker
/// of our create ([`crate::apply::keep_create_marker`]), and of the rest what the kind's
/// `trim` leaves.
pub(crate) fn trim_child<K: Resource>(object: &mut K, trim: fn(&mut K)) {
    crate::apply::keep_create_marker(object.meta_mut());
    trim(object);
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::Deployment;
    use serde_json::json;

    use super::*;
    use crate::workload::pods::CachedPod;

    fn deployment(namespace: &str, name: &str) -> Deployment {
        serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": namespace, "uid": "d1", "resourceVersion": "42", "generation": 3,
                "labels": {"app.kubernetes.io/name": "webapp", "app.kubernetes.io/instance": name},
                "annotations": {"webapp.example.com/applied": "h1"},
                "ownerReferences": [{"apiVersion": "apps.example.com/v1", "kind": "WebApp", "name": name, "uid": "w1", "controller": true}]},
            "spec": {"replicas": 2, "selector": {"matchLabels": {"app.kubernetes.io/instance": name}},
                "template": {"metadata": {"labels": {"app.kubernetes.io/instance": name}},
                    "spec": {"containers": [{"name": "app", "image": "nginx:1"}]}}},
            "status": {"observedGeneration": 3, "readyReplicas": 2}
        }))
        .unwrap()
    }

    #[test]
    fn the_cache_tells_which_versions_it_has_taken_in() {
        let (cache, mut writer) = ChildCache::<k8s_openapi::api::core::v1::ConfigMap>::new();
        let object = |name: &str, version: &str| {
            let mut object = k8s_openapi::api::core::v1::ConfigMap::default();
            object.metadata.name = Some(name.into());
            object.metadata.namespace = Some("ns".into());
            object.metadata.resource_version = Some(version.into());
            object
        };
        assert!(!cache.has_seen("1"));
        writer.apply(&watcher::Event::Apply(object("a", "7")));
        writer.apply(&watcher::Event::Delete(object("b", "12")));
        assert!(cache.has_seen("12") && cache.has_seen("9"));
        assert!(!cache.has_seen("13"), "an event not taken in yet");
        assert!(!cache.has_seen("x"), "not a version");
        // A relist's objects are seen once the relist is readable, not before.
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitApply(object("a", "20")));
        let before = cache.get("ns", "a").unwrap().expect("the object of before the relist");
        assert!(!cache.has_seen("20") && before.metadata.resource_version.as_deref() == Some("7"));
        writer.apply(&watcher::Event::InitDone);
        assert!(cache.has_seen("20") && cache.has("ns", "a"));
        writer.apply(&watcher::Event::Apply(object("c", "abc")));
        assert!(!cache.has_seen("9"), "a version that is not an integer: the cache cannot tell");
    }

    #[test]
    fn a_record_expands_to_the_object_it_was_made_from_and_follows_applies_and_deletes() {
        let (cache, mut writer) = ChildCache::<Deployment>::new();
        let (web, other) = (deployment("ns", "web"), deployment("other", "web"));
        writer.apply(&watcher::Event::Apply(web.clone()));
        writer.apply(&watcher::Event::Apply(other.clone()));
        assert_eq!(cache.get("ns", "web").unwrap(), Some(web.clone()));
        assert_eq!(cache.get("other", "web").unwrap(), Some(other));
        assert!(cache.has("ns", "web") && !cache.has("ns", "api") && !cache.has("third", "web"));
        assert_eq!(cache.get("ns", "api").unwrap(), None);

        let mut scaled = web.clone();
        scaled.spec.as_mut().unwrap().replicas = Some(5);
        writer.apply(&watcher::Event::Apply(scaled.clone()));
        assert_eq!(cache.get("ns", "web").unwrap(), Some(scaled));

        writer.apply(&watcher::Event::Delete(web));
        assert!(!cache.has("ns", "web") && cache.has("other", "web"));
        assert!(!cache.records.live.read().unwrap().contains_key("ns"), "an emptied namespace is dropped");
    }

    #[test]
    fn records_of_one_template_keep_little_more_than_what_differs() {
        let (cache, mut writer) = ChildCache::<Deployment>::new();
        writer.apply(&watcher::Event::Apply(deployment("ns", "web-0")));
        let mut sizes = Vec::new();
        for i in 1..50 {
            let mut child = deployment("ns", &format!("web-{i}"));
            child.metadata.uid = Some(format!("5f0c6a4e-1b2d-4c3e-9f8a-{i:012}"));
            child.metadata.resource_version = Some(format!("{}", 100_000 + i * 7));
            writer.apply(&watcher::Event::Apply(child.clone()));
            assert_eq!(cache.get("ns", &format!("web-{i}")).unwrap(), Some(child.clone()));
            sizes.push((
                cache.record("ns", &format!("web-{i}")).unwrap().len(),
                serde_json::to_vec(&child).unwrap().len(),
            ));
        }
        for (record, json) in sizes {
            assert!(record * 3 < json, "{record} bytes kept for {json} of JSON");
        }
    }

    #[test]
    fn a_record_is_the_json_alone_labels_included() {
        let (cache, mut writer) = ChildCache::<CachedPod>::new();
        let pod: CachedPod = serde_json::from_value(json!({
            "metadata": {"name": "web-1", "namespace": "ns", "uid": "p1",
                "labels": {"app.kubernetes.io/instance": "web", "pod-template-hash": "abc"}},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }))
        .unwrap();
        writer.apply(&watcher::Event::Apply(pod.clone()));
        assert_eq!(cache.get_all("ns", &["web-1".to_owned(), "gone".to_owned()]).unwrap(), [pod]);
        let json = cache.records.expand(&cache.record("ns", "web-1").unwrap()).unwrap();
        assert!(String::from_utf8(json).unwrap().contains("pod-template-hash"));
    }

    #[tokio::test]
    async fn a_relist_replaces_the_records_once_complete_and_the_first_makes_the_cache_ready() {
        let (cache, mut writer) = ChildCache::<Deployment>::new();
        let mut ready = std::pin::pin!(cache.ready());
        assert!(futures::poll!(ready.as_mut()).is_pending(), "nothing listed yet");
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitApply(deployment("ns", "kept")));
        assert!(!cache.has("ns", "kept"), "a list is taken in whole, when complete");
        writer.apply(&watcher::Event::InitDone);
        assert!(futures::poll!(ready.as_mut()).is_ready());
        assert!(cache.has("ns", "kept"));

        writer.apply(&watcher::Event::Apply(deployment("ns", "deleted-while-down")));
        writer.apply(&watcher::Event::Init);
        writer.apply(&watcher::Event::InitApply(deployment("ns", "kept")));
        assert!(cache.has("ns", "deleted-while-down"), "the old records serve until the relist completes");
        writer.apply(&watcher::Event::InitDone);
        assert!(cache.has("ns", "kept") && !cache.has("ns", "deleted-while-down"));
    }

    #[tokio::test]
    async fn a_dropped_writer_releases_whoever_waits_for_the_first_list() {
        let (cache, writer) = ChildCache::<Deployment>::new();
        let mut ready = std::pin::pin!(cache.ready());
        assert!(futures::poll!(ready.as_mut()).is_pending());
        drop(writer);
        assert!(futures::poll!(ready.as_mut()).is_ready());
    }

    #[test]
    fn a_record_that_cannot_be_read_back_is_an_error_not_a_default() {
        let (cache, mut writer) = ChildCache::<Deployment>::new();
        writer.apply(&watcher::Event::Apply(deployment("ns", "web")));
        let cut = cache.record("ns", "web").unwrap()[..8].into();
        cache.records.live.write().unwrap().get_mut("ns").unwrap().insert("web".into(), cut);
        assert!(matches!(cache.get("ns", "web"), Err(Error::Unreadable { .. })));
        let not_json = cache.records.compress(b"{");
        cache.records.live.write().unwrap().get_mut("ns").unwrap().insert("web".into(), not_json);
        assert!(matches!(cache.get("ns", "web"), Err(Error::Unreadable { .. })));
    }
}
