//! Errors of a reconcile, each with a [`Class`] that decides what happens next:
//! retryable errors back off per object and try again, permanent ones mark the object
//! Failed and wait for a change.

use std::time::Duration;

/// What a failed reconcile should do next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Transient (network, 5xx, 409, 429, timeouts): retry with per-object backoff.
    Retryable,
    /// Cannot succeed until the spec changes (invalid spec): phase Failed, a Warning
    /// event, and no requeue: the next generation triggers the next attempt.
    Permanent,
    /// Cannot succeed until something else in the cluster changes, something this
    /// operator does not watch (an object of the same name that it does not own, a
    /// full quota, RBAC or a policy webhook that forbids the request): phase Failed
    /// like `Permanent`, but re-checked with the per-object backoff so the object
    /// recovers by itself once the cause is gone.
    Blocked,
}

/// A reconcile error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A call to the API server failed.
    #[error("{action} failed: {}", describe(error))]
    Kube {
        /// What we were doing, e.g. "apply Deployment web".
        action: String,
        /// The client error (its text is in this error's message, so it is not a
        /// `source`: status messages and Warning events stay one readable line).
        error: kube::Error,
    },
    /// An object of the name we need exists and is not controlled by our object.
    #[error("{kind} {name} already exists and is not owned by this {owner}; delete or rename it")]
    NotOwned {
        /// Kind of the conflicting object.
        kind: String,
        /// Its name.
        name: String,
        /// Kind of our object.
        owner: String,
    },
    /// A child of the name we need was left by an earlier object of our kind and name
    /// (deleted, its children not yet collected); it has just been deleted, and the
    /// next reconcile makes ours.
    #[error("{kind} {name} was left by an earlier {owner} of the same name; deleted it to make a new one")]
    Leftover {
        /// Kind of the leftover child.
        kind: String,
        /// Its name.
        name: String,
        /// Kind of our object.
        owner: String,
    },
    /// The spec passed the schema but cannot be realised.
    #[error("invalid spec: {0}")]
    InvalidSpec(String),
    /// The spec asks for a change that could lose or corrupt data, which the operator
    /// makes only with an explicit opt-in; until then the children stay as they are.
    #[error("{message}")]
    Refused {
        /// CamelCase reason for conditions and events, e.g. `VersionChangeRefused`.
        reason: &'static str,
        /// What was refused, why, and how to go on.
        message: String,
    },
    /// Something the operator may not look at stands in the way (it may go by itself,
    /// or need the user): re-checked with the per-object backoff.
    #[error("{message}")]
    Blocked {
        /// CamelCase reason for conditions and events, e.g. `SecretExists`.
        reason: &'static str,
        /// What is in the way, and what the user can do.
        message: String,
    },
    /// A step took longer than its budget.
    #[error("step {step} timed out after {after:?}")]
    Timeout {
        /// Step name.
        step: &'static str,
        /// Budget.
        after: Duration,
    },
    /// The object changed since this reconcile read it; the next one starts afresh.
    #[error("{kind} {name} changed while it was being reconciled; reconciling again")]
    Stale {
        /// Kind of the object.
        kind: String,
        /// Its name.
        name: String,
    },
    /// A cached copy could not be read back ([`crate::compact::ChildCache::get`]): a
    /// defect of the operator, retried in case the next watch event records it anew.
    #[error("cached {kind} {name} cannot be read back: {reason}")]
    Unreadable {
        /// Kind of the cached object.
        kind: String,
        /// Its name.
        name: String,
        /// The decoder's message.
        reason: String,
    },
    /// Waiting for something that has not happened yet (a child to go away...).
    #[error("waiting: {0}")]
    Waiting(String),
    /// The reconcile was dropped where it waited, because its controller had to stop at
    /// once (this process lost the right to write, e.g. the leader Lease).
    #[error("reconcile cancelled: the controller stopped at once")]
    Cancelled,
}

impl From<kube::runtime::finalizer::Error<Error>> for Error {
    /// Unwraps kube's finalizer errors: our own errors come back as they were, failures
    /// to add or remove the finalizer are API errors like any other.
    fn from(error: kube::runtime::finalizer::Error<Error>) -> Self {
        use kube::runtime::finalizer::Error as F;
        match error {
            F::ApplyFailed(e) | F::CleanupFailed(e) => e,
            // kube's finalizer patch carries a JSON-patch `test` of the finalizer list; a
            // 422 there means someone else changed the list meanwhile (kube#964).
            F::AddFinalizer(kube::Error::Api(s)) | F::RemoveFinalizer(kube::Error::Api(s)) if s.code == 422 => {
                Error::Stale { kind: "object".into(), name: "finalizers".into() }
            }
            F::AddFinalizer(e) => Error::kube("add finalizer", e),
            F::RemoveFinalizer(e) => Error::kube("remove finalizer", e),
            F::UnnamedObject => Error::InvalidSpec("object has no name".into()),
            F::InvalidFinalizer => Error::InvalidSpec("invalid finalizer name".into()),
        }
    }
}

/// Result of the kit's operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// Wraps a client error with what we were doing.
    pub fn kube(action: impl Into<String>, source: kube::Error) -> Self {
        Error::Kube { action: action.into(), error: source }
    }

    /// How to go on after this error.
    pub fn class(&self) -> Class {
        match self {
            Error::Kube { error, .. } => classify_kube(error),
            Error::NotOwned { .. } | Error::Blocked { .. } => Class::Blocked,
            Error::InvalidSpec(_) | Error::Refused { .. } => Class::Permanent,
            Error::Timeout { .. }
            | Error::Waiting(_)
            | Error::Stale { .. }
            | Error::Leftover { .. }
            | Error::Unreadable { .. }
            | Error::Cancelled => Class::Retryable,
        }
    }

    /// Whether this is part of normal operation (waiting for the cluster, a stale read)
    /// rather than a failure worth a warning.
    pub fn is_expected(&self) -> bool {
        // A cancelled reconcile is not a failure of its object: whoever runs next redoes it.
        matches!(self, Error::Waiting(_) | Error::Stale { .. } | Error::Leftover { .. } | Error::Cancelled)
            || self.namespace_terminating()
    }

    /// Whether the API server refused new content because the object's namespace is
    /// being deleted: the object goes with it, nothing is wrong with it or with us.
    fn namespace_terminating(&self) -> bool {
        matches!(self, Error::Kube { error: kube::Error::Api(status), .. }
            if status.code == 403 && status.message.contains("because it is being terminated"))
    }

    /// A short CamelCase reason for conditions, events and the metric label. Bounded:
    /// never contains names, so metric cardinality stays small.
    pub fn reason(&self) -> &'static str {
        match self {
            _ if self.namespace_terminating() => "NamespaceTerminating",
            Error::Kube { error: kube::Error::Api(status), .. } => api_reason(status),
            Error::Kube { .. } => "ApiUnreachable",
            Error::NotOwned { .. } => "NotOwned",
            Error::InvalidSpec(_) => "InvalidSpec",
            Error::Refused { reason, .. } | Error::Blocked { reason, .. } => reason,
            Error::Timeout { .. } => "Timeout",
            Error::Waiting(_) => "Waiting",
            Error::Stale { .. } => "Stale",
            Error::Leftover { .. } => "Leftover",
            Error::Unreadable { .. } => "CacheUnreadable",
            Error::Cancelled => "Cancelled",
        }
    }
}

/// The API server's own message for its answers; the client's text for the rest.
fn describe(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(status) => status.message.clone(),
        other => other.to_string(),
    }
}

/// Whether a 400/422 is the API server's trouble rather than the request's: the Service
/// IP allocator reports a failure to reach etcd as an invalid `spec.clusterIPs`
/// ("failed to allocate IP: rpc error: code = Unavailable"), seen by the chaos suite
/// during an etcd restart. The same request succeeds once etcd is back.
fn storage_trouble(message: &str) -> bool {
    message.contains("rpc error: code = Unavailable") || message.contains("rpc error: code = DeadlineExceeded")
}

/// The reason of an API server's answer: by status code, with the answers whose code
/// says more than the cause (below) told apart.
fn api_reason(status: &kube::core::Status) -> &'static str {
    match status.code {
        // A new namespace's default ServiceAccount is made by the controller manager a
        // moment after the namespace: until then, admission refuses its Pods.
        403 if status.message.contains("error looking up service account") => "ServiceAccountMissing",
        403 => "Forbidden",
        409 => "Conflict",
        422 | 400 if storage_trouble(&status.message) => "StorageUnavailable",
        422 | 400 => "Invalid",
        429 => "TooManyRequests",
        404 => "NotFound",
        500.. => "ServerError",
        _ => "ApiError",
    }
}

/// Client errors: the API server's answers are classified by their reason, anything
/// below HTTP (connection, TLS, decoding a truncated body) is transient.
fn classify_kube(error: &kube::Error) -> Class {
    match error {
        kube::Error::Api(status) => match api_reason(status) {
            // Forbidden is a state of the cluster, not of the request: a full quota clears
            // when something else is deleted, RBAC or a policy webhook when an
            // administrator fixes them, and no watch of ours tells us when.
            "Forbidden" => Class::Blocked,
            // Invalid: sending the same request again gives the same answer (the API
            // server's own trouble called invalid is `StorageUnavailable`, retried).
            "Invalid" => Class::Permanent,
            _ => Class::Retryable,
        },
        _ => Class::Retryable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::Status;

    fn api(code: u16) -> Error {
        let status = Status::failure("x", "y").with_code(code);
        Error::kube("apply Deployment a/b", kube::Error::Api(Box::new(status)))
    }

    #[test]
    fn api_errors_are_classified_by_code() {
        for code in [404, 409, 429, 500, 503, 504] {
            assert_eq!(api(code).class(), Class::Retryable, "{code}");
        }
        for code in [400, 422] {
            assert_eq!(api(code).class(), Class::Permanent, "{code}");
        }
    }

    #[test]
    fn an_invalid_answer_caused_by_etcd_being_away_is_retried() {
        let message = "Service \"web\" is invalid: spec.clusterIPs: Invalid value: [\"\"]: failed to allocate IP: \
                       rpc error: code = Unavailable desc = error reading from server: EOF";
        let status = Status::failure(message, "Invalid").with_code(422);
        let error = Error::kube("apply Service web", kube::Error::Api(Box::new(status)));
        assert_eq!(error.class(), Class::Retryable);
        assert_eq!(error.reason(), "StorageUnavailable");
    }

    #[test]
    fn a_service_account_not_made_yet_is_waited_for() {
        let message = "pods \"pm-0\" is forbidden: error looking up service account ns/default: \
                       serviceaccount \"default\" not found";
        let status = Status::failure(message, "Forbidden").with_code(403);
        let error = Error::kube("apply Pod pm-0", kube::Error::Api(Box::new(status)));
        assert_eq!(error.class(), Class::Retryable);
        assert_eq!(error.reason(), "ServiceAccountMissing");
    }

    #[test]
    fn forbidden_is_re_checked_because_fixing_rbac_changes_nothing_we_watch() {
        let status = Status::failure(
            "deployments.apps \"web\" is forbidden: User \"system:serviceaccount:x:op\" cannot patch resource",
            "Forbidden",
        )
        .with_code(403);
        let error = Error::kube("apply Deployment web", kube::Error::Api(Box::new(status)));
        assert_eq!(error.class(), Class::Blocked);
        assert_eq!(error.reason(), "Forbidden");
    }

    #[test]
    fn ownership_conflicts_block_and_bad_specs_are_permanent() {
        let not_owned = Error::NotOwned { kind: "Deployment".into(), name: "web".into(), owner: "WebApp".into() };
        assert_eq!(not_owned.class(), Class::Blocked);
        assert_eq!(not_owned.reason(), "NotOwned");
        assert_eq!(Error::InvalidSpec("x".into()).class(), Class::Permanent);
        let refused = Error::Refused { reason: "VersionChangeRefused", message: "no".into() };
        assert_eq!((refused.class(), refused.reason()), (Class::Permanent, "VersionChangeRefused"));
        assert_eq!(Error::Timeout { step: "s", after: Duration::from_secs(1) }.class(), Class::Retryable);
    }

    #[test]
    fn a_full_quota_blocks_instead_of_failing_for_good() {
        let status = Status::failure("exceeded quota: compute, requested: pods=1", "Forbidden").with_code(403);
        assert_eq!(Error::kube("apply", kube::Error::Api(Box::new(status))).class(), Class::Blocked);
    }

    #[test]
    fn a_terminating_namespace_is_expected_not_forbidden() {
        let message = "deployments.apps \"web\" is forbidden: unable to create new content in namespace ns because it is being terminated";
        let error = Error::kube(
            "apply Deployment web",
            kube::Error::Api(Box::new(Status::failure(message, "Forbidden").with_code(403))),
        );
        assert_eq!(error.reason(), "NamespaceTerminating");
        assert!(error.is_expected());
        assert!(!api(403).is_expected());
    }

    #[test]
    fn reasons_never_carry_names() {
        assert_eq!(api(409).reason(), "Conflict");
        assert_eq!(api(503).reason(), "ServerError");
    }
}
