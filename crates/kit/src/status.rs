//! Status writes, only when the status changed, and only from a current view.
//!
//! A status that is written on every reconcile re-triggers the controller through its
//! own watch (kube#354). Controllers compute the whole status deterministically, and
//! this patches it only when it differs from what the object already carries.
//!
//! A reconcile can start from a cached object that lags behind the API server (a burst
//! of child events runs reconciles before the watch delivers our own last status
//! write). A status computed from such a view would move the object backwards, so the
//! write carries the `resourceVersion` it was computed from as a precondition: a stale
//! view gets [`Error::Stale`] and the reconcile runs again from the fresh object.

use std::fmt::Debug;

use kube::api::{Patch, PatchParams};
use kube::{Api, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::MANAGER;
use crate::error::{Error, Result};

/// Server-side applies `desired` as the status of `object` unless `current` equals it.
/// Returns the object as written, or `None` when nothing had to be written.
pub async fn patch_if_changed<K, S>(api: &Api<K>, object: &K, current: Option<&S>, desired: &S) -> Result<Option<K>>
where
    K: Resource<DynamicType = ()> + Clone + Debug + DeserializeOwned,
    S: Serialize + PartialEq,
{
    if current == Some(desired) {
        return Ok(None);
    }
    let kind = K::kind(&()).into_owned();
    let name = object.meta().name.clone().unwrap_or_default();
    let patch = json!({
        "apiVersion": K::api_version(&()),
        "kind": kind,
        "metadata": {"name": name, "resourceVersion": object.meta().resource_version},
        "status": desired,
    });
    let params = PatchParams::apply(MANAGER).force();
    match api.patch_status(&name, &params, &Patch::Apply(&patch)).await {
        Ok(written) => Ok(Some(written)),
        Err(kube::Error::Api(status)) if status.code == 409 => Err(Error::Stale { kind, name }),
        Err(e) => Err(Error::kube(format!("patch status of {kind} {name}"), e)),
    }
}
