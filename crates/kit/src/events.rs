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

use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::runtime::events::{Event, EventType, Recorder, Reporter};

use crate::MANAGER;

/// Publishes events as `webapp-operator`.
#[derive(Clone)]
pub struct Events {
    client: Client,
    reporter: Reporter,
    /// Folds repeated Warnings into series.
    warnings: Recorder,
}

impl Events {
    /// Events reported by this operator instance (`instance` is the pod name, if known).
    pub fn new(client: Client, instance: Option<String>) -> Self {
        let reporter = Reporter { controller: MANAGER.into(), instance };
        Events { warnings: Recorder::new(client.clone(), reporter.clone()), client, reporter }
    }

    /// A Normal event: something the operator did.
    pub async fn normal(&self, object: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.publish(object, None, EventType::Normal, reason, note.into()).await;
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
        self.publish(object, Some(related), EventType::Normal, reason, note.into()).await;
    }

    /// A Warning event: something that needs attention.
    pub async fn warning(&self, object: &ObjectReference, reason: &str, note: impl Into<String>) {
        self.publish(object, None, EventType::Warning, reason, note.into()).await;
    }

    async fn publish(
        &self,
        object: &ObjectReference,
        secondary: Option<ObjectReference>,
        type_: EventType,
        reason: &str,
        note: String,
    ) {
        let action = reason.into();
        let event = Event { type_, reason: reason.into(), note: Some(note), action, secondary };
        let published = match type_ {
            EventType::Warning => self.warnings.publish(&event, object).await,
            EventType::Normal => {
                Recorder::new(self.client.clone(), self.reporter.clone()).publish(&event, object).await
            }
        };
        match published {
            Ok(()) => {}
            // A namespace being deleted refuses new content; nobody will read the event.
            Err(kube::Error::Api(status)) if status.code == 403 && status.message.contains("being terminated") => {
                tracing::debug!(reason, "namespace is terminating; event dropped");
            }
            Err(kube::Error::Api(status)) => {
                tracing::warn!(reason, error = %status.message, "could not record event")
            }
            Err(error) => tracing::warn!(reason, %error, "could not record event"),
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
