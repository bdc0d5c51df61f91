use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::prelude::*;

use super::*;

#[derive(Default)]
struct Run {
    log: Vec<&'static str>,
    ingress: bool,
}

impl StepContext for Run {
    fn object(&self) -> String {
        "ns/web".into()
    }
}

fn a(ctx: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        ctx.log.push("a");
        Ok(Flow::Continue)
    })
}
fn b(ctx: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        ctx.log.push("b");
        Ok(Flow::Continue)
    })
}
fn stop(ctx: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        ctx.log.push("stop");
        Ok(Flow::Requeue(Duration::from_secs(5)))
    })
}
fn slow(_: &mut Run) -> StepFuture<'_> {
    Box::pin(async move {
        tokio::time::sleep(Duration::from_secs(60)).await;
        Ok(Flow::Continue)
    })
}
fn broken(_: &mut Run) -> StepFuture<'_> {
    Box::pin(async move { Err(Error::InvalidSpec("no".into())) })
}

#[tokio::test]
async fn steps_run_in_order_until_one_stops() {
    let pipeline = Pipeline::new()
        .then(step("a", a))
        .then(step("stop", stop))
        .then(step("b", b));
    let mut run = Run::default();
    assert_eq!(
        pipeline.run(&mut run).await.unwrap(),
        Flow::Requeue(Duration::from_secs(5))
    );
    assert_eq!(run.log, ["a", "stop"]);
}

#[tokio::test]
async fn when_and_branch_choose_from_the_context() {
    let pipeline = Pipeline::new()
        .then(when(|r: &Run| r.ingress, step("a", a)))
        .then(branch(
            "ingress",
            |r: &Run| r.ingress,
            step("a", a),
            step("b", b),
        ));
    let mut run = Run::default();
    pipeline.run(&mut run).await.unwrap();
    assert_eq!(run.log, ["b"]);
    let mut run = Run {
        ingress: true,
        ..Run::default()
    };
    pipeline.run(&mut run).await.unwrap();
    assert_eq!(run.log, ["a", "a"]);
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_a_slow_step() {
    let pipeline = Pipeline::new().then(timeout(Duration::from_secs(1), step("slow", slow)));
    let error = pipeline.run(&mut Run::default()).await.unwrap_err();
    assert!(
        matches!(error, Error::Timeout { step: "slow", .. }),
        "{error}"
    );
}

type OpenSpans = std::collections::HashMap<u64, Vec<(String, String)>>;

/// Records every closed span with its fields, as `name=step k=v ...`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>, Arc<Mutex<OpenSpans>>);

struct Fields<'a>(&'a mut Vec<(String, String)>);
impl Visit for Fields<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: tracing::Subscriber + for<'l> tracing_subscriber::registry::LookupSpan<'l>> Layer<S>
    for Recorder
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        let mut fields = vec![("name".to_owned(), attrs.metadata().name().to_owned())];
        attrs.record(&mut Fields(&mut fields));
        self.1.lock().unwrap().insert(id.into_u64(), fields);
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        if let Some(fields) = self.1.lock().unwrap().get_mut(&id.into_u64()) {
            values.record(&mut Fields(fields));
        }
    }
    fn on_close(&self, id: Id, _: Context<'_, S>) {
        let fields = self
            .1
            .lock()
            .unwrap()
            .remove(&id.into_u64())
            .unwrap_or_default();
        let shown: Vec<String> = fields
            .iter()
            .filter(|(k, _)| k != "duration_ms")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        assert!(
            fields.iter().any(|(k, _)| k == "duration_ms"),
            "every step span records its duration"
        );
        self.0.lock().unwrap().push(shown.join(" "));
    }
}

#[tokio::test]
async fn every_step_is_one_span_with_name_object_and_outcome() {
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let pipeline = Pipeline::new()
        .then(step("a", a))
        .then(step("b", b))
        .then(step("broken", broken));
    let error = pipeline.run(&mut Run::default()).await.unwrap_err();
    assert_eq!(error.reason(), "InvalidSpec");

    let trace = recorder.0.lock().unwrap().clone();
    assert_eq!(
        trace,
        [
            "name=step step=a object=ns/web outcome=continue",
            "name=step step=b object=ns/web outcome=continue",
            "name=step step=broken object=ns/web outcome=InvalidSpec",
        ]
    );
}
