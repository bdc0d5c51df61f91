//! The floor: no operator. The bench creates the Deployments and Services the operator
//! would create for N WebApps (server-side apply with the operator's field manager, as
//! the operator sends them), [`IN_FLIGHT`] requests at a time, and waits until every
//! Deployment is Available: the fastest this control plane turns N WebApps' worth of
//! children into running pods.

use std::time::Duration;

use futures::{StreamExt, TryStreamExt, stream};
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::{Client, ResourceExt};
use reconcile_kit::MANAGER;
use tokio::time::Instant;

use crate::cluster::{IN_FLIGHT, api_of};
use crate::error::{BenchError, Result, kube};
use crate::spread::Spread;
use crate::{fixture, wait};

/// One child to create.
enum Child {
    Deployment(Box<Deployment>),
    Service(Box<Service>),
}

/// Runs the floor for `n` WebApps in the namespaces of `spread`; returns the time
/// from the first request until every Deployment was Available.
pub async fn run(client: &Client, spread: &Spread, n: usize, limit: Duration) -> Result<Duration> {
    let mut children = Vec::with_capacity(2 * n);
    for i in 0..n {
        let (deployment, service) = fixture::floor_children(&fixture::webapp(&spread.namespace_of(i), i)?);
        children.extend([Child::Deployment(Box::new(deployment)), Child::Service(Box::new(service))]);
    }
    let params = PatchParams::apply(MANAGER).force();

    let start = Instant::now();
    let all_available = {
        let (spread, client) = (spread.clone(), client.clone());
        tokio::spawn(async move {
            wait::until_count(&spread, &client, n, wait::available, limit, "all Deployments Available").await
        })
    };
    stream::iter(children)
        .map(|child| {
            let params = &params;
            async move {
                match child {
                    Child::Deployment(d) => {
                        api_of(client, &*d).patch(&d.name_any(), params, &Patch::Apply(&d)).await.map(drop)
                    }
                    Child::Service(s) => {
                        api_of(client, &*s).patch(&s.name_any(), params, &Patch::Apply(&s)).await.map(drop)
                    }
                }
                .map_err(kube("apply a floor child"))
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .try_for_each(|()| async { Ok(()) })
        .await?;
    let done = all_available.await.map_err(|e| BenchError::Task(e.to_string()))??;
    Ok(done - start)
}
