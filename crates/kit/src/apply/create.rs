//! The first write of a child no cache has seen: a create (POST) rather than a GET and
//! an apply. When nothing stands under the name, which is nearly always, it is one
//! request instead of two; when something does, the API server answers 409 and
//! [`super::apply`] reads it and decides as before (ours, a leftover, adoptable,
//! foreign), so nothing in the way is ever written.
//!
//! The price is field ownership. A create records the fields it set under an `Update`
//! entry of our field manager, apart from the `Apply` entry our later applies write,
//! and an apply removes only fields its own entry held: a field the intent later drops
//! (an env var removed from the spec) would stay in the child for good, and an element
//! of a keyed list the intent replaces (a container port whose number changed) would
//! stay beside its successor, which the API server refuses when both carry one name.
//! So before the first apply to a child that still carries that entry, the entry is
//! folded into our `Apply` entry ([`fold_create_entry`]), as client-go's `csaupgrade`
//! does when kubectl moves an object from client-side to server-side apply; the apply
//! that follows then removes what the intent dropped. It happens once in a child's
//! life, on its first change, and costs a GET and a patch then; a child that never
//! changes never pays for it. The caches keep a marker of the entry
//! ([`keep_create_marker`]) so that the first change knows, and a fold that fails
//! leaves the marker, and the apply, for the next attempt.
//!
//! The fold also hands us the fields the API server defaulted at the create (a create's
//! entry lists them: `dnsPolicy`, `terminationMessagePath`, a Deployment's `replicas`
//! when the intent leaves it out). The apply drops them and the API server defaults
//! them again to the same values, so no rollout follows; a field another manager has
//! changed since was taken from our entry by that change and is left alone.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{FieldsV1, ManagedFieldsEntry, ObjectMeta};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::MANAGER;
use crate::error::{Error, Result};

/// What a create found.
pub(super) enum Created<K> {
    /// Nothing stood under the name: the child, as stored.
    Made(K),
    /// Something already does (409): read it and decide.
    InTheWay,
}

/// Creates `desired` with our field manager, unless something already has its name.
pub(super) async fn create<K>(api: &Api<K>, desired: &K) -> Result<Created<K>>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let params = PostParams { field_manager: Some(MANAGER.into()), ..PostParams::default() };
    match api.create(&params, desired).await {
        Ok(made) => Ok(Created::Made(made)),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(Created::InTheWay),
        Err(e) => Err(Error::kube(format!("create {} {}", K::kind(&()), desired.name_any()), e)),
    }
}

/// Whether `meta` still carries the entry a create of ours left: our manager, operation
/// `Update`, on the object itself (not a subresource).
pub(super) fn has_create_entry(meta: &ObjectMeta) -> bool {
    meta.managed_fields.iter().flatten().any(is_create_entry)
}

fn is_create_entry(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(MANAGER)
        && entry.operation.as_deref() == Some("Update")
        && entry.subresource.as_deref().is_none_or(str::is_empty)
}

fn is_apply_entry(entry: &ManagedFieldsEntry) -> bool {
    entry.manager.as_deref() == Some(MANAGER)
        && entry.operation.as_deref() == Some("Apply")
        && entry.subresource.as_deref().is_none_or(str::is_empty)
}

/// The managed fields of an object with our create entries folded into our apply entry
/// (which becomes one, from the first create entry, if there was none); `None` when
/// there is nothing to fold.
pub(super) fn folded(entries: &[ManagedFieldsEntry]) -> Option<Vec<ManagedFieldsEntry>> {
    let (created, mut kept): (Vec<_>, Vec<_>) = entries.iter().cloned().partition(is_create_entry);
    let mut created = created.into_iter();
    let first = created.next()?;
    let index = match kept.iter().position(is_apply_entry) {
        Some(index) => index,
        None => {
            kept.push(ManagedFieldsEntry { operation: Some("Apply".into()), ..first.clone() });
            kept.len() - 1
        }
    };
    let apply = &mut kept[index];
    let mut fields = apply.fields_v1.take().map_or(Value::Object(Default::default()), |f| f.0);
    for entry in std::iter::once(first).chain(created) {
        if let Some(FieldsV1(more)) = entry.fields_v1 {
            union(&mut fields, more);
        }
    }
    apply.fields_v1 = Some(FieldsV1(fields));
    Some(kept)
}

/// Adds every field of the field set `more` to `into` (both `fieldsV1` trees).
fn union(into: &mut Value, more: Value) {
    if let (Value::Object(into), Value::Object(more)) = (into, more) {
        for (key, value) in more {
            match into.get_mut(&key) {
                Some(slot) => union(slot, value),
                None => {
                    into.insert(key, value);
                }
            }
        }
    }
}

/// Drops the managed fields of a cached or remembered copy of an object (they are the
/// largest part of it) but a marker of our create entry, without its fields: what
/// [`super::apply`] needs to know that the fold is still due.
pub fn keep_create_marker(meta: &mut ObjectMeta) {
    let marker =
        meta.managed_fields.iter().flatten().find(|entry| is_create_entry(entry)).map(|_| ManagedFieldsEntry {
            manager: Some(MANAGER.into()),
            operation: Some("Update".into()),
            ..ManagedFieldsEntry::default()
        });
    meta.managed_fields = marker.map(|marker| vec![marker]);
}

/// Folds our create entry of `object` (an owned child about to be applied) into our
/// apply entry ([`rewrite_managed_fields`]). A copy that holds only the marker is read
/// first.
pub(super) async fn fold_create_entry<K>(api: &Api<K>, object: &K) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let created = object.meta().managed_fields.iter().flatten().filter(|e| is_create_entry(e));
    let complete = created.into_iter().all(|e| e.fields_v1.is_some());
    let first = complete.then(|| object.clone());
    rewrite_managed_fields(api, &object.name_any(), first, folded, "take over the fields created on").await
}

/// Replaces the managed fields of child `name` by what `rewrite` makes of them (nothing
/// is sent when it says `None`): a merge patch, which replaces the list whole, holding
/// on to the resourceVersion it was computed from. Starts from `first` when given,
/// else from a read; when the child changed meanwhile (its controller writes its status
/// often), it is read again and the rewrite recomputed. `what` names the change in an
/// error (`<what> Deployment web`).
pub(crate) async fn rewrite_managed_fields<K>(
    api: &Api<K>,
    name: &str,
    first: Option<K>,
    rewrite: impl Fn(&[ManagedFieldsEntry]) -> Option<Vec<ManagedFieldsEntry>>,
    what: &str,
) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let kind = K::kind(&()).into_owned();
    let get = || async { api.get(name).await.map_err(|e| Error::kube(format!("get {kind} {name}"), e)) };
    let mut current = match first {
        Some(object) => object,
        None => get().await?,
    };
    for _ in 0..5 {
        let entries = current.meta().managed_fields.clone().unwrap_or_default();
        let Some(entries) = rewrite(&entries) else { return Ok(()) };
        let patch = json!({"metadata": {"resourceVersion": current.resource_version(), "managedFields": entries}});
        let params = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
        match api.patch(name, &params, &Patch::Merge(&patch)).await {
            Ok(_) => return Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => current = get().await?,
            Err(e) => return Err(Error::kube(format!("{what} {kind} {name}"), e)),
        }
    }
    Err(Error::Stale { kind, name: name.to_owned() })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(manager: &str, operation: &str, fields: Value) -> ManagedFieldsEntry {
        ManagedFieldsEntry {
            manager: Some(manager.into()),
            operation: Some(operation.into()),
            api_version: Some("apps/v1".into()),
            fields_type: Some("FieldsV1".into()),
            fields_v1: Some(FieldsV1(fields)),
            ..ManagedFieldsEntry::default()
        }
    }

    #[test]
    fn the_create_entry_is_folded_into_the_apply_entry_and_others_are_kept() {
        let created = entry(MANAGER, "Update", json!({"f:spec": {"f:env": {"k:{\"name\":\"DROP\"}": {}}, "f:a": {}}}));
        let applied = entry(MANAGER, "Apply", json!({"f:spec": {"f:a": {}, "f:b": {}}}));
        let theirs = entry("kube-controller-manager", "Update", json!({"f:status": {}}));
        let status = ManagedFieldsEntry { subresource: Some("status".into()), ..entry(MANAGER, "Update", json!({})) };
        let out = folded(&[theirs.clone(), created, applied, status.clone()]).expect("something to fold");
        assert_eq!(out.len(), 3, "{out:#?}");
        assert_eq!(out[0], theirs);
        assert_eq!(out[2], status, "a status entry of ours is not a create's");
        assert_eq!(out[1].operation.as_deref(), Some("Apply"));
        let fields = &out[1].fields_v1.as_ref().unwrap().0;
        assert_eq!(fields, &json!({"f:spec": {"f:a": {}, "f:b": {}, "f:env": {"k:{\"name\":\"DROP\"}": {}}}}));
    }

    #[test]
    fn without_an_apply_entry_the_create_entry_becomes_one() {
        let out = folded(&[entry(MANAGER, "Update", json!({"f:a": {}}))]).expect("something to fold");
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].operation.as_deref(), Some("Apply"));
        assert_eq!(out[0].fields_v1.as_ref().unwrap().0, json!({"f:a": {}}));
    }

    #[test]
    fn a_cached_copy_keeps_only_the_marker_of_a_create_entry() {
        let mut meta = ObjectMeta {
            managed_fields: Some(vec![
                entry("kube-controller-manager", "Update", json!({"f:status": {}})),
                entry(MANAGER, "Update", json!({"f:spec": {}})),
                entry(MANAGER, "Apply", json!({"f:spec": {}})),
            ]),
            ..ObjectMeta::default()
        };
        keep_create_marker(&mut meta);
        let kept = meta.managed_fields.as_deref().unwrap_or_default();
        assert_eq!(kept.len(), 1, "{kept:#?}");
        assert!(has_create_entry(&meta) && kept[0].fields_v1.is_none());

        meta.managed_fields = Some(vec![entry(MANAGER, "Apply", json!({}))]);
        keep_create_marker(&mut meta);
        assert_eq!(meta.managed_fields, None, "nothing kept without a create entry");
    }

    #[test]
    fn nothing_to_fold_without_a_create_entry() {
        assert!(folded(&[entry(MANAGER, "Apply", json!({})), entry("kubectl", "Update", json!({}))]).is_none());
        assert!(!has_create_entry(&ObjectMeta::default()));
    }
}
