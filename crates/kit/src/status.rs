//! Status writes, only when the status changed.
//!
//! A status that is written on every reconcile re-triggers the controller through its
//! own watch (kube#354). Controllers compute the whole status deterministically, and
//! this patches it only when it differs from what the object already carries.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::MANAGER;
use crate::error::{Error, Result};

/// Server-side applies `desired` as the status of `object` unless `current` equals it.
/// Returns whether a write was made.
pub async fn patch_if_changed<K, S>(
    api: &Api<K>,
    object: &K,
    current: Option<&S>,
    desired: &S,
) -> Result<bool>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(false);
    }
    let name = object.meta().name.clone().unwrap_or_default();
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": K::kind(&()),
        "status": desired,
    });
    api.patch_status(
        &name,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&patch),
    )
    .await
    .map_err(|e| Error::kube(format!("patch status of {} {name}", K::kind(&())), e))?;
    Ok(true)
}
