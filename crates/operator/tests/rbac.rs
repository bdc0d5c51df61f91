//! Least privilege, proven on the real local control plane: the chart's ServiceAccount and
//! RBAC (rendered by `helm template`, so exactly what `helm install` grants) are created,
//! a token is minted for the ServiceAccount (TokenRequest), and the operator runs with a
//! client that holds only that token. The WebApp, WebServer and Memcached scenarios pass
//! under it, and SubjectAccessReviews show what the identity must not do: nodes, Secrets
//! beyond the rules, any `*` verb, RBAC escalation, and (namespace scope) other namespaces.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::core::v1::{Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client};
use serde_json::{Value, json};
use webapp_api::{Memcached, WebApp, WebServer};
use webapp_operator::controllers::ControllerKind;

/// One cluster-wide operator at a time in this test binary: it would otherwise also
/// reconcile the objects of the namespace-scope test running beside it.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The chart's ServiceAccount and RBAC for one release, installed in `namespace`; its
/// cluster-scoped objects are deleted when dropped (the namespaced ones go with the
/// test namespaces).
struct Install {
    release: String,
    namespace: String,
}

impl Install {
    /// `helm template` with `values`, keeping only the ServiceAccount and RBAC, applied.
    fn new(namespace: &str, values: &[&str]) -> Self {
        let release = namespace.to_owned();
        let chart = repo().join("charts/webapp-operator");
        let mut helm = std::process::Command::new(cluster_bin().join("helm"));
        helm.args(["template", &release, chart.to_str().unwrap(), "--namespace", namespace]).args([
            "--show-only",
            "templates/serviceaccount.yaml",
            "--show-only",
            "templates/rbac.yaml",
        ]);
        for value in values {
            helm.args(["--set", value]);
        }
        let output = helm.output().expect("cannot run helm");
        assert!(output.status.success(), "helm template failed: {}", String::from_utf8_lossy(&output.stderr));
        kubectl_stdin(&["apply", "--server-side", "-f", "-"], &output.stdout);
        Install { release, namespace: namespace.to_owned() }
    }

    /// The ServiceAccount's name (the release's full name).
    fn account(&self) -> String {
        format!("{}-webapp-operator", self.release)
    }

    /// The Kubernetes user name of the ServiceAccount.
    fn user(&self) -> String {
        format!("system:serviceaccount:{}:{}", self.namespace, self.account())
    }

    /// Every rule the release's Roles and ClusterRoles grant.
    fn rules(&self) -> Vec<Value> {
        let selector = format!("app.kubernetes.io/instance={}", self.release);
        let listed = kubectl_ok(&["get", "clusterroles,roles", "-A", "-l", &selector, "-o", "json"]);
        let listed: Value = serde_json::from_str(&listed).unwrap();
        let items = listed["items"].as_array().unwrap();
        assert!(!items.is_empty(), "no roles installed for {}", self.release);
        items.iter().flat_map(|role| role["rules"].as_array().cloned().unwrap_or_default()).collect()
    }

    /// The verbs the release's rules grant on `resource`.
    fn verbs_on(&self, resource: &str) -> BTreeSet<String> {
        let rules = self.rules();
        let naming =
            rules.iter().filter(|rule| rule["resources"].as_array().is_some_and(|r| r.contains(&json!(resource))));
        naming
            .flat_map(|rule| rule["verbs"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_owned()))
            .collect()
    }

    /// A client configuration holding nothing but a freshly minted token of the account.
    async fn kube_config(&self, client: &Client) -> kube::Config {
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &self.namespace);
        let request = json!({
            "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
            "spec": {"audiences": [], "expirationSeconds": 3600},
        });
        let minted: TokenRequest = accounts
            .create_subresource("token", &self.account(), &PostParams::default(), &request)
            .await
            .expect("TokenRequest refused");
        let mut config = kube_config().await;
        // Replaces the admin's client certificate: the token is the only credential.
        config.auth_info = serde_json::from_value(json!({"token": minted.status.unwrap().token})).unwrap();
        config
    }
}

impl Drop for Install {
    fn drop(&mut self) {
        let selector = format!("app.kubernetes.io/instance={}", self.release);
        let _ =
            kubectl().args(["delete", "clusterroles,clusterrolebindings", "-l", &selector, "--wait=false"]).output();
    }
}

/// Runs kubectl with `input` on stdin; panics with stderr on failure.
fn kubectl_stdin(args: &[&str], input: &[u8]) {
    let mut child =
        kubectl().args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Whether the API server's authorizer lets `user` (a ServiceAccount) do `verb` on
/// `group`/`resource` in `namespace` (cluster-wide when `None`).
async fn allowed(
    client: &Client,
    user: &str,
    verb: &str,
    group: &str,
    resource: &str,
    namespace: Option<&str>,
) -> bool {
    let account_namespace = user.split(':').nth(2).unwrap();
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{account_namespace}"), "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource, "namespace": namespace.unwrap_or("")},
        },
    }))
    .unwrap();
    let reviews: Api<SubjectAccessReview> = Api::all(client.clone());
    let answer = reviews.create(&PostParams::default(), &review).await.expect("SubjectAccessReview failed");
    answer.status.unwrap().allowed
}

/// What no installation may grant, wherever the operator watches.
async fn assert_never_granted(client: &Client, install: &Install, watched: &str) {
    let user = install.user();
    for rule in install.rules() {
        for field in ["verbs", "resources", "apiGroups"] {
            let values = rule[field].as_array().cloned().unwrap_or_default();
            assert!(!values.contains(&json!("*")), "a wildcard in {field}: {rule}");
        }
    }
    let forbidden: &[(&str, &str, &str, Option<&str>)] = &[
        ("*", "*", "*", None),
        ("*", "*", "*", Some(watched)),
        ("get", "", "nodes", None),
        ("list", "", "nodes", None),
        ("create", "", "namespaces", None),
        ("update", "", "secrets", Some(watched)),
        ("patch", "", "secrets", Some(watched)),
        ("delete", "", "secrets", Some(watched)),
        ("deletecollection", "", "secrets", Some(watched)),
        ("list", "", "secrets", Some("kube-system")),
        ("create", "", "pods/exec", Some(watched)),
        ("create", "", "serviceaccounts/token", Some(watched)),
        ("create", "rbac.authorization.k8s.io", "rolebindings", Some(watched)),
        ("create", "rbac.authorization.k8s.io", "clusterrolebindings", None),
        ("escalate", "rbac.authorization.k8s.io", "clusterroles", None),
        ("bind", "rbac.authorization.k8s.io", "clusterroles", None),
        ("impersonate", "", "users", None),
        ("create", "apiextensions.k8s.io", "customresourcedefinitions", None),
        ("delete", "apiextensions.k8s.io", "customresourcedefinitions", None),
        // The Lease is only writable in the operator's own namespace.
        ("update", "coordination.k8s.io", "leases", Some(watched)),
    ];
    for (verb, group, resource, namespace) in forbidden {
        assert!(
            !allowed(client, &user, verb, group, resource, *namespace).await,
            "{user} may {verb} {group}/{resource} in {namespace:?}"
        );
    }
    // Secrets: only what a rule of config/rbac/role.yaml names (none, or the Database
    // controller's), never a write to an existing one.
    let granted = install.verbs_on("secrets");
    for verb in ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"] {
        let expected = granted.contains(verb);
        assert_eq!(allowed(client, &user, verb, "", "secrets", Some(watched)).await, expected, "{verb} secrets");
    }
    // Any `*` verb on what the rules do name is refused too.
    for (group, resource) in [("apps.example.com", "webapps"), ("apps", "deployments"), ("", "services"), ("", "pods")]
    {
        assert!(!allowed(client, &user, "*", group, resource, Some(watched)).await, "* on {resource}");
    }
    // The reviews can say yes: the operator's own needs are granted.
    assert!(allowed(client, &user, "patch", "apps.example.com", "webapps", Some(watched)).await);
    assert!(allowed(client, &user, "update", "coordination.k8s.io", "leases", Some(&install.namespace)).await);
}

/// A kind's basic scenario: created → Running with its children, scaled, deleted with
/// its children.
struct Scenario {
    controller: &'static str,
    resource: ApiResource,
    /// `spec.replicas` or `spec.size`.
    count: &'static str,
    spec: Value,
}

fn scenarios() -> Vec<Scenario> {
    vec![
        Scenario {
            controller: "webapp",
            resource: ApiResource::erase::<WebApp>(&()),
            count: "replicas",
            spec: json!({"image": "nginx:1.20", "port": 80, "domain": "rbac.example.com"}),
        },
        Scenario {
            controller: "webserver",
            resource: ApiResource::erase::<WebServer>(&()),
            count: "replicas",
            spec: json!({}),
        },
        Scenario {
            controller: "memcached",
            resource: ApiResource::erase::<Memcached>(&()),
            count: "size",
            spec: json!({}),
        },
    ]
}

fn running(generation: i64, ready: i64) -> impl Fn(&DynamicObject) -> bool {
    move |o| {
        o.data.pointer("/status/phase") == Some(&json!("Running"))
            && o.data.pointer("/status/observedGeneration") == Some(&json!(generation))
            && o.data.pointer("/status/readyReplicas") == Some(&json!(ready))
    }
}

async fn wait_for(api: &Api<DynamicObject>, name: &str, what: &str, check: impl Fn(&DynamicObject) -> bool) {
    let found = eventually(Duration::from_secs(90), || async { api.get(name).await.ok().filter(|o| check(o)) }).await;
    if found.is_none() {
        let last = api.get(name).await.ok().map(|o| o.data["status"].clone());
        panic!("{name} never got {what}; last status: {last:#?}");
    }
}

impl Scenario {
    async fn run(&self, client: &Client, ns: &str) {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &self.resource);
        let name = self.controller;
        let mut spec = self.spec.clone();
        spec[self.count] = json!(2);
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": self.resource.api_version, "kind": self.resource.kind,
            "metadata": {"name": name}, "spec": spec,
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.expect("rejected");
        wait_for(&api, name, "Running with 2 ready", running(1, 2)).await;

        let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
        let services: Api<Service> = Api::namespaced(client.clone(), ns);
        assert!(deployments.get_opt(name).await.unwrap().is_some(), "{name}: no Deployment");
        assert!(services.get_opt(name).await.unwrap().is_some(), "{name}: no Service");
        if self.spec.get("domain").is_some() {
            let ingresses: Api<Ingress> = Api::namespaced(client.clone(), ns);
            assert!(ingresses.get_opt(name).await.unwrap().is_some(), "{name}: no Ingress");
        }

        let scale = json!({"spec": {self.count: 3}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&scale)).await.unwrap();
        wait_for(&api, name, "Running with 3 ready", running(2, 3)).await;

        // Deletion: the WebApp's finalizer (ordered cleanup, then its removal) and the
        // garbage collector for the others; either way nothing is left behind.
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let gone = eventually(Duration::from_secs(60), || async {
            let object = api.get_opt(name).await.ok()?;
            let deployment = deployments.get_opt(name).await.ok()?;
            let service = services.get_opt(name).await.ok()?;
            (object.is_none() && deployment.is_none() && service.is_none()).then_some(())
        })
        .await;
        assert!(gone.is_some(), "{name}: not deleted with its children");
    }
}

/// Runs every scenario at once in `ns` under `operator`; then no reconcile was refused.
async fn run_scenarios(client: &Client, ns: &str, operator: &Operator) {
    let scenarios = scenarios();
    futures::future::join_all(scenarios.iter().map(|scenario| scenario.run(client, ns))).await;
    for scenario in &scenarios {
        let sample = format!(
            "controller_runtime_reconcile_errors_total{{controller=\"{}\",reason=\"Forbidden\"}}",
            scenario.controller
        );
        assert_eq!(operator.metric(&sample).await, 0.0, "{} was refused something", scenario.controller);
        let reconciles =
            format!("controller_runtime_reconcile_total{{controller=\"{}\",result=\"success\"}}", scenario.controller);
        assert!(operator.metric(&reconciles).await > 0.0, "{} never reconciled", scenario.controller);
    }
}

const CONTROLLERS: [ControllerKind; 3] = [ControllerKind::Webapp, ControllerKind::Webserver, ControllerKind::Memcached];

/// Cluster scope (the chart's defaults): a ClusterRole, the Lease in the operator's
/// namespace, every namespace watched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_is_enough_and_no_more_in_cluster_scope() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_crds(&admin).await;
    let home = TestNamespace::new(&admin, "rbac-op").await;
    let work = TestNamespace::new(&admin, "rbac-ws").await;
    let install = Install::new(&home.name, &[]);

    let mut config = Operator::config(&home.name, CONTROLLERS.to_vec());
    config.namespace = None;
    config.leader_elect = true;
    config.leader_election_namespace = Some(home.name.clone());
    let operator = Operator::start_as(config, install.kube_config(&admin).await).await;

    run_scenarios(&admin, &work.name, &operator).await;
    assert_never_granted(&admin, &install, &work.name).await;
    // The token is the operator's only credential: it cannot even list nodes.
    let restricted = Client::try_from(install.kube_config(&admin).await).unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(restricted);
    let refused = nodes.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(status) if status.code == 403), "{refused}");
    operator.stop().await;
}

/// Namespace scope: a Role in the watched namespace only. The scenarios pass there; an
/// object in another namespace is never touched, and nothing there is granted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_rbac_is_enough_and_no_more_in_namespace_scope() {
    let _serial = SERIAL.lock().await;
    let admin = client().await;
    install_crds(&admin).await;
    let home = TestNamespace::new(&admin, "rbac-op").await;
    let work = TestNamespace::new(&admin, "rbac-wn").await;
    let other = TestNamespace::new(&admin, "rbac-other").await;
    let install = Install::new(&home.name, &[&format!("watchNamespace={}", work.name)]);

    // Another namespace's WebApp, there before the operator starts.
    let others: Api<WebApp> = Api::namespaced(admin.clone(), &other.name);
    let untouched: WebApp = serde_json::from_value(json!({
        "apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp",
        "metadata": {"name": "elsewhere"}, "spec": {"image": "nginx:1.20", "replicas": 1},
    }))
    .unwrap();
    others.create(&PostParams::default(), &untouched).await.unwrap();

    let mut config = Operator::config(&work.name, CONTROLLERS.to_vec());
    config.leader_elect = true;
    config.leader_election_namespace = Some(home.name.clone());
    let operator = Operator::start_as(config, install.kube_config(&admin).await).await;
    // Evidence the operator looked: its own namespace's scenarios all ran to the end.
    run_scenarios(&admin, &work.name, &operator).await;

    let elsewhere = others.get("elsewhere").await.unwrap();
    assert!(elsewhere.status.is_none(), "status written in another namespace: {:?}", elsewhere.status);
    assert!(elsewhere.metadata.finalizers.unwrap_or_default().is_empty(), "finalizer added in another namespace");
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &other.name);
    assert!(deployments.get_opt("elsewhere").await.unwrap().is_none(), "children made in another namespace");

    assert_never_granted(&admin, &install, &work.name).await;
    let user = install.user();
    for (group, resource) in [
        ("apps.example.com", "webapps"),
        ("webserver.example.com", "webservers"),
        ("cache.example.com", "memcacheds"),
        ("apps", "deployments"),
        ("", "services"),
        ("", "pods"),
    ] {
        for namespace in [Some(other.name.as_str()), None] {
            assert!(
                !allowed(&admin, &user, "list", group, resource, namespace).await,
                "list {resource} in {namespace:?}"
            );
        }
        assert!(allowed(&admin, &user, "list", group, resource, Some(&work.name)).await, "list {resource} in watched");
    }
    operator.stop().await;
}
