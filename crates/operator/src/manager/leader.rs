//! Leader election on a `coordination.k8s.io/v1` Lease (kube-lease-manager), so that
//! two replicas never reconcile at the same time. A leader that shuts down releases the
//! Lease, and a standby notices within [`RELEASE_POLL`] instead of waiting for it to
//! expire.

use futures::FutureExt;
use futures::future::{BoxFuture, Shared};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;

use super::{ManagerError, Shutdown};

/// Name of the Lease unless `--leader-election-id` names another.
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

/// How often a standby looks whether the leader released the Lease. kube-lease-manager's
/// standby only looks again when the lock it saw would have expired (up to the whole
/// lease duration after a release); this bounds the hand-over by a graceful shutdown.
pub const RELEASE_POLL: std::time::Duration = std::time::Duration::from_secs(2);

/// Registers `leader_election_master_status` (controller-runtime's name): 1 while this
/// replica holds the Lease, 0 otherwise. Tells which replica leads, and that an old
/// leader noticed it lost the Lease.
pub fn register(registry: &mut Registry) -> Gauge {
    let leading = Gauge::default();
    registry.register(
        "leader_election_master_status",
        "Whether this replica holds the leader Lease (1) or not (0)",
        leading.clone(),
    );
    leading
}

/// Waits until this instance holds the Lease `(namespace, name)`; `None` if shutdown came first. `leading`
/// is set to 1 then, and back to 0 when the Lease is lost.
pub async fn acquire(
    client: Client,
    (namespace, lease): (&str, &str),
    instance: Option<String>,
    shutdown: Shutdown,
    leading: Gauge,
) -> Result<Option<Leadership>, ManagerError> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), namespace);
    tracing::info!(lease, namespace, "waiting for leadership");
    let (mut leader, task) = loop {
        let mut builder = kube_lease_manager::LeaseManagerBuilder::new(client.clone(), lease)
            .with_namespace(namespace)
            .with_duration(LEASE_DURATION_SECONDS)
            .with_grace(RENEW_GRACE_SECONDS);
        if let Some(identity) = &instance {
            builder = builder.with_identity(identity.clone());
        }
        let manager = builder.build().await.map_err(ManagerError::Leader)?;
        let (mut leader, task) = manager.watch().await;
        tokio::select! {
            result = leader.wait_for(|is_leader| *is_leader) => {
                if result.is_err() {
                    return Err(ManagerError::Leader(kube_lease_manager::LeaseManagerError::InconsistentState("lease task ended".into())));
                }
            }
            () = released(&leases) => {
                // A manager started now finds the Lease free and takes it at once.
                task.abort();
                tracing::debug!("the Lease was released; trying to take it now");
                continue;
            }
            _ = shutdown.clone() => return Ok(None),
        }
        break (leader, task);
    };
    tracing::info!("became leader");
    leading.set(1);
    let lost = async move {
        // Also resolves if the lease task dies: without it we cannot know we lead.
        let _ = leader.wait_for(|is_leader| !*is_leader).await;
        leading.set(0);
        tracing::error!("lost the leader Lease; cancelling in-flight reconciles and stopping");
    }
    .boxed()
    .shared();
    Ok(Some(Leadership { lost, task }))
}

/// Resolves once the Lease is seen without a holder (its leader released it), looking
/// every [`RELEASE_POLL`]. A failed read is a look that saw nothing.
async fn released(leases: &Api<Lease>) {
    loop {
        tokio::time::sleep(RELEASE_POLL).await;
        if let Ok(Some(lease)) = leases.get_opt(LEASE).await
            && lease.spec.and_then(|spec| spec.holder_identity).is_none()
        {
            return;
        }
    }
}
