use k8s_openapi::jiff::Timestamp;
use proptest::prelude::*;

use super::*;
use crate::assess::{self, Assessment, Failure, Previous, Progress};
use crate::phase::Phase;

/// A kind's status: the lifecycle part plus a count, as a WebApp's.
#[derive(Clone, Debug, Default, PartialEq)]
struct Status {
    phase: Option<Phase>,
    observed_generation: Option<i64>,
    ready_replicas: i32,
    message: String,
    conditions: Vec<Condition>,
}

impl LifecycleStatus for Status {
    fn phase(&self) -> Option<Phase> {
        self.phase
    }
    fn observed_generation(&self) -> Option<i64> {
        self.observed_generation
    }
    fn conditions(&self) -> &[Condition] {
        &self.conditions
    }
}

fn now() -> Timestamp {
    Timestamp::from_second(1_000).unwrap()
}

/// The status after a reconcile that found `ready` of 3 pods ready (ready once all are),
/// with `problems`, starting from `previous`.
fn after(previous: &Status, generation: i64, ready: i32, problems: &[&str]) -> Status {
    let progress = Progress {
        ready: ready == 3,
        changed: false,
        problems: problems.iter().map(|p| (*p).to_owned()).collect(),
        summary: format!("{ready}/3 pods ready"),
    };
    let assessment = assess::assess(Previous::of(previous), Some(generation), &progress, None, now());
    of(assessment, generation, ready)
}

fn of(assessment: Assessment, generation: i64, ready: i32) -> Status {
    Status {
        phase: Some(assessment.phase),
        observed_generation: Some(generation),
        ready_replicas: ready,
        message: assessment.message,
        conditions: assessment.conditions,
    }
}

const AGE: Duration = Duration::from_secs(5);

#[test]
fn the_first_status_and_every_phase_change_are_written_at_once() {
    let t = Instant::now();
    let creating = after(&Status::default(), 1, 0, &[]);
    assert_eq!(decide(None, &creating, None, t, AGE), Decision::Write);
    let pending = of(assess::pending(Some(1), now()), 1, 0);
    assert_eq!(decide(Some(&pending), &creating, None, t, AGE), Decision::Write);
    // Running carries the counts that waited, however short the wait.
    let one_ready = after(&creating, 1, 1, &[]);
    let running = after(&one_ready, 1, 3, &[]);
    assert_eq!(running.phase, Some(Phase::Running));
    assert_eq!(decide(Some(&creating), &running, Some(t), t, AGE), Decision::Write);
}

#[test]
fn counts_alone_wait_until_they_are_a_few_seconds_old() {
    let t = Instant::now();
    let creating = after(&Status::default(), 1, 0, &[]);
    let one_ready = after(&creating, 1, 1, &[]);
    assert!(!is_transition(&creating, &one_ready), "only the count and the messages differ");
    assert_eq!(decide(Some(&creating), &one_ready, None, t, AGE), Decision::Wait(AGE));
    let later = t + Duration::from_secs(2);
    assert_eq!(decide(Some(&creating), &one_ready, Some(t), later, AGE), Decision::Wait(Duration::from_secs(3)));
    assert_eq!(decide(Some(&creating), &one_ready, Some(t), t + AGE, AGE), Decision::Write);
    assert_eq!(decide(Some(&one_ready), &one_ready, Some(t), t + AGE, AGE), Decision::Unchanged);
}

#[test]
fn failing_pods_a_failure_and_a_new_generation_are_transitions() {
    let creating = after(&Status::default(), 1, 0, &[]);
    let failing = after(&creating, 1, 0, &["pod w-1: ImagePullBackOff"]);
    assert!(is_transition(&creating, &failing), "the reason becomes PodsFailing");
    // Another wording of the same problem is detail.
    let still_failing = after(&failing, 1, 0, &["pod w-1: ErrImagePull"]);
    assert!(!is_transition(&failing, &still_failing));

    let failure = Failure::of(&Error::NotOwned { kind: "Deployment".into(), name: "w".into(), owner: "WebApp".into() });
    let failed =
        of(assess::assess(Previous::of(&creating), Some(1), &Progress::default(), Some(&failure), now()), 1, 0);
    assert!(is_transition(&creating, &failed));

    let running = after(&after(&creating, 1, 3, &[]), 1, 3, &[]);
    let next_generation = after(&running, 2, 3, &[]);
    assert!(is_transition(&running, &next_generation));
}

fn status_strategy() -> impl Strategy<Value = Status> {
    (0..3_i64, 0..4_i32, proptest::collection::vec("[a-z]{0,3}", 0..2)).prop_map(|(generation, ready, problems)| {
        let problems: Vec<&str> = problems.iter().map(String::as_str).filter(|p| !p.is_empty()).collect();
        let creating = after(&Status::default(), generation.max(1), 0, &[]);
        after(&creating, generation.max(1), ready, &problems)
    })
}

proptest! {
    /// Only detail ever waits, never longer than the maximum age, and a status equal to
    /// the current one is never written.
    #[test]
    fn only_detail_waits_and_never_longer_than_the_age(current in status_strategy(), next in status_strategy(), waited in 0..10_u64) {
        let t = Instant::now();
        let decision = decide(Some(&current), &next, Some(t), t + Duration::from_secs(waited), AGE);
        match decision {
            Decision::Unchanged => prop_assert_eq!(&current, &next),
            Decision::Wait(left) => {
                prop_assert!(!is_transition(&current, &next));
                prop_assert!(left <= AGE && !left.is_zero());
            }
            Decision::Write => prop_assert!(current != next),
        }
    }
}
