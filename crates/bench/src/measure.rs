//! The operator contender, figure by figure: convergence of N new WebApps, a forced
//! resync of the converged set, spec-change latency (idle, then while the others
//! resync), and a restart.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use kube::Client;
use kube::api::{Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;

use crate::cluster::{self, annotate, event_writes_in, webapps_in};
use crate::control_plane::{ControlPlane, Cpu};
use crate::error::{BenchError, Result, kube};
use crate::figures::{Counts, Latency, OperatorFigures, Restart};
use crate::operator::{Launch, Metrics, Operator, scrape};
use crate::spread::{Placed, Spread};
use crate::wait::{self, Images};
use crate::{fixture, floor};

/// Annotation the bench changes to make the operator look at every WebApp again.
const RESYNC: &str = "bench.example.com/resync";

/// What the operator contender is run with.
pub struct Setup<'a> {
    /// The bench's client.
    pub client: &'a Client,
    /// How the operator is started (its namespace included).
    pub launch: &'a Launch,
    /// WebApps.
    pub n: usize,
    /// Spec changes timed per latency figure.
    pub samples: usize,
    /// Bound of every wait.
    pub limit: Duration,
    /// Whether the API server adds the WebApps' finalizer ([`webapp_operator::admission`]).
    pub finalizer_policy: bool,
    /// The control plane's processes, whose CPU the convergence is measured in too.
    pub control_plane: &'a ControlPlane,
}

/// Runs the floor in its own namespaces and returns its convergence time and the
/// control plane's CPU meanwhile.
pub async fn floor(
    client: &Client,
    spread: &Spread,
    n: usize,
    limit: Duration,
    control_plane: &ControlPlane,
) -> Result<(Duration, Option<Cpu>)> {
    cluster::create_namespaces(client, spread).await?;
    let before = control_plane.cpu();
    let took = floor::run(client, spread, n, limit).await?;
    Ok((took, used_since(control_plane, before)))
}

/// The control plane's CPU since `before` (read from `control_plane`).
fn used_since(control_plane: &ControlPlane, before: Option<Cpu>) -> Option<Cpu> {
    control_plane.cpu()?.since(&before?)
}

/// Runs the operator contender.
pub async fn operator(setup: &Setup<'_>) -> Result<OperatorFigures> {
    let Setup { client, launch, n, limit, finalizer_policy, control_plane, .. } = *setup;
    let spread = &launch.spread;
    cluster::create_namespaces(client, spread).await?;
    if finalizer_policy {
        cluster::bind_finalizer_policy(client, spread, limit).await?;
    }
    let webapps = (0..n).map(|i| fixture::webapp(&spread.namespace_of(i), i)).collect::<Result<Vec<_>>>()?;
    let names: Vec<Placed> = (0..n).map(|i| spread.place(i, fixture::name(i))).collect();

    let operator = Operator::start(launch).await?;
    let idle = operator.usage()?;
    let before = operator.metrics().await?;

    // Convergence: from the first create to all Running.
    let start = Instant::now();
    let control_plane_before = control_plane.cpu();
    let all_running = {
        let (spread, client) = (spread.clone(), client.clone());
        tokio::spawn(async move {
            wait::until_count(&spread, &client, n, wait::running, limit, "all WebApps Running").await
        })
    };
    cluster::create_webapps(client, webapps).await?;
    let converged = all_running.await.map_err(|e| BenchError::Task(e.to_string()))??;
    let converge_seconds = (converged - start).as_secs_f64();
    let control_plane_cpu = used_since(control_plane, control_plane_before);
    let at_converge = operator.usage()?;
    let settled = settle(&operator, limit).await?;
    let events = event_writes_in(client, spread).await?;
    let converge = Counts::between(&before, &settled, events, n);

    // Forced resync: a metadata-only change on every WebApp, one reconcile each.
    let start = Instant::now();
    annotate(client, &names, RESYNC, "all").await?;
    let resynced = reconciled(&operator, settled.reconciles() + n as u64, limit).await?;
    let resync_seconds = start.elapsed().as_secs_f64();
    let events_after = event_writes_in(client, spread).await?;
    let resync = Counts::between(&settled, &resynced, events_after - events, n);

    // Spec changes: idle, then while the other WebApps resync wave after wave.
    let mut images = Images::watch(spread, client);
    let probes = setup.samples.min(n / 2).max(1);
    let (probe_names, others) = names.split_at(probes);
    let latency_idle =
        with_operator_parts(&operator, spec_changes(client, &mut images, probe_names, Round::Idle, limit)).await?;
    if let Some((last, placed)) = probe_names.iter().enumerate().next_back() {
        images.wait_rolled_out(placed, &Round::Idle.image(last), limit).await?;
    }
    let latency_settled =
        with_operator_parts(&operator, spec_changes(client, &mut images, probe_names, Round::Settled, limit)).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let waves = tokio::spawn(resync_waves(client.clone(), others.to_vec(), stop.clone(), launch.metrics, limit));
    let latency_resync =
        with_operator_parts(&operator, spec_changes(client, &mut images, probe_names, Round::Resync, limit)).await;
    stop.store(true, Ordering::Relaxed);
    let waves = waves.await.map_err(|e| BenchError::Task(e.to_string()))??;
    let mut latency_resync = latency_resync?;
    latency_resync.resync_waves = waves;

    wait::until_count(spread, client, n, wait::running, limit, "all WebApps Running again").await?;
    settle(&operator, limit).await?;
    let at_end = operator.usage()?;
    let events_before_restart = event_writes_in(client, spread).await?;
    operator.stop().await?;

    // Restart: a new process, until every WebApp has been reconciled once.
    let operator = Operator::start(launch).await?;
    let started = operator.started;
    let restarted = reconciled(&operator, n as u64, limit).await?;
    let restart_seconds = started.elapsed().as_secs_f64();
    let events_restart = event_writes_in(client, spread).await? - events_before_restart;
    let restart = Restart {
        seconds: restart_seconds,
        counts: Counts::between(&Metrics::default(), &restarted, events_restart, n),
        peak_rss_kib: operator.usage()?.peak_rss_kib,
    };
    operator.stop().await?;

    Ok(OperatorFigures {
        converge_seconds,
        cpu_seconds: at_converge.cpu_seconds - idle.cpu_seconds,
        cpu_seconds_total: at_end.cpu_seconds,
        idle_rss_kib: idle.rss_kib,
        peak_rss_kib: at_end.peak_rss_kib,
        file_rss_kib: at_end.file_rss_kib,
        converge,
        resync,
        resync_seconds,
        restart,
        latency_idle,
        latency_settled: Some(latency_settled),
        latency_resync,
        finalizer_policy,
        control_plane_cpu,
    })
}

/// The latencies of `round`, with the operator's queue wait and PATCH round trips over
/// the same stretch (its `workqueue_queue_duration_seconds` and
/// `rest_client_request_duration_seconds`, scraped before and after).
async fn with_operator_parts(operator: &Operator, round: impl Future<Output = Result<Latency>>) -> Result<Latency> {
    let before = operator.metrics().await?;
    let latency = round.await?;
    let after = operator.metrics().await?;
    Ok(latency.with_operator_parts(
        &after.queue_wait().since(&before.queue_wait()),
        &after.patch_round_trip().since(&before.patch_round_trip()),
    ))
}

/// Waits until the operator's writes stop (unchanged for a second): the status writes
/// and Events that trail the last `Running`. Returns the metrics then.
async fn settle(operator: &Operator, limit: Duration) -> Result<Metrics> {
    let start = Instant::now();
    let mut last = operator.metrics().await?;
    let mut quiet = 0;
    while quiet < 4 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = operator.metrics().await?;
        quiet = if now.writes() == last.writes() { quiet + 1 } else { 0 };
        last = now;
        if start.elapsed() > limit {
            return Err(BenchError::Timeout(limit, "the operator's writes to stop".into()));
        }
    }
    Ok(last)
}

/// Waits until the operator has counted `reconciles` successful reconciles.
async fn reconciled(operator: &Operator, reconciles: u64, limit: Duration) -> Result<Metrics> {
    let start = Instant::now();
    loop {
        let metrics = operator.metrics().await?;
        if metrics.reconciles() >= reconciles {
            return Ok(metrics);
        }
        if start.elapsed() > limit {
            return Err(BenchError::Timeout(limit, format!("{reconciles} reconciles")));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Annotates `names` again and again, each wave waiting until the operator has
/// reconciled as many WebApps as it annotated, until `stop`. Returns the waves made.
async fn resync_waves(
    client: Client,
    names: Vec<Placed>,
    stop: Arc<AtomicBool>,
    metrics: SocketAddr,
    limit: Duration,
) -> Result<u64> {
    let mut waves = 0;
    while !stop.load(Ordering::Relaxed) && !names.is_empty() {
        let before = scrape(metrics).await?.reconciles();
        waves += 1;
        annotate(&client, &names, RESYNC, &format!("wave-{waves}")).await?;
        let start = Instant::now();
        while scrape(metrics).await?.reconciles() < before + names.len() as u64 {
            if start.elapsed() > limit {
                return Err(BenchError::Timeout(limit, "a resync wave".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    Ok(waves)
}

/// A round of spec changes: what else goes on meanwhile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Round {
    /// Back to back, nothing else changing: each change may meet the rollouts of the
    /// changes before it on the API server.
    Idle,
    /// Each change waits until the rollout of the one before it is done, so that it
    /// meets an API server with nothing else to do: what remains is the operator's
    /// own time and one round trip of each request and watch event.
    Settled,
    /// While the other WebApps resync, wave after wave.
    Resync,
}

impl Round {
    /// The image the `i`-th change of this round sets.
    fn image(self, i: usize) -> String {
        let round = match self {
            Round::Idle => "idle",
            Round::Settled => "settled",
            Round::Resync => "resync",
        };
        format!("nginx:bench-{round}-{i}")
    }
}

/// Changes the image of each WebApp of `names` in turn and times each change from the
/// patch until the Deployment carries the new image.
async fn spec_changes(
    client: &Client,
    images: &mut Images,
    names: &[Placed],
    round: Round,
    limit: Duration,
) -> Result<Latency> {
    let (mut millis, mut after_patch) = (Vec::with_capacity(names.len()), Vec::with_capacity(names.len()));
    for (i, placed) in names.iter().enumerate() {
        let Placed { namespace, name } = placed;
        let image = round.image(i);
        let patch = json!({"spec": {"image": image}});
        let start = Instant::now();
        webapps_in(client, namespace)
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .map_err(kube(format!("patch the image of WebApp {namespace}/{name}")))?;
        let patched = Instant::now();
        images.wait_for(placed, &image, limit).await?;
        millis.push(start.elapsed().as_secs_f64() * 1000.0);
        after_patch.push(patched.elapsed().as_secs_f64() * 1000.0);
        if round == Round::Settled {
            images.wait_rolled_out(placed, &image, limit).await?;
        }
    }
    Ok(Latency::with_parts(millis, after_patch))
}
