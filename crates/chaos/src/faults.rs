//! The faults, one phase each: the churn runs while the fault is injected, then stops,
//! and the invariants are checked. Each phase returns its row of the report.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::events::v1::Event;
use kube::Api;
use kube::api::{ListParams, Patch, PatchParams};
use serde_json::json;
use tokio::time::Instant;
use webapp_bench::error::{BenchError, Result, io, kube};
use webapp_operator::manager::leader::{LEASE, LEASE_DURATION_SECONDS, RENEW_GRACE_SECONDS};

use crate::check::check;
use crate::cli::describe;
use crate::counters::Counters;
use crate::fleet::{Instance, Launch};
use crate::probe::{self, Probe};
use crate::report::Row;
use crate::rng::Rng;
use crate::workload::{Churn, Shared, Target};

/// How long a recovery probe may take before it counts as no recovery: about 5 times the
/// slowest recovery measured (12.8 s, a leader failover counted from the kill; a kill
/// 4.7 s, an API server restart 4.1 s; docs/reliability.md), so a slow recovery fails
/// the run instead of hiding in a generous limit, with room for a loaded CI machine.
const PROBE_LIMIT: Duration = Duration::from_secs(60);

/// Everything the phases share.
pub struct Suite {
    /// Where the churn writes.
    pub target: Target,
    /// The expected state.
    pub model: Shared,
    /// The seed's stream of choices.
    pub rng: Rng,
    /// How operators start.
    pub launch: Launch,
    /// The recovery probe.
    pub probe: Probe,
    /// `hack/cluster/restart`.
    pub restart: PathBuf,
    /// Bound of the convergence after each phase.
    pub bound: Duration,
    /// Pause between churn operations, in milliseconds (min, max).
    pub pause: (u64, u64),
    /// Each instance's counters as the last phase's check read them.
    pub counted: BTreeMap<String, Counters>,
}

impl Suite {
    fn churn(&mut self) -> Churn {
        Churn::start(self.target.clone(), self.model.clone(), self.rng.fork(), self.pause)
    }

    async fn sleep_between(&mut self, lo: u64, hi: u64) {
        tokio::time::sleep(Duration::from_millis(self.rng.between(lo, hi))).await;
    }

    /// Checks the invariants, and the reconcile counters of `instances` made since the
    /// last check (of every process, the killed ones too), into `row`. A counter that
    /// cannot be read fails the row.
    async fn finish(&mut self, row: &mut Row, instances: &mut [&mut Instance]) -> Result<()> {
        row.verdict = check(&self.target, &self.model, self.bound).await.map_err(kube("check the invariants"))?;
        row.notes.push(format!("compared: {}", row.verdict.compared));
        for instance in instances {
            row.problems.extend(instance.take_unreadable());
            let total = match instance.counters().await {
                Ok(total) => total,
                Err(error) => {
                    row.problems.push(format!("{}: counters unreadable: {}", instance.name, describe(&error)));
                    continue;
                }
            };
            let during = total.since(self.counted.get(&instance.name).unwrap_or(&Counters::default()));
            row.notes.push(format!(
                "{}: reconcile counters of {} killed processes and the running one ({} reconciles since the last check)",
                instance.name,
                instance.killed_and_counted,
                ["success", "requeue", "error"].iter().map(|r| during.reconciles(r)).sum::<u64>()
            ));
            row.problems.extend(during.problems().into_iter().map(|p| format!("{}: {p}", instance.name)));
            let errors = during.errors_by_reason();
            if !errors.is_empty() {
                let list: Vec<String> = errors.iter().map(|(r, n)| format!("{r} {n}")).collect();
                row.notes.push(format!("{} reconcile errors by reason: {}", instance.name, list.join(", ")));
            }
            self.counted.insert(instance.name.clone(), total);
        }
        Ok(())
    }

    /// Operator kill -9 at random moments, restarted after a random pause.
    pub async fn kills(&mut self, solo: &mut Instance, kills: usize) -> Result<Row> {
        let mut row = Row { fault: "operator kill -9".into(), ..Row::default() };
        let churn = self.churn();
        for _ in 0..kills {
            self.sleep_between(500, 4000).await;
            solo.kill().await?;
            row.injected += 1;
            self.sleep_between(0, 2000).await;
            solo.start(&self.launch).await?;
            let started = Instant::now();
            self.recover(&mut row, Some(started)).await;
        }
        churn.stop().await;
        self.finish(&mut row, &mut [solo]).await?;
        Ok(row)
    }

    /// A control-plane component (kube-apiserver, etcd) killed and restarted during the
    /// churn; the operator is not restarted.
    pub async fn restarts(&mut self, solo: &mut Instance, component: &str, times: usize) -> Result<Row> {
        let mut row = Row { fault: format!("{component} restart"), ..Row::default() };
        let churn = self.churn();
        for _ in 0..times {
            self.sleep_between(1000, 4000).await;
            let before = solo.request_metrics().await?;
            let down = Instant::now();
            let pause = format!("{:.1}", self.rng.between(0, 2000) as f64 / 1000.0);
            let status = tokio::process::Command::new(&self.restart)
                .args([component, &pause])
                .stdout(Stdio::null())
                .status()
                .await
                .map_err(io(format!("run {}", self.restart.display())))?;
            if !status.success() {
                return Err(BenchError::Operator(format!("{} {component} failed: {status}", self.restart.display())));
            }
            row.injected += 1;
            let outage = down.elapsed();
            let back = Instant::now();
            self.recover(&mut row, Some(back)).await;
            if solo.crashed() {
                row.problems.push(format!("the operator exited during the {component} restart"));
                solo.start(&self.launch).await?;
                continue;
            }
            let after = solo.request_metrics().await?;
            let rate = (after.requests() - before.requests()) as f64 / (outage + back.elapsed()).as_secs_f64();
            row.notes.push(format!(
                "outage {:.1} s; operator requests {:.1}/s from the kill until it acted again (backoff, not a storm)",
                outage.as_secs_f64(),
                rate
            ));
            // A client that retried without backoff would send thousands per second.
            if rate > 200.0 {
                row.problems.push(format!("{rate:.0} requests/s around the {component} restart: no backoff"));
            }
        }
        churn.stop().await;
        // kube-controller-manager and kube-scheduler exit when they cannot renew their
        // own leader Lease during the outage (about 10 s); a real cluster's supervisor
        // restarts them, kwokctl's binary runtime does not: `up` does.
        let up = self.restart.with_file_name("up");
        let status = tokio::process::Command::new(&up)
            .stdout(Stdio::null())
            .status()
            .await
            .map_err(io(format!("run {}", up.display())))?;
        if !status.success() {
            return Err(BenchError::Operator(format!("{} failed: {status}", up.display())));
        }
        self.finish(&mut row, &mut [solo]).await?;
        Ok(row)
    }

    /// Another writer changes the probe's Deployment (replicas, then image) every
    /// `every` for `seconds`, `fights` times; the operator must restore it each time,
    /// write at a bounded rate meanwhile, and go quiet once the fighter stops.
    pub async fn fighter(&mut self, solo: &mut Instance, fights: usize, seconds: u64) -> Result<Row> {
        let mut row = Row { fault: "writer fighting back".into(), ..Row::default() };
        let every = Duration::from_millis(300);
        let manager = PatchParams { field_manager: Some("chaos-fighter".into()), ..PatchParams::default() };
        for round in 0..fights {
            let before = solo.request_metrics().await?.writes();
            let start = Instant::now();
            let mut writes = 0u64;
            while start.elapsed() < Duration::from_secs(seconds) {
                let wrote = Instant::now();
                let patch = if writes.is_multiple_of(2) {
                    json!({"spec": {"replicas": probe::REPLICAS + 3}})
                } else {
                    json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": format!("nginx:fighter-{round}")}]}}}})
                };
                let patch = match self.probe.deployments.get(probe::NAME).await {
                    // A strategic merge keyed on the container name; the container's
                    // real name is used, whatever it is.
                    Ok(d) if !writes.is_multiple_of(2) => {
                        let name = d
                            .spec
                            .and_then(|s| s.template.spec)
                            .and_then(|s| s.containers.first().map(|c| c.name.clone()));
                        let mut patch = patch;
                        patch["spec"]["template"]["spec"]["containers"][0]["name"] = json!(name.unwrap_or_default());
                        patch
                    }
                    _ => patch,
                };
                self.probe
                    .deployments
                    .patch(probe::NAME, &manager, &Patch::Strategic(&patch))
                    .await
                    .map_err(kube("the fighter's write"))?;
                writes += 1;
                let wanted = (self.probe.image(), probe::REPLICAS);
                match restored(&self.probe, &wanted, Duration::from_secs(10)).await {
                    Some(took) => row.recovery.push(took),
                    None => row.problems.push(format!("write {writes} of the fighter was not undone within 10 s")),
                }
                tokio::time::sleep(every.saturating_sub(wrote.elapsed())).await;
            }
            row.injected += writes as usize;
            let fought = start.elapsed().as_secs_f64();
            let during = solo.request_metrics().await?.writes() - before;
            // Each fighter write costs the operator the apply that undoes it and what
            // the rollout it caused shows: `Creating` and `Running` (a transition each),
            // perhaps a pod count that changed meanwhile, and an Event with each
            // (DeploymentSynced, Running), up to 7; a small run measured 6.5. Bounded
            // by the fighter's own rate, never a hot loop (which would be hundreds).
            let bound = 8 * writes + 10;
            row.notes.push(format!(
                "round {round}: {writes} fighter writes in {fought:.1} s ({:.1}/s); operator writes {during} ({:.1}/s, bound {bound})",
                writes as f64 / fought,
                during as f64 / fought
            ));
            if during > bound {
                row.problems.push(format!("{during} operator writes against {writes} fighter writes"));
            }
            match quiet(solo, Duration::from_secs(30)).await? {
                Some(after) => row.notes.push(format!(
                    "round {round}: operator writes stopped {:.1} s after the fighter",
                    after.as_secs_f64()
                )),
                None => row.problems.push("the operator kept writing 30 s after the fighter stopped".into()),
            }
        }
        self.finish(&mut row, &mut [solo]).await?;
        Ok(row)
    }

    /// Two replicas with leader election; the leader is killed with SIGKILL mid-churn.
    pub async fn failover(&mut self, pair: &mut [Instance; 2], times: usize) -> Result<Row> {
        let mut row = Row { fault: "leader failover (kill -9 leader)".into(), ..Row::default() };
        let leases: Api<Lease> = Api::namespaced(self.target.client.clone(), &self.target.namespace);
        let bound = Duration::from_secs(LEASE_DURATION_SECONDS + RENEW_GRACE_SECONDS);
        pair[0].start(&self.launch).await?;
        wait_holder(&leases, &pair[0].name, Duration::from_secs(60)).await?;
        pair[1].start(&self.launch).await?;
        let churn = self.churn();
        let mut takeovers = Vec::new();
        for _ in 0..times {
            self.sleep_between(2000, 6000).await;
            let holder = lease(&leases).await?.0;
            let Some(leader) = pair.iter().position(|i| i.name == holder) else {
                row.problems.push(format!("the Lease is held by {holder:?}, neither replica"));
                break;
            };
            let standby = 1 - leader;
            // Its running process has been a standby all its life; unread, it proves nothing.
            match pair[standby].current_counters().await {
                Ok(counters) => {
                    let acted: u64 = ["success", "requeue", "error"].iter().map(|r| counters.reconciles(r)).sum();
                    if acted > 0 {
                        row.problems.push(format!(
                            "standby {} reconciled {acted} times while {holder} led",
                            pair[standby].name
                        ));
                    }
                }
                Err(error) => row.problems.push(format!(
                    "standby {}: counters unreadable, so its idleness is unproven: {}",
                    pair[standby].name,
                    describe(&error)
                )),
            }
            let killed = Instant::now();
            pair[leader].kill().await?;
            let dead_at = now_ms();
            row.injected += 1;
            let took = wait_holder(&leases, &pair[standby].name, bound + Duration::from_secs(30)).await?;
            let takeover = killed.elapsed();
            takeovers.push(takeover);
            if takeover > bound {
                row.problems.push(format!("takeover took {:.1} s, over {} s", takeover.as_secs_f64(), bound.as_secs()));
            }
            // Two leaders at once: the new one acquired while the old one still ran, or
            // the old one wrote (an Event) after the new one acquired.
            if took < dead_at {
                row.problems.push(format!(
                    "{} acquired the Lease {} ms before the old leader died",
                    pair[standby].name,
                    dead_at - took
                ));
            }
            for late in late_events(&self.target, &pair[leader].name, took).await? {
                row.problems.push(format!("the old leader wrote after the takeover: {late}"));
            }
            self.recover(&mut row, Some(killed)).await;
            pair[leader].start(&self.launch).await?;
        }
        churn.stop().await;
        let (p50, max) = crate::report::p50_max(&takeovers);
        row.notes.push(format!(
            "takeover p50 {p50:.1} s, max {max:.1} s (Lease {LEASE_DURATION_SECONDS} s + renew grace {RENEW_GRACE_SECONDS} s = bound {} s); recovery counts from the kill",
            bound.as_secs()
        ));
        let [a, b] = pair;
        self.finish(&mut row, &mut [a, b]).await?;
        Ok(row)
    }

    /// Times the probe and records it as the fault's recovery (or a problem).
    async fn recover(&mut self, row: &mut Row, since: Option<Instant>) {
        match self.probe.measure(since, PROBE_LIMIT).await {
            Some(took) => row.recovery.push(took),
            None => row
                .problems
                .push(format!("the operator did not act within {} s after the fault", PROBE_LIMIT.as_secs())),
        }
    }
}

/// Waits until the probe's Deployment shows `wanted` again; how long it took.
async fn restored(probe: &Probe, wanted: &(String, i32), limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if probe.current().await.as_ref() == Some(wanted) {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    None
}

/// Waits until the operator has made no write for 2 s; how long after the call.
async fn quiet(instance: &Instance, limit: Duration) -> Result<Option<Duration>> {
    let start = Instant::now();
    let (mut last, mut since) = (instance.request_metrics().await?.writes(), Instant::now());
    while start.elapsed() < limit {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = instance.request_metrics().await?.writes();
        if now != last {
            (last, since) = (now, Instant::now());
        } else if since.elapsed() >= Duration::from_secs(2) {
            return Ok(Some(since.duration_since(start)));
        }
    }
    Ok(None)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// The Lease's holder and acquire time (ms since the epoch).
async fn lease(leases: &Api<Lease>) -> Result<(String, i64)> {
    let spec = leases.get_opt(LEASE).await.map_err(kube("read the Lease"))?.and_then(|l| l.spec);
    let holder = spec.as_ref().and_then(|s| s.holder_identity.clone()).unwrap_or_default();
    let acquired = spec.and_then(|s| s.acquire_time).map_or(0, |t| t.0.as_millisecond());
    Ok((holder, acquired))
}

/// Waits until `name` holds the Lease; returns its acquire time (ms since the epoch).
async fn wait_holder(leases: &Api<Lease>, name: &str, limit: Duration) -> Result<i64> {
    let start = Instant::now();
    loop {
        if let Ok((holder, acquired)) = lease(leases).await
            && holder == name
        {
            return Ok(acquired);
        }
        if start.elapsed() > limit {
            return Err(BenchError::Timeout(limit, format!("{name} to hold the Lease")));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Events `instance` reported after `after_ms`.
async fn late_events(target: &Target, instance: &str, after_ms: i64) -> Result<Vec<String>> {
    let api: Api<Event> = Api::namespaced(target.client.clone(), &target.namespace);
    let events = api.list(&ListParams::default()).await.map_err(kube("list Events"))?;
    Ok(events
        .items
        .into_iter()
        .filter(|e| e.reporting_instance.as_deref() == Some(instance))
        .filter_map(|e| {
            let last = e.series.as_ref().map(|s| s.last_observed_time.0.as_millisecond());
            let at = last.or(e.event_time.as_ref().map(|t| t.0.as_millisecond()))?;
            (at > after_ms).then(|| format!("{} {} at {at}", e.reason.unwrap_or_default(), e.note.unwrap_or_default()))
        })
        .collect())
}
