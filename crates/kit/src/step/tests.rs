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
    let pipeline = Pipeline::new().then(step("a", a)).then(step("stop", stop)).then(step("b", b));
    let mut run = Run::default();
    assert_eq!(pipeline.run(&mut run).await.unwrap(), Flow::Requeue(Duration::from_secs(5)));
    assert_eq!(run.log, ["a", "stop"]);
}

#[tokio::test]
async fn when_and_branch_choose_from_the_context() {
    let pipeline = Pipeline::new().then(when(|r: &Run| r.ingress, step("a", a))).then(branch(
        "ingress",
        |r: &Run| r.ingress,
        step("a", a),
        step("b", b),
    ));
    let mut run = Run::default();
    pipeline.run(&mut run).await.unwrap();
    assert_eq!(run.log, ["b"]);
    let mut run = Run { ingress: true, ..Run::default() };
    pipeline.run(&mut run).await.unwrap();
    assert_eq!(run.log, ["a", "a"]);
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_a_slow_step() {
    let pipeline = Pipeline::new().then(timeout(Duration::from_secs(1), step("slow", slow)));
    let error = pipeline.run(&mut Run::default()).await.unwrap_err();
    assert!(matches!(error, Error::Timeout { step: "slow", .. }), "{error}");
}

#[tokio::test]
async fn every_step_is_one_span_with_name_object_and_outcome() {
    let trace = crate::testing::StepTrace::default();
    let subscriber = tracing_subscriber::registry().with(trace.clone());
    let _guard = tracing::subscriber::set_default(subscriber);
    // Another test thread, with no subscriber of its own, may have met these callsites
    // first and cached "never" for them (tracing#2874): the spans would then go missing
    // at random, as they did once under 3 test threads. Recompute with ours in place.
    tracing::callsite::rebuild_interest_cache();

    let pipeline = Pipeline::new()
        .then(step("a", a))
        // A step whose condition does not hold leaves no span.
        .then(when(|r: &Run| r.ingress, step("skipped", b)))
        .then(step("b", b))
        .then(step("broken", broken));
    let error = pipeline.run(&mut Run::default()).await.unwrap_err();
    assert_eq!(error.reason(), "InvalidSpec");

    let steps: Vec<(String, String)> =
        trace.of("ns/web").into_iter().inspect(|s| assert!(s.timed)).map(|s| (s.step, s.outcome)).collect();
    let expected =
        [("a", "continue"), ("b", "continue"), ("broken", "InvalidSpec")].map(|(s, o)| (s.to_owned(), o.to_owned()));
    assert_eq!(steps, expected);
}
