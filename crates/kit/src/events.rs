//! Kubernetes Events about the objects the operator manages.
//!
//! Events are best effort: a failure to record one is logged and never fails a
//! reconcile. kube's [`Recorder`] folds repeats of the same reason into one event
//! series, so a retrying object does not flood `kubectl describe`: Warnings go through
//! one shared recorder. To fold, a recorder keeps every event it published for six
//! minutes (and scans them all at each publish); Normal events, each one something the
//! operator did once (a child created, a rollout finished), need no folding, so each
//! goes through a recorder of its own and nothing is kept: the shared cache was the
//! operator's largest heap consumer when thousands of objects converge at once.
//!
//! A reconcile only queues its events; the [`Sender`] sends them, as client-go's event
//! broadcaster does. Sent from the reconcile, each event held it for a round trip to the
//! API server, and the watch event of the reconcile's own status write, which arrives
//! during that round trip, waited for it before its reconcile could start: that wait was
//! most of the operator's share of a spec change's latency at its 99th percentile.
//! Events of one object always go through the same lane, in the order they were told.
//! A full lane makes the reconcile that tells one more wait for room: nothing is dropped
//! while the operator runs. [`run_beside`] runs the sender beside the work that tells
//! the events and bounds how long a stop waits for the rest.

use std::collections::hash_map::DefaultHasher;
use std::future::Future;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::mpsc;

use crate::MANAGER;

/// Lanes that send events at the same time: one lane would fall behind the thousands of
/// objects a resync or a first start reconciles at once.
const LANES: usize = 4;

/// Events a lane holds before a reconcile that tells one more waits for room.
const LANE_CAPACITY: usize = 256;

/// Where reconciles tell their events, as `webapp-operator`: queued at once, sent by
/// the [`Sender`] that [`Events::new`] returned with it.
#[derive(Clone)]
pub struct Events {
    lanes: Arc<[mpsc::Sender<Told>]>,
    pending: Gauge,
}

/// An event told, with the object it is about.
struct Told {
    object: ObjectReference,
    event: Event,
}

/// The future that sends the events told to its [`Events`] (and every clone of it):
/// it ends once all of them are dropped and every event queued is sent. The manager
/// runs it beside its controllers, so that events told just before a shutdown still go.
pub type Sender = BoxFuture<'static, ()>;

impl Events {
    /// Events reported by this operator instance (`instance` is the pod name, if known),
    /// and the future that sends them. `pending` counts the events told and not yet sent.
    pub fn new(client: Client, instance: Option<String>, pending: Gauge) -> (Self, Sender) {
        let reporter = Reporter { controller: MANAGER.into(), instance };
        let publisher = Publisher { warnings: Recorder::new(client.clone(), reporter.clone()), client, reporter };
        let (lanes, receivers): (Vec<_>, Vec<_>) = (0..LANES).map(|_| mpsc::channel(LANE_CAPACITY)).unzip();
        let sent = pending.clone();
        let sender = futures::stream::iter(receivers)
            .for_each_concurrent(None, move |mut told: mpsc::Receiver<Told>| {
                let (publisher, sent) = (publisher.clone(), sent.clone());
                async move {
                    while let Some(Told { object, event }) = told.recv().await {
                        publisher.publish(&object, &event).await;
                        sent.dec();
                    }
                }
            })
            .boxed();
        (Events { lanes: lanes.into(), pending }, sender)
    }

    /// A Normal event: something the operator did.
    pub async fn normal(&self, object: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.tell(object, None, EventType::Normal, reason, note.into()).await;
    }

    /// A Normal event about something the operator did to `related` (a child). The
    /// related object keeps events of one reason about different children apart: kube's
    /// recorder folds events with the same reason, object and related object into one.
    pub async fn normal_about(
        &self,
        object: &ObjectReference,
        related: ObjectReference,
        reason: &str,
        note: impl Into<String>,
    ) {
        self.tell(object, Some(related), EventType::Normal, reason, note.into()).await;
    }

    /// A Warning event: something that needs attention.
    pub async fn warning(&self, object: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.tell(object, None, EventType::Warning, reason, note.into()).await;
    }

    /// Queues an event in its object's lane; waits only while that lane is full.
    async fn tell(
        &self,
        object: &ObjectReference,
        secondary: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let action = reason.into();
        let event = Event { type_, reason: reason.into(), note: Some(note), action, secondary };
        let lane = &self.lanes[lane_of(object)];
        self.pending.inc();
        if lane.send(Told { object: object.clone(), event }).await.is_err() {
            // The sender is gone: the manager is stopping without it (a test dropped it).
            self.pending.dec();
            tracing::debug!(reason, "events are no longer sent; event dropped");
        }
    }
}

/// The lane of `object`'s events: always the same one, so they keep their order.
fn lane_of(object: &ObjectReference) -> usize {
    let mut hasher = DefaultHasher::new();
    (&object.namespace, &object.name, &object.kind).hash(&mut hasher);
    // A hash: cutting it to a usize keeps it spread.
    hasher.finish() as usize % LANES
}

/// What became of the events told, once the work that told them ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Drain {
    /// Every event told was sent (or refused by the API server, and logged).
    Sent,
    /// The drain's time ran out with events unsent: an API server that does not answer.
    Unsent,
}

/// Runs `work` (the controllers that tell events) beside `sender`, then gives the sender
/// at most `drain` to send what is still queued, and returns what `work` returned.
///
/// The sender ends on its own once every copy of [`Events`] is gone, which `work`
/// holds; an API server that does not answer must not hold a stopping process for
/// longer than `drain`, so past it the rest is given up (and logged).
pub async fn run_beside<F: Future>(work: F, sender: Sender, drain: Duration) -> (F::Output, Drain) {
    let work = std::pin::pin!(work);
    match futures::future::select(work, sender).await {
        futures::future::Either::Left((output, sender)) => match tokio::time::timeout(drain, sender).await {
            Ok(()) => (output, Drain::Sent),
            Err(_) => {
                tracing::warn!(after = ?drain, "stopping with Events unsent");
                (output, Drain::Unsent)
            }
        },
        // Every copy of `Events` is gone and what they told is sent: the work tells no more.
        futures::future::Either::Right(((), work)) => (work.await, Drain::Sent),
    }
}

/// Sends one event at a time to the API server.
#[derive(Clone)]
struct Publisher {
    client: Client,
    reporter: Reporter,
    /// Folds repeated Warnings into series.
    warnings: Recorder,
}

impl Publisher {
    async fn publish(&self, object: &ObjectReference, event: &Event) {
        let reason = event.reason.as_str();
        // Sent after the reconcile's span closed: the log names the object itself.
        let about = format!(
            "{}/{}",
            object.namespace.as_deref().unwrap_or_default(),
            object.name.as_deref().unwrap_or_default()
        );
        let published = match event.type_ {
            EventType::Warning => self.warnings.publish(event, object).await,
            EventType::Normal => Recorder::new(self.client.clone(), self.reporter.clone()).publish(event, object).await,
        };
        match published {
            Ok(()) => {}
            // A namespace being deleted refuses new content; nobody will read the event.
            Err(kube::Error::Api(status)) if status.code == 403 && status.message.contains("being terminated") => {
                tracing::debug!(reason, object = %about, "namespace is terminating; event dropped");
            }
            Err(kube::Error::Api(status)) => {
                tracing::warn!(reason, object = %about, error = %status.message, "could not record event")
            }
            Err(error) => tracing::warn!(reason, object = %about, %error, "could not record event"),
        }
    }
}

/// An error and its causes on one line: `a: b: c`.
pub fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}
