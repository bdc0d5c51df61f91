//! Named reconcile steps and the pipelines that run them.
//!
//! A controller's reconcile is a [`Pipeline`] of [`Step`]s run in order on a mutable
//! context. Every step added to a pipeline is wrapped in [`Traced`], so each step of
//! each reconcile is one tracing span carrying its name, the object, the outcome and
//! the duration. [`When`] and [`Branch`] choose steps from the context; [`Timeout`]
//! bounds a step.

use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use tracing::Instrument;

use crate::error::{Error, Result};

/// What the pipeline does after a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flow {
    /// Run the next step.
    Continue,
    /// Stop here and look again after this long (waiting on the cluster).
    Requeue(Duration),
    /// Stop here: nothing more to do in this reconcile.
    Done,
}

impl Flow {
    /// Short name for logs and spans.
    pub fn as_str(self) -> &'static str {
        match self {
            Flow::Continue => "continue",
            Flow::Requeue(_) => "requeue",
            Flow::Done => "done",
        }
    }
}

/// The future a step returns.
pub type StepFuture<'a> = BoxFuture<'a, Result<Flow>>;

/// What a context must tell the tracing decorator.
pub trait StepContext: Send {
    /// The object being reconciled, as `namespace/name`.
    fn object(&self) -> String;
}

/// One named unit of reconcile work.
pub trait Step<C>: Send + Sync {
    /// Name shown in spans, logs and step-level errors.
    fn name(&self) -> &'static str;
    /// Does the work.
    fn run<'a>(&'a self, ctx: &'a mut C) -> StepFuture<'a>;
    /// Whether the step has anything to do in this context; a step that does not apply
    /// is skipped without a trace. Only [`When`] says no.
    fn applies(&self, _ctx: &C) -> bool {
        true
    }
}

/// A step made of a plain function: `fn apply_service(ctx: &mut Run) -> StepFuture<'_>`.
pub struct FnStep<C> {
    name: &'static str,
    run: for<'a> fn(&'a mut C) -> StepFuture<'a>,
}

/// Makes a step from a name and a function.
pub fn step<C>(name: &'static str, run: for<'a> fn(&'a mut C) -> StepFuture<'a>) -> FnStep<C> {
    FnStep { name, run }
}

impl<C: Send> Step<C> for FnStep<C> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn run<'a>(&'a self, ctx: &'a mut C) -> StepFuture<'a> {
        (self.run)(ctx)
    }
}

/// Runs `step` only when `predicate` holds; otherwise continues.
pub struct When<C, S> {
    predicate: fn(&C) -> bool,
    step: S,
}

/// Makes a conditional step.
pub fn when<C, S: Step<C>>(predicate: fn(&C) -> bool, step: S) -> When<C, S> {
    When { predicate, step }
}

impl<C: Send, S: Step<C>> Step<C> for When<C, S> {
    fn name(&self) -> &'static str {
        self.step.name()
    }
    fn run<'a>(&'a self, ctx: &'a mut C) -> StepFuture<'a> {
        if (self.predicate)(ctx) { self.step.run(ctx) } else { Box::pin(async { Ok(Flow::Continue) }) }
    }
    fn applies(&self, ctx: &C) -> bool {
        (self.predicate)(ctx)
    }
}

/// Runs one of two steps depending on `predicate`.
pub struct Branch<C, A, B> {
    name: &'static str,
    predicate: fn(&C) -> bool,
    then: A,
    otherwise: B,
}

/// Makes a two-way step.
pub fn branch<C, A: Step<C>, B: Step<C>>(
    name: &'static str,
    predicate: fn(&C) -> bool,
    then: A,
    otherwise: B,
) -> Branch<C, A, B> {
    Branch { name, predicate, then, otherwise }
}

impl<C: Send, A: Step<C>, B: Step<C>> Step<C> for Branch<C, A, B> {
    fn name(&self) -> &'static str {
        self.name
    }
    fn run<'a>(&'a self, ctx: &'a mut C) -> StepFuture<'a> {
        if (self.predicate)(ctx) { self.then.run(ctx) } else { self.otherwise.run(ctx) }
    }
}

/// Fails a step with [`Error::Timeout`] when it takes longer than its budget, so one
/// hung API call cannot hold a reconcile slot forever.
pub struct Timeout<S> {
    step: S,
    after: Duration,
}

/// Bounds `step` by `after`.
pub fn timeout<S>(after: Duration, step: S) -> Timeout<S> {
    Timeout { step, after }
}

impl<C: Send, S: Step<C>> Step<C> for Timeout<S> {
    fn name(&self) -> &'static str {
        self.step.name()
    }
    fn applies(&self, ctx: &C) -> bool {
        self.step.applies(ctx)
    }
    fn run<'a>(&'a self, ctx: &'a mut C) -> StepFuture<'a> {
        Box::pin(async move {
            match tokio::time::timeout(self.after, self.step.run(ctx)).await {
                Ok(result) => result,
                Err(_) => Err(Error::Timeout { step: self.step.name(), after: self.after }),
            }
        })
    }
}

/// One tracing span per run of `step`, with `step`, `object`, `outcome` and `duration_ms`.
pub struct Traced<S> {
    step: S,
}

/// Traces `step`.
pub fn traced<S>(step: S) -> Traced<S> {
    Traced { step }
}

impl<C: StepContext, S: Step<C>> Step<C> for Traced<S> {
    fn name(&self) -> &'static str {
        self.step.name()
    }
    fn applies(&self, ctx: &C) -> bool {
        self.step.applies(ctx)
    }
    fn run<'a>(&'a self, ctx: &'a mut C) -> StepFuture<'a> {
        if !self.step.applies(ctx) {
            return Box::pin(async { Ok(Flow::Continue) });
        }
        let span = tracing::info_span!(
            "step",
            step = self.step.name(),
            object = %ctx.object(),
            outcome = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        let inner = span.clone();
        Box::pin(
            async move {
                let started = Instant::now();
                let result = self.step.run(ctx).await;
                let outcome = match &result {
                    Ok(flow) => flow.as_str(),
                    Err(error) => error.reason(),
                };
                inner.record("outcome", outcome);
                inner.record("duration_ms", started.elapsed().as_secs_f64() * 1000.0);
                if let Err(error) = &result {
                    tracing::debug!(%error, "step failed");
                }
                result
            }
            .instrument(span),
        )
    }
}

/// Steps run in order until one requeues, finishes or fails.
pub struct Pipeline<C> {
    steps: Vec<Box<dyn Step<C>>>,
}

impl<C: StepContext + 'static> Default for Pipeline<C> {
    fn default() -> Self {
        Self::new()
    }
}

impl<C: StepContext + 'static> Pipeline<C> {
    /// An empty pipeline.
    pub fn new() -> Self {
        Pipeline { steps: Vec::new() }
    }

    /// Appends a step, traced.
    pub fn then(mut self, step: impl Step<C> + 'static) -> Self {
        self.steps.push(Box::new(traced(step)));
        self
    }

    /// Runs the steps; returns the flow of the step that stopped it, or `Continue`
    /// when every step ran.
    pub async fn run(&self, ctx: &mut C) -> Result<Flow> {
        for step in &self.steps {
            match step.run(ctx).await? {
                Flow::Continue => {}
                stop => return Ok(stop),
            }
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests;
