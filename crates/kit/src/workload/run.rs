//! The reconcile of a kind whose pods run in a Deployment behind a Service, as a
//! pipeline of shared steps: `accept` (a new object is marked Pending), `plan` (the
//! kind's pure spec → [`Shape`] mapping), `deployment`, `service`, `observe` (pods),
//! then one report (status only when it changed, events). A kind implements
//! [`Workload`] (its mapping and its status) and may add steps of its own.
//!
//! Each reconcile starts from the freshest view of the object and of its children: the
//! cache's, or what the controller's own last write returned when the cache has not
//! caught up with it yet ([`Written`]). Status writes go through [`Statuses`]:
//! transitions at once, changes of detail (counts) at most a few seconds late.

use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{ObjectReference, Service};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, OwnerReference};
use k8s_openapi::jiff::Timestamp;
use kube::core::object::HasStatus;
use kube::runtime::controller::Action;
use kube::{Api, Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::cache::WorkloadCaches;
use super::pods::{CachedPod, pod_problems};
use super::rollout::{Rollout, deployment_problems, rollout};
use super::shape::{self, Owner, Plan, Shape};
use crate::adopt::Ownership;
use crate::apply::{self, Applied, Deletion};
use crate::assess::{self, Assessment, Failure, Previous, Progress};
use crate::compact::ChildCache;
use crate::events::Events;
use crate::fresh::Written;
use crate::owned::Owned;
use crate::phase::{LifecycleStatus, Phase};
use crate::status::{Outcome, Statuses};
use crate::step::{Flow, Pipeline, StepContext, StepFuture, step, timeout, when};
use crate::{Error, Result};

/// Budget of one API-bound step.
pub const STEP_BUDGET: Duration = Duration::from_secs(30);
/// How soon to look again while a child is being deleted.
pub const DELETE_POLL: Duration = Duration::from_secs(1);

/// A kind whose pods run in a Deployment behind a Service: its pure mappings. Usually
/// implemented by a unit struct next to the kind's controller.
pub trait Workload: Send + Sync + Sized + 'static {
    /// The custom resource reconciled.
    type Object: Resource<DynamicType = (), Scope = NamespaceResourceScope>
        + HasStatus<Status = Self::Status>
        + Clone
        + Debug
        + Serialize
        + DeserializeOwned
        + Send
        + Sync
        + 'static;
    /// Its status.
    type Status: LifecycleStatus + Serialize + PartialEq + Clone + Debug + Send + Sync;
    /// `app.kubernetes.io/name` of its children, e.g. `webserver`.
    const APP: &'static str;
    /// How often a healthy object is looked at again even when nothing happens.
    const HEALTH_CHECK: Duration = Duration::from_secs(30);
    /// How often an object that is not ready yet is looked at again, on top of the
    /// watch events of its children.
    const NOT_READY_RECHECK: Duration = Self::HEALTH_CHECK;
    /// What the controller keeps beyond the shared caches (the cache of an extra child
    /// kind); `()` for nothing.
    type Extra: Send + Sync + 'static;
    /// The pure plan: the Deployment and Service an object asks for, or why its spec
    /// cannot be realised (checks the schema cannot make).
    const SHAPE: fn(&Self::Object) -> std::result::Result<Shape, String>;
    /// The whole status: the lifecycle assessment plus what the kind reports of what
    /// was observed.
    const STATUS: fn(&Self::Object, &Observed, Assessment) -> Self::Status;
}

/// The shared state of a workload controller: client, events, the child caches and the
/// kind's extra state.
pub struct Shared<W: Workload> {
    /// The client of the process.
    pub client: Client,
    /// Where Events go.
    pub events: Events,
    /// Deployments, Services and Pods of the kind.
    pub caches: WorkloadCaches,
    /// What the kind keeps of its own.
    pub extra: W::Extra,
    /// What the controller's last writes returned, until the caches have seen them.
    pub written: Written,
    /// The controller's status writes (transitions at once, detail coalesced).
    pub statuses: Statuses,
}

impl<W: Workload> Shared<W> {
    /// The shared state of a controller that has written nothing yet.
    pub fn new(client: Client, events: Events, caches: WorkloadCaches, extra: W::Extra) -> Self {
        Shared { client, events, caches, extra, written: Written::default(), statuses: Statuses::default() }
    }

    /// The freshest view of `object` (see [`Written`]), which a reconcile starts from.
    pub fn freshest(&self, object: Arc<W::Object>) -> Arc<W::Object> {
        self.written.freshest(object)
    }
}

/// What one reconcile saw of the children.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// The Deployment as applied (never an older cached copy), once the step ran: the
    /// API server's answer after a write, the cached copy otherwise, which is trimmed to
    /// what the kit reads ([`super::cache::trim_deployment`]: no healthy conditions, no
    /// server defaults). A kind's status reads only what survives the trim.
    pub deployment: Option<Deployment>,
    /// The cached pods of the object.
    pub pods: Vec<Arc<CachedPod>>,
    /// Whether this reconcile changed a child.
    pub changed: bool,
}

impl Observed {
    /// The Deployment's rollout (all zero before it exists).
    pub fn rollout(&self) -> Rollout {
        self.deployment.as_ref().map(rollout).unwrap_or_default()
    }

    /// The pod selector, `k=v,k=v`, for a kind's `status.selector` (the scale
    /// subresource's): the Deployment's once it exists, which an adopted one keeps from
    /// before ([`Plan::keeping_selector`]); `ours` until then.
    pub fn pod_selector(&self, ours: &std::collections::BTreeMap<String, String>) -> String {
        let live =
            self.deployment.as_ref().and_then(|d| d.spec.as_ref()).and_then(|s| s.selector.match_labels.as_ref());
        super::labels::selector_string(live.unwrap_or(ours))
    }

    /// Ready pods, by name, sorted: what a client can use.
    pub fn ready_pods(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .pods
            .iter()
            .filter(|pod| pod.metadata.deletion_timestamp.is_none() && super::pods::is_ready(pod))
            .filter_map(|pod| pod.metadata.name.clone())
            .collect();
        names.sort();
        names
    }

    /// What decides the phase: ready once the rollout is complete and no pod fails.
    /// Problems are the Deployment's own (pods refused at creation) and its pods'.
    pub fn progress(&self) -> Progress {
        let rollout = self.rollout();
        let mut problems = self.deployment.as_ref().map(deployment_problems).unwrap_or_default();
        problems.extend(pod_problems(&self.pods));
        Progress {
            ready: self.deployment.is_some() && rollout.complete,
            changed: self.changed,
            problems,
            summary: format!("{}/{} pods ready", rollout.ready, rollout.desired),
        }
    }
}

/// One reconcile of one object.
pub struct Run<W: Workload> {
    /// The controller's shared state.
    pub ctx: Arc<Shared<W>>,
    /// The object, as last read or written.
    pub object: Arc<W::Object>,
    /// Its namespace.
    pub namespace: String,
    /// The API of its kind in its namespace.
    pub api: Api<W::Object>,
    /// Its children, applied and deleted with events.
    pub owned: Owned,
    /// The planned Deployment and Service, once the `plan` step ran.
    pub plan: Option<Plan>,
    /// What was seen.
    pub observed: Observed,
}

impl<W: Workload> StepContext for Run<W> {
    fn object(&self) -> String {
        format!("{}/{}", self.namespace, self.object.name_any())
    }
}

impl<W: Workload> Run<W> {
    /// Starts a reconcile of `object`.
    pub fn new(ctx: Arc<Shared<W>>, object: Arc<W::Object>) -> Self {
        let namespace = object.namespace().unwrap_or_default();
        let api = Api::namespaced(ctx.client.clone(), &namespace);
        let owned = Owned::new(ctx.client.clone(), ctx.events.clone(), object.as_ref())
            .adopting(crate::adopt::requested(object.as_ref()))
            .folding_creations();
        Run { ctx, object, namespace, api, owned, plan: None, observed: Observed::default() }
    }

    /// The object's name, which its children share.
    pub fn name(&self) -> String {
        self.object.name_any()
    }

    /// A reference to the object, for Events.
    pub fn reference(&self) -> ObjectReference {
        self.object.object_ref(&())
    }

    /// The owner the kind's children point at.
    pub fn owner(&self) -> Result<Owner> {
        Ok(Owner {
            name: self.name(),
            namespace: Some(self.namespace.clone()),
            app: W::APP,
            reference: apply::owner_reference(self.object.as_ref())?,
        })
    }

    /// The pod selector of the Deployment already under the object's name, if it is
    /// ours or one this object may adopt: it cannot change, so the plan keeps it
    /// ([`Plan::keeping_selector`]). The cache has every Deployment of ours; one made by
    /// hand is read only by an object that asks to adopt it (one GET, until it is ours).
    async fn live_selector(&self, owner: &OwnerReference) -> Result<Option<LabelSelector>> {
        let live = match self.ctx.caches.deployments.get(&self.namespace, &self.name())? {
            Some(cached) => Some(cached),
            None if crate::adopt::requested(self.object.as_ref()) => {
                let api: Api<Deployment> = Api::namespaced(self.ctx.client.clone(), &self.namespace);
                let name = self.name();
                api.get_opt(&name).await.map_err(|e| Error::kube(format!("get Deployment {name}"), e))?
            }
            None => None,
        };
        let keep = |d: &Deployment| {
            matches!(crate::adopt::ownership(d.meta(), owner), Ownership::Owned | Ownership::Adoptable)
        };
        Ok(live.filter(keep).and_then(|d| d.spec).map(|spec| spec.selector))
    }

    fn planned(&self) -> Result<&Plan> {
        self.plan.as_ref().ok_or_else(|| Error::InvalidSpec("plan step did not run".into()))
    }

    /// Applies one child (its cached copy from `cache` first, or what our last write of
    /// it returned if the cache lags behind that) and returns it as it is now.
    pub async fn apply_child<K>(&mut self, cache: &ChildCache<K>, desired: K, synced: &str) -> Result<K>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope>
            + Clone
            + Debug
            + Serialize
            + DeserializeOwned
            + Send
            + Sync
            + 'static,
    {
        let (namespace, name) = (&self.namespace, self.name());
        let current = match cache.get(namespace, &name)? {
            Some(cached) => Some(self.ctx.written.freshest(Arc::new(cached))),
            // Made by our own write a moment ago, not cached yet: without it this
            // reconcile would create the child again and pay a 409 and a GET.
            None => self.ctx.written.not_yet_cached(namespace, &name, |version| cache.has_seen(version)),
        };
        let (outcome, live) = self.owned.apply(current.as_deref(), desired, synced).await?;
        if outcome != Applied::Unchanged {
            self.ctx.written.record(live.clone());
        }
        self.observed.changed |= outcome != Applied::Unchanged;
        Ok(live)
    }

    /// Writes `next` as the object's status through the controller's [`Statuses`];
    /// the rest of the reconcile, and the next ones until the cache has it, start from
    /// what was written. Returns how soon to look again for a change of detail that was
    /// left for later.
    pub async fn write_status(&mut self, next: &W::Status) -> Result<Option<Duration>> {
        match self.ctx.statuses.write(&self.api, self.object.as_ref(), next).await {
            Ok(Outcome::Unchanged) => Ok(None),
            Ok(Outcome::Deferred(after)) => Ok(Some(after)),
            Ok(Outcome::Written(written)) => {
                self.ctx.written.record(written.clone());
                self.object = Arc::new(written);
                Ok(None)
            }
            Err(error) => {
                if matches!(error, Error::Stale { .. }) {
                    // Someone else wrote since the view we started from: the next
                    // reconcile takes the cache's.
                    self.ctx.written.forget(&self.object.uid().unwrap_or_default());
                }
                Err(error)
            }
        }
    }

    /// Deletes the child of kind `K` if it is ours; `Continue` once it is gone, `Requeue`
    /// while it goes.
    pub async fn delete_child<K>(&mut self) -> Result<Flow>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned,
    {
        match self.owned.delete::<K>(&self.name()).await? {
            Deletion::Gone => Ok(Flow::Continue),
            Deletion::Requested | Deletion::InProgress => Ok(Flow::Requeue(DELETE_POLL)),
        }
    }

    /// Deletes the child of kind `K` if `cache` holds it, like [`Run::delete_child`]. A
    /// child the cache does not hold was never ours (ours carry the labels the cache
    /// selects on), so a reconcile that finds nothing to remove sends no request.
    pub async fn delete_cached_child<K>(&mut self, cache: &ChildCache<K>) -> Result<Flow>
    where
        K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + 'static,
    {
        if !cache.has(&self.namespace, &self.name()) {
            return Ok(Flow::Continue);
        }
        self.delete_child::<K>().await
    }
}

/// The shared steps up to the children: `accept` (new objects only), `plan`,
/// `deployment`, `service`. A kind appends its own children's steps and then
/// [`observe`].
pub fn pipeline<W: Workload>() -> Pipeline<Run<W>> {
    Pipeline::new()
        .then(when(|run: &Run<W>| run.object.status().is_none(), step("accept", accept::<W>)))
        .then(step("plan", plan::<W>))
        .then(timeout(STEP_BUDGET, step("deployment", apply_deployment::<W>)))
        .then(timeout(STEP_BUDGET, step("service", apply_service::<W>)))
}

/// The step that reads the pods, last in a pipeline.
pub fn observe<W: Workload>() -> impl crate::step::Step<Run<W>> {
    step("observe", observe_pods::<W>)
}

/// A step named `name` that deletes the child of kind `K` and waits until it is gone
/// (`Requeue` while it goes), for ordered cleanup behind a finalizer.
pub fn delete<W, K>(name: &'static str) -> impl crate::step::Step<Run<W>>
where
    W: Workload,
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + Send + 'static,
{
    step(name, delete_child::<W, K>)
}

fn delete_child<W, K>(run: &mut Run<W>) -> StepFuture<'_>
where
    W: Workload,
    K: Resource<DynamicType = (), Scope = NamespaceResourceScope> + Clone + Debug + DeserializeOwned + Send + 'static,
{
    Box::pin(run.delete_child::<K>())
}

/// A new object is first marked `Pending` (accepted, nothing created yet), so that
/// `kubectl get -w` shows the whole lifecycle.
fn accept<W: Workload>(run: &mut Run<W>) -> StepFuture<'_> {
    Box::pin(async move {
        let pending = (W::STATUS)(
            &run.object,
            &Observed::default(),
            assess::pending(run.object.meta().generation, Timestamp::now()),
        );
        // The rest of this reconcile starts from what is now written (status and
        // resourceVersion, the precondition of the next status write).
        run.write_status(&pending).await?;
        crate::status::log_phase_change(None, Some(Phase::Pending));
        Ok(Flow::Continue)
    })
}

fn plan<W: Workload>(run: &mut Run<W>) -> StepFuture<'_> {
    Box::pin(async move {
        let shape = (W::SHAPE)(&run.object).map_err(Error::InvalidSpec)?;
        let owner = run.owner()?;
        let plan = shape::plan(&owner, shape);
        run.plan = Some(match run.live_selector(&owner.reference).await? {
            Some(live) => {
                plan.keeping_selector(&live).map_err(|message| Error::Blocked { reason: "NotAdoptable", message })?
            }
            None => plan,
        });
        Ok(Flow::Continue)
    })
}

fn apply_deployment<W: Workload>(run: &mut Run<W>) -> StepFuture<'_> {
    Box::pin(async move {
        let (ctx, desired) = (run.ctx.clone(), run.planned()?.deployment.clone());
        run.observed.deployment = Some(run.apply_child(&ctx.caches.deployments, desired, "DeploymentSynced").await?);
        Ok(Flow::Continue)
    })
}

fn apply_service<W: Workload>(run: &mut Run<W>) -> StepFuture<'_> {
    Box::pin(async move {
        let (ctx, desired) = (run.ctx.clone(), run.planned()?.service.clone());
        run.apply_child::<Service>(&ctx.caches.services, desired, "ServiceSynced").await?;
        Ok(Flow::Continue)
    })
}

fn observe_pods<W: Workload>(run: &mut Run<W>) -> StepFuture<'_> {
    Box::pin(async move {
        run.observed.pods = run.ctx.caches.pods_of(&run.namespace, &run.name())?;
        Ok(Flow::Continue)
    })
}

/// Runs `pipeline` on a live object, then reports: status (only if it changed) and
/// events. A permanent or blocking error, or a retryable one that persists, is
/// reported in status ([`Failure::to_report`]) before it goes on to the error policy.
pub async fn reconcile<W: Workload>(mut run: Run<W>, pipeline: &Pipeline<Run<W>>) -> Result<Action> {
    let outcome = pipeline.run(&mut run).await;
    // One `Created` event for the children this reconcile made, whatever came after.
    run.owned.publish_created().await;
    match outcome {
        Ok(Flow::Requeue(after)) => report(&mut run, None).await.map(|_| Action::requeue(after)),
        Ok(_) => report(&mut run, None).await,
        Err(error) => {
            if let Some(failure) = Failure::to_report(&error) {
                if failure.retrying && run.observed.deployment.is_none() {
                    // The step that failed may come before the Deployment's: report it
                    // as the cache has it rather than as absent.
                    run.observed.deployment =
                        run.ctx.caches.deployments.get(&run.namespace, &run.name()).ok().flatten();
                }
                // The error goes on to the error policy whatever the report does.
                if let Err(report_error) = report(&mut run, Some(&failure)).await {
                    tracing::warn!(error = %report_error, "could not report failure");
                }
            }
            Err(error)
        }
    }
}

/// Writes the status (only if it changed) and publishes the events about it:
/// `ResourcesSynced` when a new generation was handled, a Warning for a new failure,
/// `Running` when the object becomes ready.
pub async fn report<W: Workload>(run: &mut Run<W>, failure: Option<&Failure>) -> Result<Action> {
    let object = run.object.clone();
    let generation = object.meta().generation;
    // From the clone: the write below replaces `run.object`.
    let previous = object.status().map(Previous::of).unwrap_or_default();
    let assessment = assess::assess(previous, generation, &run.observed.progress(), failure, Timestamp::now());
    let next = (W::STATUS)(&object, &run.observed, assessment);
    let detail_waits = run.write_status(&next).await?;

    let after = Previous::of(&next);
    let reference = run.reference();
    let events = &run.ctx.events;
    let spec_changed = previous.observed_generation.is_some_and(|seen| Some(seen) < generation);
    if spec_changed && failure.is_none() {
        let generation = generation.unwrap_or_default();
        events.normal(&reference, "ResourcesSynced", format!("Resources synced to generation {generation}")).await;
    }
    if let Some(failure) = failure
        && previous.conditions.iter().all(|c| c.message != failure.message)
    {
        events.warning(&reference, &failure.reason, &failure.message).await;
    }
    if after.phase != previous.phase
        && let Some(phase) = after.phase
    {
        crate::status::log_phase_change(previous.phase, after.phase);
        if phase == Phase::Running {
            let summary = run.observed.progress().summary;
            events.normal(&reference, "Running", summary).await;
        }
    }
    let recheck = if after.phase == Some(Phase::Running) { W::HEALTH_CHECK } else { W::NOT_READY_RECHECK };
    Ok(Action::requeue(detail_waits.map_or(recheck, |after| after.min(recheck))))
}
