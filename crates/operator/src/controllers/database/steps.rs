//! The steps of a Database reconcile, and the report that turns their outcome into
//! status and events. The order matters: the Secret exists before the StatefulSet whose
//! pod reads it, and the plan reads the live StatefulSet (its claim template is fixed).

use std::fmt::Debug;
use std::sync::{Arc, LazyLock};

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolumeClaim, Secret, Service};
use k8s_openapi::jiff::Timestamp;
use kube::api::PostParams;
use kube::runtime::controller::Action;
use kube::{Api, Resource, ResourceExt};
use reconcile_kit::apply::{self, Applied};
use reconcile_kit::compact::{ChildCache, ReadCache};
use reconcile_kit::lifetime;
use reconcile_kit::owned::Owned;
use reconcile_kit::step::{Flow, Pipeline, StepContext, StepFuture, branch, step, timeout, when};
use reconcile_kit::{Error, MANAGER, Result, status as status_patch};
use serde::Serialize;
use serde::de::DeserializeOwned;
use webapp_api::{Database, Phase};

use super::credentials::{self, Password};
use super::plan::{self, Children, Live};
use super::status::{self, Observed};
use super::{Context, HEALTH_CHECK, STEP_BUDGET, kept, storage, volumes};
use reconcile_kit::assess::Failure;

/// One reconcile of one Database.
pub(super) struct Run {
    pub(super) ctx: Arc<Context>,
    pub(super) db: Arc<Database>,
    pub(super) namespace: String,
    pub(super) api: Api<Database>,
    pub(super) owned: Owned,
    pub(super) live: Option<StatefulSet>,
    pub(super) children: Option<Children>,
    pub(super) observed: Observed,
}

impl StepContext for Run {
    fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.db.name_any())
    }
}

impl Run {
    pub(super) fn new(ctx: Arc<Context>, db: Arc<Database>) -> Self {
        let namespace = db.namespace().unwrap_or_default();
        let api = Api::namespaced(ctx.client.clone(), &namespace);
        let owned = Owned::new(ctx.client.clone(), ctx.events.clone(), db.as_ref());
        Run { ctx, db, namespace, api, owned, live: None, children: None, observed: Observed::default() }
    }

    pub(super) fn name(&self) -> String {
        self.db.name_any()
    }

    pub(super) fn reference(&self) -> ObjectReference {
        self.db.object_ref(&())
    }

    pub(super) fn api_of<K: Resource<DynamicType = (), Scope = NamespaceResourceScope>>(&self) -> Api<K> {
        Api::namespaced(self.ctx.client.clone(), &self.namespace)
    }

    /// The generated Secret, as an event's related object.
    pub(super) fn secret_reference(&self) -> ObjectReference {
        ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("Secret".into()),
            name: Some(plan::generated_secret_name(&self.name())),
            namespace: Some(self.namespace.clone()),
            ..ObjectReference::default()
        }
    }

    /// The data volume of this Database's server, if it exists and is ours (kept from a
    /// deleted Database of this name, too). Read from the API server when the cache
    /// does not have it: deciding that there is no data must not rest on a cold cache.
    pub(super) async fn data_claim(&self) -> Result<Option<PersistentVolumeClaim>> {
        let name = plan::data_claim_name(&self.name());
        let claim = self.cached_or_read(&self.ctx.claims, &name).await?;
        Ok(claim.filter(|c| volumes::is_ours(&c.metadata, &self.name()) && c.metadata.deletion_timestamp.is_none()))
    }

    fn children(&self) -> Result<&Children> {
        self.children.as_ref().ok_or_else(|| Error::InvalidSpec("plan step did not run".into()))
    }

    /// Applies one child named `name` (its cached copy from `cache` first) and returns
    /// it as it is now.
    pub(super) async fn apply_child<K>(
        &mut self,
        cache: &ChildCache<K>,
        desired: K,
        synced: &str,
    ) -> Result<(Applied, K)>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned
            + 'static,
    {
        let cached = cache.get(&self.namespace, &desired.name_any())?;
        let (outcome, live) = self.owned.apply(cached.as_ref(), desired, synced).await?;
        self.observed.changed |= outcome != Applied::Unchanged;
        Ok((outcome, live))
    }

    /// The child `name` of kind `K` from `cache`, or (when the cache does not have it
    /// yet) from the API server.
    pub(super) async fn cached_or_read<K>(&self, cache: &impl ReadCache<K>, name: &str) -> Result<Option<K>>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + 'static,
    {
        if let Some(cached) = cache.read(&self.namespace, name)? {
            return Ok(Some(cached));
        }
        let kind = K::kind(&());
        self.api_of::<K>().get_opt(name).await.map_err(|e| Error::kube(format!("get {kind} {name}"), e))
    }
}

/// The reconcile pipeline of a live Database.
static APPLY: LazyLock<Pipeline<Run>> = LazyLock::new(|| {
    Pipeline::new()
        .then(when(|run: &Run| run.db.status.is_none(), step("accept", accept)))
        .then(when(
            |run: &Run| run.db.spec.credentials_secret.is_none(),
            timeout(STEP_BUDGET, step("credentials", ensure_credentials)),
        ))
        .then(timeout(STEP_BUDGET, step("plan", plan_children)))
        .then(timeout(STEP_BUDGET, step("services", apply_services)))
        .then(timeout(STEP_BUDGET, step("statefulset", apply_statefulset)))
        .then(timeout(
            STEP_BUDGET,
            branch(
                "backup",
                |run: &Run| run.db.spec.backup.enabled,
                step("backup", volumes::apply_backup),
                step("backup", remove_backup_job),
            ),
        ))
        .then(timeout(STEP_BUDGET, step("volumes", volumes::grow)))
        .then(step("observe", observe))
});

/// A new Database is first marked `Pending` (accepted, nothing created yet).
fn accept(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let pending = status::pending(&run.db, Timestamp::now());
        if let Some(accepted) = status_patch::patch_if_changed(&run.api, run.db.as_ref(), None, &pending).await? {
            run.db = Arc::new(accepted);
        }
        Ok(Flow::Continue)
    })
}

/// Makes the generated credentials Secret once, without ever reading a Secret: the
/// operator's role may create Secrets, nothing more, so a compromised operator cannot read
/// any (see docs/reliability.md). What it needs to know comes from the data claim, which
/// it makes first and marks until the Secret exists:
/// - no claim, or a marked one: no server has started on it, so no data needs a password
///   yet; the Secret is created. An existing Secret of that name (left by a deleted
///   Database until the garbage collector takes it, or someone else's) blocks, as the
///   operator cannot tell whose it is; it is never read, written or deleted.
/// - an unmarked claim: the credentials were made for this data and are used as they
///   are. A Database new to them (Pending) or missing them (CredentialsMissing) checks
///   that they still exist with a dry-run create (409: there; 201: gone, and nothing is
///   stored). Gone, they are never made again: PostgreSQL keeps the password it was
///   initialised with, so a new one would lock every client out; that is reported.
fn ensure_credentials(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let claim = match run.data_claim().await? {
            // The marks of this step decide whose a Secret in the way is, and the cache
            // can lag behind them: a reconcile queued by an earlier attempt's first mark
            // could read that mark after the attempt had learnt the Secret was someone
            // else's and removed it, and take the Secret as its own. So a claim that
            // still awaits its credentials is read as stored (one GET, only while a
            // Database is new).
            Some(claim) if kept::awaiting_credentials(&claim) => Some(kept::stored(run, &claim).await?),
            other => other,
        };
        let claim = match claim {
            Some(claim) if kept::awaiting_credentials(&claim) => claim,
            Some(claim) => {
                if kept::should_check(&run.db) {
                    if kept::still_there(run).await? {
                        kept::reuse(run).await;
                    } else {
                        run.observed.credentials_missing = Some(credentials::missing(&run.name(), &claim.name_any()));
                        // No server starts on that data without its password: nothing more is made.
                        return Ok(Flow::Done);
                    }
                }
                return Ok(Flow::Continue);
            }
            None => kept::create_data_claim(run).await?,
        };
        let keeper = lifetime::keeper_reference(&claim)
            .ok_or_else(|| Error::Waiting(format!("volume {} has no uid yet", claim.name_any())))?;
        let password = Password::generate().map_err(|e| Error::Waiting(e.to_string()))?;
        let owner = apply::owner_reference(run.db.as_ref())?;
        let secret = credentials::secret(&run.db, vec![owner, keeper], &password);
        drop(password);
        let name = plan::generated_secret_name(&run.name());
        let params = PostParams { field_manager: Some(MANAGER.into()), ..PostParams::default() };
        // The claim says a create went out before this one: a 409 is then the Secret that
        // create made, its answer lost to a kill or a dropped connection (a Secret that
        // was in the way answered that earlier create with a 409 and was said so).
        let sent_before = kept::create_sent(&claim);
        if !sent_before {
            kept::mark_create_sent(run, &claim, true).await?;
        }
        match run.api_of::<Secret>().create(&params, &secret).await {
            // The answer holds the password too: dropped unread.
            Ok(_) => {
                let note =
                    format!("Created Secret {name} with generated credentials, kept with volume {}", claim.name_any());
                run.ctx.events.normal_about(&run.reference(), run.secret_reference(), "Created", note).await;
            }
            Err(kube::Error::Api(status)) if status.code == 409 && sent_before => {
                tracing::info!(secret = %name, "the Secret an interrupted attempt created is there; using it");
            }
            Err(kube::Error::Api(status)) if status.code == 409 => {
                kept::mark_create_sent(run, &claim, false).await?;
                return Err(Error::Blocked { reason: "SecretExists", message: credentials::in_the_way(&name) });
            }
            Err(e) => return Err(Error::kube(format!("create Secret {name}"), e)),
        }
        kept::credentials_made(run, &claim).await?;
        Ok(Flow::Continue)
    })
}

fn plan_children(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let (ctx, name) = (run.ctx.clone(), run.name());
        run.live = run.cached_or_read(&ctx.statefulsets, &name).await?;
        let owner = apply::owner_reference(run.db.as_ref())?;
        run.children = Some(plan::desired(&run.db, owner, &Live::of(run.live.as_ref())));
        Ok(Flow::Continue)
    })
}

fn apply_services(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let ctx = run.ctx.clone();
        let (headless, service) = (run.children()?.headless.clone(), run.children()?.service.clone());
        run.apply_child::<Service>(&ctx.services, headless, "ServiceSynced").await?;
        run.apply_child::<Service>(&ctx.services, service, "ServiceSynced").await?;
        Ok(Flow::Continue)
    })
}

/// Applies the StatefulSet. A new image restarts the pod (a rolling update of one). A
/// new image the data directory may not survive (another major version, another C
/// library) is refused unless the user approved it for this very version; the server
/// then stays on the image it runs. An approved one goes ahead with a Warning.
fn apply_statefulset(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let (ctx, desired) = (run.ctx.clone(), run.children()?.statefulset.clone());
        let change = storage::data_version(&run.db, run.live.as_ref())
            .and_then(|from| storage::VersionChange::between(from, &run.db.spec.version));
        if let Some(change) = &change
            && !storage::approved(&run.db)
        {
            return Err(Error::Refused { reason: "VersionChangeRefused", message: refusal(run, change) });
        }
        let (outcome, live) = run.apply_child(&ctx.statefulsets, desired, "StatefulSetSynced").await?;
        if let (Applied::Updated, Some(change)) = (outcome, change) {
            let note = format!(
                "Approved version change to {}: {}; the operator does not do it.",
                plan::image(&run.db),
                change.risk()
            );
            ctx.events.warning(&run.reference(), "VersionChange", note).await;
        }
        run.observed.statefulset = Some(live);
        Ok(Flow::Continue)
    })
}

/// Why a version change is refused, and the two ways on: approve it, or go back.
fn refusal(run: &Run, change: &storage::VersionChange) -> String {
    let running = run.live.as_ref().and_then(storage::live_image).unwrap_or("the image it runs");
    let version = &run.db.spec.version;
    format!(
        "refused version {version}: {}. The server stays on {running}. With a plan for the data, approve it: \
         kubectl annotate database {} {}={version}; or set spec.version back",
        change.risk(),
        run.name(),
        storage::APPROVE_VERSION_CHANGE
    )
}

/// Backups disabled: the CronJob goes (its Jobs with it), the backup volume stays.
/// Only a CronJob the cache knows is deleted, so a converged Database sends nothing.
fn remove_backup_job(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        let name = super::backup::name(&run.name());
        if run.ctx.cronjobs.has(&run.namespace, &name) {
            run.owned.delete::<CronJob>(&name).await?;
        }
        Ok(Flow::Continue)
    })
}

fn observe(run: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        run.observed.pods = run.ctx.server_pods(&run.namespace, &run.name());
        Ok(Flow::Continue)
    })
}

/// Reconciles a live Database: runs the pipeline, then reports.
pub(super) async fn apply(ctx: Arc<Context>, db: Arc<Database>) -> Result<Action> {
    let mut run = Run::new(ctx, db);
    match APPLY.run(&mut run).await {
        Ok(Flow::Requeue(after)) => report(&mut run, None).await.map(|_| Action::requeue(after)),
        Ok(_) => report(&mut run, None).await,
        Err(error) => {
            if let Some(failure) = Failure::to_report(&error) {
                // The error goes on to the error policy whatever the report does.
                if let Err(report_error) = report(&mut run, Some(&failure)).await {
                    tracing::warn!(error = %report_error, "could not report failure");
                }
            }
            Err(error)
        }
    }
}

/// Writes the status (only if it changed) and publishes the events about it.
async fn report(run: &mut Run, failure: Option<&Failure>) -> Result<Action> {
    let db = run.db.clone();
    let previous = db.status.clone().unwrap_or_default();
    let next = status::compute(&db, &run.observed, failure, Timestamp::now());
    status_patch::patch_if_changed(&run.api, db.as_ref(), db.status.as_ref(), &next).await?;

    let reference = run.reference();
    let events = &run.ctx.events;
    let generation = db.metadata.generation;
    if failure.is_none() && previous.observed_generation.is_some_and(|seen| Some(seen) < generation) {
        let note = format!("Resources synced to generation {}", generation.unwrap_or_default());
        events.normal(&reference, "ResourcesSynced", note).await;
    }
    // A new problem is worth one Warning; the same one again is not.
    let degraded =
        next.conditions.iter().find(|c| c.type_ == reconcile_kit::conditions::DEGRADED && c.status == "True");
    if let Some(condition) = degraded
        && previous.conditions.iter().all(|c| c.message != condition.message)
    {
        events.warning(&reference, &condition.reason, &condition.message).await;
    }
    reconcile_kit::status::log_phase_change(previous.phase, next.phase);
    if next.phase != previous.phase && next.phase == Some(Phase::Running) {
        events.normal(&reference, "Running", next.message.clone().unwrap_or_default()).await;
    }
    Ok(Action::requeue(HEALTH_CHECK))
}
