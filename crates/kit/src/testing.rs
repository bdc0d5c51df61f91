//! Test support (feature `test-util`): a tracing layer that records every finished
//! step span, so tests can assert on the trace of a reconcile.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// One finished `step` span.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepSpan {
    /// Step name.
    pub step: String,
    /// `namespace/name` of the object.
    pub object: String,
    /// `continue`, `requeue`, `done` or an error reason.
    pub outcome: String,
    /// Whether the span recorded its duration.
    pub timed: bool,
}

/// Records step spans; clone it into a subscriber and read it from the test.
#[derive(Clone, Default)]
pub struct StepTrace {
    done: Arc<Mutex<Vec<StepSpan>>>,
    open: Arc<Mutex<HashMap<u64, HashMap<String, String>>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl StepTrace {
    /// The finished steps of `object`, in the order they finished.
    pub fn of(&self, object: &str) -> Vec<StepSpan> {
        lock(&self.done).iter().filter(|s| s.object == object).cloned().collect()
    }
}

struct Fields<'a>(&'a mut HashMap<String, String>);

impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.insert(field.name().to_owned(), format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_owned(), value.to_owned());
    }
}

impl<S: tracing::Subscriber + for<'l> LookupSpan<'l>> Layer<S> for StepTrace {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "step" {
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            lock(&self.open).insert(id.into_u64(), fields);
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = lock(&self.open).get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }

    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let Some(mut fields) = lock(&self.open).remove(&id.into_u64()) else {
            return;
        };
        let mut take = |key: &str| fields.remove(key).unwrap_or_default();
        let span = StepSpan {
            step: take("step"),
            object: take("object"),
            outcome: take("outcome"),
            timed: !take("duration_ms").is_empty(),
        };
        lock(&self.done).push(span);
    }
}
