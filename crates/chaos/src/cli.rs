//! The command line and the run: profile, seed, setup, the phases in order, the
//! report, cleanup, and the exit status.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, ValueEnum};
use k8s_openapi::api::core::v1::PersistentVolume;
use kube::Client;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::json;
use webapp_bench::cluster;
use webapp_bench::error::{BenchError, Result, io, kube};

use crate::faults::Suite;
use crate::fleet::{self, Instance, Launch};
use crate::kinds::Kind;
use crate::probe::Probe;
use crate::report::{self, Recorder, Row};
use crate::rng::Rng;
use crate::workload::{self, LABEL, Model, Target, lock};

/// How much chaos.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Profile {
    /// `make chaos`: 200 names, 20 kills, 2 restarts of each component, 2 failovers.
    Full,
    /// `make test` (CI): every fault once or a few times, about 30 objects.
    Small,
}

/// Chaos suite: the operator binary under faults, invariants checked afterwards.
#[derive(Debug, Parser)]
#[command(name = "webapp-chaos", about)]
pub struct Cli {
    /// How much chaos.
    #[arg(long, value_enum, default_value_t = Profile::Small)]
    pub profile: Profile,
    /// Seed of every random choice (default: from the clock; printed, so a run can be replayed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The operator binary (a release build for `make chaos`).
    #[arg(long, default_value = "target/release/webapp-operator")]
    pub operator: PathBuf,
    /// Script that kills and restarts one control-plane component of this cluster.
    #[arg(long, default_value = "hack/cluster/restart")]
    pub restart_script: PathBuf,
    /// Namespace of the run (created; deleted afterwards).
    #[arg(long)]
    pub namespace: Option<String>,
    /// Where the operators' logs go.
    #[arg(long, default_value = "/tmp")]
    pub log_dir: PathBuf,
    /// Operator kills (default: 20 in the full profile, 3 in the small one).
    #[arg(long)]
    pub kills: Option<usize>,
    /// Keep the namespace afterwards, for a look at what failed.
    #[arg(long)]
    pub keep: bool,
    /// Also write each row, as it ends, to this file (one JSON line per row): the raw
    /// figures a table in the docs is made from.
    #[arg(long, value_name = "FILE")]
    pub raw: Option<PathBuf>,
    /// Run nothing: print the table and notes of a run from its raw file (`--raw`).
    #[arg(long, value_name = "FILE")]
    pub table_from: Option<PathBuf>,
}

struct Plan {
    per_kind: BTreeMap<Kind, usize>,
    kills: usize,
    restarts: usize,
    failovers: usize,
    fights: usize,
    fight_seconds: u64,
    bound: Duration,
}

impl Plan {
    fn of(profile: Profile, kills: Option<usize>) -> Self {
        // The convergence bound covers the control plane's recovery as well as the
        // operator's: after an etcd restart the restarted controller manager waits for
        // its Lease and re-lists before Deployments report their pods ready again. That
        // varies with the machine's load: 14 to 206 s in the small runs of 2026-12-03
        // (usually 10 to 25 s); the bound is about 2 times the slowest. How soon the
        // operator itself acts is the probe's limit (faults::PROBE_LIMIT, 60 s), the
        // same for both profiles.
        let (counts, kills_default, restarts, failovers, fights, fight_seconds, bound) = match profile {
            Profile::Full => ([80, 40, 40, 30, 10], 20, 2, 2, 2, 10, 420),
            Profile::Small => ([10, 6, 6, 5, 3], 3, 1, 1, 1, 4, 420),
        };
        Plan {
            per_kind: Kind::ALL.into_iter().zip(counts).collect(),
            kills: kills.unwrap_or(kills_default),
            restarts,
            failovers,
            fights,
            fight_seconds,
            bound: Duration::from_secs(bound),
        }
    }
}

/// The populate step as a row: every name of the plan created, none refused (a kind
/// whose random specs the schema began to refuse would otherwise vanish from every
/// check), each kind with live objects to check.
fn populated(model: &crate::workload::Shared, planned: &BTreeMap<Kind, usize>) -> Row {
    let model = lock(model);
    let mut row = Row { fault: "populate".into(), injected: 1, ..Row::default() };
    let live = |kind: Kind| model.slots.iter().filter(|s| s.live && s.kind == kind).count();
    let counts: Vec<String> = planned.keys().map(|kind| format!("{} {}", live(*kind), kind.name())).collect();
    eprintln!("populated: {}", counts.join(", "));
    row.notes.push(format!("live objects checked: {}", counts.join(", ")));
    for kind in planned.keys() {
        if live(*kind) == 0 {
            row.problems.push(format!("no {} was created: nothing of that kind is checked", kind.name()));
        }
    }
    if model.ops.refused > 0 {
        row.problems
            .push(format!("{} creates were refused while populating (see the operator's schema)", model.ops.refused));
    }
    row.verdict.objects = model.slots.iter().filter(|s| s.live).count();
    row.verdict.converged = row.verdict.objects;
    row
}

impl Cli {
    /// Runs the suite; `Ok(false)` when an invariant failed.
    pub async fn execute(self) -> Result<bool> {
        if let Some(raw) = &self.table_from {
            let rows = report::read_raw(raw).map_err(io(format!("read {}", raw.display())))?;
            print!("{}\n{}", report::table(&rows), report::details(&rows));
            // It prints a past run; whether that run passed is in its table.
            return Ok(true);
        }
        let seed = self
            .seed
            .unwrap_or_else(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(1));
        let plan = Plan::of(self.profile, self.kills);
        let client = Client::try_default().await.map_err(kube("connect to the cluster of $KUBECONFIG"))?;
        let namespace = self.namespace.clone().unwrap_or_else(|| format!("chaos-{}", seed % 100_000));
        let objects: usize = plan.per_kind.values().sum();
        println!(
            "webapp-chaos: profile {:?}, seed {seed}, {objects} names ({}), namespace {namespace}, convergence bound {} s",
            self.profile,
            plan.per_kind.iter().map(|(k, n)| format!("{n} {}", k.name())).collect::<Vec<_>>().join(", "),
            plan.bound.as_secs()
        );
        println!("replay: webapp-chaos --profile {:?} --seed {seed}", self.profile);
        let load_start = cluster::load();
        cluster::create_namespace(&client, &namespace).await?;
        let target = Target { client: client.clone(), namespace: namespace.clone() };
        let started = std::time::Instant::now();
        let result = self.phases(&plan, seed, &target).await;
        println!(
            "run took {:.0} s; load average (1, 5, 15 min): {load_start} at the start, {} at the end",
            started.elapsed().as_secs_f64(),
            cluster::load()
        );
        // The report first: a cleanup that fails must not lose it. (Each row was printed
        // as its phase ended, too: this is the whole table in one piece.)
        let passed = result.as_ref().map(|rows| {
            print!("\n{}\n{}", report::table(rows), report::details(rows));
            rows.iter().all(Row::passed)
        });
        if let Ok(passed) = passed {
            println!("{}", if passed { "all invariants held" } else { "INVARIANTS FAILED (see PROBLEM lines)" });
        }
        if !self.keep
            && let Err(error) = cleanup(&target).await
        {
            eprintln!("webapp-chaos: cleanup: {}", describe(&error));
        }
        let passed = passed.ok();
        result?;
        Ok(passed.unwrap_or(false))
    }

    async fn phases(&self, plan: &Plan, seed: u64, target: &Target) -> Result<Vec<Row>> {
        let model = Arc::new(Mutex::new(Model::new(&plan.per_kind)));
        let launch = Launch {
            binary: self.operator.clone(),
            namespace: target.namespace.clone(),
            log_dir: self.log_dir.clone(),
        };
        let probe = Probe::create(&target.client, &target.namespace).await.map_err(kube("create the probe"))?;
        let mut suite = Suite {
            target: target.clone(),
            model: model.clone(),
            rng: Rng::new(seed),
            launch: launch.clone(),
            probe,
            restart: self.restart_script.clone(),
            bound: plan.bound,
            pause: (20, 200),
            counted: BTreeMap::new(),
        };
        let new = |name: &str, elect: bool| Instance::new(&launch, name, elect).map_err(io("pick a metrics port"));
        let mut solo = new("chaos-solo", false)?;
        let mut pair = [new("chaos-a", true)?, new("chaos-b", true)?];
        let logs: Vec<PathBuf> = [&solo, &pair[0], &pair[1]].iter().map(|i| i.log.clone()).collect();

        solo.start(&launch).await?;
        let mut populate_rng = suite.rng.fork();
        workload::populate(target, &model, &mut populate_rng).await;
        let raw = self.raw.as_ref().map(|p| format!("write {}", p.display())).unwrap_or_default();
        let mut rows = Recorder::new(self.raw.clone()).map_err(io(raw.clone()))?;
        let record = |rows: &mut Recorder, row: Row| rows.record(row).map_err(io(raw.clone()));
        record(&mut rows, populated(&model, &plan.per_kind))?;
        let started = std::time::Instant::now();
        let phase = |name: String| eprintln!("[{:>5.0} s] phase: {name}", started.elapsed().as_secs_f64());
        phase(format!("operator kill -9 x{}", plan.kills));
        record(&mut rows, suite.kills(&mut solo, plan.kills).await?)?;
        for component in ["kube-apiserver", "etcd"] {
            phase(format!("{component} restart x{}", plan.restarts));
            record(&mut rows, suite.restarts(&mut solo, component, plan.restarts).await?)?;
        }
        phase(format!("writer fighting back x{}", plan.fights));
        record(&mut rows, suite.fighter(&mut solo, plan.fights, plan.fight_seconds).await?)?;
        solo.kill().await?;
        phase(format!("leader failover x{}", plan.failovers));
        record(&mut rows, suite.failover(&mut pair, plan.failovers).await?)?;
        for instance in &mut pair {
            instance.kill().await?;
        }
        phase("done".into());

        // Across the run: no panic in any operator's log.
        let done = rows.rows();
        let mut total =
            Row { fault: "whole run".into(), injected: done.iter().map(|r| r.injected).sum(), ..Row::default() };
        total.verdict = done.last().map(|r| r.verdict.clone()).unwrap_or_default();
        total.verdict.problems.clear();
        total.recovery = done.iter().flat_map(|r| r.recovery.clone()).collect();
        // Counters that could not be read before the last kills: nothing checked them.
        let [a, b] = &mut pair;
        for instance in [&mut solo, a, b] {
            total.problems.extend(instance.take_unreadable());
        }
        for log in &logs {
            // An unreadable log would read as "no panic": it fails the run instead.
            match fleet::panics(log) {
                Ok(panics) => {
                    total.problems.extend(panics.into_iter().map(|l| format!("panic in {}: {l}", log.display())))
                }
                Err(error) => total.problems.push(format!("cannot read {}: {error}", log.display())),
            }
            let relists = std::fs::read_to_string(log)
                .unwrap_or_default()
                .lines()
                .filter(|l| l.contains("410") || l.contains("too old resource version"))
                .count();
            if relists > 0 {
                total
                    .notes
                    .push(format!("{relists} log lines of 410 Gone / too old resourceVersion in {}", log.display()));
            }
        }
        let ops = lock(&model).ops;
        total.notes.push(format!(
            "churn: {} creates, {} re-creates, {} spec updates, {} scales, {} deletes, {} refused, {} unknown outcome; {} objects created in all",
            ops.creates, ops.recreates, ops.updates, ops.scales, ops.deletes, ops.refused, ops.unknown, ops.creates + ops.recreates
        ));
        total.notes.push(format!(
            "operator logs: {}",
            logs.iter().map(|l| l.display().to_string()).collect::<Vec<_>>().join(", ")
        ));
        record(&mut rows, total)?;
        Ok(rows.into_rows())
    }
}

/// Deletes the run's namespace and volumes. The operators are stopped by now, so the
/// finalizers they would remove go first.
async fn cleanup(target: &Target) -> Result<()> {
    for kind in Kind::ALL {
        let api = target.api(kind);
        let names: Vec<String> = api
            .list_metadata(&ListParams::default())
            .await
            .map_err(kube("list for cleanup"))?
            .items
            .into_iter()
            .filter_map(|o| o.metadata.name)
            .collect();
        for name in names {
            let release = json!({"metadata": {"finalizers": null}});
            let _ = api.patch(&name, &PatchParams::default(), &Patch::Merge(&release)).await;
        }
        // Deleted through the version the suite uses: the namespace controller would
        // list PodManagers through v2, which needs the conversion webhook, gone by now.
        let _ = api.delete_collection(&DeleteParams::default(), &ListParams::default()).await;
    }
    cluster::delete_namespace(&target.client, &target.namespace, Duration::from_secs(120)).await?;
    let volumes: kube::Api<PersistentVolume> = kube::Api::all(target.client.clone());
    volumes
        .delete_collection(
            &DeleteParams::default(),
            &ListParams::default().labels(&format!("{LABEL}={}", target.namespace)),
        )
        .await
        .map_err(kube("delete the run's volumes"))?;
    Ok(())
}

/// Why the run could not go on (as opposed to an invariant that failed).
pub fn describe(error: &BenchError) -> String {
    webapp_operator::cli::error_chain(error)
}
