//! The WebApp operator among other writers, on the real local control plane: fields
//! other field managers own are theirs (no apply war with `kubectl set env` or a
//! sidecar injector); a child swapped for another object of the same name is neither
//! overwritten nor deleted (the API server's answers that the kit relies on); a 403
//! clears by itself once RBAC is fixed.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::Duration;

use common::*;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::api::rbac::v1::{Role, RoleBinding};
use kube::api::{DeleteParams, Patch, PatchParams, PostParams, Preconditions};
use kube::{Api, ResourceExt};
use reconcile_kit::apply::is_uid_refusal;
use serde_json::{Value, json};
use webapp_api::{Phase, WebApp};
use webapp_operator::controllers::ControllerKind;

/// The PATCH requests the operator has sent (status, applies, event series).
async fn patches(operator: &Operator) -> f64 {
    operator.requests(&["PATCH"]).await
}

/// Forces one reconcile of WebApp `web` (a metadata-only change) and waits until the
/// operator has finished it.
async fn resync(operator: &Operator, api: &Api<WebApp>, mark: &str) {
    let reconciles = || operator.metric("controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"}");
    let before = reconciles().await;
    let patch = json!({"metadata": {"annotations": {"test/resync": mark}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    eventually(Duration::from_secs(20), || async { (reconciles().await > before).then_some(()) })
        .await
        .expect("the forced resync was never reconciled");
}

/// The `fieldsV1` of field manager `manager` on `deployment`, as JSON text.
fn fields_of(deployment: &Deployment, manager: &str) -> String {
    let entries = deployment.metadata.managed_fields.iter().flatten().filter(|f| f.manager.as_deref() == Some(manager));
    entries.map(|f| serde_json::to_string(&f.fields_v1).unwrap()).collect::<Vec<_>>().join("\n")
}

/// Asserts what the operator still owns on Deployment `web`: its container's image and
/// its env var, and not `other_field` (a field another manager added).
fn assert_ours(deployment: &Deployment, other_field: &str) {
    let ours = fields_of(deployment, "webapp-operator");
    for field in [r#"k:{\"name\":\"app\"}"#, "f:image", r#"k:{\"name\":\"ENV\"}"#] {
        assert!(ours.contains(field), "the operator no longer owns {field}: {ours}");
    }
    assert!(!ours.contains(other_field), "the operator took {other_field}: {ours}");
}

/// Waits until the rollout of Deployment `web` that another manager's change started
/// is over and the WebApp is Running again, then proves the operator is at rest: forced
/// resyncs are reconciled and send no PATCH at all (no apply, no status, no event).
async fn settles(operator: &Operator, deployments: &Api<Deployment>, api: &Api<WebApp>) {
    eventually(Duration::from_secs(60), || async {
        let deployment = deployments.get("web").await.ok()?;
        let status = deployment.status?;
        let done = status.observed_generation == deployment.metadata.generation
            && status.updated_replicas == Some(1)
            && status.ready_replicas == Some(1)
            && status.replicas == Some(1);
        done.then_some(())
    })
    .await
    .expect("the rollout of the changed Deployment never finished");
    wait_for(api, "web", "Running again", running_at(1)).await;
    // The first resync is reconciled from the final state of the rollout, so whatever
    // the operator still had to say about it is said before the count starts.
    resync(operator, api, "1").await;
    let before = patches(operator).await;
    resync(operator, api, "2").await;
    resync(operator, api, "3").await;
    assert_eq!(patches(operator).await, before, "the operator keeps writing to a converged WebApp");
}

/// `kubectl set env` adds an env var the WebApp does not have: it is kubectl's, not drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_set_env_is_not_fought() {
    let (client, ns, operator) = setup("setenv").await;
    let api =
        create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1, "env": {"ENV": "prod"}})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    kubectl_ok(&["-n", &ns.name, "set", "env", "deployment/web", "FOO=1"]);
    settles(&operator, &deployments, &api).await;

    let deployment = deployments.get("web").await.unwrap();
    let container = &deployment.spec.clone().unwrap().template.spec.unwrap().containers[0];
    let env: Vec<(String, Option<String>)> =
        container.env.iter().flatten().map(|e| (e.name.clone(), e.value.clone())).collect();
    assert_eq!(
        env,
        [("ENV".to_owned(), Some("prod".to_owned())), ("FOO".to_owned(), Some("1".to_owned()))],
        "both env vars stay"
    );
    assert_ours(&deployment, r#"k:{\"name\":\"FOO\"}"#);
}

/// Another field manager's server-side apply adds a sidecar container: it stays, and
/// the operator neither removes it nor re-applies on every reconcile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sidecar_added_by_another_manager_is_not_fought() {
    let (client, ns, operator) = setup("sidecar").await;
    let api =
        create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1, "env": {"ENV": "prod"}})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let sidecar: Value = json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
        "spec": {"template": {"spec": {"containers": [{"name": "proxy", "image": "envoyproxy/envoy:v1.31"}]}}}});
    deployments.patch("web", &PatchParams::apply("sidecar-injector"), &Patch::Apply(&sidecar)).await.unwrap();
    settles(&operator, &deployments, &api).await;

    let deployment = deployments.get("web").await.unwrap();
    let containers = deployment.spec.clone().unwrap().template.spec.unwrap().containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app", "proxy"], "the sidecar stays next to our container");
    assert_ours(&deployment, r#"k:{\"name\":\"proxy\"}"#);
    assert!(fields_of(&deployment, "sidecar-injector").contains(r#"k:{\"name\":\"proxy\"}"#));
}

/// What `reconcile_kit::apply` relies on for its uid preconditions, checked on the real
/// API server: a server-side apply or a delete carrying the uid of an object that was
/// deleted and re-created under the same name (or that is gone) is refused, and the
/// new object is left as it was.
#[tokio::test]
async fn writes_carrying_the_uid_of_a_replaced_object_are_refused() {
    let client = client().await;
    let ns = TestNamespace::new(&client, "uid").await;
    let api: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let object = |value: &str| -> ConfigMap {
        serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web"}, "data": {"a": value}}),
        )
        .unwrap()
    };
    let checked = api.create(&PostParams::default(), &object("ours")).await.unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let theirs = api.create(&PostParams::default(), &object("theirs")).await.unwrap();
    assert_ne!(checked.uid(), theirs.uid());

    let refused = |result: Result<(), kube::Error>| match result {
        Err(kube::Error::Api(status)) => {
            assert!(is_uid_refusal(&status), "not recognised as a uid refusal: {status:?}");
            status.code
        }
        other => panic!("the write went through: {other:?}"),
    };
    let mut apply = object("taken over");
    apply.metadata.uid = checked.uid();
    let params = PatchParams::apply("webapp-operator").force();
    assert_eq!(
        refused(api.patch("web", &params, &Patch::Apply(&apply)).await.map(|_| ())),
        422,
        "apply to a replaced object"
    );
    let stale = DeleteParams {
        preconditions: Some(Preconditions { uid: checked.uid(), resource_version: None }),
        ..DeleteParams::default()
    };
    assert_eq!(refused(api.delete("web", &stale).await.map(|_| ())), 409, "delete of a replaced object");
    let after = api.get("web").await.unwrap();
    assert_eq!((after.uid(), after.data.unwrap()["a"].as_str()), (theirs.uid(), "theirs"), "their object is untouched");

    // Gone altogether: an apply carrying a uid does not create a new object either.
    api.delete("web", &DeleteParams::default()).await.unwrap();
    assert_eq!(
        refused(api.patch("web", &params, &Patch::Apply(&apply)).await.map(|_| ())),
        409,
        "apply to a deleted object"
    );
    assert!(api.get_opt("web").await.unwrap().is_none());
}

/// The operator's rules (config/rbac/role.yaml) as a Role in one namespace, with
/// `deployments` read-only unless `deployments_writable`.
fn operator_role(deployments_writable: bool) -> Role {
    let writable = json!(["get", "list", "watch", "create", "patch", "delete"]);
    let deployment_verbs = if deployments_writable { writable.clone() } else { json!(["get", "list", "watch"]) };
    serde_json::from_value(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role", "metadata": {"name": "operator"}, "rules": [
        {"apiGroups": ["apps.example.com"], "resources": ["webapps"], "verbs": ["get", "list", "watch", "patch"]},
        {"apiGroups": ["apps.example.com"], "resources": ["webapps/status"], "verbs": ["patch"]},
        {"apiGroups": ["apps"], "resources": ["deployments"], "verbs": deployment_verbs},
        {"apiGroups": [""], "resources": ["services"], "verbs": writable},
        {"apiGroups": ["networking.k8s.io"], "resources": ["ingresses"], "verbs": writable},
        {"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "watch"]},
        {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["create", "patch"]}]}))
    .unwrap()
}

/// A 403 is not a spec problem: the WebApp shows it (Failed, Forbidden) and comes back
/// by itself once RBAC allows the request, without any change to the WebApp. (Nothing
/// the operator watches changes when a Role does: only the re-check can notice.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forbidden_child_recovers_once_rbac_is_fixed() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "forbidden").await;
    let user = format!("webapp-operator-{}", ns.name);
    let apply = PatchParams::apply("webapp-operator-tests").force();
    let roles: Api<Role> = Api::namespaced(client.clone(), &ns.name);
    roles.patch("operator", &apply, &Patch::Apply(&operator_role(false))).await.unwrap();
    let bindings: Api<RoleBinding> = Api::namespaced(client.clone(), &ns.name);
    let binding: RoleBinding =
        serde_json::from_value(json!({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
        "metadata": {"name": "operator"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "operator"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]}))
        .unwrap();
    bindings.patch("operator", &apply, &Patch::Apply(&binding)).await.unwrap();

    let mut kube_config = kube_config().await;
    kube_config.auth_info.impersonate = Some(user);
    let operator = Operator::start_as(Operator::config(&ns.name, vec![ControllerKind::Webapp]), kube_config).await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let failed = wait_for(&api, "web", "Failed/Forbidden", |w| phase(w) == Some(Phase::Failed)).await;
    let status = failed.status.unwrap();
    assert!(
        status.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "Forbidden"),
        "{status:#?}"
    );
    // The operator looks again by itself, with no event to wake it up.
    let forbidden = || {
        operator.metric_or_zero_if_family_exists(
            "controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"Forbidden\"}",
        )
    };
    let seen = forbidden().await;
    eventually(Duration::from_secs(30), || async { (forbidden().await > seen).then_some(()) })
        .await
        .expect("a forbidden WebApp is never looked at again");

    roles.patch("operator", &apply, &Patch::Apply(&operator_role(true))).await.unwrap();
    let recovered = wait_for(&api, "web", "Running after the RBAC fix", running_at(1)).await;
    assert_eq!(recovered.metadata.generation, Some(1), "the WebApp itself was not touched");
}

/// Creates WebApp `name` with `spec`, annotated to adopt children that have no owner.
async fn create_adopting(client: &kube::Client, ns: &str, name: &str, spec: Value) -> Api<WebApp> {
    let api: Api<WebApp> = Api::namespaced(client.clone(), ns);
    let webapp: WebApp = serde_json::from_value(json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp",
        "metadata": {"name": name, "annotations": {"apps.example.com/adopt": "true"}}, "spec": spec}))
    .unwrap();
    api.create(&PostParams::default(), &webapp).await.expect("WebApp rejected");
    api
}

/// The names of the field managers of an object's main resource (not its status).
fn managers(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Vec<String> {
    let entries = meta.managed_fields.iter().flatten().filter(|f| f.subresource.as_deref().unwrap_or("").is_empty());
    entries
        .map(|f| format!("{}/{}", f.manager.as_deref().unwrap_or(""), f.operation.as_deref().unwrap_or("")))
        .collect()
}

/// Seed 001, exercise 3, as a learner builds it: the Deployment (2 replicas, nginx:1.20)
/// and the Service (port 80) exist before the WebApp, made with `kubectl create`, which
/// selects the pods by `app=test-webapp`. A WebApp that asks for it
/// (`apps.example.com/adopt: "true"`) takes them over (owner reference, its own container
/// and port, one `Adopted` event each) and keeps the Deployment's selector, which cannot
/// change: the pods carry it beside the operator's labels and the Service selects by it.
/// The update to 5 replicas, nginx:1.21 and port 8080 is then synced like any other
/// (observedGeneration 2, DeploymentSynced, ServiceSynced, ResourcesSynced, the old port
/// gone), and the reconcile after it writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_ex3_adopts_children_that_have_no_owner() {
    use k8s_openapi::api::core::v1::Service;
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "adopt").await;
    kubectl_ok(&["-n", &ns.name, "create", "deployment", "test-webapp", "--image=nginx:1.20", "--replicas=2"]);
    kubectl_ok(&["-n", &ns.name, "create", "service", "clusterip", "test-webapp", "--tcp=80:80"]);
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let by_kubectl = json!({"app": "test-webapp"});

    let operator = Operator::start(&ns.name).await;
    let spec = json!({"image": "nginx:1.20", "replicas": 2, "port": 80, "env": {"ENV": "production"}});
    let api = create_adopting(&client, &ns.name, "test-webapp", spec).await;
    let webapp = wait_for(&api, "test-webapp", "Running at generation 1", running_at(1)).await;
    let uid = webapp.metadata.uid.unwrap();
    for meta in
        [deployments.get("test-webapp").await.unwrap().metadata, services.get("test-webapp").await.unwrap().metadata]
    {
        let owner = &meta.owner_references.as_ref().expect("not adopted")[0];
        assert_eq!((owner.kind.as_str(), owner.uid.as_str(), owner.controller), ("WebApp", uid.as_str(), Some(true)));
        assert_eq!(managers(&meta), ["webapp-operator/Apply"], "kubectl's claims were not released");
    }
    let spec = deployments.get("test-webapp").await.unwrap().spec.unwrap();
    assert_eq!(json!(spec.selector), json!({"matchLabels": by_kubectl}), "the selector cannot change and was kept");
    let pod_labels = spec.template.metadata.unwrap().labels.unwrap();
    assert_eq!(pod_labels["app"], "test-webapp", "the pods still match the kept selector");
    assert_eq!(pod_labels["app.kubernetes.io/instance"], "test-webapp", "and carry the operator's labels");
    let selector = api.get("test-webapp").await.unwrap().status.unwrap().selector;
    assert_eq!(selector.as_deref(), Some("app=test-webapp"), "status.selector (for the scale subresource)");
    let service = services.get("test-webapp").await.unwrap().spec.unwrap();
    assert_eq!(json!(service.selector), by_kubectl, "the Service selects what the Deployment selects");
    operator.events_sent().await;
    let adopted: Vec<String> = kubectl_ok(&[
        "-n",
        &ns.name,
        "get",
        "events",
        "--field-selector",
        "reason=Adopted",
        "-o",
        "jsonpath={range .items[*]}{.related.kind}{\"\\n\"}{end}",
    ])
    .lines()
    .map(str::to_owned)
    .collect();
    assert_eq!(adopted.len(), 2, "one Adopted event per child: {adopted:?}");
    assert!(adopted.contains(&"Deployment".to_owned()) && adopted.contains(&"Service".to_owned()), "{adopted:?}");

    let update = json!({"spec": {"replicas": 5, "image": "nginx:1.21", "port": 8080}});
    api.patch("test-webapp", &PatchParams::default(), &Patch::Merge(&update)).await.unwrap();
    let updated = wait_for(&api, "test-webapp", "Running at generation 2", running_at(2)).await;
    assert_eq!(updated.status.unwrap().observed_generation, Some(2));
    let spec = deployments.get("test-webapp").await.unwrap().spec.unwrap();
    assert_eq!(spec.replicas, Some(5));
    let containers = spec.template.spec.unwrap().containers;
    let names: Vec<&str> = containers.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["app"], "the hand-made container is gone");
    assert_eq!(containers[0].image.as_deref(), Some("nginx:1.21"));
    assert_eq!(containers[0].env.as_ref().unwrap()[0].value.as_deref(), Some("production"));
    let ports: Vec<i32> =
        services.get("test-webapp").await.unwrap().spec.unwrap().ports.unwrap().iter().map(|p| p.port).collect();
    assert_eq!(ports, [8080], "the old port goes with the spec");
    expect_events(&client, &ns.name, &["DeploymentSynced", "ServiceSynced", "ResourcesSynced"]).await;

    // The next reconcile with no change writes nothing, once the update's rollout (a new
    // image: a new ReplicaSet, the old one's pods going) no longer moves the status.
    deployment_settled(&client, &ns.name, "test-webapp", 5).await;
    let reconciles = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"}";
    let writes = operator.writes_at_rest(&api, "test-webapp", reconciles, 2).await;
    assert_eq!(writes, 0.0, "a converged adopted WebApp was written to");
}

/// The Ingress is adopted like the workload's children: an unowned one of the WebApp's
/// name gets its owner reference and the WebApp's rules only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unowned_ingress_is_adopted_with_the_webapps_rules() {
    use k8s_openapi::api::networking::v1::Ingress;
    let (client, ns, _operator) = setup("adoptingress").await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns.name);
    let backend = json!({"service": {"name": "web", "port": {"number": 80}}});
    let rule = |host: &str| json!({"host": host, "http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": backend}]}});
    let theirs: Ingress = serde_json::from_value(
        json!({"metadata": {"name": "web"}, "spec": {"rules": [rule("old.example.com"), rule("other.example.com")]}}),
    )
    .unwrap();
    ingresses
        .create(&PostParams { field_manager: Some("kubectl-create".into()), ..PostParams::default() }, &theirs)
        .await
        .unwrap();

    let spec = json!({"image": "nginx:1.20", "replicas": 1, "domain": "web.example.com"});
    let api = create_adopting(&client, &ns.name, "web", spec).await;
    let webapp = wait_for(&api, "web", "Running", running_at(1)).await;
    let ingress = ingresses.get("web").await.unwrap();
    assert_eq!(ingress.metadata.owner_references.as_ref().unwrap()[0].uid, webapp.metadata.uid.unwrap());
    assert_eq!(managers(&ingress.metadata), ["webapp-operator/Apply"]);
    let hosts: Vec<String> = ingress.spec.unwrap().rules.unwrap().into_iter().filter_map(|r| r.host).collect();
    assert_eq!(hosts, ["web.example.com"], "the rules are the WebApp's");
    expect_events(&client, &ns.name, &["Adopted"]).await;
}

/// A child that truly cannot be adopted says why in the status, in words a user can act
/// on rather than the API server's answer: a Deployment that selects its pods by
/// expressions keeps that selector for good, and a Service cannot select by expressions.
/// Nothing is written to it, and deleting it lets the WebApp make its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_cannot_be_adopted_says_why_and_what_to_do() {
    let (client, ns, _operator) = setup("notadoptable").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let by_hand: Deployment = serde_json::from_value(json!({"metadata": {"name": "web"},
        "spec": {"replicas": 1, "selector": {"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "httpd:2"}]}}}}))
    .unwrap();
    let by_hand = deployments.create(&PostParams::default(), &by_hand).await.unwrap();

    let api = create_adopting(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let failed = wait_for(&api, "web", "Failed/NotAdoptable", |w| {
        w.status.iter().flat_map(|s| &s.conditions).any(|c| c.reason == "NotAdoptable")
    })
    .await;
    let status = failed.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Failed), "{status:#?}");
    let message = status.message.unwrap_or_default();
    assert!(message.starts_with("Deployment web cannot be adopted: it selects its pods by expressions"), "{message}");
    assert!(message.contains("delete it"), "says what to do: {message}");
    // Its own controller writes its status meanwhile, so the resourceVersion moves: what
    // must not appear is a claim of ours or an owner.
    let after = deployments.get("web").await.unwrap();
    assert!(!managers(&after.metadata).iter().any(|m| m.starts_with("webapp-operator")), "written by us");
    assert_eq!(after.metadata.owner_references, None, "taken over");
    assert_eq!(after.uid(), by_hand.uid());

    deployments.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for(&api, "web", "Running once the Deployment is gone", running_at(1)).await;
    let made = deployments.get("web").await.unwrap();
    assert_eq!(made.metadata.owner_references.unwrap()[0].uid, failed.metadata.uid.unwrap(), "made anew, ours");
}

/// Adoption never takes a child another controller owns: the WebApp is Failed/NotOwned
/// as without the annotation, and the child is left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_another_controller_owns_is_never_adopted() {
    let (client, ns, operator) = setup("noadopt").await;
    let configmaps: Api<ConfigMap> = Api::namespaced(client.clone(), &ns.name);
    let owner: ConfigMap = serde_json::from_value(json!({"metadata": {"name": "owner"}})).unwrap();
    let owner = configmaps.create(&PostParams::default(), &owner).await.unwrap();
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let theirs: Deployment = serde_json::from_value(json!({"metadata": {"name": "web",
            "ownerReferences": [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner.uid(), "controller": true}]},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}}, "spec": {"containers": [{"name": "c", "image": "httpd:2"}]}}}}))
    .unwrap();
    deployments.create(&PostParams::default(), &theirs).await.unwrap();

    let api = create_adopting(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let failed = wait_for(&api, "web", "Failed/NotOwned", |w| phase(w) == Some(Phase::Failed)).await;
    let status = failed.status.unwrap();
    assert!(
        status.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "NotOwned"),
        "{status:#?}"
    );
    let after = deployments.get("web").await.unwrap();
    assert!(!managers(&after.metadata).iter().any(|m| m.starts_with("webapp-operator")), "written by us");
    assert_eq!(after.metadata.owner_references.unwrap()[0].kind, "ConfigMap");
    operator.events_sent().await;
    assert!(!event_reasons(&client, &ns.name).await.iter().any(|r| r == "Adopted"));
}

/// A WebApp re-created under the name of a deleted one does not wait for the garbage
/// collector to remove its predecessor's children (it may take minutes, or never come
/// while kube-controller-manager is down; the chaos suite saw both): a child whose
/// controller is a WebApp of the same name with another uid is deleted, uid
/// precondition and all, and made anew. The leftovers here name their owner in an API
/// version that does not exist, so the garbage collector cannot resolve it and leaves
/// them alone: whatever removes them is the operator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_re_created_webapp_removes_what_its_predecessor_left() {
    use k8s_openapi::api::core::v1::Service;
    let (client, ns, operator) = setup("leftover").await;
    let predecessor = json!([{"apiVersion": "apps.example.com/v0gone", "kind": "WebApp", "name": "web",
        "uid": "00000000-0000-4000-8000-000000000000", "controller": true, "blockOwnerDeletion": true}]);
    let labels = json!({"app.kubernetes.io/name": "webapp", "app.kubernetes.io/instance": "web"});
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let left: Deployment = serde_json::from_value(json!({"metadata": {"name": "web", "labels": labels,
            "ownerReferences": predecessor},
        "spec": {"replicas": 1, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {"containers": [{"name": "app", "image": "httpd:2"}]}}}}))
    .unwrap();
    let left = deployments.create(&PostParams::default(), &left).await.unwrap();
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let left_service: Service = serde_json::from_value(json!({"metadata": {"name": "web", "labels": labels,
            "ownerReferences": predecessor},
        "spec": {"selector": labels, "ports": [{"port": 81}]}}))
    .unwrap();
    let left_service = services.create(&PostParams::default(), &left_service).await.unwrap();

    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let webapp = wait_for(&api, "web", "Running at generation 1", running_at(1)).await;
    let uid = webapp.metadata.uid.unwrap();
    let deployment = deployments.get("web").await.unwrap();
    let service = services.get("web").await.unwrap();
    for (meta, left) in [(&deployment.metadata, &left.metadata), (&service.metadata, &left_service.metadata)] {
        assert_ne!(meta.uid, left.uid, "the leftover itself was kept");
        let owner = &meta.owner_references.as_ref().expect("no owner")[0];
        assert_eq!((owner.uid.as_str(), owner.controller), (uid.as_str(), Some(true)));
    }
    assert_eq!(deployment.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref(), Some("nginx:1.20"));
    let status = webapp.status.unwrap();
    assert!(!status.conditions.iter().any(|c| c.reason == "NotOwned"), "{status:#?}");
    // Told before the status that the check above read was written.
    operator.events_sent().await;
    let removed = kubectl_ok(&[
        "-n",
        &ns.name,
        "get",
        "events",
        "--field-selector",
        "reason=DeletedLeftover",
        "-o",
        "jsonpath={range .items[*]}{.related.kind}{\"\\n\"}{end}",
    ]);
    let mut removed: Vec<&str> = removed.lines().collect();
    removed.sort_unstable();
    assert_eq!(removed, ["Deployment", "Service"], "one DeletedLeftover event per child");
}

/// A validating webhook for the Deployments of one namespace that nobody serves, with
/// `failurePolicy: Fail`: every create or update of a Deployment there gets the API
/// server's 500 "failed calling webhook", a retryable error. Removed when dropped.
struct UnreachableWebhook {
    name: String,
}

impl UnreachableWebhook {
    async fn install(client: &kube::Client, ns: &str) -> Self {
        use k8s_openapi::api::admissionregistration::v1::ValidatingWebhookConfiguration;
        let name = format!("unreachable-{ns}");
        let webhook: ValidatingWebhookConfiguration = serde_json::from_value(json!({
            "metadata": {"name": name},
            "webhooks": [{"name": "unreachable.webapp-operator.test", "admissionReviewVersions": ["v1"],
                "sideEffects": "None", "failurePolicy": "Fail", "timeoutSeconds": 2,
                "clientConfig": {"url": "https://127.0.0.1:1/validate"},
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": ns}},
                "rules": [{"apiGroups": ["apps"], "apiVersions": ["v1"], "operations": ["CREATE", "UPDATE"],
                    "resources": ["deployments"]}]}]}))
        .unwrap();
        let api: Api<ValidatingWebhookConfiguration> = Api::all(client.clone());
        api.create(&PostParams::default(), &webhook).await.unwrap();
        UnreachableWebhook { name }
    }

    fn remove(&self) {
        let _ = kubectl().args(["delete", "validatingwebhookconfiguration", &self.name, "--ignore-not-found"]).output();
    }
}

impl Drop for UnreachableWebhook {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The `Degraded` condition of a WebApp, if True.
fn degraded(webapp: &WebApp) -> Option<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition> {
    webapp.status.as_ref()?.conditions.iter().find(|c| c.type_ == "Degraded" && c.status == "True").cloned()
}

/// A retryable error that persists (the API server's 500 from a webhook nobody serves)
/// shows in status after a bounded time, Degraded with its reason and message and the
/// phase kept, and clears by itself once the error stops. The backoff state of a
/// WebApp goes with it: one deleted while failing and re-created under the same name
/// starts afresh, its first failures not reported.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_persistent_retryable_error_shows_in_status_and_clears() {
    let (client, ns, operator) = setup("retryable").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    create(&client, &ns.name, "other", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    wait_for(&api, "other", "Running", running_at(1)).await;

    let webhook = UnreachableWebhook::install(&client, &ns.name).await;
    let started = std::time::Instant::now();
    for name in ["web", "other"] {
        let patch = json!({"spec": {"image": "nginx:1.21"}});
        api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    }
    for name in ["web", "other"] {
        let webapp = wait_for(&api, name, "Degraded", |w| degraded(w).is_some()).await;
        let condition = degraded(&webapp).unwrap();
        assert_eq!(condition.reason, "ServerError");
        assert!(condition.message.contains("failed calling webhook"), "{condition:?}");
        let status = webapp.status.unwrap();
        assert_eq!(status.phase, Some(Phase::Running), "the phase stays what it was: the app still serves");
        assert!(status.message.unwrap().contains("failed calling webhook"));
    }
    let errors = "controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"ServerError\"}";
    assert!(operator.metric(errors).await >= 2.0, "the failures are counted by reason");
    let bound = reconcile_kit::driver::PERSISTENT_AFTER;
    assert!(started.elapsed() >= bound - Duration::from_secs(2), "reported before the bound: {:?}", started.elapsed());

    // Deleted while failing and re-created: a new object, with no failures behind it.
    api.delete("other", &DeleteParams::default()).await.unwrap();
    eventually(Duration::from_secs(30), || async { api.get_opt("other").await.ok()?.is_none().then_some(()) })
        .await
        .expect("WebApp other never went");
    let object = format!("{}/other", ns.name);
    let failures =
        || trace().of(&object).iter().filter(|s| s.step == "deployment" && s.outcome == "ServerError").count();
    let before = failures();
    create(&client, &ns.name, "other", json!({"image": "nginx:1.21", "replicas": 1})).await;
    // A reconcile reports its failure in status before it returns, and the next one
    // starts only after that: a second failure means the first one's status is written.
    // (A report of inherited failures shows first: Degraded after the first failure.)
    let fresh = eventually(Duration::from_secs(30), || async {
        // Counted before the read, so that the read sees what the first reconcile wrote.
        let twice = failures() >= before + 2;
        let webapp = api.get("other").await.ok()?;
        (twice || degraded(&webapp).is_some()).then_some(webapp)
    })
    .await
    .expect("the re-created WebApp was never reconciled twice");
    assert!(degraded(&fresh).is_none(), "the re-created WebApp inherited the failures: {:#?}", fresh.status);

    webhook.remove();
    // Nothing the WebApp watches changes when the webhook goes: it clears at its next
    // retry, which its backoff may have put as far as the kit's longest delay (each
    // failure doubles it, and its own status writes can add failures in a row).
    let cleared = eventually(reconcile_kit::backoff::MAX_DELAY + Duration::from_secs(30), || async {
        let webapp = api.get("web").await.ok()?;
        (running_at(2)(&webapp) && degraded(&webapp).is_none()).then_some(webapp)
    })
    .await;
    assert!(cleared.is_some(), "never cleared: {:#?}", api.get("web").await.unwrap().status);
    wait_for(&api, "other", "Running", running_at(1)).await;
}

/// The metric names in `text` (a PromQL rule file, a dashboard) that the operator would
/// export: those with its families' prefixes (`up` and the like are Prometheus' own).
fn operator_metrics_in(text: &str) -> std::collections::BTreeSet<String> {
    const PREFIXES: [&str; 5] =
        ["controller_runtime_", "rest_client_", "process_", "leader_election_", "webapp_operator_"];
    text.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .filter(|token| PREFIXES.iter().any(|prefix| token.starts_with(prefix)))
        .map(str::to_owned)
        .collect()
}

/// Every metric the chart's alerts and dashboard read is one the operator exports, under
/// that exact name: a renamed metric would otherwise leave an alert that can never fire
/// and a panel with no data, and nothing would say so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_the_alerts_and_the_dashboard_read_is_exported() {
    let chart = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../charts/webapp-operator");
    let mut wanted =
        operator_metrics_in(&std::fs::read_to_string(chart.join("templates/prometheusrule.yaml")).unwrap());
    let alerts = wanted.len();
    wanted.extend(operator_metrics_in(&std::fs::read_to_string(chart.join("files/dashboard.json")).unwrap()));
    assert!(alerts >= 8 && wanted.len() > alerts, "too few metric names read: {wanted:?}");

    let (client, ns, operator) = setup("metrics").await;
    // One WebApp to Running: the histograms have series once something was timed.
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let body = operator.get("/metrics").await.expect("no metrics");
    let families: std::collections::BTreeSet<&str> = body
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    // A sample's name is its family's, or the family's plus the suffix of its type.
    let exported = |name: &str| {
        families.contains(name)
            || ["_total", "_bucket", "_count", "_sum", "_info"]
                .iter()
                .any(|suffix| name.strip_suffix(suffix).is_some_and(|family| families.contains(family)))
    };
    let missing: Vec<&String> = wanted.iter().filter(|name| !exported(name)).collect();
    assert!(
        missing.is_empty(),
        "read by the chart's alerts or dashboard but not exported: {missing:?}\nexported: {families:?}"
    );
}

/// A change of a WebApp is timed from its watch event to the start of the reconcile
/// that handles it (`workqueue_queue_duration_seconds`, controller-runtime's name): the
/// operator's own share of a change's latency, apart from the API server's.
#[tokio::test]
async fn a_change_is_timed_from_its_watch_event_to_its_reconcile() {
    let (client, ns, operator) = setup("queue-wait").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let timed = || operator.metric("workqueue_queue_duration_seconds_count{name=\"webapp\"}");
    let before = timed().await;
    assert!(before >= 1.0, "the create and the status writes were timed: {before}");
    let waited = || operator.metric("workqueue_queue_duration_seconds_sum{name=\"webapp\"}");
    assert!(waited().await > 0.0);

    let patch = json!({"spec": {"image": "nginx:1.21"}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let after = eventually(Duration::from_secs(20), || async {
        let now = timed().await;
        (now > before).then_some(now)
    })
    .await;
    assert!(after.is_some(), "the spec change's reconcile was not timed (still {before})");
    wait_for(&api, "web", "Running", running_at(2)).await;
}
