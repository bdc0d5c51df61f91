//! The cached objects of each instance, by the instance label: a reconcile asks for the
//! pods of one object and gets them without scanning every cached pod (which made a
//! reconcile O(N) and convergence of N objects O(N²)).
//!
//! Fed by the same watch events as the reflector store it indexes, so the two agree
//! once an event has passed; names the index holds that the store does not (yet) have
//! are skipped by the reader.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use kube::Resource;
use kube::runtime::watcher;

use super::labels::INSTANCE;

/// `(namespace, name)` of an object.
type Key = (String, String);

#[derive(Debug, Default)]
struct Maps {
    /// Names of the objects of each `(namespace, instance)`.
    by_instance: HashMap<Key, BTreeSet<String>>,
    /// The instance each object was indexed under, to move or drop it.
    instance_of: HashMap<Key, String>,
}

impl Maps {
    fn remove(&mut self, key: &Key) {
        if let Some(instance) = self.instance_of.remove(key) {
            let slot = (key.0.clone(), instance);
            if let Some(names) = self.by_instance.get_mut(&slot) {
                names.remove(&key.1);
                if names.is_empty() {
                    self.by_instance.remove(&slot);
                }
            }
        }
    }

    fn insert(&mut self, key: Key, instance: Option<String>) {
        self.remove(&key);
        if let Some(instance) = instance {
            self.by_instance.entry((key.0.clone(), instance.clone())).or_default().insert(key.1.clone());
            self.instance_of.insert(key, instance);
        }
    }
}

/// Objects by `(namespace, instance label)`.
#[derive(Debug, Default)]
pub struct InstanceIndex {
    live: Mutex<Maps>,
    /// The index being rebuilt by a relist (between `Init` and `InitDone`).
    relist: Mutex<Option<Maps>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn key_and_instance<K: Resource>(object: &K) -> Key {
    let meta = object.meta();
    (meta.namespace.clone().unwrap_or_default(), meta.name.clone().unwrap_or_default())
}

fn instance<K: Resource>(object: &K) -> Option<String> {
    object.meta().labels.as_ref()?.get(INSTANCE).cloned()
}

impl InstanceIndex {
    /// Takes one watch event into account.
    pub fn observe<K: Resource>(&self, event: &watcher::Event<K>) {
        match event {
            watcher::Event::Apply(object) => lock(&self.live).insert(key_and_instance(object), instance(object)),
            watcher::Event::Delete(object) => lock(&self.live).remove(&key_and_instance(object)),
            watcher::Event::Init => *lock(&self.relist) = Some(Maps::default()),
            watcher::Event::InitApply(object) => {
                if let Some(maps) = lock(&self.relist).as_mut() {
                    maps.insert(key_and_instance(object), instance(object));
                }
            }
            watcher::Event::InitDone => {
                if let Some(maps) = lock(&self.relist).take() {
                    *lock(&self.live) = maps;
                }
            }
        }
    }

    /// Names of the objects of `instance` in `namespace`, sorted.
    pub fn names(&self, namespace: &str, instance: &str) -> Vec<String> {
        let key = (namespace.to_owned(), instance.to_owned());
        lock(&self.live).by_instance.get(&key).map(|names| names.iter().cloned().collect()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::Pod;
    use serde_json::json;

    use super::*;

    fn pod(name: &str, instance: Option<&str>) -> Pod {
        let labels = instance.map(|i| json!({INSTANCE: i})).unwrap_or(json!({}));
        serde_json::from_value(json!({"metadata": {"name": name, "namespace": "ns", "labels": labels}})).unwrap()
    }

    #[test]
    fn objects_are_found_by_instance_and_follow_relabels_and_deletes() {
        let index = InstanceIndex::default();
        index.observe(&watcher::Event::Apply(pod("a-1", Some("a"))));
        index.observe(&watcher::Event::Apply(pod("a-2", Some("a"))));
        index.observe(&watcher::Event::Apply(pod("b-1", Some("b"))));
        assert_eq!(index.names("ns", "a"), ["a-1", "a-2"]);
        assert!(index.names("other", "a").is_empty());
        index.observe(&watcher::Event::Apply(pod("a-2", Some("b"))));
        assert_eq!(index.names("ns", "a"), ["a-1"]);
        assert_eq!(index.names("ns", "b"), ["a-2", "b-1"]);
        index.observe(&watcher::Event::Apply(pod("a-1", None)));
        index.observe(&watcher::Event::Delete(pod("b-1", Some("b"))));
        assert!(index.names("ns", "a").is_empty());
        assert_eq!(index.names("ns", "b"), ["a-2"]);
    }

    #[test]
    fn a_relist_replaces_the_index_once_complete() {
        let index = InstanceIndex::default();
        index.observe(&watcher::Event::Apply(pod("gone", Some("a"))));
        index.observe(&watcher::Event::<Pod>::Init);
        index.observe(&watcher::Event::InitApply(pod("kept", Some("a"))));
        assert_eq!(index.names("ns", "a"), ["gone"], "the old view serves until the relist is complete");
        index.observe(&watcher::Event::<Pod>::InitDone);
        assert_eq!(index.names("ns", "a"), ["kept"]);
    }
}
