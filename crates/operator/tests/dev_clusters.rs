//! `make run`, `make test` and `make bench` each use a local control plane of their own,
//! so the README's two commands can run side by side: an operator left running by
//! `make run` never reconciles the tests' objects, and the tests never stop the cluster
//! `make run` uses. The scripts cannot be run here without starting clusters, so this
//! reads the cluster each one picks.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

fn read(file: &str) -> String {
    std::fs::read_to_string(common::repo().join(file)).unwrap()
}

/// The default of `CLUSTER_NAME` that `script` sets (`NAME=${CLUSTER_NAME:-default}`).
fn default_cluster(script: &str, assignment: &str) -> Option<String> {
    let line = read(script).lines().find_map(|l| l.trim().strip_prefix(assignment).map(str::to_owned))?;
    Some(line.strip_prefix("${CLUSTER_NAME:-")?.strip_suffix('}')?.to_owned())
}

#[test]
fn run_test_and_bench_each_have_a_cluster_of_their_own() {
    let run = default_cluster("hack/cluster/lib.sh", "name=").expect("hack/cluster/lib.sh names no default cluster");
    assert!(!read("hack/run-local").contains("CLUSTER_NAME"), "make run uses the default cluster");
    let test = default_cluster("hack/test", "export CLUSTER_NAME=").expect("hack/test picks no cluster of its own");
    let bench =
        default_cluster("bench/converge", "export CLUSTER_NAME=").expect("bench/converge picks no cluster of its own");
    assert_eq!(run, "webapp-operator");
    assert_ne!(test, run);
    assert_ne!(bench, run);
    assert_ne!(bench, test);
    // Tests started by hand (cargo test, no WEBAPP_TEST_KUBECONFIG) start the same one.
    assert_eq!(common::TEST_CLUSTER, test);
}
