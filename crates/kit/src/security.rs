//! Pod Security: the settings every managed pod starts from, so that a namespace that
//! enforces the `restricted` profile (`pod-security.kubernetes.io/enforce=restricted`)
//! admits them.
//!
//! `restricted` asks for four things, all of which a container can carry itself: not
//! running as root, no privilege escalation, no capability (at most `NET_BIND_SERVICE`
//! added back) and a seccomp profile. Kept at the container, they need nothing of the
//! pod, so a kind that must also pin users or a filesystem group (PostgreSQL, memcached)
//! adds its own pod settings beside them.

use k8s_openapi::api::core::v1::{Capabilities, SeccompProfile, SecurityContext};

/// A container that Pod Security `restricted` admits: non-root (the image's user must
/// be a number other than 0, or the pod must set one), no privilege escalation, every
/// capability dropped, the container runtime's default seccomp profile.
pub fn restricted_container() -> SecurityContext {
    SecurityContext { run_as_non_root: Some(true), seccomp_profile: Some(runtime_default()), ..unprivileged() }
}

/// No privilege escalation and no capability: the container half of `restricted`, for a
/// kind that sets the other half (user, seccomp) on its pods.
pub fn unprivileged() -> SecurityContext {
    SecurityContext {
        allow_privilege_escalation: Some(false),
        capabilities: Some(Capabilities { drop: Some(vec!["ALL".into()]), ..Capabilities::default() }),
        ..SecurityContext::default()
    }
}

/// The container runtime's default seccomp profile, which `restricted` asks for.
pub fn runtime_default() -> SeccompProfile {
    SeccompProfile { type_: "RuntimeDefault".into(), ..SeccompProfile::default() }
}

/// The container settings of a kind whose spec may replace them: the spec's own, whole
/// and as written (`{}` runs the image as it was built, root included), or
/// [`restricted_container`] when the spec says nothing. Whole rather than merged: a
/// user who lifts one restriction sees in the spec everything the container gets.
pub fn container_or_restricted(spec: Option<&SecurityContext>) -> SecurityContext {
    spec.cloned().unwrap_or_else(restricted_container)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_meets_each_rule_of_the_restricted_profile() {
        let context = container_or_restricted(None);
        assert_eq!(context.run_as_non_root, Some(true));
        assert_eq!(context.allow_privilege_escalation, Some(false));
        assert_eq!(context.capabilities.and_then(|c| c.drop), Some(vec!["ALL".to_owned()]));
        assert_eq!(context.seccomp_profile.map(|p| p.type_).as_deref(), Some("RuntimeDefault"));
        assert_eq!(context.privileged, None);
    }

    #[test]
    fn a_spec_that_sets_its_own_replaces_the_default_whole() {
        let root = SecurityContext::default();
        assert_eq!(container_or_restricted(Some(&root)), SecurityContext::default());
        let own = SecurityContext { run_as_user: Some(1000), ..SecurityContext::default() };
        let context = container_or_restricted(Some(&own));
        assert_eq!(context.run_as_user, Some(1000));
        assert_eq!(context.capabilities, None, "nothing of the default is merged in");
    }
}
