//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), so that
//! two replicas never reconcile at the same time.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use kube::Client;
use tokio::task::JoinHandle;

use super::{ManagerError, Shutdown};

/// Name of the Lease.
pub const LEASE: &str = "webapp-operator-leader";

/// Seconds a Lease stays valid after its last renewal: how long a standby waits for a
/// leader that died without releasing it.
pub const LEASE_DURATION_SECONDS: u64 = 15;

/// Seconds before expiry at which the holder renews (kube-lease-manager's grace); a
/// standby retries when the Lease expires, so a takeover takes at most about
/// `LEASE_DURATION_SECONDS` plus this.
pub const RENEW_GRACE_SECONDS: u64 = 5;

/// The Lease, held. `lost` resolves if another replica takes it over; dropping every
/// clone of `lost` and calling [`Leadership::release`] gives it up.
pub struct Leadership {
    /// Resolves when the Lease was lost.
    pub lost: Shared<BoxFuture<'static, ()>>,
    task: JoinHandle<Result<kube_lease_manager::LeaseManager, kube_lease_manager::LeaseManagerError>>,
}

impl Leadership {
    /// Whether the Lease was lost (rather than given up).
    pub fn was_lost(&self) -> bool {
        self.lost.peek().is_some()
    }

    /// Gives the Lease up so that a standby replica takes over at once instead of
    /// waiting for it to expire. Every other clone of `lost` must be dropped first.
    pub async fn release(self) {
        drop(self.lost);
        // The lease task releases the Lease and ends once its channel has no receiver.
        match tokio::time::timeout(std::time::Duration::from_secs(5), self.task).await {
            Ok(Ok(Ok(_))) => tracing::info!("released the leader Lease"),
            Ok(Ok(Err(error))) => tracing::warn!(%error, "could not release the leader Lease"),
            Ok(Err(error)) => tracing::warn!(%error, "leader Lease task failed"),
            Err(_) => tracing::warn!("timed out releasing the leader Lease; it will expire"),
        }
    }
}

/// Waits until this instance holds the Lease; `None` if shutdown came first.
pub async fn acquire(
    client: Client,
    namespace: &str,
    instance: Option<String>,
    shutdown: Shutdown,
) -> Result<Option<Leadership>, ManagerError> {
    let mut builder = kube_lease_manager::LeaseManagerBuilder::new(client, LEASE)
        .with_namespace(namespace)
        .with_duration(LEASE_DURATION_SECONDS)
        .with_grace(RENEW_GRACE_SECONDS);
    if let Some(identity) = instance {
        builder = builder.with_identity(identity);
    }
    let manager = builder.build().await.map_err(ManagerError::Leader)?;
    let (mut leader, task) = manager.watch().await;
    tracing::info!(lease = LEASE, namespace, "waiting for leadership");
    tokio::select! {
        result = leader.wait_for(|is_leader| *is_leader) => {
            if result.is_err() {
                return Err(ManagerError::Leader(kube_lease_manager::LeaseManagerError::InconsistentState("lease task ended".into())));
            }
        }
        _ = shutdown => return Ok(None),
    }
    tracing::info!("became leader");
    let lost = async move {
        // Also resolves if the lease task dies: without it we cannot know we lead.
        let _ = leader.wait_for(|is_leader| !*is_leader).await;
        tracing::error!("lost the leader Lease; stopping");
    }
    .boxed()
    .shared();
    Ok(Some(Leadership { lost, task }))
}
