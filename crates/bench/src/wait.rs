//! Waiting on the cluster through watches (never polling the API server, whose load
//! would disturb what is measured): until N objects satisfy a condition, and until a
//! Deployment carries an image.

use std::collections::{HashMap, HashSet};
use std::fmt::Debug;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use kube::runtime::WatchStreamExt;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher::{self, Event, watcher};
use kube::{Client, Resource, ResourceExt};
use serde::de::DeserializeOwned;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use webapp_api::{Phase, WebApp};

use crate::error::{BenchError, Result};
use crate::spread::{Placed, Spread};

/// Waits until `n` objects of kind `K` in the namespaces of `spread` satisfy `done` and returns when that was seen.
/// Level-based: objects that were already done when the watch started count.
pub async fn until_count<K>(
    spread: &Spread,
    client: &Client,
    n: usize,
    done: fn(&K) -> bool,
    limit: Duration,
    what: &str,
) -> Result<Instant>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()> + Clone + DeserializeOwned + Debug + Send + 'static,
{
    let api = spread.api::<K>(client);
    let counting = async {
        let mut satisfied = HashSet::new();
        let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
        while let Some(event) = events.next().await {
            match event {
                Ok(Event::Apply(object) | Event::InitApply(object)) if within(spread, &object) => {
                    if done(&object) {
                        satisfied.insert(ObjectRef::from_obj(&object));
                    } else {
                        satisfied.remove(&ObjectRef::from_obj(&object));
                    }
                }
                Ok(Event::Delete(object)) => {
                    satisfied.remove(&ObjectRef::from_obj(&object));
                }
                Ok(Event::Apply(_) | Event::InitApply(_)) => {}
                Ok(Event::Init | Event::InitDone) | Err(_) => {}
            }
            if satisfied.len() >= n {
                return Instant::now();
            }
        }
        Instant::now()
    };
    tokio::time::timeout(limit, counting).await.map_err(|_| BenchError::Timeout(limit, what.to_owned()))
}

/// Whether a Deployment has all its replicas available (what the floor waits for).
pub fn available(deployment: &Deployment) -> bool {
    let (Some(spec), Some(status)) = (&deployment.spec, &deployment.status) else { return false };
    let wanted = spec.replicas.unwrap_or(1);
    let condition = status.conditions.iter().flatten().any(|c| c.type_ == "Available" && c.status == "True");
    condition
        && status.observed_generation >= deployment.metadata.generation
        && status.available_replicas.unwrap_or(0) >= wanted
        && status.updated_replicas.unwrap_or(0) >= wanted
}

/// Whether a WebApp reports `Running` (what the operator contender waits for).
pub fn running(webapp: &WebApp) -> bool {
    webapp.status.as_ref().and_then(|s| s.phase) == Some(Phase::Running)
}

/// The image of the first container of every Deployment of a run's namespaces, kept current
/// by a watch, to time spec changes from the WebApp patch to the Deployment.
pub struct Images {
    images: Arc<Mutex<HashMap<Placed, Rollout>>>,
    changed: watch::Receiver<u64>,
    task: JoinHandle<()>,
}

impl Images {
    /// Starts watching the Deployments in the namespaces of `spread`.
    pub fn watch(spread: &Spread, client: &Client) -> Self {
        let api = spread.api::<Deployment>(client);
        let spread = spread.clone();
        let images = Arc::new(Mutex::new(HashMap::new()));
        let (tx, changed) = watch::channel(0u64);
        let shared = images.clone();
        let task = tokio::spawn(async move {
            let mut events = watcher(api, watcher::Config::default()).default_backoff().boxed();
            while let Some(event) = events.next().await {
                if let Ok(Event::Apply(d) | Event::InitApply(d)) = event
                    && within(&spread, &d)
                    && let Some(image) = first_image(&d)
                {
                    let placed = Placed { namespace: d.namespace().unwrap_or_default(), name: d.name_any() };
                    let rollout = Rollout { image, done: available(&d) };
                    shared.lock().unwrap_or_else(PoisonError::into_inner).insert(placed, rollout);
                    tx.send_modify(|generation| *generation += 1);
                }
            }
        });
        Images { images, changed, task }
    }

    /// Waits until the Deployment `placed` carries `image`.
    pub async fn wait_for(&mut self, placed: &Placed, image: &str, limit: Duration) -> Result<()> {
        self.wait_until(placed, image, false, limit).await
    }

    /// Waits until the Deployment `placed` carries `image` and has rolled it out
    /// (Available, its status up to date with its generation).
    pub async fn wait_rolled_out(&mut self, placed: &Placed, image: &str, limit: Duration) -> Result<()> {
        self.wait_until(placed, image, true, limit).await
    }

    async fn wait_until(&mut self, placed: &Placed, image: &str, rolled_out: bool, limit: Duration) -> Result<()> {
        let waiting = async {
            loop {
                // Marked seen before looking, so a change between the look and the
                // wait is not missed.
                self.changed.borrow_and_update();
                let current = self.images.lock().unwrap_or_else(PoisonError::into_inner).get(placed).cloned();
                if current.is_some_and(|c| c.image == image && (c.done || !rolled_out)) {
                    return Ok(());
                }
                if self.changed.changed().await.is_err() {
                    return Err(BenchError::Operator("the Deployment watch ended".into()));
                }
            }
        };
        tokio::time::timeout(limit, waiting).await.map_err(|_| {
            BenchError::Timeout(limit, format!("Deployment {}/{} to carry {image}", placed.namespace, placed.name))
        })?
    }
}

/// What [`Images`] keeps of a Deployment: the image of its first container, and whether
/// its rollout is done.
#[derive(Clone, Debug)]
struct Rollout {
    image: String,
    done: bool,
}

impl Drop for Images {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Whether `object` lives in one of the namespaces of `spread` (a watch of all
/// namespaces sees the rest of the cluster too).
fn within<K: Resource>(spread: &Spread, object: &K) -> bool {
    object.meta().namespace.as_deref().is_some_and(|namespace| spread.contains(namespace))
}

fn first_image(deployment: &Deployment) -> Option<String> {
    deployment.spec.as_ref()?.template.spec.as_ref()?.containers.first()?.image.clone()
}

#[cfg(test)]
mod tests {
    use k8s_openapi::api::apps::v1::{DeploymentCondition, DeploymentSpec, DeploymentStatus};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    use super::*;

    fn deployment(available_replicas: i32, condition: &str) -> Deployment {
        Deployment {
            metadata: ObjectMeta { generation: Some(1), ..ObjectMeta::default() },
            spec: Some(DeploymentSpec { replicas: Some(1), ..DeploymentSpec::default() }),
            status: Some(DeploymentStatus {
                observed_generation: Some(1),
                available_replicas: Some(available_replicas),
                updated_replicas: Some(1),
                conditions: Some(vec![DeploymentCondition {
                    type_: "Available".into(),
                    status: condition.into(),
                    ..DeploymentCondition::default()
                }]),
                ..DeploymentStatus::default()
            }),
        }
    }

    #[test]
    fn a_deployment_is_available_with_the_condition_and_its_replicas() {
        assert!(available(&deployment(1, "True")));
        assert!(!available(&deployment(0, "True")));
        assert!(!available(&deployment(1, "False")));
        assert!(!available(&Deployment::default()));
    }
}
