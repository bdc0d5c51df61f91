//! Least privilege, proven on the real local control plane: the chart's ServiceAccount and
//! RBAC (rendered by `helm template`, so exactly what `helm install` grants) are created,
//! a token is minted for the ServiceAccount (TokenRequest), and the operator runs with a
//! client that holds only that token. Every controller's basic scenario passes
//! under it, and SubjectAccessReviews show what the identity must not do: nodes, Secrets
//! beyond the rules, any `*` verb, RBAC escalation, and (namespace scope) other namespaces.
//! The operator also serves PodManager's conversion webhook under that identity: it
//! stores its certificate in the release's Secret and writes its CA into the CRD.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::BTreeSet;
use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::authorization::v1::SubjectAccessReview;
use k8s_openapi::api::batch::v1::CronJob;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret, Service, ServiceAccount};
use k8s_openapi::api::networking::v1::Ingress;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ApiResource, DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::{Api, Client, CustomResourceExt};
use serde_json::{Value, json};
use webapp_api::podmanager::v2::PodManager as PodManagerV2;
use webapp_api::{Database, Memcached, PodManager, WebApp, WebServer};
use webapp_operator::controllers::ControllerKind;
use webapp_operator::webhook::crd::Target;
use webapp_operator::webhook::{NamespacedName, WebhookConfig, default_hosts};

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
        let mut args = vec!["--show-only", "templates/serviceaccount.yaml", "--show-only", "templates/rbac.yaml"];
        for value in values {
            args.extend(["--set", value]);
        }
        let rendered = helm_template(&release, namespace, &args);
        kubectl_stdin(&["apply", "--server-side", "-f", "-"], rendered.as_bytes());
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

    /// The verbs the release's rules grant on every object of `resource` (rules limited
    /// to named objects left out).
    fn verbs_on(&self, resource: &str) -> BTreeSet<String> {
        let rules = self.rules();
        let naming = rules.iter().filter(|rule| {
            rule["resources"].as_array().is_some_and(|r| r.contains(&json!(resource)))
                && rule.get("resourceNames").is_none()
        });
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
    allowed_named(client, user, [verb, group, resource, ""], namespace).await
}

/// [`allowed`] on one object: `[verb, group, resource, name]` (rules with
/// `resourceNames` grant only requests that name the object).
async fn allowed_named(client: &Client, user: &str, request: [&str; 4], namespace: Option<&str>) -> bool {
    let [verb, group, resource, name] = request;
    let account_namespace = user.split(':').nth(2).unwrap();
    let review: SubjectAccessReview = serde_json::from_value(json!({
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {
            "user": user,
            "groups": ["system:serviceaccounts", format!("system:serviceaccounts:{account_namespace}"), "system:authenticated"],
            "resourceAttributes": {"verb": verb, "group": group, "resource": resource,
                "namespace": namespace.unwrap_or(""), "name": name},
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
    // Secrets: created (the Database's generated credentials), never read, listed,
    // watched, changed or deleted, in the watched namespace or anywhere else: a
    // compromised operator reads no Secret. What the rules say must be what the API
    // server answers.
    let granted = install.verbs_on("secrets");
    for verb in ["get", "list", "watch", "create", "update", "patch", "delete", "deletecollection"] {
        let expected = verb == "create";
        assert_eq!(
            granted.contains(verb),
            expected,
            "the rules {} {verb} on secrets",
            if expected { "lack" } else { "grant" }
        );
        assert_eq!(allowed(client, &user, verb, "", "secrets", Some(watched)).await, expected, "{verb} secrets");
        if !expected {
            let elsewhere = allowed(client, &user, verb, "", "secrets", Some("kube-system")).await;
            assert!(!elsewhere, "{user} may {verb} secrets in kube-system");
        }
    }
    // Any `*` verb on what the rules do name is refused too.
    for (group, resource) in [("apps.example.com", "webapps"), ("apps", "deployments"), ("", "services"), ("", "pods")]
    {
        assert!(!allowed(client, &user, "*", group, resource, Some(watched)).await, "* on {resource}");
    }
    // The CRD: only PodManager's, only patched (the webhook's client config).
    let crd = ("apiextensions.k8s.io", "customresourcedefinitions");
    assert!(allowed_named(client, &user, ["patch", crd.0, crd.1, "podmanagers.apps.mycompany.com"], None).await);
    for (verb, name) in [
        ("patch", "webapps.apps.example.com"),
        ("patch", ""),
        ("update", "podmanagers.apps.mycompany.com"),
        ("delete", "podmanagers.apps.mycompany.com"),
    ] {
        assert!(!allowed_named(client, &user, [verb, crd.0, crd.1, name], None).await, "{verb} CRD {name:?}");
    }
    // The webhook certificate's Secret: read, created and renewed (replaced whole), never
    // patched or deleted.
    let certificate = format!("{}-webhook-tls", install.account());
    let home = Some(install.namespace.as_str());
    assert!(allowed_named(client, &user, ["get", "", "secrets", &certificate], home).await);
    assert!(allowed_named(client, &user, ["update", "", "secrets", &certificate], home).await);
    assert!(!allowed_named(client, &user, ["update", "", "secrets", "someone-elses"], home).await);
    for verb in ["patch", "delete"] {
        assert!(!allowed_named(client, &user, [verb, "", "secrets", &certificate], home).await, "{verb} {certificate}");
    }
    // The reviews can say yes: the operator's own needs are granted.
    assert!(allowed(client, &user, "patch", "apps.example.com", "webapps", Some(watched)).await);
    assert!(allowed(client, &user, "update", "coordination.k8s.io", "leases", Some(&install.namespace)).await);
}

/// The operator as the chart installs it: every controller, leader election with the
/// Lease in `home`, the chart's webhook, the ServiceAccount token as its only
/// credential; watching `watched` only, or every namespace.
async fn start_under_chart(admin: &Client, install: &Install, home: &str, watched: Option<&str>) -> Operator {
    let mut config = Operator::config(watched.unwrap_or(home), CONTROLLERS.to_vec());
    config.namespace = watched.map(str::to_owned);
    config.leader_elect = true;
    config.leader_election_namespace = Some(home.to_owned());
    config.webhook = Some(chart_webhook(install));
    Operator::start_as(config, install.kube_config(admin).await).await
}

/// PodManager's conversion webhook as the chart runs it: the certificate generated into
/// the release's Secret, the CA written into the CRD, both under the ServiceAccount's
/// token. The API server runs on the host, so it calls the webhook by URL here instead
/// of through the chart's Service (rendered and dry-run by hack/check-chart).
fn chart_webhook(install: &Install) -> WebhookConfig {
    let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let secret = format!("{}-webhook-tls", install.account());
    WebhookConfig {
        addr,
        cert_dir: None,
        cert_secret: Some(NamespacedName { namespace: install.namespace.clone(), name: secret }),
        target: Target::Url(format!("https://{addr}{}", webapp_api::podmanager::CONVERT_PATH)),
        hosts: default_hosts(),
        cert_life: webapp_operator::webhook::certs::DEFAULT_LIFE,
    }
}

/// The operator's webhook serves conversions: the CRD trusts the CA the operator stored
/// in the release's Secret, and a PodManager written and read through v2 (the API
/// server stores v1) round-trips through it.
async fn assert_webhook_converts(admin: &Client, install: &Install, ns: &str) {
    let secrets: Api<Secret> = Api::namespaced(admin.clone(), &install.namespace);
    let stored = secrets.get(&format!("{}-webhook-tls", install.account())).await.expect("no certificate Secret");
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    let crd = crds.get(PodManager::crd_name()).await.unwrap();
    let bundle = crd.spec.conversion.unwrap().webhook.unwrap().client_config.unwrap().ca_bundle.unwrap();
    assert_eq!(stored.data.unwrap()["ca.crt"], bundle, "the CRD trusts the stored CA");

    let v2: Api<DynamicObject> = Api::namespaced_with(admin.clone(), ns, &ApiResource::erase::<PodManagerV2>(&()));
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "apps.mycompany.com/v2", "kind": "PodManager", "metadata": {"name": "through-v2"},
        "spec": {"replicas": 1, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.21"}]}}},
    }))
    .unwrap();
    // The API server may take a moment to pick up the new client config.
    let created =
        eventually(Duration::from_secs(30), || async { v2.create(&PostParams::default(), &object).await.ok() }).await;
    assert!(created.is_some(), "no PodManager through v2: {:?}", v2.create(&PostParams::default(), &object).await);
    let read = v2.get("through-v2").await.unwrap();
    assert_eq!(read.data["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.21");
    v2.delete("through-v2", &DeleteParams::default()).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { v2.get_opt("through-v2").await.ok()?.is_none().then_some(()) });
    assert!(gone.await.is_some(), "the PodManager through v2 was not deleted");
}

/// A kind's basic scenario: created → Running with its children, changed (generation
/// 2), deleted with its children.
struct Scenario {
    controller: &'static str,
    resource: ApiResource,
    /// The spec it is created with.
    spec: Value,
    /// A change of the spec, reconciled at generation 2.
    change: Value,
    /// `status.readyReplicas` before and after the change; `None` for a kind without it.
    ready: Option<(i64, i64)>,
    /// Children that exist while it runs and are gone once it is deleted.
    children: Vec<(ApiResource, String)>,
    /// Children the change removes.
    dropped: Vec<(ApiResource, String)>,
    /// Claims its volumes are pre-bound to: `(claim, size)`.
    claims: &'static [(&'static str, &'static str)],
}

fn child<K: kube::Resource<DynamicType = ()>>(name: &str) -> (ApiResource, String) {
    (ApiResource::erase::<K>(&()), name.to_owned())
}

/// A scenario that scales from 2 to 3 through `field` (`replicas` or `size`).
fn scaled(
    controller: &'static str,
    resource: ApiResource,
    field: &str,
    mut spec: Value,
    children: Vec<(ApiResource, String)>,
) -> Scenario {
    spec[field] = json!(2);
    let change = json!({field: 3});
    Scenario { controller, resource, spec, change, ready: Some((2, 3)), children, dropped: vec![], claims: &[] }
}

/// Every controller's basic scenario; each object is named after its controller.
fn scenarios() -> Vec<Scenario> {
    let workload = |name: &str| vec![child::<Deployment>(name), child::<Service>(name)];
    let webapp = json!({"image": "nginx:1.20", "port": 80, "domain": "rbac.example.com"});
    let pods = ["podmanager-0", "podmanager-1", "podmanager-2"].map(child::<Pod>).to_vec();
    vec![
        scaled(
            "webapp",
            ApiResource::erase::<WebApp>(&()),
            "replicas",
            webapp,
            [workload("webapp"), vec![child::<Ingress>("webapp")]].concat(),
        ),
        scaled("webserver", ApiResource::erase::<WebServer>(&()), "replicas", json!({}), workload("webserver")),
        scaled("memcached", ApiResource::erase::<Memcached>(&()), "size", json!({}), workload("memcached")),
        scaled("podmanager", ApiResource::erase::<PodManager>(&()), "replicas", json!({"image": "nginx:1.20"}), pods),
        // Every verb of the Database rules: the Secret made, the CronJob dropped by the
        // change, the volumes deleted with it (deletionPolicy Delete).
        Scenario {
            controller: "database",
            resource: ApiResource::erase::<Database>(&()),
            spec: json!({"type": "postgresql", "version": "16", "storage": {"size": "1Gi"},
                "deletionPolicy": "Delete", "backup": {"enabled": true, "schedule": "@daily"}}),
            change: json!({"backup": {"enabled": false}}),
            ready: None,
            children: vec![
                child::<StatefulSet>("database"),
                child::<Service>("database"),
                child::<Service>("database-headless"),
                child::<Secret>("database-credentials"),
                child::<PersistentVolumeClaim>("data-database-0"),
                child::<PersistentVolumeClaim>("database-backup"),
            ],
            dropped: vec![child::<CronJob>("database-backup")],
            claims: &[("data-database-0", "1Gi"), ("database-backup", "1Gi")],
        },
    ]
}

fn running(generation: i64, ready: Option<i64>) -> impl Fn(&DynamicObject) -> bool {
    move |o| {
        o.data.pointer("/status/phase") == Some(&json!("Running"))
            && o.data.pointer("/status/observedGeneration") == Some(&json!(generation))
            && ready.is_none_or(|ready| o.data.pointer("/status/readyReplicas") == Some(&json!(ready)))
    }
}

async fn wait_for(api: &Api<DynamicObject>, name: &str, what: &str, check: impl Fn(&DynamicObject) -> bool) {
    let found = eventually(Duration::from_secs(90), || async { api.get(name).await.ok().filter(|o| check(o)) }).await;
    if found.is_none() {
        let last = api.get(name).await.ok().map(|o| o.data["status"].clone());
        panic!("{name} never got {what}; last status: {last:#?}");
    }
}

/// Whether each of `objects` exists in `ns`.
async fn exist(client: &Client, ns: &str, objects: &[(ApiResource, String)]) -> Vec<bool> {
    let mut found = Vec::new();
    for (resource, name) in objects {
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, resource);
        found.push(api.get_opt(name).await.unwrap().is_some());
    }
    found
}

impl Scenario {
    async fn run(&self, client: &Client, ns: &str) {
        let _volumes = volumes(client, ns, "standard", self.claims).await;
        let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), ns, &self.resource);
        let name = self.controller;
        let object: DynamicObject = serde_json::from_value(json!({
            "apiVersion": self.resource.api_version, "kind": self.resource.kind,
            "metadata": {"name": name}, "spec": self.spec,
        }))
        .unwrap();
        api.create(&PostParams::default(), &object).await.expect("rejected");
        wait_for(&api, name, "Running", running(1, self.ready.map(|r| r.0))).await;
        let before = exist(client, ns, &self.dropped).await;
        assert!(before.iter().all(|e| *e), "{name}: a child is missing: {:?}", self.dropped);

        let change = json!({"spec": self.change});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&change)).await.unwrap();
        wait_for(&api, name, "Running after the change", running(2, self.ready.map(|r| r.1))).await;
        let children = exist(client, ns, &self.children).await;
        assert!(children.iter().all(|e| *e), "{name}: children {:?} exist: {children:?}", self.children);
        let dropped = exist(client, ns, &self.dropped).await;
        assert!(dropped.iter().all(|e| !*e), "{name}: {:?} not removed by the change", self.dropped);

        // Deletion: the finalizers (ordered cleanup, then their removal) and the garbage
        // collector for the others; either way nothing is left behind.
        api.delete(name, &DeleteParams::default()).await.unwrap();
        let gone = eventually(Duration::from_secs(60), || async {
            let object = api.get_opt(name).await.ok()?;
            let children = exist(client, ns, &self.children).await;
            (object.is_none() && children.iter().all(|e| !*e)).then_some(())
        })
        .await;
        assert!(gone.is_some(), "{name}: not deleted with its children: {:?}", exist(client, ns, &self.children).await);
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
        assert_eq!(
            operator.metric_or_zero_if_family_exists(&sample).await,
            0.0,
            "{} was refused something",
            scenario.controller
        );
        let reconciles =
            format!("controller_runtime_reconcile_total{{controller=\"{}\",result=\"success\"}}", scenario.controller);
        assert!(operator.metric(&reconciles).await > 0.0, "{} never reconciled", scenario.controller);
    }
}

/// Every controller: each has a scenario above.
const CONTROLLERS: [ControllerKind; 5] = [
    ControllerKind::Webapp,
    ControllerKind::Webserver,
    ControllerKind::Memcached,
    ControllerKind::Podmanager,
    ControllerKind::Database,
];

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

    let operator = start_under_chart(&admin, &install, &home.name, None).await;

    run_scenarios(&admin, &work.name, &operator).await;
    assert_webhook_converts(&admin, &install, &work.name).await;
    assert_never_granted(&admin, &install, &work.name).await;
    // The token is the operator's only credential: it cannot even list nodes.
    let restricted = Client::try_from(install.kube_config(&admin).await).unwrap();
    let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(restricted);
    let refused = nodes.list(&Default::default()).await.unwrap_err();
    assert!(matches!(&refused, kube::Error::Api(status) if status.code == 403), "{refused}");
    assert!(operator.stop().await, "the operator did not stop cleanly");
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

    let operator = start_under_chart(&admin, &install, &home.name, Some(&work.name)).await;
    // Evidence the operator looked: its own namespace's scenarios all ran to the end.
    run_scenarios(&admin, &work.name, &operator).await;
    assert_webhook_converts(&admin, &install, &work.name).await;

    let elsewhere = others.get("elsewhere").await.unwrap();
    // The CRD's status default makes a new WebApp `Pending`; what must be absent is any
    // write of the operator's field manager.
    let touched: Vec<_> = elsewhere
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| f.manager.as_deref() == Some(reconcile_kit::MANAGER))
        .collect();
    assert!(touched.is_empty(), "written in another namespace: {touched:?}");
    assert!(
        elsewhere.status.as_ref().is_none_or(|s| s.observed_generation.is_none()),
        "status written in another namespace: {:?}",
        elsewhere.status
    );
    assert!(elsewhere.metadata.finalizers.unwrap_or_default().is_empty(), "finalizer added in another namespace");
    let deployments: Api<Deployment> = Api::namespaced(admin.clone(), &other.name);
    assert!(deployments.get_opt("elsewhere").await.unwrap().is_none(), "children made in another namespace");

    assert_never_granted(&admin, &install, &work.name).await;
    let user = install.user();
    // Secrets outside the Database rule (a Role in the watched namespace): in the
    // operator's own namespace only the webhook certificate, by name, and creating it.
    let home_ns = Some(home.name.as_str());
    for verb in ["list", "watch", "get"] {
        assert!(!allowed(&admin, &user, verb, "", "secrets", home_ns).await, "{verb} secrets in its own namespace");
    }
    assert!(!allowed_named(&admin, &user, ["get", "", "secrets", "someone-elses"], home_ns).await);
    for (group, resource) in [
        ("apps.example.com", "webapps"),
        ("webserver.example.com", "webservers"),
        ("cache.example.com", "memcacheds"),
        ("apps.mycompany.com", "podmanagers"),
        ("database.example.com", "databases"),
        ("apps", "deployments"),
        ("apps", "statefulsets"),
        ("batch", "cronjobs"),
        ("", "services"),
        ("", "pods"),
        ("", "persistentvolumeclaims"),
    ] {
        for namespace in [Some(other.name.as_str()), None] {
            assert!(
                !allowed(&admin, &user, "list", group, resource, namespace).await,
                "list {resource} in {namespace:?}"
            );
        }
        assert!(allowed(&admin, &user, "list", group, resource, Some(&work.name)).await, "list {resource} in watched");
    }
    // Secrets are never listed, not even where the operator works (it only creates them).
    for namespace in [Some(other.name.as_str()), Some(work.name.as_str()), None] {
        assert!(!allowed(&admin, &user, "list", "", "secrets", namespace).await, "list secrets in {namespace:?}");
    }
    assert!(operator.stop().await, "the operator did not stop cleanly");
}
