//! Opt-in adoption of children that exist without an owner.
//!
//! By default a child of the name we need that we do not control is left alone
//! ([`Error::NotOwned`]). An object annotated [`ADOPT`]` = "true"` takes such a child
//! over when it has **no** controller owner at all ([`Ownership::Adoptable`]); one that
//! another controller owns is never taken ([`Ownership::Foreign`]). One left by a deleted
//! object of the owner's own kind and name ([`Ownership::Leftover`]) is garbage, which
//! [`crate::apply::apply`] removes. [`ownership`] is the one decision every controller uses.
//!
//! Taking over is three writes, once per child:
//! 1. [`take_over`]: a merge patch with our owner reference and our intent, carrying the
//!    `resourceVersion` of the object whose ownership was checked (an object changed or
//!    swapped in between is not taken). A merge patch replaces the lists it sets whole,
//!    so an element the spec does not have (a container named otherwise, an old port) goes;
//! 2. the usual forced server-side apply ([`crate::apply::apply`]), which makes every
//!    field of our intent ours, taking it from the field manager that wrote it (`kubectl`);
//! 3. [`release_others`]: the other field managers' claims on the object are dropped, so
//!    that a later change of the spec removes what it removes (a field still claimed by
//!    `kubectl` would otherwise stay when the spec drops it: an old Service port next to
//!    the new one).
//!
//! Fields our intent does not set at all are left as they were, owned by nobody.

use std::fmt::Debug;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ManagedFieldsEntry, ObjectMeta, OwnerReference};
use kube::api::{Patch, PatchParams};
use kube::{Api, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::MANAGER;
use crate::error::{Error, Result};

/// Annotation on an owner that lets it adopt same-name children without an owner.
pub const ADOPT: &str = "apps.example.com/adopt";

/// Who controls an existing child, as seen by one owner.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ownership {
    /// Its controller owner reference names this owner.
    Owned,
    /// Its controller is an object of this owner's group, kind and name, with another
    /// uid: an earlier object of that name, which is necessarily gone (a namespace holds
    /// one object of a kind and name at a time). The garbage collector deletes such a
    /// child, in its own time; the owner need not wait for it.
    Leftover,
    /// It has no controller owner: this owner may take it over, if asked to.
    Adoptable,
    /// Another object controls it: never touched.
    Foreign,
}

/// Who controls the object described by `meta`, for `owner` (the controller reference a
/// child of that owner carries).
pub fn ownership(meta: &ObjectMeta, owner: &OwnerReference) -> Ownership {
    match meta.owner_references.iter().flatten().find(|r| r.controller == Some(true)) {
        Some(reference) if reference.uid == owner.uid => Ownership::Owned,
        Some(reference)
            if reference.kind == owner.kind
                && reference.name == owner.name
                && group(&reference.api_version) == group(&owner.api_version) =>
        {
            Ownership::Leftover
        }
        Some(_) => Ownership::Foreign,
        None => Ownership::Adoptable,
    }
}

/// The API group of an `apiVersion` (`apps.example.com/v1` → `apps.example.com`; the
/// core group's `v1` → empty): versions of one kind are one kind.
fn group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

/// Whether `owner` asks to adopt children that have no owner ([`ADOPT`] is `"true"`).
pub fn requested<K: Resource>(owner: &K) -> bool {
    owner.annotations().get(ADOPT).is_some_and(|v| v == "true")
}

/// Takes over the existing child `desired` names (step 1 above) if it has no
/// controller owner. `desired` carries its controller owner reference, as for
/// [`crate::apply::apply`]. Returns whether it was taken over; `false` when there is
/// nothing to take (the child is gone, or already ours). A child another controller
/// owns is [`Error::NotOwned`]; one that changed since it was read is [`Error::Stale`].
pub async fn take_over<K>(api: &Api<K>, desired: &K) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + Debug + Serialize + DeserializeOwned,
{
    let (kind, name) = (K::kind(&()).into_owned(), desired.name_any());
    let owner = crate::apply::controller_reference(desired)?;
    let Some(live) = api.get_opt(&name).await.map_err(|e| Error::kube(format!("get {kind} {name}"), e))? else {
        return Ok(false);
    };
    match ownership(live.meta(), &owner) {
        Ownership::Owned => return Ok(false),
        // A leftover is for `apply` to remove, never to take over.
        Ownership::Foreign | Ownership::Leftover => return Err(Error::NotOwned { kind, name, owner: owner.kind }),
        Ownership::Adoptable => {}
    }
    // Owner references that are not controllers (a grouping object's, say) stay.
    let mut references = live.owner_references().to_vec();
    references.push(owner);
    let mut patch = serde_json::to_value(desired).map_err(|e| Error::InvalidSpec(format!("cannot serialize: {e}")))?;
    if let Some(metadata) = patch.get_mut("metadata").and_then(Value::as_object_mut) {
        metadata.insert("ownerReferences".into(), json!(references));
        // The precondition: the object we checked, unchanged.
        metadata.insert("resourceVersion".into(), json!(live.resource_version()));
    }
    let params = PatchParams { field_manager: Some(MANAGER.into()), ..PatchParams::default() };
    match api.patch(&name, &params, &Patch::Merge(&patch)).await {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(status)) if status.code == 409 || status.code == 404 => Err(Error::Stale { kind, name }),
        Err(e) => Err(Error::kube(format!("adopt {kind} {name}"), e)),
    }
}

/// A refusal of the API server to take over child `kind name` (422: the child holds
/// something that cannot change to our intent, such as a Service's `clusterIP` or a
/// StatefulSet's volume claims) as a sentence a user can act on, instead of the raw
/// answer; retried with the object's backoff, since deleting the child or removing the
/// annotation clears it. Other errors pass through.
pub fn explain_refusal(error: Error, kind: &str, name: &str) -> Error {
    let Error::Kube { error: kube::Error::Api(status), .. } = &error else { return error };
    if status.code != 422 {
        return error;
    }
    let causes: Vec<String> = status
        .details
        .iter()
        .flat_map(|details| &details.causes)
        .map(|cause| match cause.message.split_once(": ") {
            // "Invalid value: ...: field is immutable": the field and the last words.
            _ if !cause.field.is_empty() => {
                format!("{} {}", cause.field, cause.message.rsplit(": ").next().unwrap_or(&cause.message))
            }
            _ => cause.message.clone(),
        })
        .collect();
    let why = if causes.is_empty() { status.message.clone() } else { causes.join(", ") };
    Error::Blocked {
        reason: "NotAdoptable",
        message: format!(
            "{kind} {name} cannot be adopted: {why}; delete it and the operator makes its own, or remove the \
             {ADOPT} annotation and rename it"
        ),
    }
}

/// Drops every other field manager's claim on child `name` (step 3 above): only our
/// server-side apply, and the status writers of subresources, keep theirs. Retried
/// when the object changes meanwhile (its controller writes its status right after
/// our apply).
pub async fn release_others<K>(api: &Api<K>, name: &str) -> Result<()>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
{
    let ours = |f: &ManagedFieldsEntry| {
        f.subresource.as_deref().is_some_and(|s| !s.is_empty())
            || (f.manager.as_deref() == Some(MANAGER) && f.operation.as_deref() == Some("Apply"))
    };
    let kept = |entries: &[ManagedFieldsEntry]| {
        (!entries.iter().all(ours)).then(|| entries.iter().filter(|f| ours(f)).cloned().collect())
    };
    crate::apply::rewrite_managed_fields(api, name, None, kept, "release field managers of").await
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

    use super::*;

    /// A reference to `WebApp web` (apps.example.com) with `uid`, or to another object
    /// when `uid` says `them`.
    fn reference(uid: &str, controller: Option<bool>) -> OwnerReference {
        let name = if uid == "them" { "other" } else { "web" };
        OwnerReference {
            api_version: "apps.example.com/v1".into(),
            kind: "WebApp".into(),
            name: name.into(),
            uid: uid.into(),
            controller,
            ..OwnerReference::default()
        }
    }

    fn meta(references: &[(&str, Option<bool>)]) -> ObjectMeta {
        let references = references.iter().map(|(uid, controller)| reference(uid, *controller)).collect();
        ObjectMeta { owner_references: Some(references), ..ObjectMeta::default() }
    }

    #[test]
    fn only_a_child_without_a_controller_is_adoptable() {
        let us = reference("us", Some(true));
        assert_eq!(ownership(&ObjectMeta::default(), &us), Ownership::Adoptable);
        assert_eq!(ownership(&meta(&[("group", None), ("other", Some(false))]), &us), Ownership::Adoptable);
        assert_eq!(ownership(&meta(&[("us", Some(true))]), &us), Ownership::Owned);
        assert_eq!(ownership(&meta(&[("them", Some(true))]), &us), Ownership::Foreign);
        assert_eq!(ownership(&meta(&[("us", Some(false)), ("them", Some(true))]), &us), Ownership::Foreign);
    }

    #[test]
    fn a_child_of_an_earlier_owner_of_the_same_kind_and_name_is_a_leftover() {
        let us = reference("us", Some(true));
        assert_eq!(ownership(&meta(&[("before", Some(true))]), &us), Ownership::Leftover);
        // Another version of the same kind is the same kind.
        let mut v2 = reference("before", Some(true));
        v2.api_version = "apps.example.com/v2".into();
        let child = ObjectMeta { owner_references: Some(vec![v2]), ..ObjectMeta::default() };
        assert_eq!(ownership(&child, &us), Ownership::Leftover);
        // A kind of the same name in another group is someone else's.
        let mut elsewhere = reference("before", Some(true));
        elsewhere.api_version = "other.example.org/v1".into();
        let child = ObjectMeta { owner_references: Some(vec![elsewhere]), ..ObjectMeta::default() };
        assert_eq!(ownership(&child, &us), Ownership::Foreign);
        // So is another kind of the same name, and a non-controller reference.
        let mut other_kind = reference("before", Some(true));
        other_kind.kind = "WebServer".into();
        let child = ObjectMeta { owner_references: Some(vec![other_kind]), ..ObjectMeta::default() };
        assert_eq!(ownership(&child, &us), Ownership::Foreign);
        assert_eq!(ownership(&meta(&[("before", Some(false))]), &us), Ownership::Adoptable);
    }

    #[test]
    fn a_refused_adoption_says_which_field_and_what_to_do() {
        let status: kube::core::Status = serde_json::from_value(json!({
            "code": 422, "reason": "Invalid", "status": "Failure",
            "message": "Deployment.apps \"web\" is invalid: spec.selector: Invalid value: {...}: field is immutable",
            "details": {"causes": [{"reason": "FieldValueInvalid", "field": "spec.selector",
                "message": "Invalid value: {\"matchLabels\":{}}: field is immutable"}]}
        }))
        .unwrap();
        let refused = Error::kube("adopt Deployment web", kube::Error::Api(Box::new(status)));
        let explained = explain_refusal(refused, "Deployment", "web");
        assert_eq!(explained.reason(), "NotAdoptable");
        assert!(
            explained.to_string().starts_with("Deployment web cannot be adopted: spec.selector field is immutable;"),
            "{explained}"
        );
        let other =
            explain_refusal(Error::Stale { kind: "Deployment".into(), name: "web".into() }, "Deployment", "web");
        assert!(matches!(other, Error::Stale { .. }), "other errors pass through");
    }

    #[test]
    fn adoption_is_asked_for_with_the_annotation_only() {
        let mut owner = k8s_openapi::api::core::v1::ConfigMap::default();
        assert!(!requested(&owner));
        owner.annotations_mut().insert(ADOPT.into(), "yes".into());
        assert!(!requested(&owner));
        owner.annotations_mut().insert(ADOPT.into(), "true".into());
        assert!(requested(&owner));
    }
}
