//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), so that
//! two replicas never reconcile at the same time.

use kube::Client;

use super::{ManagerError, Shutdown};

/// Name of the Lease.
pub const LEASE: &str = "webapp-operator-leader";

/// Blocks until this instance holds the Lease (or shutdown is asked for). The Lease is
/// then renewed in the background; losing it ends the process, the safe choice for a
/// replica that may no longer act (its restart queues it for the Lease again).
pub async fn wait_for_leadership(
    client: Client,
    namespace: &str,
    instance: Option<String>,
    shutdown: Shutdown,
) -> Result<(), ManagerError> {
    let mut builder = kube_lease_manager::LeaseManagerBuilder::new(client, LEASE)
        .with_namespace(namespace)
        .with_duration(15)
        .with_grace(5);
    if let Some(identity) = instance {
        builder = builder.with_identity(identity);
    }
    let manager = builder.build().await.map_err(ManagerError::Leader)?;
    let (mut leader, _task) = manager.watch().await;
    tracing::info!(lease = LEASE, namespace, "waiting for leadership");
    tokio::select! {
        result = leader.wait_for(|is_leader| *is_leader) => {
            if result.is_err() {
                return Err(ManagerError::Leader(kube_lease_manager::LeaseManagerError::InconsistentState("lease task ended".into())));
            }
        }
        _ = shutdown.clone() => return Ok(()),
    }
    tracing::info!("became leader");
    tokio::spawn(async move {
        if leader.wait_for(|is_leader| !*is_leader).await.is_ok() {
            tracing::error!("lost the leader Lease; exiting so that another replica takes over");
            std::process::exit(1);
        }
    });
    Ok(())
}
