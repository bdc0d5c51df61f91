//! The freshest view of an object the operator wrote: the reflector's copy, or the one
//! the operator's own last write returned while the cache has not caught up with it.
//!
//! A write's watch event reaches the cache some time after the write returns, and the
//! reconciles that run in between (triggered by the children's events) would start from
//! a view older than what the operator itself wrote. Such a reconcile repeats writes
//! that were already made, and a status write computed from it is refused (409, its
//! `resourceVersion` precondition is stale), which costs a write, a reconcile and a
//! backoff delay each. [`Written`] remembers, per object uid, what the last write
//! returned, until the cache holds that version or a newer one.
//!
//! Which copy is newer is decided by `resourceVersion`: since Kubernetes 1.35 (KEP-5504,
//! stable) the resourceVersions of objects of one resource are integers that clients
//! may compare. A resourceVersion that is not such an integer (another storage, an
//! older API server) is never taken as newer: the cache's copy is used, as without this
//! memory.
//!
//! A child the cache has not taken in at all is looked up by name
//! ([`Written::not_yet_cached`]): a reconcile that follows our create of it closely
//! (one of the child's own events triggered it) would otherwise create it again, and
//! pay a 409 and a GET to learn that it exists (14 times per 1000 WebApps created).

use std::any::Any;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use kube::{Resource, ResourceExt};

/// How long a remembered write is kept when no reconcile of its object comes to find
/// that the cache caught up (the object was deleted meanwhile): far longer than any
/// watch lags, and short enough that deleted objects do not pile up.
const KEEP: Duration = Duration::from_secs(60);

/// Compares two resourceVersions as KEP-5504 defines them: positive integers without
/// leading zeros, of any length. `None` when either is not well formed.
pub fn compare_versions(a: &str, b: &str) -> Option<Ordering> {
    let well_formed = |rv: &str| !rv.is_empty() && !rv.starts_with('0') && rv.bytes().all(|b| b.is_ascii_digit());
    (well_formed(a) && well_formed(b)).then(|| a.len().cmp(&b.len()).then_with(|| a.cmp(b)))
}

/// Whether `written` (what a write of ours returned) is a newer version of the object
/// `cached` than `cached` itself: the same object (uid) at a greater resourceVersion.
pub fn is_newer<K: Resource>(written: &K, cached: &K) -> bool {
    let (written, cached) = (written.meta(), cached.meta());
    let same_object = written.uid.is_some() && written.uid == cached.uid;
    let versions = written.resource_version.as_deref().zip(cached.resource_version.as_deref());
    same_object && versions.and_then(|(w, c)| compare_versions(w, c)) == Some(Ordering::Greater)
}

struct Entry {
    object: Arc<dyn Any + Send + Sync>,
    /// `kind/namespace/name`, the key of [`Remembered::by_name`].
    name: String,
    at: Instant,
}

#[derive(Default)]
struct Remembered {
    by_uid: HashMap<String, Entry>,
    /// The uid of the last write to each `kind/namespace/name`.
    by_name: HashMap<String, String>,
}

impl Remembered {
    fn remove(&mut self, uid: &str) {
        if let Some(entry) = self.by_uid.remove(uid)
            && self.by_name.get(&entry.name).is_some_and(|named| named == uid)
        {
            self.by_name.remove(&entry.name);
        }
    }
}

/// What a controller's last writes returned, per object uid (objects of every kind it
/// writes: uids are unique across kinds), until its caches have seen them.
#[derive(Default)]
pub struct Written {
    remembered: Mutex<Remembered>,
}

/// The key of an object by kind and name.
fn name_key<K: Resource<DynamicType = ()>>(namespace: &str, name: &str) -> String {
    format!("{}/{namespace}/{name}", K::kind(&()))
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Written {
    /// Remembers `object` as the API server returned it from a write of ours, without
    /// its `managedFields` but the marker of a create of ours: the caches drop them
    /// too ([`crate::apply::keep_create_marker`]), and they are the largest part of a
    /// written object (during a convergence, one remembered write per object).
    pub fn record<K: Resource<DynamicType = ()> + Send + Sync + 'static>(&self, mut object: K) {
        let Some(uid) = object.uid() else { return };
        crate::apply::keep_create_marker(object.meta_mut());
        let name = name_key::<K>(object.meta().namespace.as_deref().unwrap_or_default(), &object.name_any());
        let now = Instant::now();
        let mut map = lock(&self.remembered);
        // Objects deleted before a reconcile found the cache caught up.
        let expired: Vec<String> = map
            .by_uid
            .iter()
            .filter(|(_, entry)| now.saturating_duration_since(entry.at) > KEEP)
            .map(|(uid, _)| uid.clone())
            .collect();
        for uid in expired {
            map.remove(&uid);
        }
        map.by_name.insert(name.clone(), uid.clone());
        map.by_uid.insert(uid, Entry { object: Arc::new(object), name, at: now });
    }

    /// The freshest view of `cached`: what our last write of it returned if that is
    /// newer, else `cached` (and what was remembered is forgotten: the cache has caught
    /// up, or the object was replaced).
    pub fn freshest<K: Resource + Send + Sync + 'static>(&self, cached: Arc<K>) -> Arc<K> {
        let Some(uid) = cached.uid() else { return cached };
        let mut map = lock(&self.remembered);
        let Some(entry) = map.by_uid.get(&uid) else { return cached };
        match entry.object.clone().downcast::<K>() {
            Ok(written) if is_newer(written.as_ref(), cached.as_ref()) => written,
            _ => {
                map.remove(&uid);
                cached
            }
        }
    }

    /// What our last write of the `K` named `name` in `namespace` returned, when the
    /// cache holds no such object only because it has not taken in that write yet:
    /// `cache_has_seen` tells whether the cache has taken in every event up to a
    /// resourceVersion ([`crate::compact::ChildCache::has_seen`]). Once it has, an
    /// absent object is gone (deleted since), and what was remembered is forgotten.
    pub fn not_yet_cached<K: Resource<DynamicType = ()> + Send + Sync + 'static>(
        &self,
        namespace: &str,
        name: &str,
        cache_has_seen: impl FnOnce(&str) -> bool,
    ) -> Option<Arc<K>> {
        let mut map = lock(&self.remembered);
        let uid = map.by_name.get(&name_key::<K>(namespace, name))?.clone();
        let written = map.by_uid.get(&uid).and_then(|entry| entry.object.clone().downcast::<K>().ok());
        match written {
            Some(written) if !cache_has_seen(written.resource_version().as_deref().unwrap_or_default()) => {
                Some(written)
            }
            _ => {
                map.remove(&uid);
                None
            }
        }
    }

    /// Forgets what was written to `uid` (a write based on it was refused: someone
    /// else wrote since).
    pub fn forget(&self, uid: &str) {
        lock(&self.remembered).remove(uid);
    }

    /// Objects remembered now.
    pub fn len(&self) -> usize {
        lock(&self.remembered).by_uid.len()
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::core::v1::ConfigMap;

    use super::*;

    fn object(uid: &str, rv: &str, value: &str) -> ConfigMap {
        let mut object = ConfigMap::default();
        object.metadata.uid = Some(uid.into());
        object.metadata.resource_version = Some(rv.into());
        object.data = Some([("v".to_owned(), value.to_owned())].into());
        object
    }

    #[test]
    fn resource_versions_compare_as_integers_of_any_length() {
        assert_eq!(compare_versions("9", "10"), Some(Ordering::Less));
        assert_eq!(compare_versions("123", "122"), Some(Ordering::Greater));
        assert_eq!(compare_versions("42", "42"), Some(Ordering::Equal));
        assert_eq!(compare_versions("18446744073709551616", "9"), Some(Ordering::Greater));
        for bad in ["", "0", "012", "12a", "-1"] {
            assert_eq!(compare_versions(bad, "5"), None, "{bad:?}");
            assert_eq!(compare_versions("5", bad), None, "{bad:?}");
        }
    }

    #[test]
    fn our_write_is_used_until_the_cache_has_caught_up() {
        let written = Written::default();
        written.record(object("u", "20", "ours"));
        let lagging = Arc::new(object("u", "19", "old"));
        assert_eq!(written.freshest(lagging.clone()).data, Some([("v".to_owned(), "ours".to_owned())].into()));
        assert_eq!(written.len(), 1, "kept while the cache lags");

        // The cache caught up (or moved on): its copy, and the memory is dropped.
        let caught_up = Arc::new(object("u", "21", "newer"));
        assert!(Arc::ptr_eq(&written.freshest(caught_up.clone()), &caught_up));
        assert!(written.is_empty());
        assert!(Arc::ptr_eq(&written.freshest(lagging.clone()), &lagging), "forgotten");
    }

    #[test]
    fn what_is_remembered_has_no_managed_fields() {
        let written = Written::default();
        let mut ours = object("u", "20", "ours");
        ours.metadata.managed_fields = Some(vec![Default::default()]);
        written.record(ours);
        let fresh = written.freshest(Arc::new(object("u", "19", "old")));
        assert_eq!(
            (fresh.metadata.managed_fields.as_ref(), fresh.data.as_ref().map(|d| &d["v"])),
            (None, Some(&"ours".to_owned()))
        );
    }

    #[test]
    fn another_object_or_an_unreadable_version_is_never_replaced() {
        let written = Written::default();
        written.record(object("u", "20", "ours"));
        let replaced = Arc::new(object("other-uid", "5", "theirs"));
        assert!(Arc::ptr_eq(&written.freshest(replaced.clone()), &replaced));

        written.record(object("u", "x20", "ours"));
        let cached = Arc::new(object("u", "19", "old"));
        assert!(Arc::ptr_eq(&written.freshest(cached.clone()), &cached), "not comparable: the cache decides");

        // A remembered object of another kind under the same uid is ignored.
        written.record(object("u", "20", "ours"));
        let pod = Arc::new({
            let mut pod = k8s_openapi::api::core::v1::Pod::default();
            pod.metadata.uid = Some("u".into());
            pod.metadata.resource_version = Some("1".into());
            pod
        });
        assert!(Arc::ptr_eq(&written.freshest(pod.clone()), &pod));
    }

    #[test]
    fn a_refusal_forgets_the_write() {
        let written = Written::default();
        written.record(object("u", "20", "ours"));
        written.forget("u");
        assert!(written.is_empty());
    }

    #[test]
    fn a_child_not_cached_yet_is_what_our_write_returned_until_the_cache_has_seen_that_version() {
        let written = Written::default();
        let mut ours = object("u", "20", "ours");
        ours.metadata.name = Some("web".into());
        ours.metadata.namespace = Some("ns".into());
        written.record(ours);
        let lagging = |version: &str| compare_versions(version, "19") != Some(Ordering::Greater);
        let found = written.not_yet_cached::<ConfigMap>("ns", "web", lagging).expect("our create, not cached yet");
        assert_eq!(found.data, Some([("v".to_owned(), "ours".to_owned())].into()));
        // Another name, another kind: nothing.
        assert!(written.not_yet_cached::<ConfigMap>("ns", "other", lagging).is_none());
        assert!(written.not_yet_cached::<k8s_openapi::api::core::v1::Secret>("ns", "web", |_| false).is_none());
        // The cache has taken in version 20 or later and holds no such child: it was
        // deleted since, and the memory of it goes.
        assert!(written.not_yet_cached::<ConfigMap>("ns", "web", |_| true).is_none());
        assert!(written.not_yet_cached::<ConfigMap>("ns", "web", lagging).is_none(), "forgotten");
        assert!(written.is_empty());
    }
}
