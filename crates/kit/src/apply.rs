//! Owned children through server-side apply.
//!
//! Three promises: an object of the same name that we do not control is never written
//! ([`Error::NotOwned`]), unless it is a leftover of a deleted owner of our kind and
//! name, which is deleted as the garbage collector would ([`Error::Leftover`]); a child that already matches what we want is never written
//! (zero writes per no-op reconcile); everything else is one server-side apply with the
//! operator's field manager, which also undoes hand-made drift on the fields we own.
//!
//! Writes to an existing child carry the uid of the object whose ownership was checked,
//! so an object deleted and re-created under the same name in between (by someone
//! else) is neither overwritten nor deleted: the write is refused and the next
//! reconcile looks again ([`Error::Stale`]).
//!
//! "Already matches" is two checks. The annotation [`APPLIED_HASH`] holds a hash of the
//! last applied intent, which catches fields we stopped setting (an env var removed from
//! the spec must be removed from the child). And every field we set must still hold
//! our value in the live object, which catches drift made by hand. Server defaults add
//! fields; that is fine, we only compare what we set. So may other field managers: an
//! env var added by `kubectl set env`, a sidecar container or a volume added by a
//! webhook are theirs, not drift. Lists whose elements are merged by key (containers,
//! env, ports, volumes: [`KEYED_LISTS`]) are compared element by element on that key,
//! and elements we did not set are ignored.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use kube::api::{DeleteParams, Patch, PatchParams, Preconditions, PropagationPolicy};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::MANAGER;
use crate::adopt::{self, Ownership};
use create::Created;
pub use create::keep_create_marker;
pub(crate) use create::rewrite_managed_fields;

mod create;
use crate::error::{Error, Result};

/// Annotation holding the hash of the last applied intent of a child.
pub const APPLIED_HASH: &str = "apps.example.com/applied-hash";

/// What [`apply`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Applied {
    /// The child already matched; nothing was sent.
    Unchanged,
    /// The child did not exist and was created.
    Created,
    /// The child existed and was changed.
    Updated,
}

/// How far a write may go with a child that already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Write {
    /// Bring it to the intent: create it, or apply the difference ([`apply`]).
    Converge,
    /// Only ever create it ([`create_only`]): a child that is replaced rather than
    /// changed (a bare Pod, whose image a write would change in place, restarting its
    /// container outside any rollout) must never be written once it exists.
    CreateOnly,
}

/// What [`delete`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Deletion {
    /// The child is gone (or was never ours to delete).
    Gone,
    /// This call asked the API server to delete it; look again later.
    Requested,
    /// Deletion was already under way; look again later.
    InProgress,
}

/// The controller owner reference pointing at `owner`.
pub fn owner_reference<K: Resource<DynamicType = ()>>(owner: &K) -> Result<OwnerReference> {
    owner.controller_owner_ref(&()).ok_or_else(|| Error::InvalidSpec("owner has no name or uid yet".into()))
}

/// Whether `meta` names `owner_uid` as its controller.
pub fn is_controlled_by(meta: &ObjectMeta, owner_uid: &str) -> bool {
    meta.owner_references.iter().flatten().any(|r| r.controller == Some(true) && r.uid == owner_uid)
}

/// The controller owner reference a desired child carries.
pub fn controller_reference<K: Resource<DynamicType = ()>>(desired: &K) -> Result<OwnerReference> {
    desired.owner_references().iter().find(|r| r.controller == Some(true)).cloned().ok_or_else(|| {
        Error::InvalidSpec(format!("{} {} has no controller owner reference", K::kind(&()), desired.name_any()))
    })
}

/// Applies `desired` (which must carry its name, namespace and controller owner
/// reference) unless the child already matches it. `current` is the child as a
/// reflector store has it (or as our own last write returned it, when the store lags
/// behind that): when it matches, nothing is sent at all; when it is ours and differs,
/// the apply goes out at once, holding on to its uid; with no copy at all, a create
/// goes out (`create`: one request, and a 409 when something is in the way); when
/// something is in the way, or the copy is one we do not control, the API server's
/// copy decides (one GET), and only a real difference is applied. Returns what was
/// done and the child as it now is, for status (never an older cached copy).
pub async fn apply<K>(api: &Api<K>, current: Option<&K>, desired: K) -> Result<(Applied, K)>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    write(api, current, desired, Write::Converge).await
}

/// Creates `desired` (which must carry its name, namespace and controller owner
/// reference), and never writes a child that already exists. When something stands
/// under the name (one request told us: a 409), the API server's copy decides: one of
/// ours that already matches is [`Applied::Unchanged`] (our own create, which the
/// cache has not caught up with); one of ours that differs, or is going, is
/// [`Error::Stale`], so the next reconcile plans again from a fresher view instead of
/// writing the new intent onto it; a leftover is deleted and one we do not control is
/// [`Error::NotOwned`], as with [`apply`].
pub async fn create_only<K>(api: &Api<K>, desired: K) -> Result<(Applied, K)>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    write(api, None, desired, Write::CreateOnly).await
}

/// [`apply`] or [`create_only`], as `mode` says.
pub async fn write<K>(api: &Api<K>, current: Option<&K>, mut desired: K, mode: Write) -> Result<(Applied, K)>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let name = desired.name_any();
    let kind = K::kind(&()).into_owned();
    let owner = controller_reference(&desired)?;

    let hash = intent_hash(&desired)?;
    let wanted = to_value(&desired)?;
    let matches = |live: &K| -> Result<bool> {
        Ok(is_controlled_by(live.meta(), &owner.uid)
            && live.annotations().get(APPLIED_HASH) == Some(&hash)
            && contains(&to_value(live)?, &wanted))
    };
    if let Some(cached) = current
        && matches(cached)?
    {
        return Ok((Applied::Unchanged, cached.clone()));
    }
    desired.annotations_mut().insert(APPLIED_HASH.into(), hash.clone());
    // Our own child that differs (a spec change, drift): the API server's copy would
    // only confirm what the apply's uid precondition checks anyway. A child the cache
    // has never seen is most likely new: a create says so in one request, and answers
    // 409 if something is in the way (one we do not own carries none of our labels, so
    // the cache would not hold it). Otherwise, or then, the API server decides.
    let live = match current {
        Some(cached)
            if mode == Write::Converge && is_controlled_by(cached.meta(), &owner.uid) && cached.uid().is_some() =>
        {
            Some(cached.clone())
        }
        _ => {
            if current.is_none()
                && let Created::Made(made) = create::create(api, &desired).await?
            {
                return Ok((Applied::Created, made));
            }
            api.get_opt(&name).await.map_err(|e| Error::kube(format!("get {kind} {name}"), e))?
        }
    };
    if mode == Write::CreateOnly && live.is_none() {
        // In the way a moment ago, gone now: a create next time, never an apply.
        return Err(Error::Stale { kind, name });
    }
    if let Some(live) = &live {
        match adopt::ownership(live.meta(), &owner) {
            Ownership::Owned => {
                let going = live.meta().deletion_timestamp.is_some();
                match (mode, matches(live)?) {
                    (Write::CreateOnly, true) if !going => return Ok((Applied::Unchanged, live.clone())),
                    // The view we planned from is older than the child: plan again.
                    (Write::CreateOnly, _) => return Err(Error::Stale { kind, name }),
                    (Write::Converge, true) => return Ok((Applied::Unchanged, live.clone())),
                    (Write::Converge, false) => {}
                }
            }
            Ownership::Leftover => return Err(delete_leftover(api, live.meta(), &owner.kind).await),
            Ownership::Adoptable | Ownership::Foreign => return Err(Error::NotOwned { kind, name, owner: owner.kind }),
        }
    }

    if let Some(live) = &live
        && tracing::enabled!(tracing::Level::DEBUG)
    {
        // The source documents print each changed field (`replicas: 2 -> 3`); so do we,
        // at debug level, from what the apply is about to change.
        for change in differences(&to_value(live)?, &wanted) {
            tracing::debug!(%kind, %name, field = %change.field, from = %change.from, to = %change.to, "field changes");
        }
    }
    if let Some(live) = &live
        && create::has_create_entry(live.meta())
    {
        // The first change to a child we created: what the intent drops is held by the
        // create's entry, which no apply can take it from. Folded into ours first.
        create::fold_create_entry(api, live).await?;
    }
    // A server-side apply takes no preconditions, but the uid of the object we checked
    // ownership on works as one: the API server refuses the patch if the object was
    // replaced meanwhile (422, `metadata.uid` is immutable) or deleted (409, "uid
    // mismatch"), so an object swapped in after our check is never taken over.
    desired.meta_mut().uid = live.as_ref().and_then(|live| live.uid());
    let applied = send_apply(api, &desired).await?;
    let outcome = if live.is_some() { Applied::Updated } else { Applied::Created };
    Ok((outcome, applied))
}

/// One server-side apply of `desired` with our field manager, taking our fields back
/// from whoever changed them.
async fn send_apply<K>(api: &Api<K>, desired: &K) -> Result<K>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let (kind, name) = (K::kind(&()).into_owned(), desired.name_any());
    let params = PatchParams::apply(MANAGER).force();
    api.patch(&name, &params, &Patch::Apply(desired)).await.map_err(|e| match e {
        kube::Error::Api(status) if is_uid_refusal(&status) => Error::Stale { kind, name },
        e => Error::kube(format!("apply {kind} {name}"), e),
    })
}

/// Deletes the child `meta` describes, left behind by its controller (an earlier
/// `owner_kind` of the same name: [`adopt::Ownership::Leftover`]), and returns the error
/// that makes the reconcile come back for it. The garbage collector would delete it
/// too, but in its own time (minutes under load, never while kube-controller-manager is
/// down), and a re-created object would wait on it all that while. The uid
/// precondition deletes that very object, never one swapped in meanwhile; background
/// propagation leaves its own dependents (a Deployment's ReplicaSets) to the garbage
/// collector, so the name is free at once.
pub async fn delete_leftover<K>(api: &Api<K>, meta: &ObjectMeta, owner_kind: &str) -> Error
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let kind = K::kind(&()).into_owned();
    let name = meta.name.clone().unwrap_or_default();
    if meta.deletion_timestamp.is_some() {
        return Error::Waiting(format!("{kind} {name}, left by an earlier {owner_kind} {name}, to go"));
    }
    match api.delete(&name, &delete_exactly(meta.uid.clone())).await {
        Ok(_) => Error::Leftover { kind, name, owner: owner_kind.to_owned() },
        // Gone or replaced meanwhile: the next reconcile looks again.
        Err(kube::Error::Api(status)) if status.code == 404 || is_uid_refusal(&status) => Error::Stale { kind, name },
        Err(e) => Error::kube(format!("delete {kind} {name} left by an earlier {owner_kind}"), e),
    }
}

/// Whether the API server refused a write because the object is no longer the one
/// whose uid the write carried: a precondition failure or a patch of an object that is
/// gone (409), or a patch of an object re-created under the same name (422, the
/// immutable `metadata.uid`).
pub fn is_uid_refusal(status: &kube::core::Status) -> bool {
    let uid_cause = status.details.iter().flat_map(|d| &d.causes).any(|c| c.field == "metadata.uid");
    (status.code == 409 && (status.message.contains("UID") || status.message.contains("uid")))
        || (status.code == 422 && uid_cause)
}

/// Deletes the child `name` if it is controlled by `owner_uid`, and reports whether it
/// is gone. Never deletes an object we do not control; a child already gone is fine.
pub async fn delete<K>(api: &Api<K>, name: &str, owner_uid: &str) -> Result<Deletion>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let kind = K::kind(&());
    let Some(live) = api.get_opt(name).await.map_err(|e| Error::kube(format!("get {kind} {name}"), e))? else {
        return Ok(Deletion::Gone);
    };
    if !is_controlled_by(live.meta(), owner_uid) {
        return Ok(Deletion::Gone);
    }
    if live.meta().deletion_timestamp.is_some() {
        return Ok(Deletion::InProgress);
    }
    // The uid we checked ownership on: an object of the same name swapped in after the
    // check is not deleted (the API server answers 409).
    match api.delete(name, &delete_exactly(live.uid())).await {
        Ok(_) => Ok(Deletion::Requested),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deletion::Gone),
        Err(kube::Error::Api(status)) if is_uid_refusal(&status) => {
            Err(Error::Stale { kind: kind.into_owned(), name: name.to_owned() })
        }
        Err(e) => Err(Error::kube(format!("delete {kind} {name}"), e)),
    }
}

/// Deletes the object `name` only if it is still the one with `uid`, the uid a plan
/// read from its cache (where the ownership was checked). No fresh read: a read now
/// would return whatever stands under the name, which may be a replacement made after
/// the plan (by a new leader, while this reconcile was paused), and deleting that is
/// exactly the mistake. A different uid under the name is [`Error::Stale`]: plan again.
pub async fn delete_planned<K>(api: &Api<K>, name: &str, uid: &str) -> Result<Deletion>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let kind = K::kind(&());
    match api.delete(name, &delete_exactly(Some(uid.to_owned()))).await {
        Ok(_) => Ok(Deletion::Requested),
        Err(kube::Error::Api(status)) if status.code == 404 => Ok(Deletion::Gone),
        Err(kube::Error::Api(status)) if is_uid_refusal(&status) => {
            Err(Error::Stale { kind: kind.into_owned(), name: name.to_owned() })
        }
        Err(e) => Err(Error::kube(format!("delete {kind} {name}"), e)),
    }
}

/// A deletion of the object with `uid` only (an object of the same name swapped in
/// meanwhile is refused with 409), leaving its own dependents to the garbage collector.
fn delete_exactly(uid: Option<String>) -> DeleteParams {
    DeleteParams {
        propagation_policy: Some(PropagationPolicy::Background),
        preconditions: Some(Preconditions { uid, resource_version: None }),
        ..DeleteParams::default()
    }
}

fn to_value<T: Serialize>(value: &T) -> Result<Value> {
    serde_json::to_value(value).map_err(|e| Error::InvalidSpec(format!("cannot serialize: {e}")))
}

/// A stable hash (FNV-1a, 64 bit) of what we intend to apply. Stable across builds,
/// unlike `std`'s hasher, so an operator upgrade does not rewrite every child.
fn intent_hash<T: Serialize>(desired: &T) -> Result<String> {
    let mut value = to_value(desired)?;
    // The annotation itself must not feed its own hash.
    if let Some(annotations) = value.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        annotations.remove(APPLIED_HASH);
    }
    Ok(fnv(&value.to_string()))
}

/// A stable hash of `value` as JSON, for a label or annotation that says which intent
/// an object was made from (for example the template of a bare Pod).
pub fn hash<T: Serialize>(value: &T) -> String {
    fnv(&serde_json::to_string(value).unwrap_or_default())
}

/// FNV-1a, 64 bit, as 16 hex digits.
fn fnv(text: &str) -> String {
    let hash = text.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3));
    format!("{hash:016x}")
}

/// Lists of the built-in kinds whose elements are merged by key
/// (`x-kubernetes-list-type: map`, or a strategic-merge `patchMergeKey`), by the field
/// that holds them, with the key fields (the first one present in our element is used:
/// container ports are keyed on `containerPort`, Service ports on `port`). Another
/// field manager can add elements to these lists without taking ours; every other list
/// is atomic, owned whole by whoever applied it last, so it must equal ours.
pub const KEYED_LISTS: &[(&str, &[&str])] = &[
    ("containers", &["name"]),
    ("initContainers", &["name"]),
    ("ephemeralContainers", &["name"]),
    ("env", &["name"]),
    ("ports", &["containerPort", "port"]),
    ("volumes", &["name"]),
    ("volumeMounts", &["mountPath"]),
    ("volumeDevices", &["devicePath"]),
    ("imagePullSecrets", &["name"]),
    ("hostAliases", &["ip"]),
    ("ownerReferences", &["uid"]),
];

/// Whether every field set in `wanted` holds the same value in `live`. Objects may
/// have more fields in `live` (server defaults, other managers' fields). Keyed lists
/// ([`KEYED_LISTS`]) must hold each of our elements under its key, in any order, next to
/// elements of others; other lists must have the same length and match element by
/// element. What the API server normalises is not a difference: quantities under
/// `limits`/`requests` compare by value, and an empty value we send (`""`, `{}`, `[]`)
/// may be absent from the stored object.
pub fn contains(live: &Value, wanted: &Value) -> bool {
    contains_in(live, wanted, Within::Other)
}

/// A field of our intent that the live object does not hold: where, what it holds (`<none>`
/// when absent), and what we want.
#[derive(Clone, Debug, PartialEq)]
pub struct Difference {
    /// The field's path: `spec.replicas`, `spec.template.spec.containers[name=web].image`.
    pub field: String,
    /// Its live value, compact JSON; `<none>` when absent.
    pub from: String,
    /// The value we want, compact JSON.
    pub to: String,
}

/// The fields of `wanted` that `live` does not hold, compared as [`contains`] compares
/// them (it is empty exactly when [`contains`] is true).
pub fn differences(live: &Value, wanted: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    differences_in(Some(live), wanted, Within::Other, String::new(), &mut out);
    out
}

fn differences_in(live: Option<&Value>, wanted: &Value, within: Within, path: String, out: &mut Vec<Difference>) {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match (live, wanted) {
        (Some(Value::Object(live)), Value::Object(wanted)) => {
            for (key, w) in wanted {
                match live.get(key) {
                    Some(l) => differences_in(Some(l), w, within_field(key, within), join(key), out),
                    None if is_empty(w) => {}
                    None => differences_in(None, w, within_field(key, within), join(key), out),
                }
            }
        }
        (Some(Value::Array(items)), Value::Array(wanted)) if matches!(within, Within::KeyedList(_)) => {
            let Within::KeyedList(keys) = within else { return };
            for (i, w) in wanted.iter().enumerate() {
                let key = keys.iter().find_map(|k| w.get(*k).map(|v| (*k, v)));
                let found = key.and_then(|(k, v)| items.iter().find(|l| l.get(k) == Some(v)));
                let label = key.map_or_else(|| i.to_string(), |(k, v)| format!("{k}={}", v.as_str().unwrap_or("?")));
                if !found.is_some_and(|l| contains_in(l, w, Within::Other)) {
                    differences_in(found, w, Within::Other, format!("{path}[{label}]"), out);
                }
            }
        }
        (Some(l), w) if contains_in(l, w, within) => {}
        (l, w) => out.push(Difference {
            field: path,
            from: l.map_or_else(|| "<none>".to_owned(), Value::to_string),
            to: w.to_string(),
        }),
    }
}

/// What the value being compared sits in: the keys of a keyed list, or quantities.
#[derive(Clone, Copy)]
enum Within {
    Quantities,
    KeyedList(&'static [&'static str]),
    Other,
}

fn contains_in(live: &Value, wanted: &Value, within: Within) -> bool {
    match (live, wanted) {
        (Value::Object(live), Value::Object(wanted)) => wanted.iter().all(|(key, w)| match live.get(key) {
            Some(l) => contains_in(l, w, within_field(key, within)),
            None => is_empty(w),
        }),
        (Value::Array(live), Value::Array(wanted)) => match within {
            Within::KeyedList(keys) => wanted.iter().all(|w| {
                let Some(key) = keys.iter().find(|k| w.get(**k).is_some()) else {
                    // An element without its key cannot be told apart: it must be there as is.
                    return live.iter().any(|l| contains_in(l, w, Within::Other));
                };
                live.iter().any(|l| l.get(*key) == w.get(*key) && contains_in(l, w, Within::Other))
            }),
            _ => live.len() == wanted.len() && live.iter().zip(wanted).all(|(l, w)| contains_in(l, w, Within::Other)),
        },
        (Value::String(l), Value::String(w)) if matches!(within, Within::Quantities) => {
            l == w || crate::quantity::same(l, w)
        }
        (live, wanted) => live == wanted,
    }
}

/// How the value of field `key` is compared, given where its object sits.
fn within_field(key: &str, parent: Within) -> Within {
    if matches!(parent, Within::Quantities) || key == "limits" || key == "requests" {
        return Within::Quantities;
    }
    match KEYED_LISTS.iter().find(|(list, _)| *list == key) {
        Some((_, keys)) => Within::KeyedList(keys),
        None => Within::Other,
    }
}

fn is_empty(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::String(s) => s.is_empty(),
        Value::Object(o) => o.values().all(is_empty),
        Value::Array(a) => a.is_empty(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn differences_name_each_changed_field_as_the_seeds_print_them() {
        let live = serde_json::json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "sidecar", "image": "busybox"},
            {"name": "web", "image": "nginx:1.20", "resources": {"limits": {"memory": "1024Mi"}}}]}}}});
        let wanted = serde_json::json!({"spec": {"replicas": 3, "template": {"spec": {"containers": [
            {"name": "web", "image": "nginx:1.21", "resources": {"limits": {"memory": "1Gi"}},
             "env": [{"name": "MODE", "value": "x"}]}]}}}});
        let changes: Vec<(String, String, String)> =
            differences(&live, &wanted).into_iter().map(|d| (d.field, d.from, d.to)).collect();
        assert_eq!(
            changes,
            [
                ("spec.replicas".to_owned(), "2".to_owned(), "3".to_owned()),
                (
                    "spec.template.spec.containers[name=web].env".to_owned(),
                    "<none>".to_owned(),
                    r#"[{"name":"MODE","value":"x"}]"#.to_owned()
                ),
                (
                    "spec.template.spec.containers[name=web].image".to_owned(),
                    r#""nginx:1.20""#.to_owned(),
                    r#""nginx:1.21""#.to_owned()
                ),
            ]
        );
        assert!(!contains(&live, &wanted));
        let same = serde_json::json!({"spec": {"replicas": 2}});
        assert!(differences(&live, &same).is_empty() && contains(&live, &same));
    }
    use serde_json::json;

    #[test]
    fn live_objects_with_server_defaults_still_match() {
        let wanted = json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [{"name": "app", "image": "nginx:1.20"}]}}}});
        let live = json!({"spec": {"replicas": 2, "progressDeadlineSeconds": 600,
            "template": {"spec": {"dnsPolicy": "ClusterFirst", "containers": [{"name": "app", "image": "nginx:1.20", "imagePullPolicy": "IfNotPresent"}]}}}});
        assert!(contains(&live, &wanted));
    }

    #[test]
    fn what_the_server_normalises_is_not_drift() {
        let wanted = json!({"resources": {"limits": {"cpu": "0.5", "memory": "2048Mi"}, "requests": {}},
            "env": [{"name": "A", "value": ""}]});
        let live = json!({"resources": {"limits": {"cpu": "500m", "memory": "2Gi"}}, "env": [{"name": "A"}]});
        assert!(contains(&live, &wanted));
        let changed = json!({"resources": {"limits": {"cpu": "600m", "memory": "2Gi"}}, "env": [{"name": "A"}]});
        assert!(!contains(&changed, &wanted));
    }

    #[test]
    fn drift_on_a_field_we_set_is_seen() {
        let wanted = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.20"}]}});
        let edited = json!({"spec": {"containers": [{"name": "app", "image": "nginx:evil"}]}});
        let extra = json!({"spec": {"containers": [{"name": "app", "image": "nginx:1.20"}, {"name": "sidecar"}]}});
        assert!(!contains(&edited, &wanted));
        assert!(contains(&extra, &wanted), "another container is not drift of ours");
        assert!(!contains(&json!({}), &wanted));
        let ours_gone = json!({"spec": {"containers": [{"name": "sidecar", "image": "nginx:1.20"}]}});
        assert!(!contains(&ours_gone, &wanted), "our container replaced by another is drift");
    }

    #[test]
    fn elements_other_managers_add_to_keyed_lists_are_theirs() {
        let wanted = json!({"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "nginx:1.20", "env": [{"name": "ENV", "value": "prod"}],
                "ports": [{"name": "http", "containerPort": 80}]}],
            "volumes": [{"name": "data", "emptyDir": {}}]}}}});
        // `kubectl set env FOO=1`, a sidecar injected before our container, an extra
        // port and volume: all added by others, in any position.
        let live = json!({"spec": {"template": {"spec": {
            "containers": [
                {"name": "sidecar", "image": "envoy:1"},
                {"name": "app", "image": "nginx:1.20", "imagePullPolicy": "IfNotPresent",
                    "env": [{"name": "FOO", "value": "1"}, {"name": "ENV", "value": "prod"}],
                    "ports": [{"name": "metrics", "containerPort": 9090, "protocol": "TCP"},
                        {"name": "http", "containerPort": 80, "protocol": "TCP"}]}],
            "volumes": [{"name": "istio", "emptyDir": {}}, {"name": "data", "emptyDir": {}}]}}}});
        assert!(contains(&live, &wanted));

        // Our own elements are still compared, field by field.
        let mut changed = live.clone();
        changed["spec"]["template"]["spec"]["containers"][1]["env"][1]["value"] = json!("dev");
        assert!(!contains(&changed, &wanted), "our env var changed");
        let mut missing = live.clone();
        missing["spec"]["template"]["spec"]["containers"][1]["env"] = json!([{"name": "FOO", "value": "1"}]);
        assert!(!contains(&missing, &wanted), "our env var removed");
        let mut moved = live;
        moved["spec"]["template"]["spec"]["containers"][1]["ports"][1]["containerPort"] = json!(8080);
        assert!(!contains(&moved, &wanted), "our port changed");
    }

    #[test]
    fn service_ports_are_keyed_on_port_and_atomic_lists_must_be_equal() {
        let wanted = json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"}]}});
        let live = json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP", "targetPort": 80},
            {"name": "extra", "port": 9000, "protocol": "TCP"}]}});
        assert!(contains(&live, &wanted));
        // The same port over UDP is another element; ours must still be there.
        let udp_only = json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "UDP"}]}});
        assert!(!contains(&udp_only, &wanted));
        // Ingress rules and container args are atomic: an extra element is a change.
        let rules = json!({"spec": {"rules": [{"host": "a.example.com"}]}});
        let more_rules = json!({"spec": {"rules": [{"host": "a.example.com"}, {"host": "b.example.com"}]}});
        assert!(!contains(&more_rules, &rules));
        assert!(!contains(&json!({"args": ["a", "b"]}), &json!({"args": ["a"]})));
    }

    #[test]
    fn intent_hash_ignores_its_own_annotation_and_sees_removed_fields() {
        let a = json!({"metadata": {"annotations": {APPLIED_HASH: "x"}}, "env": {"A": "1", "B": "2"}});
        let b = json!({"metadata": {"annotations": {APPLIED_HASH: "y"}}, "env": {"A": "1", "B": "2"}});
        let c = json!({"metadata": {"annotations": {}}, "env": {"A": "1"}});
        assert_eq!(intent_hash(&a).unwrap(), intent_hash(&b).unwrap());
        assert_ne!(intent_hash(&a).unwrap(), intent_hash(&c).unwrap());
    }
}
