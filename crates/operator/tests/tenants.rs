//! Tenants use the custom resources through Kubernetes' built-in roles. Both install
//! paths ship an editor and a viewer ClusterRole (the chart's
//! `templates/tenant-roles.yaml`, kustomize's `config/rbac/tenant_roles.yaml`) labelled
//! for aggregation into `edit`/`admin` and `view`; the control plane's ClusterRole
//! aggregation controller then grants them to everyone holding those roles. Proven per
//! install path on the real control plane: before the roles, `edit` knows nothing of
//! the CRDs; with them, a user bound to `edit` in a namespace creates a WebApp there (an
//! impersonated request, not only a SubjectAccessReview), and a user bound to `view`
//! reads it but may not change it; removed, the grant goes again.
//!
//! One test: the roles are cluster-wide, so the two paths run one after the other.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use kube::api::{DeleteParams, PostParams};
use kube::{Api, Client};
use serde_json::json;
use webapp_api::WebApp;

/// The custom resources a tenant works with: (group, plural).
const KINDS: [(&str, &str); 5] = [
    ("apps.example.com", "webapps"),
    ("apps.mycompany.com", "podmanagers"),
    ("webserver.example.com", "webservers"),
    ("cache.example.com", "memcacheds"),
    ("database.example.com", "databases"),
];

/// The tenant roles of one install path, applied; deleted when dropped.
struct TenantRoles {
    names: Vec<String>,
}

impl TenantRoles {
    /// Applies `manifest` (ClusterRoles only) and remembers their names.
    fn apply(manifest: &str) -> Self {
        kubectl_stdin(&["apply", "--server-side", "-f", "-"], manifest.as_bytes());
        let names: Vec<String> = manifest
            .split("\n---")
            .filter(|doc| doc.contains("kind: ClusterRole\n"))
            .filter_map(|doc| doc.lines().find_map(|l| l.strip_prefix("  name: ")).map(str::to_owned))
            .collect();
        assert_eq!(names.len(), 2, "expected an editor and a viewer role in:\n{manifest}");
        TenantRoles { names }
    }
}

impl Drop for TenantRoles {
    fn drop(&mut self) {
        let _ = kubectl().args(["delete", "clusterrole", "--ignore-not-found"]).args(&self.names).output();
    }
}

/// Whether the API server lets `user` (a plain user, as a tenant's is) `verb` the
/// `group`/`resource` in `namespace`.
async fn may(client: &Client, user: &str, verb: &str, (group, resource): (&str, &str), namespace: &str) -> bool {
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "groups": ["system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace}},
    }))
    .unwrap();
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    reviews.create(&PostParams::default(), &review).await.expect("SubjectAccessReview failed").status.unwrap().allowed
}

/// Waits (for the aggregation controller, which updates `edit` and `view` one after the
/// other) until `user` may, or may no longer, `verb` WebApps.
async fn await_grant(client: &Client, (user, verb): (&str, &str), namespace: &str, granted: bool, path: &str) {
    let settled = eventually(Duration::from_secs(60), || async {
        (may(client, user, verb, KINDS[0], namespace).await == granted).then_some(())
    })
    .await;
    let what = if granted { "was never granted" } else { "kept" };
    assert!(settled.is_some(), "{path}: {user} {what} {verb} on WebApps through the built-in role");
}

/// A client acting as `user` (impersonation by the admin of the local control plane).
async fn as_user(user: &str) -> Client {
    let mut config = kube_config().await;
    config.auth_info.impersonate = Some(user.to_owned());
    config.auth_info.impersonate_groups = Some(vec!["system:authenticated".to_owned()]);
    Client::try_from(config).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn users_bound_to_edit_manage_the_custom_resources_and_view_reads_them() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "tenant").await;
    let n = ns.name.as_str();
    let (editor, viewer) = (format!("alice-{n}"), format!("bob-{n}"));
    for (user, role) in [(&editor, "edit"), (&viewer, "view")] {
        kubectl_ok(&[
            "-n",
            n,
            "create",
            "rolebinding",
            &format!("{role}-{user}"),
            "--clusterrole",
            role,
            "--user",
            user,
        ]);
    }
    // Positive control of the reviews: edit grants Deployments from the start.
    assert!(may(&client, &editor, "create", ("apps", "deployments"), n).await, "edit does not grant Deployments");
    for grant in [(editor.as_str(), "create"), (viewer.as_str(), "list")] {
        await_grant(&client, grant, n, false, "before any tenant role").await;
    }

    let webapp: WebApp = serde_json::from_value(json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "team-site"}, "spec": {"image": "nginx:1.21", "replicas": 1}}))
    .unwrap();
    let kustomize = std::fs::read_to_string(repo().join("config/rbac/tenant_roles.yaml")).unwrap();
    let paths = [
        ("chart", helm_template("tenants", n, &["--show-only", "templates/tenant-roles.yaml"])),
        ("kustomize", kustomize),
    ];
    for (path, manifest) in paths {
        let roles = TenantRoles::apply(&manifest);
        for grant in [(editor.as_str(), "create"), (viewer.as_str(), "list")] {
            await_grant(&client, grant, n, true, path).await;
        }
        for kind in KINDS {
            for verb in ["create", "get", "list", "watch", "patch", "update", "delete"] {
                assert!(may(&client, &editor, verb, kind, n).await, "{path}: edit may not {verb} {kind:?}");
            }
            for verb in ["get", "list", "watch"] {
                assert!(may(&client, &viewer, verb, kind, n).await, "{path}: view may not {verb} {kind:?}");
            }
            for verb in ["create", "patch", "delete"] {
                assert!(!may(&client, &viewer, verb, kind, n).await, "{path}: view may {verb} {kind:?}");
            }
            // Status is the operator's to write.
            let status = (kind.0, &*format!("{}/status", kind.1));
            assert!(!may(&client, &editor, "patch", status, n).await, "{path}: edit may patch {kind:?} status");
            // Nothing outside the namespace the binding is in.
            assert!(!may(&client, &editor, "create", kind, "default").await, "{path}: edit reaches default");
        }

        // Real requests, as the tenants.
        let as_editor: Api<WebApp> = Api::namespaced(as_user(&editor).await, n);
        as_editor.create(&PostParams::default(), &webapp).await.unwrap_or_else(|e| panic!("{path}: {e}"));
        let as_viewer: Api<WebApp> = Api::namespaced(as_user(&viewer).await, n);
        assert_eq!(as_viewer.get("team-site").await.unwrap().spec.image, "nginx:1.21");
        let refused = as_viewer.delete("team-site", &DeleteParams::default()).await.unwrap_err();
        assert!(matches!(&refused, kube::Error::Api(s) if s.code == 403), "{path}: view deleted: {refused}");
        as_editor.delete("team-site", &DeleteParams::default()).await.unwrap();
        let gone = eventually(Duration::from_secs(30), || async {
            as_editor.get_opt("team-site").await.ok()?.is_none().then_some(())
        })
        .await;
        assert!(gone.is_some(), "{path}: the WebApp was not deleted");

        // The grant came from these roles: removed, it goes.
        drop(roles);
        for grant in [(editor.as_str(), "create"), (viewer.as_str(), "list")] {
            await_grant(&client, grant, n, false, path).await;
        }
    }
}
