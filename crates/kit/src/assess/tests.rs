use proptest::prelude::*;

use super::*;
use crate::conditions::is_true;

fn now() -> Timestamp {
    Timestamp::from_second(1_000).unwrap()
}

fn progress(ready: bool) -> Progress {
    Progress { ready, summary: format!("{}/2 pods ready", if ready { 2 } else { 0 }), ..Progress::default() }
}

fn previous(assessment: &Assessment) -> Previous<'_> {
    Previous { phase: Some(assessment.phase), observed_generation: Some(1), conditions: &assessment.conditions }
}

#[test]
fn a_new_object_goes_creating_then_running_when_ready() {
    let first = assess(Previous::default(), Some(1), &progress(false), None, now());
    assert_eq!(first.phase, Phase::Creating);
    assert_eq!(first.message, "waiting: 0/2 pods ready");
    assert!(!is_true(&first.conditions, READY) && is_true(&first.conditions, PROGRESSING));
    assert!(is_true(&first.conditions, RECONCILING) && !is_true(&first.conditions, STALLED));
    let second = assess(previous(&first), Some(1), &progress(true), None, now());
    assert_eq!(second.phase, Phase::Running);
    assert!(is_true(&second.conditions, READY) && !is_true(&second.conditions, PROGRESSING));
    assert!(second.conditions.iter().all(|c| c.observed_generation == Some(1)));
}

#[test]
fn a_converged_object_assesses_to_what_it_has_whatever_the_clock() {
    let running = assess(Previous::default(), Some(1), &progress(true), None, now());
    let running = assess(previous(&running), Some(1), &progress(true), None, now());
    let later = Timestamp::from_second(9_999).unwrap();
    assert_eq!(assess(previous(&running), Some(1), &progress(true), None, later), running);
}

#[test]
fn a_change_or_failing_pods_keep_it_creating() {
    let running = assess(Previous::default(), Some(1), &progress(true), None, now());
    let running = assess(previous(&running), Some(1), &progress(true), None, now());
    let changed = assess(previous(&running), Some(2), &Progress { changed: true, ..progress(true) }, None, now());
    assert_eq!((changed.phase, changed.message.as_str()), (Phase::Creating, "resources updated, rollout starting"));
    let failing = Progress { problems: vec!["pod a: container app: CrashLoopBackOff".into()], ..progress(true) };
    let failing = assess(previous(&running), Some(1), &failing, None, now());
    assert_eq!(failing.phase, Phase::Creating);
    assert!(is_true(&failing.conditions, DEGRADED) && failing.message.contains("CrashLoopBackOff"));
}

#[test]
fn a_failure_is_failed_and_degraded_with_its_reason() {
    let failure =
        Failure { reason: "NotOwned".into(), message: "Deployment web already exists".into(), retrying: false };
    let failed = assess(Previous::default(), Some(1), &progress(true), Some(&failure), now());
    assert_eq!(failed.phase, Phase::Failed);
    let degraded = failed.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "NotOwned"));
    assert!(is_true(&failed.conditions, STALLED) && !is_true(&failed.conditions, RECONCILING));
}

#[test]
fn pending_and_deleting_say_so() {
    let pending = pending(Some(1), now());
    assert_eq!(pending.phase, Phase::Pending);
    let deleting = deleting(previous(&pending), Some(1), "removing children", now());
    assert_eq!((deleting.phase, deleting.message.as_str()), (Phase::Deleting, "deleting: removing children"));
}

proptest! {
    #[test]
    fn every_assessment_takes_an_allowed_edge(
        from in prop::sample::select(vec![Phase::Pending, Phase::Creating, Phase::Running, Phase::Failed, Phase::Deleting]),
        ready: bool, changed: bool, failing: bool, failed: bool,
    ) {
        let progress = Progress { ready, changed, problems: if failing { vec!["x".into()] } else { vec![] }, summary: "s".into() };
        let failure = failed.then(|| Failure { reason: "R".into(), message: "m".into(), retrying: false });
        let previous = Previous { phase: Some(from), ..Previous::default() };
        let next = assess(previous, Some(1), &progress, failure.as_ref(), now());
        prop_assert!(crate::phase::transition(from, next.phase).is_ok());
        prop_assert_eq!(next.conditions.len(), 5);
        // kstatus: exactly one verdict among Ready, Reconciling and Stalled.
        let verdicts = [READY, RECONCILING, STALLED].iter().filter(|t| is_true(&next.conditions, t)).count();
        prop_assert_eq!(verdicts, 1);
        prop_assert_eq!(is_true(&next.conditions, STALLED), failed);
    }
}

#[test]
fn a_persistent_retryable_error_degrades_without_changing_the_phase_and_clears() {
    let running = assess(Previous::default(), Some(1), &progress(true), None, now());
    let running = assess(previous(&running), Some(1), &progress(true), None, now());
    let failure = Failure { reason: "ServerError".into(), message: "failed calling webhook".into(), retrying: true };
    let degraded = assess(previous(&running), Some(2), &progress(false), Some(&failure), now());
    assert_eq!((degraded.phase, degraded.message.as_str()), (Phase::Running, "failed calling webhook"));
    let condition = degraded.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
    assert_eq!((condition.status.as_str(), condition.reason.as_str()), ("True", "ServerError"));
    assert!(is_true(&degraded.conditions, READY), "the app keeps serving: Ready is kept");
    assert!(!is_true(&degraded.conditions, STALLED), "the operator keeps trying: not stalled");
    let recovered = assess(previous(&degraded), Some(2), &progress(true), None, now());
    assert_eq!(recovered.phase, Phase::Running);
    assert!(!is_true(&recovered.conditions, DEGRADED));
}

#[test]
fn only_errors_that_persist_reach_status() {
    use std::time::Duration;
    let status = kube::core::Status::failure("failed calling webhook", "InternalError").with_code(500);
    let error = crate::Error::kube("apply Deployment web", kube::Error::Api(Box::new(status)));
    let bound = crate::driver::PERSISTENT_AFTER;
    assert_eq!(Failure::report_after(&error, None), None);
    assert_eq!(Failure::report_after(&error, Some(bound - Duration::from_secs(1))), None);
    let failure = Failure::report_after(&error, Some(bound)).unwrap();
    assert!(failure.retrying && failure.reason == "ServerError", "{failure:?}");
    let waiting = crate::Error::Waiting("a child to go".into());
    assert_eq!(Failure::report_after(&waiting, Some(bound * 10)), None, "normal operation never does");
    let invalid = crate::Error::InvalidSpec("bad".into());
    assert!(!Failure::report_after(&invalid, None).unwrap().retrying, "a permanent error does at once");
}

#[test]
fn a_thousand_failing_pods_make_a_short_message() {
    let problems: Vec<String> =
        (0..1000).map(|i| format!("pod web-{i:04}: container app: ImagePullBackOff ({})", "x".repeat(400))).collect();
    let failing = Progress { problems, ..progress(false) };
    let assessment = assess(Previous::default(), Some(1), &failing, None, now());
    assert!(assessment.message.len() <= 4 * PROBLEM_LENGTH + 20, "{} bytes", assessment.message.len());
    assert!(assessment.message.starts_with("pod web-0000: container app: ImagePullBackOff"), "{}", assessment.message);
    assert!(assessment.message.ends_with("; and 997 more"), "{}", assessment.message);
    let degraded = assessment.conditions.iter().find(|c| c.type_ == DEGRADED).unwrap();
    assert_eq!(degraded.message, assessment.message);
}

#[test]
fn a_long_problem_is_cut_at_a_character_boundary() {
    let long = "é".repeat(300);
    let text = listed(&[long]);
    assert!(text.len() <= PROBLEM_LENGTH && text.ends_with('…'), "{} bytes", text.len());
    assert_eq!(listed(&["a".into(), "b".into()]), "a; b");
}
