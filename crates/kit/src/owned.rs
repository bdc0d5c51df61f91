//! The children of one object, applied and deleted with an Event about each change.
//!
//! [`apply`] decides whether to write; this adds what every controller
//! reports about it, the same way: `Created` when a child appears, a controller-chosen
//! `<Kind>Synced` reason when an existing child had to change (a spec change, or drift
//! made by hand), `Adopted` when an owner that asks for it ([`crate::adopt`]) takes over
//! a child that had no owner, and `Deleting` when a child is asked to go. Each Event
//! names the child as its related object, so events of one reason about different
//! children stay apart. An owner whose children are all made in one reconcile (a
//! Deployment and its Service) may fold their `Created` events into one
//! ([`Owned::folding_creations`], [`Owned::publish_created`]): each Event is a write to
//! the API server, and a new object is the commonest thing an operator sees.

use std::fmt::Debug;
use std::sync::{Mutex, PoisonError};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::ObjectReference;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::adopt;
use crate::apply::{self, Applied, Deletion, Write};
use crate::error::{Error, Result};
use crate::events::Events;

/// The children of one owner, in its namespace.
pub struct Owned {
    client: Client,
    events: Events,
    namespace: String,
    owner: ObjectReference,
    owner_uid: String,
    adopt: bool,
    /// Children created and not yet reported, when creations are folded.
    created: Option<Mutex<Vec<ObjectReference>>>,
}

impl Owned {
    /// The children of `owner`.
    pub fn new<O: Resource<DynamicType = ()>>(client: Client, events: Events, owner: &O) -> Self {
        Owned {
            client,
            events,
            namespace: owner.namespace().unwrap_or_default(),
            owner: owner.object_ref(&()),
            owner_uid: owner.uid().unwrap_or_default(),
            adopt: false,
            created: None,
        }
    }

    /// The same children, taking over same-name objects without an owner when `adopt`
    /// (see [`crate::adopt`]); by default such an object is [`Error::NotOwned`].
    pub fn adopting(mut self, adopt: bool) -> Self {
        self.adopt = adopt;
        self
    }

    /// The same children, with the `Created` events of one reconcile folded into one,
    /// which [`Owned::publish_created`] publishes (the caller makes sure it runs, on
    /// success and on failure alike, or the events are lost).
    pub fn folding_creations(mut self) -> Self {
        self.created = Some(Mutex::default());
        self
    }

    /// Publishes one `Created` event about the children created since the last call
    /// (`Created Deployment web and Service web`), naming the first as its related
    /// object; nothing when none was created or creations are not folded.
    pub async fn publish_created(&self) {
        let Some(created) = &self.created else { return };
        let created = std::mem::take(&mut *created.lock().unwrap_or_else(PoisonError::into_inner));
        let Some(first) = created.first().cloned() else { return };
        let names: Vec<String> = created
            .iter()
            .map(|child| format!("{} {}", child.kind.as_deref().unwrap_or(""), child.name.as_deref().unwrap_or("")))
            .collect();
        let note = format!("Created {}", and_list(&names));
        self.events.normal_about(&self.owner, first, "Created", note).await;
    }

    fn api<K: Resource<DynamicType = (), Scope = NamespaceResourceScope>>(&self) -> Api<K> {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// Applies one child (see [`apply::apply`]; `cached` is the store's copy) and
    /// publishes what it did at once, so that no event is lost if a later step fails.
    /// Returns what was done and the child as it is now.
    pub async fn apply<K>(&self, cached: Option<&K>, desired: K, synced_reason: &str) -> Result<(Applied, K)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        self.write(cached, desired, synced_reason, Write::Converge).await
    }

    /// Creates one child that is replaced, never changed, once it exists (see
    /// [`apply::create_only`]), and publishes the creation at once.
    pub async fn create<K>(&self, desired: K) -> Result<(Applied, K)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        self.write(None, desired, "", Write::CreateOnly).await
    }

    async fn write<K>(&self, cached: Option<&K>, desired: K, synced_reason: &str, mode: Write) -> Result<(Applied, K)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let api = self.api();
        // Kept only by an owner that may adopt: the common path copies nothing. Adopting
        // writes the intent onto what is there, which a create-only child never allows.
        let adoptable = (self.adopt && mode == Write::Converge).then(|| desired.clone());
        let (outcome, live) = match (apply::write(&api, cached, desired, mode).await, adoptable) {
            (Err(Error::NotOwned { .. }), Some(desired)) => return self.adopt(&api, desired).await,
            (Err(error @ Error::Leftover { .. }), _) => return Err(self.report_leftover::<K>(error).await),
            (result, _) => result?,
        };
        let (kind, name) = (K::kind(&()), live.name_any());
        let (reason, note) = match outcome {
            Applied::Unchanged => return Ok((outcome, live)),
            Applied::Created => match &self.created {
                Some(created) => {
                    created.lock().unwrap_or_else(PoisonError::into_inner).push(live.object_ref(&()));
                    return Ok((outcome, live));
                }
                None => ("Created", format!("Created {kind} {name}")),
            },
            Applied::Updated => (synced_reason, format!("{kind} {name} synced to the {} spec", self.kind())),
        };
        self.events.normal_about(&self.owner, live.object_ref(&()), reason, note).await;
        Ok((outcome, live))
    }

    /// Takes over the existing child `desired` names, which has no controller owner
    /// (see [`crate::adopt`] for the three writes), with an `Adopted` event.
    async fn adopt<K>(&self, api: &Api<K>, desired: K) -> Result<(Applied, K)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + Serialize + DeserializeOwned,
    {
        let (kind, name) = (K::kind(&()).into_owned(), desired.name_any());
        let explain = |error| adopt::explain_refusal(error, &kind, &name);
        if !adopt::take_over(api, &desired).await.map_err(explain)? {
            // Gone or ours meanwhile: the next reconcile starts afresh.
            return Err(Error::Stale { kind: kind.clone(), name: name.clone() });
        }
        let (_, live) = apply::apply(api, None, desired).await.map_err(explain)?;
        adopt::release_others(api, &name).await?;
        let note = format!("Adopted {kind} {name}, which had no owner, and brought it to the {} spec", self.kind());
        self.events.normal_about(&self.owner, live.object_ref(&()), "Adopted", note).await;
        Ok((Applied::Updated, live))
    }

    /// A `DeletedLeftover` event about the child when `error` says a leftover child was
    /// just deleted; other errors pass through.
    async fn report_leftover<K: Resource<DynamicType = ()>>(&self, error: Error) -> Error {
        if let Error::Leftover { name, .. } = &error {
            let child = self.child::<K>(name);
            self.events.normal_about(&self.owner, child, "DeletedLeftover", error.to_string()).await;
        }
        error
    }

    /// Deletes the child `name` if this owner controls it (see [`apply::delete`]), with a
    /// `Deleting` event when the deletion is asked for.
    pub async fn delete<K>(&self, name: &str) -> Result<Deletion>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let note = format!("Deleting {} {name}", K::kind(&()));
        self.delete_because::<K>(name, "Deleting", note).await
    }

    /// Like [`Owned::delete`], with the event's reason and note chosen by the caller
    /// (a controller whose children come and go, like bare Pods, says why each goes).
    pub async fn delete_because<K>(&self, name: &str, reason: &str, note: String) -> Result<Deletion>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let deletion = apply::delete::<K>(&self.api(), name, &self.owner_uid).await?;
        if deletion == Deletion::Requested {
            self.events.normal_about(&self.owner, self.child::<K>(name), reason, note).await;
        }
        Ok(deletion)
    }

    /// Deletes the child `name` that a plan chose from a cached copy with `uid`, without
    /// reading it again (see [`apply::delete_planned`]), with an event when asked for.
    pub async fn delete_planned<K>(
        &self,
        name: &str,
        uid: Option<String>,
        reason: &str,
        note: String,
    ) -> Result<Deletion>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        let Some(uid) = uid else { return self.delete_because::<K>(name, reason, note).await };
        let deletion = apply::delete_planned::<K>(&self.api(), name, &uid).await?;
        if deletion == Deletion::Requested {
            self.events.normal_about(&self.owner, self.child::<K>(name), reason, note).await;
        }
        Ok(deletion)
    }

    /// A reference to our child `name` of kind `K`, for an Event about it.
    fn child<K: Resource<DynamicType = ()>>(&self, name: &str) -> ObjectReference {
        ObjectReference {
            api_version: Some(K::api_version(&()).into_owned()),
            kind: Some(K::kind(&()).into_owned()),
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            ..ObjectReference::default()
        }
    }

    fn kind(&self) -> &str {
        self.owner.kind.as_deref().unwrap_or("owner")
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::and_list;

    #[test]
    fn children_are_listed_as_a_sentence() {
        let items = |names: &[&str]| names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>();
        assert_eq!(and_list(&items(&["Deployment web"])), "Deployment web");
        assert_eq!(and_list(&items(&["Deployment web", "Service web"])), "Deployment web and Service web");
        assert_eq!(and_list(&items(&["A a", "B b", "C c"])), "A a, B b and C c");
    }
}
