//! The bench's own requests: namespaces, creating objects with a fixed number of
//! requests in flight, counting the operator's Event writes, clearing a namespace.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::core::v1::Namespace;
use k8s_openapi::api::events::v1::Event;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::{Api, Client, Resource, ResourceExt};
use reconcile_kit::MANAGER;
use serde_json::json;
use tokio::time::Instant;
use webapp_api::WebApp;

use crate::error::{BenchError, Result, kube};
use crate::spread::{Placed, Spread};

/// Requests the bench keeps in flight when it creates or patches many objects.
pub const IN_FLIGHT: usize = 16;

/// Creates namespace `name`.
pub async fn create_namespace(client: &Client, name: &str) -> Result<()> {
    let api: Api<Namespace> = Api::all(client.clone());
    let mut namespace = Namespace::default();
    namespace.metadata.name = Some(name.to_owned());
    api.create(&PostParams::default(), &namespace).await.map_err(kube(format!("create namespace {name}")))?;
    Ok(())
}

/// Deletes namespace `name` and waits until it is gone, so that the next contender or
/// size starts on a cluster that is not busy deleting. WebApps lose their finalizers
/// first: the operator that would release them is stopped by then.
pub async fn delete_namespace(client: &Client, name: &str, limit: Duration) -> Result<()> {
    let webapps: Api<WebApp> = Api::namespaced(client.clone(), name);
    let names: Vec<String> = webapps
        .list_metadata(&ListParams::default())
        .await
        .map_err(kube(format!("list WebApps in {name}")))?
        .items
        .iter()
        .filter(|w| !w.finalizers().is_empty())
        .map(ResourceExt::name_any)
        .collect();
    let release = json!({"metadata": {"finalizers": null}});
    stream::iter(names)
        .map(|webapp| {
            let (webapps, release) = (&webapps, &release);
            async move {
                match webapps.patch(&webapp, &PatchParams::default(), &Patch::Merge(release)).await {
                    Ok(_) | Err(::kube::Error::Api(_)) => Ok(()),
                    Err(e) => Err(BenchError::Kube(format!("release WebApp {webapp}"), e)),
                }
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_collect::<()>()
        .await?;
    let api: Api<Namespace> = Api::all(client.clone());
    match api.delete(name, &DeleteParams::default()).await {
        Ok(_) | Err(::kube::Error::Api(_)) => {}
        Err(e) => return Err(BenchError::Kube(format!("delete namespace {name}"), e)),
    }
    let start = Instant::now();
    while api.get_opt(name).await.map_err(kube(format!("get namespace {name}")))?.is_some() {
        if start.elapsed() > limit {
            return Err(BenchError::Timeout(limit, format!("namespace {name} to go")));
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Runs `each` for every namespace of `spread`, [`IN_FLIGHT`] at a time.
async fn in_each<'a, T, F, Fut>(spread: &Spread, each: F) -> Result<Vec<T>>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<T>> + 'a,
{
    stream::iter(spread.namespaces()).map(each).buffer_unordered(IN_FLIGHT).try_collect().await
}

/// Creates every namespace of `spread`.
pub async fn create_namespaces(client: &Client, spread: &Spread) -> Result<()> {
    in_each(spread, |namespace| async move { create_namespace(client, &namespace).await }).await.map(drop)
}

/// Deletes every namespace of `spread` and waits until all are gone ([`delete_namespace`]).
pub async fn delete_namespaces(client: &Client, spread: &Spread, limit: Duration) -> Result<()> {
    in_each(spread, |namespace| async move { delete_namespace(client, &namespace, limit).await }).await.map(drop)
}

/// The operator's Event writes over every namespace of `spread` ([`event_writes`]).
pub async fn event_writes_in(client: &Client, spread: &Spread) -> Result<u64> {
    Ok(in_each(spread, |namespace| async move { event_writes(client, &namespace).await }).await?.into_iter().sum())
}

/// Event writes the operator made in `namespace`: one create per Event, one patch per
/// repetition of its series (kube's recorder counts occurrences in `series.count`).
pub async fn event_writes(client: &Client, namespace: &str) -> Result<u64> {
    let api: Api<Event> = Api::namespaced(client.clone(), namespace);
    let events = api.list(&ListParams::default()).await.map_err(kube(format!("list Events in {namespace}")))?;
    Ok(events
        .items
        .iter()
        .filter(|e| e.reporting_controller.as_deref() == Some(MANAGER))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count.max(1) as u64))
        .sum())
}

/// Creates every WebApp of `webapps` (each in its namespace), [`IN_FLIGHT`] at a time.
pub async fn create_webapps(client: &Client, webapps: Vec<WebApp>) -> Result<()> {
    stream::iter(webapps)
        .map(|webapp| async move {
            api_of(client, &webapp)
                .create(&PostParams::default(), &webapp)
                .await
                .map_err(kube(format!("create WebApp {}", webapp.name_any())))
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// Puts annotation `key=value` on every WebApp of `webapps` (a metadata-only change:
/// one reconcile each, nothing to do), [`IN_FLIGHT`] at a time.
pub async fn annotate(client: &Client, webapps: &[Placed], key: &str, value: &str) -> Result<()> {
    let patch = json!({"metadata": {"annotations": {key: value}}});
    // Owned names: futures borrowing the items would not be `Send` for every lifetime,
    // which `tokio::spawn` of a resync wave needs.
    stream::iter(webapps.to_vec())
        .map(|webapp| {
            let patch = &patch;
            async move {
                let Placed { namespace, name } = &webapp;
                webapps_in(client, namespace)
                    .patch(name, &PatchParams::default(), &Patch::Merge(patch))
                    .await
                    .map_err(kube(format!("annotate WebApp {namespace}/{name}")))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|_| async { Ok(()) })
        .await
}

/// The API of `object`'s kind in its namespace.
pub fn api_of<K>(client: &Client, object: &K) -> Api<K>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(client.clone(), object.meta().namespace.as_deref().unwrap_or_default())
}

/// The WebApps of `namespace`.
pub fn webapps_in(client: &Client, namespace: &str) -> Api<WebApp> {
    Api::namespaced(client.clone(), namespace)
}

/// The 1-, 5- and 15-minute load averages, as `uptime` prints them.
pub fn load() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// Binds the operator's finalizer policy ([`webapp_operator::admission`]) to the
/// namespaces of `spread`, the binding named after them, and waits until the API server
/// applies it (it loads bindings from a watch): a dry-run create shows the finalizer.
pub async fn bind_finalizer_policy(client: &Client, spread: &Spread, limit: Duration) -> Result<()> {
    let namespaces = spread.namespaces();
    webapp_operator::admission::install(client, spread.base(), Some(&namespaces), "webapp-bench")
        .await
        .map_err(kube("install the finalizer policy (Kubernetes 1.36 or later; --finalizer-policy false otherwise)"))?;
    let namespace = spread.namespace_of(0);
    let probe = crate::fixture::webapp(&namespace, 0)?;
    let api: Api<WebApp> = Api::namespaced(client.clone(), &namespace);
    match webapp_operator::admission::wait_until_applied(&api, &probe, limit).await {
        true => Ok(()),
        false => Err(BenchError::Timeout(limit, "the finalizer policy to apply".into())),
    }
}

/// Deletes the binding [`bind_finalizer_policy`] made for `spread`, and the policy.
pub async fn remove_finalizer_policy(client: &Client, spread: &Spread) -> Result<()> {
    webapp_operator::admission::uninstall(client, spread.base())
        .await
        .map_err(kube("delete the finalizer policy and its binding"))
}
