//! Harness of the end-to-end tests on a real node (`CLUSTER_REAL_NODE=1`): the cluster
//! and its tools ([`cluster`]), test namespaces and pods ([`namespace`]), port-forwards
//! and the TCP clients that check what answers through them ([`forward`]), and waiting
//! for evidence ([`wait`]). `hack/test-real-node` starts the cluster, installs the
//! operator from its chart and image, and runs these tests; without it they fail.

pub mod cluster;
pub mod forward;
pub mod namespace;
pub mod wait;
