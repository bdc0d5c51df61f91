//! kstatus conditions: `Ready`, `Progressing` and `Degraded`, and kstatus's own
//! abnormal-true `Reconciling` and `Stalled`, each with its own `observedGeneration`. Merging with the previous list keeps `lastTransitionTime`
//! unless the condition's status flipped, so a reconcile that changes nothing produces
//! a status equal to the old one and writes nothing (kube#354).

use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use k8s_openapi::jiff::Timestamp;

/// Condition type: the object is fully available.
pub const READY: &str = "Ready";
/// Condition type: the operator is working towards the spec.
pub const PROGRESSING: &str = "Progressing";
/// Condition type: something is wrong that needs attention.
pub const DEGRADED: &str = "Degraded";
/// kstatus abnormal-true condition: the operator is working and the object is not yet
/// what the spec asks for (kstatus reads `InProgress`).
pub const RECONCILING: &str = "Reconciling";
/// kstatus abnormal-true condition: progress stopped until something changes (kstatus
/// reads `Failed`, so a GitOps pipeline fails at once instead of waiting for its timeout).
pub const STALLED: &str = "Stalled";

/// The new conditions of one reconcile, merged into the previous ones.
#[derive(Debug)]
pub struct Conditions {
    generation: Option<i64>,
    now: Timestamp,
    previous: Vec<Condition>,
    next: Vec<Condition>,
}

impl Conditions {
    /// Starts from the conditions currently in the status.
    pub fn new(previous: &[Condition], generation: Option<i64>, now: Timestamp) -> Self {
        Conditions { generation, now, previous: previous.to_vec(), next: Vec::new() }
    }

    /// Sets one condition. `reason` is CamelCase, `message` a sentence for humans.
    pub fn set(mut self, type_: &str, status: bool, reason: &str, message: impl Into<String>) -> Self {
        let status = if status { "True" } else { "False" }.to_owned();
        let last_transition_time = self
            .previous
            .iter()
            .find(|c| c.type_ == type_ && c.status == status)
            .map(|c| c.last_transition_time.clone())
            .unwrap_or(Time(self.now));
        self.next.retain(|c| c.type_ != type_);
        self.next.push(Condition {
            type_: type_.to_owned(),
            status,
            reason: reason.to_owned(),
            message: message.into(),
            observed_generation: self.generation,
            last_transition_time,
        });
        self
    }

    /// The merged list, sorted by type so that equal content compares equal. Types the
    /// previous status had and this reconcile did not set are kept as they were.
    pub fn build(self) -> Vec<Condition> {
        let mut merged = self.next;
        for old in self.previous {
            if !merged.iter().any(|c| c.type_ == old.type_) {
                merged.push(old);
            }
        }
        merged.sort_by(|a, b| a.type_.cmp(&b.type_));
        merged
    }
}

/// Whether condition `type_` is `True` in `conditions`.
pub fn is_true(conditions: &[Condition], type_: &str) -> bool {
    conditions.iter().any(|c| c.type_ == type_ && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> Timestamp {
        Timestamp::from_second(seconds).unwrap()
    }

    #[test]
    fn keeps_transition_time_when_status_does_not_change() {
        let first = Conditions::new(&[], Some(1), at(100)).set(READY, false, "Creating", "waiting").build();
        let second = Conditions::new(&first, Some(2), at(200)).set(READY, false, "Creating", "still waiting").build();
        assert_eq!(second[0].last_transition_time, Time(at(100)));
        assert_eq!(second[0].observed_generation, Some(2));
        assert_eq!(second[0].message, "still waiting");
        let third = Conditions::new(&second, Some(2), at(300)).set(READY, true, "Running", "ok").build();
        assert_eq!(third[0].last_transition_time, Time(at(300)));
    }

    #[test]
    fn same_inputs_give_equal_lists_whatever_the_clock() {
        let build = |prev: &[Condition], now| {
            Conditions::new(prev, Some(3), at(now))
                .set(READY, true, "Running", "ok")
                .set(DEGRADED, false, "Healthy", "")
                .set(PROGRESSING, false, "Done", "")
                .build()
        };
        let first = build(&[], 10);
        assert_eq!(build(&first, 99), first);
        let types: Vec<_> = first.iter().map(|c| c.type_.as_str()).collect();
        assert_eq!(types, ["Degraded", "Progressing", "Ready"]);
        assert!(is_true(&first, READY) && !is_true(&first, DEGRADED));
    }
}
