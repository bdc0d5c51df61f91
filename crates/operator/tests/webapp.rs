//! The WebApp operator on the real local control plane: the seeds' ex3 scenario, drift,
//! deletion, ownership conflicts, failing pods, restarts, kubectl integration, zero
//! writes when converged, and no hot loop on a broken object.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::networking::v1::Ingress;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::runtime::watcher;
use kube::{Api, Client};
use serde_json::json;
use webapp_api::{Phase, WebApp};
use webapp_operator::controllers::ControllerKind;
use webapp_operator::manager::Config;

/// Seed ex3, exercises 2 and 3: create, then change replicas, image and port.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_ex3_create_then_update_spec() {
    let (client, ns, _operator) = setup("ex3").await;
    let api = create(
        &client,
        &ns.name,
        "web",
        json!({"image": "nginx:1.20", "replicas": 2, "port": 80, "env": {"ENV": "production"}}),
    )
    .await;
    let webapp = wait_for(&api, "web", "Running at generation 1", running_at(1)).await;
    let status = webapp.status.unwrap();
    assert_eq!((status.replicas, status.ready_replicas), (Some(2), Some(2)));
    assert!(webapp.metadata.finalizers.unwrap().contains(&"apps.example.com/webapp-cleanup".to_owned()));

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let deployment = deployments.get("web").await.unwrap();
    let owner = &deployment.metadata.owner_references.as_ref().unwrap()[0];
    assert_eq!((owner.kind.as_str(), owner.controller), ("WebApp", Some(true)));
    assert_eq!(deployment.metadata.labels.as_ref().unwrap()["app.kubernetes.io/managed-by"], "webapp-operator");

    let patch = json!({"spec": {"replicas": 5, "image": "nginx:1.21", "port": 8080}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    let updated = wait_for(&api, "web", "Running at generation 2", running_at(2)).await;
    let status = updated.status.unwrap();
    assert_eq!(
        (status.replicas, status.ready_replicas),
        (Some(5), Some(5)),
        "Running only once the new rollout is done"
    );

    let spec = deployments.get("web").await.unwrap().spec.unwrap();
    assert_eq!(spec.replicas, Some(5));
    let container = &spec.template.spec.unwrap().containers[0];
    assert_eq!(container.image.as_deref(), Some("nginx:1.21"));
    assert_eq!(container.ports.as_ref().unwrap()[0].container_port, 8080);
    assert_eq!(container.env.as_ref().unwrap()[0].name, "ENV");
    let service = services.get("web").await.unwrap().spec.unwrap();
    assert_eq!(service.ports.unwrap()[0].port, 8080);

    expect_events(&client, &ns.name, &["DeploymentSynced", "ServiceSynced", "ResourcesSynced"]).await;
}

/// The rest of a WebApp's spec, end to end: `resources` reach the container, an env var
/// removed from the spec leaves it, hand drift of the Ingress's host is undone, and
/// removing `domain` deletes the Ingress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resources_env_removal_and_the_ingress_follow_the_spec() {
    let (client, ns, _operator) = setup("spec").await;
    let spec = json!({"image": "nginx:1.20", "replicas": 1, "domain": "spec.example.com",
        "env": {"KEEP": "1", "DROP": "2"}, "resources": {"limits": {"memory": "128Mi"}, "requests": {"cpu": "100m"}}});
    let api = create(&client, &ns.name, "web", spec).await;
    wait_for(&api, "web", "Running at generation 1", running_at(1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns.name);
    let container = |d: Deployment| d.spec.unwrap().template.spec.unwrap().containers.remove(0);
    let resources = container(deployments.get("web").await.unwrap()).resources.unwrap();
    assert_eq!(resources.limits.unwrap()["memory"].0, "128Mi");
    assert_eq!(resources.requests.unwrap()["cpu"].0, "100m");

    let drop_env = json!({"spec": {"env": {"DROP": null}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&drop_env)).await.unwrap();
    wait_for(&api, "web", "Running at generation 2", running_at(2)).await;
    let changed = deployments.get("web").await.unwrap();
    // The Deployment was made by a create, whose fields an apply cannot drop: its first
    // change folded them into the operator's apply entry, and left no other of ours.
    let ours: Vec<String> = changed
        .metadata
        .managed_fields
        .iter()
        .flatten()
        .filter(|f| f.manager.as_deref() == Some("webapp-operator"))
        .map(|f| format!("{}/{}", f.operation.as_deref().unwrap_or(""), f.subresource.as_deref().unwrap_or("")))
        .collect();
    assert_eq!(ours, ["Apply/"], "the operator's field managers on the Deployment");
    let env: Vec<String> = container(changed).env.unwrap().into_iter().map(|e| e.name).collect();
    assert_eq!(env, ["KEEP"], "the removed variable is still set");

    let host = |i: &Ingress| i.spec.as_ref()?.rules.as_ref()?.first()?.host.clone();
    let hijack = json!({"spec": {"rules": [{"host": "hijacked.example.com", "http": {"paths": [{"path": "/",
        "pathType": "Prefix", "backend": {"service": {"name": "web", "port": {"number": 80}}}}]}}]}});
    ingresses.patch("web", &PatchParams::default(), &Patch::Merge(&hijack)).await.unwrap();
    let restored = eventually(Duration::from_secs(15), || async {
        let ingress = ingresses.get("web").await.ok()?;
        (host(&ingress).as_deref() == Some("spec.example.com")).then_some(())
    })
    .await;
    assert!(
        restored.is_some(),
        "the Ingress's host was not put back: {:?}",
        ingresses.get("web").await.map(|i| host(&i))
    );

    let no_domain = json!({"spec": {"domain": null}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&no_domain)).await.unwrap();
    wait_for(&api, "web", "Running at generation 3", running_at(3)).await;
    let gone = eventually(Duration::from_secs(30), || async {
        let ingress = ingresses.get_opt("web").await.ok()?;
        ingress.is_none_or(|i| i.metadata.deletion_timestamp.is_some()).then_some(())
    })
    .await;
    assert!(gone.is_some(), "the Ingress outlived its domain");
}

/// Exercise 3: drift made by hand is undone from the watch event, not a timer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_is_repaired() {
    let (client, ns, _operator) = setup("drift").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let edit = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "nginx:hacked"}]}}}});
    deployments.patch("web", &PatchParams::default(), &Patch::Strategic(&edit)).await.unwrap();
    services.delete("web", &DeleteParams::default()).await.unwrap();

    // Well under the 30 s health check: the repair comes from the watch events.
    let repaired = eventually(Duration::from_secs(15), || async {
        let image = deployments.get("web").await.ok()?.spec?.template.spec?.containers[0].image.clone()?;
        let service = services.get_opt("web").await.ok()??;
        (image == "nginx:1.20" && service.metadata.deletion_timestamp.is_none()).then_some(())
    })
    .await;
    assert!(repaired.is_some(), "drift not repaired within 15 s");
}

/// The order in which the children of a namespace are deleted, as watches see it.
struct Deletions {
    order: Arc<Mutex<Vec<&'static str>>>,
    watches: Vec<tokio::task::JoinHandle<()>>,
}

impl Deletions {
    /// Starts watching Ingresses, Services and Deployments of `ns`, and waits until each
    /// watch has listed what is there (so no later deletion is missed).
    async fn record(client: &Client, ns: &str) -> Self {
        let order = Arc::new(Mutex::new(Vec::new()));
        let listed = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let watches = vec![
            Self::watch::<Ingress>(client, ns, "Ingress", &order, &listed),
            Self::watch::<Service>(client, ns, "Service", &order, &listed),
            Self::watch::<Deployment>(client, ns, "Deployment", &order, &listed),
        ];
        let all_listed = || async { (listed.load(std::sync::atomic::Ordering::SeqCst) == 3).then_some(()) };
        eventually(Duration::from_secs(10), all_listed).await.expect("watches never listed");
        Deletions { order, watches }
    }

    fn watch<K>(
        client: &Client,
        ns: &str,
        kind: &'static str,
        order: &Arc<Mutex<Vec<&'static str>>>,
        listed: &Arc<std::sync::atomic::AtomicUsize>,
    ) -> tokio::task::JoinHandle<()>
    where
        K: kube::Resource<DynamicType = (), Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + std::fmt::Debug
            + serde::de::DeserializeOwned
            + Send
            + 'static,
    {
        let api: Api<K> = Api::namespaced(client.clone(), ns);
        let (order, listed) = (order.clone(), listed.clone());
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = stream.next().await {
                match event {
                    watcher::Event::InitDone => {
                        listed.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    watcher::Event::Delete(_) => order.lock().unwrap().push(kind),
                    _ => {}
                }
            }
        })
    }

    fn order(&self) -> Vec<&'static str> {
        self.order.lock().unwrap().clone()
    }
}

impl Drop for Deletions {
    fn drop(&mut self) {
        for watch in &self.watches {
            watch.abort();
        }
    }
}

/// Exercise 4: deletion removes Ingress, Service and Deployment in that order, then the WebApp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_cleans_up_in_order() {
    let (client, ns, _operator) = setup("delete").await;
    let api =
        create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1, "domain": "web.example.com"}))
            .await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let ingresses: Api<Ingress> = Api::namespaced(client.clone(), &ns.name);
    assert!(ingresses.get_opt("web").await.unwrap().is_some(), "a domain makes an Ingress");
    expect_events(&client, &ns.name, &["Running"]).await;

    // A new domain is an Ingress change of its own.
    let patch = json!({"spec": {"domain": "www.example.com"}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
    wait_for(&api, "web", "Running at generation 2", running_at(2)).await;
    let rules = ingresses.get("web").await.unwrap().spec.unwrap().rules.unwrap();
    assert_eq!(rules[0].host.as_deref(), Some("www.example.com"));
    expect_events(&client, &ns.name, &["IngressSynced"]).await;

    let deletions = Deletions::record(&client, &ns.name).await;

    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "WebApp still there: {:?}", api.get_opt("web").await.unwrap().and_then(|w| w.status));
    assert_eq!(deletions.order(), ["Ingress", "Service", "Deployment"]);
    expect_events(&client, &ns.name, &["Deleted"]).await;
}

/// An object of the same name that the WebApp does not own is never touched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_it_does_not_own_is_left_alone() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "notowned").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let theirs: Deployment = serde_json::from_value(json!({"metadata": {"name": "web", "labels": {"team": "other"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}}, "spec": {"containers": [{"name": "c", "image": "httpd:2"}]}}}}))
    .unwrap();
    deployments.create(&PostParams::default(), &theirs).await.unwrap();

    let _operator = Operator::start(&ns.name).await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let failed = wait_for(&api, "web", "Failed/NotOwned", |w| phase(w) == Some(Phase::Failed)).await;
    let status = failed.status.unwrap();
    assert!(
        status.conditions.iter().any(|c| c.type_ == "Degraded" && c.status == "True" && c.reason == "NotOwned"),
        "{status:#?}"
    );
    assert!(status.message.unwrap().contains("not owned"));
    // Its own controllers update it (status); we never do: no field of ours, no owner.
    let after = deployments.get("web").await.unwrap();
    let managers: Vec<String> =
        after.metadata.managed_fields.iter().flatten().filter_map(|f| f.manager.clone()).collect();
    assert!(!managers.iter().any(|m| m == "webapp-operator"), "their Deployment was written by us: {managers:?}");
    assert!(after.metadata.owner_references.is_none());
    assert_eq!(after.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref(), Some("httpd:2"));

    deployments.delete("web", &DeleteParams::default()).await.unwrap();
    wait_for(&api, "web", "Running after the conflict is gone", running_at(1)).await;
}

/// A bad image: the status says why the pods do not start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_pods_are_explained_in_status() {
    let (client, ns, _operator) = setup("badimage").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:does-not-exist", "replicas": 1})).await;
    let webapp = wait_for(&api, "web", "an ImagePullBackOff message", |w| {
        w.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("ImagePullBackOff"))
    })
    .await;
    let status = webapp.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Creating));
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    assert_eq!((ready.status.as_str(), ready.reason.as_str()), ("False", "PodsFailing"));
    assert!(ready.message.contains("Back-off pulling image \"nginx:does-not-exist\""), "{}", ready.message);

    // Fixing the image recovers.
    api.patch("web", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"image": "nginx:1.21"}}))).await.unwrap();
    wait_for(&api, "web", "Running after the fix", running_at(2)).await;
}

/// An operator killed before its WebApp converged (the Deployment made, the WebApp not
/// Running, so work was left) and started again converges with no duplicates. What it
/// shows: nothing a killed operator leaves half done stops a second one. The WebApp
/// starts on an image that does not exist (kwok's test stage keeps its pods in
/// ImagePullBackOff), so it cannot be Running when the first operator is killed, however
/// fast the machine; the second operator then gets the fixed image. Whether a reconcile
/// was mid-step at the kill is not controlled (the Service may already exist).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_mid_creation_converges_without_duplicates() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "restart").await;
    let operator = Operator::start(&ns.name).await;
    let name = "web".to_owned();
    let api = create(&client, &ns.name, &name, json!({"image": "nginx:does-not-exist", "replicas": 3})).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    let events: Api<Event> = Api::namespaced(client.clone(), &ns.name);
    // The Created events about the WebApp's children, by the child's kind.
    let created = || async {
        let list = events.list(&ListParams::default()).await.unwrap();
        let created: Vec<String> = list
            .items
            .into_iter()
            .filter(|e| e.reason.as_deref() == Some("Created"))
            .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name.as_str()))
            .inspect(|e| assert!(e.series.is_none(), "repeated Created event: {e:?}"))
            .filter_map(|e| e.related?.kind)
            .collect();
        created
    };
    // The first operator's work, seen whole: the Deployment and the event about it.
    eventually(Duration::from_secs(30), || async { created().await.contains(&"Deployment".to_owned()).then_some(()) })
        .await
        .expect("no Created event for the Deployment");
    let uid = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| meta.uid.clone().unwrap();
    let deployment_uid = uid(&deployments.get(&name).await.unwrap().metadata);
    // Killed, not stopped: whatever reconcile is in flight is cut off.
    drop(operator);
    let service_at_kill = services.get_opt(&name).await.unwrap().map(|s| uid(&s.metadata));
    let at_kill = api.get(&name).await.unwrap().status.and_then(|s| s.phase);
    assert_ne!(at_kill, Some(Phase::Running), "Running on an image that does not exist");

    let fix = json!({"spec": {"image": "nginx:1.20"}});
    api.patch(&name, &PatchParams::default(), &Patch::Merge(&fix)).await.unwrap();
    let second = Operator::start(&ns.name).await;
    wait_for(&api, &name, "Running on the fixed image", running_at(2)).await;
    // Every child of the WebApp, found by the labels the operator sets: a second copy
    // made under another name would show here.
    let selector = format!("app.kubernetes.io/instance={name},app.kubernetes.io/managed-by=webapp-operator");
    let by_label = ListParams::default().labels(&selector);
    let deployment_uids: Vec<String> =
        deployments.list(&by_label).await.unwrap().items.iter().map(|d| uid(&d.metadata)).collect();
    let service_uids: Vec<String> =
        services.list(&by_label).await.unwrap().items.iter().map(|s| uid(&s.metadata)).collect();
    // The second operator took over what the first made: the same objects, not new ones.
    assert_eq!(deployment_uids, [deployment_uid], "the Deployment was made again");
    assert_eq!(service_uids.len(), 1, "Services: {service_uids:?}");
    if let Some(service_uid) = &service_at_kill {
        assert_eq!(&service_uids[0], service_uid, "the Service was made again");
    }
    second.events_sent().await;
    let created = created().await;
    let count = |kind: &str| created.iter().filter(|k| *k == kind).count();
    assert_eq!(count("Deployment"), 1, "one Created event for the one Deployment: {created:?}");
    // At most one for the Service: the kill may fall between its create and its event
    // (or after a create was sent and before its answer, so that it was not seen here).
    assert!(count("Service") <= 1, "the Service was created twice: {created:?}");
}

/// `kubectl wait --for=condition=Ready` and `kubectl get webapps` work as users expect.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_wait_and_get_read_well() {
    let (client, ns, _operator) = setup("kubectl").await;
    create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 2})).await;
    kubectl_ok(&["-n", &ns.name, "wait", "--for=condition=Ready", "webapp/web", "--timeout=90s"]);
    let table = kubectl_ok(&["-n", &ns.name, "get", "webapps"]);
    let mut lines = table.lines();
    let header: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["NAME", "PHASE", "READY", "REPLICAS", "AGE"]);
    let row: Vec<&str> = lines.next().unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["web", "Running", "2", "2"]);
    let wide = kubectl_ok(&["-n", &ns.name, "get", "wa", "-o", "wide"]);
    assert!(wide.contains("IMAGE") && wide.contains("nginx:1.20"), "{wide}");
}

/// A converged WebApp costs no writes: a forced resync sends no POST, PUT, PATCH or DELETE.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_no_op_reconcile_makes_zero_writes() {
    let (client, ns, operator) = setup("nowrite").await;
    let api = create(
        &client,
        &ns.name,
        "web",
        // Values the API server stores in another form must not look like drift.
        json!({"image": "nginx:1.20", "replicas": 1, "domain": "w.example.com", "env": {"A": "1", "EMPTY": ""},
            "resources": {"limits": {"cpu": "0.5", "memory": "2048Mi"}, "requests": {"cpu": "0.25"}}}),
    )
    .await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    // Forced resyncs: a metadata-only change of the WebApp triggers a reconcile without
    // changing the spec.
    let reconciles = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"}";
    assert_eq!(operator.writes_at_rest(&api, "web", reconciles, 3).await, 0.0, "a converged WebApp was written to");
}

/// At rest, a WebApp costs no request at all: a forced resync of a converged WebApp
/// without a domain reads its children (and the absent Ingress) from the caches only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_converged_webapp_sends_no_request_at_all() {
    let (client, ns, operator) = setup("noread").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let reconciles = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"}";
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let requests = operator.requests_at_rest(&api, "web", reconciles, 3, &methods).await;
    assert_eq!(requests, 0.0, "a converged WebApp sent requests");
}

/// A permanently broken WebApp goes Failed and is not retried in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_error_does_not_hot_loop() {
    let (client, ns, operator) = setup("hotloop").await;
    // The WebApp schema accepts it; the Deployment's validation refuses it (422).
    let broken = json!({"image": "nginx:1.20", "resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}});
    let api = create(&client, &ns.name, "web", broken).await;
    let failed = wait_for(&api, "web", "Failed", |w| phase(w) == Some(Phase::Failed)).await;
    let status = failed.status.unwrap();
    assert!(status.conditions.iter().any(|c| c.type_ == "Degraded" && c.reason == "Invalid"), "{status:#?}");
    assert!(status.message.unwrap().contains("must be less than or equal to cpu limit"));
    expect_events(&client, &ns.name, &["Invalid"]).await;

    let invalid = "controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"Invalid\"}";
    // A forced reconcile, counted: the operator is at work on this object, and the
    // reconcile triggered by our own status write has passed.
    operator.resync(&api, "web", invalid, 1).await;
    let before = operator.metric(invalid).await;
    // The control: a WebApp blocked by a Deployment it does not own, an error that is
    // retried with the same per-object backoff a hot loop would use: after n failures
    // the next try comes d = 2^(n-1) s to 2d later (1 s doubling, jitter up to one
    // delay). The broken WebApp has failed `before` times, so a loop would retry it
    // within 2^before s of the forced reconcile. Once Failed (its status no longer
    // changes), the control is retried on its backoff alone: after its n failures, m
    // more take at least 2^(n-1) * (2^m - 1) s, all after the forced reconcile. Those
    // retries, counted, are the evidence that the operator was at work all along,
    // retrying what it should, for as long as a loop would have needed to show.
    let theirs: Deployment = serde_json::from_value(json!({"metadata": {"name": "blocked"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}}, "spec": {"containers": [{"name": "c", "image": "httpd:2"}]}}}}))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), &ns.name).create(&PostParams::default(), &theirs).await.unwrap();
    create(&client, &ns.name, "blocked", json!({"image": "nginx:1.20"})).await;
    wait_for(&api, "blocked", "Failed/NotOwned", |w| phase(w) == Some(Phase::Failed)).await;
    let not_owned = "controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"NotOwned\"}";
    // Counted once the reconcile that wrote Failed returns, just after the write.
    let failed = eventually(Duration::from_secs(10), || async {
        let failed = operator.metric_or_zero_if_family_exists(not_owned).await;
        (failed >= 1.0).then_some(failed)
    })
    .await
    .expect("the control's failure was not counted");
    let shortest = |m: f64| 2f64.powf(failed - 1.0) * (2f64.powf(m) - 1.0);
    let retries = (1..).map(f64::from).find(|&m| shortest(m) >= 2f64.powf(before)).unwrap();
    // The longest those retries may take (each delay doubled by jitter), and room for
    // the reconciles themselves.
    let limit = Duration::from_secs_f64(2.0 * shortest(retries + 1.0) + 30.0);
    // One more than the retries: a reconcile in flight when `failed` was read (the one
    // its own Failed status triggered) is not a retry on the backoff.
    let retried =
        eventually(limit, || async { (operator.metric(not_owned).await >= failed + retries + 1.0).then_some(()) })
            .await;
    assert!(
        retried.is_some(),
        "the blocked control WebApp was not retried {retries} times in {limit:?}: {}",
        operator.metric(not_owned).await - failed
    );
    let during = operator.metric(invalid).await - before;
    assert_eq!(during, 0.0, "a permanently broken WebApp was reconciled {during} times without a change");

    // A new generation is the next attempt.
    api.patch("web", &PatchParams::default(), &Patch::Merge(&json!({"spec": {"resources": {"limits": {"cpu": "4"}}}})))
        .await
        .unwrap();
    wait_for(&api, "web", "Running after the fix", running_at(2)).await;
}

/// Unset replicas are left to an autoscaler: the operator does not fight `kubectl scale`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unset_replicas_are_left_to_the_autoscaler() {
    let (client, ns, operator) = setup("hpa").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20"})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    kubectl_ok(&["-n", &ns.name, "scale", "deployment/web", "--replicas=3"]);
    let webapp =
        wait_for(&api, "web", "3 ready replicas", |w| w.status.as_ref().and_then(|s| s.ready_replicas) == Some(3))
            .await;
    assert_eq!(
        webapp.status.unwrap().selector.as_deref(),
        Some("app.kubernetes.io/instance=web,app.kubernetes.io/name=webapp")
    );

    // A resync does not take the count back, and the operator owns no replicas field.
    let reconciles = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"success\"}";
    operator.resync(&api, "web", reconciles, 1).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let deployment = deployments.get("web").await.unwrap();
    let ours =
        deployment.metadata.managed_fields.iter().flatten().filter(|f| f.manager.as_deref() == Some("webapp-operator"));
    for entry in ours {
        let fields = serde_json::to_string(&entry.fields_v1).unwrap();
        assert!(!fields.contains("f:replicas"), "the operator owns spec.replicas: {fields}");
    }
    assert_eq!(deployment.spec.unwrap().replicas, Some(3), "the operator reverted the scale");

    // An autoscaler may also target the WebApp's own scale subresource: the count then
    // lives in the WebApp's spec and the operator carries it to the Deployment.
    kubectl_ok(&["-n", &ns.name, "scale", "webapp/web", "--replicas=2"]);
    wait_for(&api, "web", "2 ready replicas", |w| w.status.as_ref().and_then(|s| s.ready_replicas) == Some(2)).await;
    assert_eq!(deployments.get("web").await.unwrap().spec.unwrap().replicas, Some(2));
}

/// Exercise 1: a user watching sees `Pending → Creating → Running`, in that order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phases_go_pending_creating_running() {
    let (client, ns, _operator) = setup("phases").await;
    let api: Api<WebApp> = Api::namespaced(client.clone(), &ns.name);
    let seen = Arc::new(Mutex::new(Vec::<Phase>::new()));
    let listed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let recorder = {
        let (api, seen, listed) = (api.clone(), seen.clone(), listed.clone());
        tokio::spawn(async move {
            let mut stream = watcher(api, watcher::Config::default()).boxed();
            while let Some(Ok(event)) = stream.next().await {
                if let watcher::Event::InitDone = event {
                    listed.store(true, std::sync::atomic::Ordering::SeqCst);
                }
                if let watcher::Event::Apply(webapp) | watcher::Event::InitApply(webapp) = event
                    && let Some(phase) = phase(&webapp)
                {
                    let mut seen = seen.lock().unwrap();
                    if seen.last() != Some(&phase) {
                        seen.push(phase);
                    }
                }
            }
        })
    };
    // The watch is established before the WebApp exists: no phase is missed.
    eventually(Duration::from_secs(10), || async { listed.load(std::sync::atomic::Ordering::SeqCst).then_some(()) })
        .await
        .expect("the watch never listed");
    create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 2})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    eventually(Duration::from_secs(10), || async {
        (seen.lock().unwrap().last() == Some(&Phase::Running)).then_some(())
    })
    .await
    .expect("the watch never saw Running");
    recorder.abort();
    assert_eq!(*seen.lock().unwrap(), [Phase::Pending, Phase::Creating, Phase::Running]);
}

/// Exercise 5: every reconcile step is one span; the first reconcile after the finalizer
/// shows the whole pipeline. `accept` never runs: the API server itself shows a new
/// WebApp as Pending (the CRD's status default), so there is nothing to accept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trace_of_a_reconcile_shows_each_step() {
    let (client, ns, _operator) = setup("trace").await;
    let api =
        create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1, "domain": "t.example.com"}))
            .await;
    wait_for(&api, "web", "Running", running_at(1)).await;

    let spans = trace().of(&format!("{}/web", ns.name));
    assert!(spans.iter().all(|s| s.timed), "every step span records its duration");
    let first = spans.iter().position(|s| s.step == "plan").unwrap_or_else(|| panic!("no plan step in {spans:?}"));
    let run: Vec<(&str, &str)> =
        spans[first..first + 5].iter().map(|s| (s.step.as_str(), s.outcome.as_str())).collect();
    assert_eq!(
        run,
        [
            ("plan", "continue"),
            ("deployment", "continue"),
            ("service", "continue"),
            ("ingress", "continue"),
            ("observe", "continue")
        ]
    );
    assert!(spans.iter().all(|s| s.step != "accept"), "the API server's default already said Pending: {spans:?}");
}

/// Exercise 4: deletion is never stuck when a child is already gone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_with_a_child_already_gone() {
    let (client, ns, _operator) = setup("gone").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let services: Api<Service> = Api::namespaced(client.clone(), &ns.name);
    services.delete("web", &DeleteParams::default()).await.unwrap();
    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone =
        eventually(Duration::from_secs(30), || async { api.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "WebApp stuck in deletion");
}

/// The pause annotation stops changes to one WebApp until it is removed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_webapp_is_left_alone() {
    let (client, ns, operator) = setup("paused").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let image = || async {
        deployments.get("web").await.unwrap().spec.unwrap().template.spec.unwrap().containers[0].image.clone().unwrap()
    };

    let pause =
        json!({"metadata": {"annotations": {"apps.example.com/paused": "true"}}, "spec": {"image": "nginx:1.21"}});
    let paused = || {
        operator.metric_or_zero_if_family_exists(
            "controller_runtime_reconcile_total{controller=\"webapp\",result=\"paused\"}",
        )
    };
    let before = paused().await;
    api.patch("web", &PatchParams::default(), &Patch::Merge(&pause)).await.unwrap();
    // The operator looked at the new generation and left it alone.
    eventually(Duration::from_secs(20), || async { (paused().await > before).then_some(()) })
        .await
        .expect("the paused WebApp was never looked at");
    assert_eq!(image().await, "nginx:1.20", "a paused WebApp was changed");

    let resume = json!({"metadata": {"annotations": {"apps.example.com/paused": null}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&resume)).await.unwrap();
    let followed =
        eventually(Duration::from_secs(20), || async { (image().await == "nginx:1.21").then_some(()) }).await;
    assert!(followed.is_some(), "the spec change was not applied after resuming");
}

/// kstatus (sigs.k8s.io/cli-utils), which Flux, Argo CD and kpt judge health with, reads
/// a Running WebApp as Current, one still creating as InProgress, and a Failed one as
/// Failed (so a pipeline fails at once instead of waiting for its timeout).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kstatus_reads_running_creating_and_failed() {
    use std::io::Write;
    let (client, ns, _operator) = setup("kstatus").await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let theirs: Deployment = serde_json::from_value(json!({"metadata": {"name": "failed"},
        "spec": {"selector": {"matchLabels": {"app": "theirs"}},
            "template": {"metadata": {"labels": {"app": "theirs"}}, "spec": {"containers": [{"name": "c", "image": "httpd:2"}]}}}}))
    .unwrap();
    deployments.create(&PostParams::default(), &theirs).await.unwrap();
    let api = create(&client, &ns.name, "running", json!({"image": "nginx:1.20", "replicas": 1})).await;
    create(&client, &ns.name, "creating", json!({"image": "nginx:does-not-exist", "replicas": 1})).await;
    create(&client, &ns.name, "failed", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "running", "Running", running_at(1)).await;
    wait_for(&api, "failed", "Failed", |w| phase(w) == Some(Phase::Failed)).await;
    wait_for(&api, "creating", "failing pods", |w| {
        w.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("ImagePullBackOff"))
    })
    .await;

    let objects = kubectl_ok(&["-n", &ns.name, "get", "webapps", "-o", "json"]);
    let mut checker = tool("kstatus")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("cannot run kstatus");
    checker.stdin.take().unwrap().write_all(objects.as_bytes()).unwrap();
    let output = checker.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut verdicts: Vec<String> = String::from_utf8_lossy(&output.stdout).lines().map(str::to_owned).collect();
    verdicts.sort();
    assert_eq!(verdicts, ["creating InProgress", "failed Failed", "running Current"]);
}

/// Pods that are never created (a full ResourceQuota) leave no pod to explain them: the
/// WebApp says so from its Deployment's conditions, and recovers once the quota allows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_quota_is_explained_and_recovers_when_raised() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let (client, ns, _operator) = setup("quota").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns.name);
    let quota: ResourceQuota =
        serde_json::from_value(json!({"metadata": {"name": "pods"}, "spec": {"hard": {"pods": "0"}}})).unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let webapp = wait_for(&api, "web", "a message naming the quota", |w| {
        w.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("exceeded quota"))
    })
    .await;
    let status = webapp.status.unwrap();
    assert_eq!(status.phase, Some(Phase::Creating));
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Degraded" && c.status == "True" && c.message.contains("FailedCreate")),
        "{status:#?}"
    );

    let raise = json!({"spec": {"hard": {"pods": "10"}}});
    quotas.patch("pods", &PatchParams::default(), &Patch::Merge(&raise)).await.unwrap();
    wait_for(&api, "web", "Running once the quota allows", running_at(1)).await;
}

/// The cleanup budget counts from the first cleanup attempt, not from the deletion: an
/// operator that was down for longer than the budget still cleans up in order.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_down_longer_than_the_budget_still_cleans_up_in_order() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "budget").await;
    let config = || Config {
        cleanup_budget: Duration::from_secs(10),
        ..Operator::config(&ns.name, vec![ControllerKind::Webapp])
    };
    let operator = Operator::start_config(config()).await;
    let api =
        create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1, "domain": "web.example.com"}))
            .await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    assert!(operator.stop().await, "the operator did not stop cleanly");

    let deletions = Deletions::record(&client, &ns.name).await;
    api.delete("web", &DeleteParams::default()).await.unwrap();
    // The operator stays down for longer than its budget, by the deletion's own clock;
    // the finalizer holds the WebApp all along.
    let overdue = eventually(Duration::from_secs(30), || async {
        let deleted = api.get_opt("web").await.ok()??.metadata.deletion_timestamp?;
        let age = k8s_openapi::jiff::Timestamp::now().duration_since(deleted.0);
        (age.as_secs() > 11).then_some(())
    })
    .await;
    assert!(overdue.is_some(), "the finalizer did not hold the WebApp past the budget");

    let _operator = Operator::start_config(config()).await;
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "WebApp stuck in deletion");
    assert_eq!(deletions.order(), ["Ingress", "Service", "Deployment"]);
    let events = expect_event(&client, &ns.name, "Deleted", |e| e.reason.as_deref() == Some("Deleted")).await;
    let reasons: Vec<_> = events.into_iter().filter_map(|e| e.reason).collect();
    assert!(!reasons.iter().any(|r| r == "CleanupTimeout"), "gave up instead of cleaning up: {reasons:?}");
}

/// A child that will not go (a finalizer of someone else's holds it) does not hold the
/// WebApp for ever: once the cleanup budget is spent, a `CleanupTimeout` warning says
/// what blocked, and the finalizer is released.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_that_will_not_go_ends_in_cleanup_timeout() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "cleanuptimeout").await;
    let config =
        Config { cleanup_budget: Duration::from_secs(3), ..Operator::config(&ns.name, vec![ControllerKind::Webapp]) };
    let _operator = Operator::start_config(config).await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let hold = json!({"metadata": {"finalizers": ["test.example.com/hold"]}});
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&hold)).await.unwrap();

    api.delete("web", &DeleteParams::default()).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "WebApp stuck in deletion: {:?}", api.get_opt("web").await.unwrap().and_then(|w| w.status));
    let events =
        expect_event(&client, &ns.name, "CleanupTimeout", |e| e.reason.as_deref() == Some("CleanupTimeout")).await;
    let reasons: Vec<_> = events.into_iter().filter_map(|e| e.reason).collect();
    assert!(!reasons.iter().any(|r| r == "Deleted"), "a cleanup that gave up is not a clean deletion: {reasons:?}");
    let held = deployments.get("web").await.unwrap();
    assert!(held.metadata.deletion_timestamp.is_some(), "the Deployment was asked to go");
    let release = json!({"metadata": {"finalizers": null}});
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
}

/// The cleanup clock is the operator's own: an annotation a user writes on the WebApp
/// (as the clock once was) cannot backdate it and release the finalizer while a child
/// still stands.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backdated_cleanup_start_does_not_release_the_finalizer() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "backdated").await;
    let config =
        Config { cleanup_budget: Duration::from_secs(300), ..Operator::config(&ns.name, vec![ControllerKind::Webapp]) };
    let operator = Operator::start_config(config).await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), &ns.name);
    let hold = json!({"metadata": {"finalizers": ["test.example.com/hold"]}});
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&hold)).await.unwrap();
    let backdate = json!({"metadata": {"annotations": {"apps.example.com/cleanup-started": "2000-01-01T00:00:00Z"}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&backdate)).await.unwrap();

    api.delete("web", &DeleteParams::default()).await.unwrap();
    // Evidence that cleanup ran, more than once, with the annotation there: the
    // Deployment was asked to go, then further cleanup attempts were counted.
    let asked = eventually(Duration::from_secs(30), || async {
        deployments.get("web").await.ok()?.metadata.deletion_timestamp.map(|_| ())
    })
    .await;
    assert!(asked.is_some(), "cleanup never asked the Deployment to go");
    let waiting = "controller_runtime_reconcile_total{controller=\"webapp\",result=\"requeue\"}";
    let before = operator.metric_or_zero_if_family_exists(waiting).await;
    // Cleanup waits back off per object (doubling), so two more attempts after the
    // first ones can take a while on a loaded machine: waited for, not assumed.
    let more = eventually(Duration::from_secs(120), || async {
        (operator.metric_or_zero_if_family_exists(waiting).await >= before + 2.0).then_some(())
    })
    .await;
    assert!(more.is_some(), "no further cleanup attempt was counted");
    let held = api.get("web").await.expect("the finalizer was released while the Deployment stands");
    assert!(held.metadata.finalizers.iter().flatten().any(|f| f.starts_with("apps.example.com")), "{held:?}");
    operator.events_sent().await;
    let reasons = event_reasons(&client, &ns.name).await;
    assert!(!reasons.iter().any(|r| r == "CleanupTimeout"), "{reasons:?}");

    let release = json!({"metadata": {"finalizers": null}});
    deployments.patch("web", &PatchParams::default(), &Patch::Merge(&release)).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt("web").await.ok()?.is_none().then_some(()) }).await;
    assert!(gone.is_some(), "WebApp stuck in deletion once the child went");
}

/// A full quota on Deployments refuses the create with 403 "exceeded quota": the
/// WebApp is Blocked (Failed, Degraded with the API server's message) and comes back by
/// itself once the quota is raised, without any change to the WebApp.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_quota_that_refuses_the_deployment_blocks_and_recovers() {
    use k8s_openapi::api::core::v1::ResourceQuota;
    let (client, ns, operator) = setup("quotablock").await;
    let quotas: Api<ResourceQuota> = Api::namespaced(client.clone(), &ns.name);
    let quota: ResourceQuota = serde_json::from_value(
        json!({"metadata": {"name": "deployments"}, "spec": {"hard": {"count/deployments.apps": "0"}}}),
    )
    .unwrap();
    quotas.create(&PostParams::default(), &quota).await.unwrap();
    // The quota controller must have counted the namespace before it refuses anything.
    eventually(Duration::from_secs(30), || async { quotas.get("deployments").await.ok()?.status?.hard })
        .await
        .expect("the quota was never counted");

    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let failed = wait_for(&api, "web", "Failed by the quota", |w| phase(w) == Some(Phase::Failed)).await;
    let status = failed.status.unwrap();
    let degraded = status.conditions.iter().find(|c| c.type_ == "Degraded").unwrap();
    assert_eq!((degraded.status.as_str(), degraded.reason.as_str()), ("True", "Forbidden"), "{status:#?}");
    assert!(degraded.message.contains("exceeded quota"), "{}", degraded.message);
    // Counted once the reconcile that wrote this status returns.
    let errors = "controller_runtime_reconcile_errors_total{controller=\"webapp\",reason=\"Forbidden\"}";
    let counted = eventually(Duration::from_secs(10), || async {
        (operator.metric_or_zero_if_family_exists(errors).await >= 1.0).then_some(())
    });
    assert!(counted.await.is_some(), "the refusal is not counted in controller_runtime_reconcile_errors_total");

    let raise = json!({"spec": {"hard": {"count/deployments.apps": "5"}}});
    quotas.patch("deployments", &PatchParams::default(), &Patch::Merge(&raise)).await.unwrap();
    let recovered = wait_for(&api, "web", "Running once the quota allows", running_at(1)).await;
    assert_eq!(recovered.metadata.generation, Some(1), "the WebApp itself was not touched");
}

/// The operator binary, run for namespace `ns` with `--log-format <format>`, its
/// stdout (a pipe: not a terminal) collected line by line.
struct Binary {
    process: std::process::Child,
    lines: Arc<Mutex<Vec<String>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Binary {
    fn start(ns: &str, format: &str) -> Self {
        use std::io::BufRead;
        let metrics = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let mut process = std::process::Command::new(env!("CARGO_BIN_EXE_webapp-operator"))
            .args(["run", "--namespace", ns, "--controllers", "webapp", "--log-format", format, "--no-webhook"])
            .args(["--metrics-addr", &metrics.to_string()])
            .env("KUBECONFIG", kubeconfig_path())
            .env_remove("RUST_LOG")
            .env_remove("NO_COLOR")
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("cannot start the operator binary");
        let stdout = process.stdout.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::<String>::new()));
        let reader = {
            let lines = lines.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                    lines.lock().unwrap().push(line);
                }
            })
        };
        Binary { process, lines, reader: Some(reader) }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().unwrap().clone()
    }

    /// Stops the process and returns everything it wrote.
    fn stop(mut self) -> Vec<String> {
        let _ = self.process.kill();
        let _ = self.process.wait();
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        self.lines()
    }
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.process.kill();
    }
}

/// `--log-format json`: the operator binary writes one JSON object per line, and one
/// line per finished step with its name, object, outcome and duration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_json_log_has_one_line_per_step() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "jsonlog").await;
    let operator = Binary::start(&ns.name, "json");
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    let object = format!("{}/web", ns.name);
    let step_lines = || {
        let parsed: Vec<serde_json::Value> = operator
            .lines()
            .iter()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
            .collect();
        parsed
            .into_iter()
            .filter(|v| {
                v.pointer("/span/name") == Some(&json!("step")) && v.pointer("/span/object") == Some(&json!(object))
            })
            .collect::<Vec<_>>()
    };
    let deployment = eventually(Duration::from_secs(60), || async {
        step_lines().into_iter().find(|v| v.pointer("/span/step") == Some(&json!("deployment")))
    })
    .await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let lines = operator.stop();
    let line = deployment.unwrap_or_else(|| panic!("no step line for {object}: {lines:?}"));
    assert_eq!(line.pointer("/span/outcome"), Some(&json!("continue")), "{line}");
    assert!(line.pointer("/span/duration_ms").and_then(serde_json::Value::as_f64).is_some(), "{line}");
    assert!(line.pointer("/level").is_some() && line.pointer("/timestamp").is_some(), "{line}");
}

/// Text logs written to a pipe (`make run > log`, CI, `kubectl logs`) carry no ANSI
/// colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_logs_to_a_pipe_have_no_colour_codes() {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "textlog").await;
    let operator = Binary::start(&ns.name, "text");
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let logged = eventually(Duration::from_secs(20), || async {
        let lines = operator.lines();
        lines.iter().any(|l| l.contains("phase changed")).then_some(())
    })
    .await;
    let lines = operator.stop();
    assert!(logged.is_some(), "the operator logged no phase change: {lines:?}");
    assert!(lines.iter().all(|l| !l.contains('\x1b')), "colour codes in a pipe: {lines:?}");
}

/// The Ready condition of a WebApp, as `(status, reason, message)`.
fn ready_condition(webapp: &WebApp) -> (String, String, String) {
    let status = webapp.status.as_ref().unwrap();
    let ready = status.conditions.iter().find(|c| c.type_ == "Ready").unwrap();
    (ready.status.clone(), ready.reason.clone(), ready.message.clone())
}

/// A container that keeps crashing: the status names the pod, the container and
/// CrashLoopBackOff, Ready is False with PodsFailing; once the pod runs again, the
/// WebApp is Running again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_looping_pod_is_explained_in_status() {
    let (client, ns, _operator) = setup("crashloop").await;
    let api = create(&client, &ns.name, "web", json!({"image": "nginx:1.20", "replicas": 1})).await;
    wait_for(&api, "web", "Running", running_at(1)).await;
    let pod = instance_pods(&client, &ns.name, "web").await.remove(0);
    let back_off = "back-off 40s restarting failed container=app";
    fake_pod(&client, &ns.name, &pod, Faked::Waiting("CrashLoopBackOff", back_off)).await;

    let webapp = wait_for(&api, "web", "a CrashLoopBackOff message", |w| {
        w.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("CrashLoopBackOff"))
    })
    .await;
    let message = webapp.status.as_ref().unwrap().message.clone().unwrap();
    assert!(message.contains(&format!("pod {pod}: container app: CrashLoopBackOff ({back_off})")), "{message}");
    let (status, reason, _) = ready_condition(&webapp);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PodsFailing"));
    assert_ne!(phase(&webapp), Some(Phase::Running), "Running with a crash-looping pod");

    // The kubelet restarts it and it stays up: kwok's pod, deleted, comes back Ready.
    Api::<k8s_openapi::api::core::v1::Pod>::namespaced(client.clone(), &ns.name)
        .delete(&pod, &DeleteParams::default())
        .await
        .unwrap();
    wait_for(&api, "web", "Running once the pod runs", running_at(1)).await;
}

/// A pod no node can take (it asks for more CPU than any node has): the status names
/// the pod as Unschedulable with the scheduler's reason, before any progress deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unschedulable_pod_is_explained_in_status() {
    let (client, ns, _operator) = setup("unschedulable").await;
    let spec = json!({"image": "nginx:1.20", "replicas": 1, "resources": {"requests": {"cpu": "1000"}}});
    let api = create(&client, &ns.name, "web", spec).await;
    let webapp = wait_for(&api, "web", "an Unschedulable message", |w| {
        w.status.as_ref().and_then(|s| s.message.as_deref()).is_some_and(|m| m.contains("Unschedulable"))
    })
    .await;
    let message = webapp.status.as_ref().unwrap().message.clone().unwrap();
    assert!(message.contains("Insufficient cpu"), "the scheduler's reason is not given: {message}");
    let (status, reason, ready_message) = ready_condition(&webapp);
    assert_eq!((status.as_str(), reason.as_str()), ("False", "PodsFailing"));
    assert!(ready_message.contains("Unschedulable"), "{ready_message}");
    assert_eq!(phase(&webapp), Some(Phase::Creating));

    // A request a node can meet recovers.
    let fix = json!({"spec": {"resources": {"requests": {"cpu": "100m"}}}});
    api.patch("web", &PatchParams::default(), &Patch::Merge(&fix)).await.unwrap();
    wait_for(&api, "web", "Running once schedulable", running_at(2)).await;
}

/// The field managers that own `metadata.finalizers` of `webapp`.
fn finalizer_owners(webapp: &WebApp) -> Vec<String> {
    let entries = webapp.metadata.managed_fields.iter().flatten();
    let owns = |fields: &serde_json::Value| fields["f:metadata"].get("f:finalizers").is_some();
    entries.filter(|e| e.fields_v1.as_ref().is_some_and(|f| owns(&f.0))).filter_map(|e| e.manager.clone()).collect()
}

/// With the finalizer policy (config/admission) bound to its namespace, the API server
/// adds a new WebApp's finalizer as it is created, and the operator converges and
/// deletes it without writing the finalizer itself; without it, the operator adds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_admission_policy_adds_the_finalizer_so_the_operator_does_not() {
    use webapp_operator::admission;
    use webapp_operator::controllers::webapp::FINALIZER;

    let (client, ns, _operator) = setup("admission").await;
    let spec = json!({"image": "nginx:1.20", "replicas": 1});
    let creator = PostParams { field_manager: Some("test-creator".into()), ..PostParams::default() };
    let new = |name: &str| -> WebApp {
        serde_json::from_value(json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp",
            "metadata": {"name": name}, "spec": spec}))
        .unwrap()
    };
    let api: Api<WebApp> = Api::namespaced(client.clone(), &ns.name);

    // Without the policy: the operator patches the finalizer in, and owns the field.
    let created = api.create(&creator, &new("before")).await.unwrap();
    assert!(created.metadata.finalizers.is_none(), "a finalizer before any policy: {:?}", created.metadata.finalizers);
    let before = wait_for(&api, "before", "Running", running_at(1)).await;
    let operators = finalizer_owners(&before);
    assert!(!operators.is_empty() && !operators.contains(&"test-creator".to_owned()), "{operators:?}");

    if !admission::served(&client).await.unwrap() {
        let version = client.apiserver_version().await.unwrap();
        let minor: u32 = version.minor.trim_end_matches('+').parse().unwrap();
        assert!(minor < 36, "Kubernetes 1.{minor} serves no MutatingAdmissionPolicy v1");
        eprintln!(
            "NOTE: Kubernetes 1.{minor} has no MutatingAdmissionPolicy v1: only the operator's own finalizer tested"
        );
        return;
    }

    // The policy config/ ships, bound to this namespace only: the other tests run beside
    // this one, some of them without an operator.
    let namespaces = [ns.name.clone()];
    admission::install(&client, &ns.name, Some(&namespaces), "test-admission").await.unwrap();

    let effective = admission::wait_until_applied(&api, &new("probe"), Duration::from_secs(30)).await;
    assert!(effective, "the policy never added the finalizer to a dry-run create");

    let created = api.create(&creator, &new("after")).await.unwrap();
    assert_eq!(created.metadata.finalizers, Some(vec![FINALIZER.to_owned()]), "added as the API server stored it");
    let after = wait_for(&api, "after", "Running", running_at(1)).await;
    let owners = finalizer_owners(&after);
    assert!(operators.iter().all(|o| !owners.contains(o)), "the operator wrote the finalizer anyway: {owners:?}");

    // The operator removes the finalizer the policy added: the deletion completes.
    api.delete("after", &DeleteParams::default()).await.unwrap();
    let gone =
        eventually(Duration::from_secs(60), || async { api.get_opt("after").await.ok()?.is_none().then_some(()) });
    assert!(gone.await.is_some(), "the WebApp with the policy's finalizer was never let go");
    admission::uninstall(&client, &ns.name).await.unwrap();
}
