//! webapp-chaos: the operator's release binary, as its own process, against the local
//! control plane while faults are injected, with invariants checked after each fault.
//!
//! A [`workload`] churn drives all five kinds from a seed; [`faults`] injects operator
//! kills, kube-apiserver and etcd restarts, a writer that fights back and leader
//! failovers, one phase each; [`check`] waits for convergence and no stuck finalizer,
//! lists the namespace ([`listed`]) and checks [`invariants`]: no lost update (with
//! [`database`] and [`podmanager`] for those kinds' children), no orphan ([`orphans`]),
//! no duplicate; [`report`] prints the table. The operator process and its metrics come
//! from webapp-bench ([`fleet`] wraps them, [`counters`] sums them over restarts);
//! [`probe`] times recovery; [`kinds`] knows each kind's specs and children; [`rng`] is
//! the seed.

pub mod check;
pub mod cli;
pub mod counters;
pub mod database;
pub mod faults;
pub mod fleet;
pub mod invariants;
pub mod kinds;
pub mod listed;
pub mod orphans;
pub mod podmanager;
pub mod probe;
pub mod report;
pub mod rng;
pub mod workload;
