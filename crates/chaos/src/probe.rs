//! Recovery time: a WebApp of the suite's own, outside the churn, whose image the suite
//! changes after each fault; the time until its Deployment carries the new image is
//! the time until the operator acts again.

use std::time::Duration;

use k8s_openapi::api::apps::v1::Deployment;
use kube::api::{Patch, PatchParams, PostParams};
use kube::core::DynamicObject;
use kube::{Api, Client};
use serde_json::json;
use tokio::time::Instant;

use crate::kinds::Kind;

/// Name of the probe WebApp.
pub const NAME: &str = "probe";
/// Replicas of the probe, which the fighter fights over.
pub const REPLICAS: i32 = 2;

/// The probe WebApp and the number of changes made to it.
pub struct Probe {
    webapps: Api<DynamicObject>,
    /// Its Deployment.
    pub deployments: Api<Deployment>,
    changes: u64,
}

impl Probe {
    /// Creates the probe WebApp in `namespace`.
    pub async fn create(client: &Client, namespace: &str) -> Result<Self, kube::Error> {
        let webapps = Api::namespaced_with(client.clone(), namespace, &Kind::WebApp.resource());
        let mut object = DynamicObject::new(NAME, &Kind::WebApp.resource());
        object.data = json!({"spec": {"image": image(0), "replicas": REPLICAS}});
        webapps.create(&PostParams::default(), &object).await?;
        Ok(Probe { webapps, deployments: Api::namespaced(client.clone(), namespace), changes: 0 })
    }

    /// The image the probe's Deployment should carry now.
    pub fn image(&self) -> String {
        image(self.changes)
    }

    /// Changes the probe's image and returns how long until its Deployment carried it
    /// (from `since`, or from the change), or `None` after `limit`.
    pub async fn measure(&mut self, since: Option<Instant>, limit: Duration) -> Option<Duration> {
        let start = since.unwrap_or_else(Instant::now);
        self.changes += 1;
        let wanted = self.image();
        let patch = json!({"spec": {"image": wanted}});
        // Retried: right after a fault the API server may still refuse a request or two.
        while self.webapps.patch(NAME, &PatchParams::default(), &Patch::Merge(&patch)).await.is_err() {
            if start.elapsed() > limit {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        while start.elapsed() < limit {
            if self.current().await.is_some_and(|(image, _)| image == wanted) {
                return Some(start.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        None
    }

    /// The image and replicas of the probe's Deployment.
    pub async fn current(&self) -> Option<(String, i32)> {
        let deployment = self.deployments.get(NAME).await.ok()?;
        let spec = deployment.spec?;
        let image = spec.template.spec?.containers.first()?.image.clone()?;
        Some((image, spec.replicas.unwrap_or(1)))
    }
}

fn image(n: u64) -> String {
    format!("nginx:probe-{n}")
}
