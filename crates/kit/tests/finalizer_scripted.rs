//! The finalizer guard against scripted API replies (tower-test): a new object gets the
//! finalizer and its apply in one reconcile, with the object as the patch stored it.
//! The real control plane shows the rest (the operator's integration tests).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::client::Body;
use kube::runtime::controller::Action;
use kube::{Api, Client, ResourceExt};
use reconcile_kit::finalizer;
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

const NAME: &str = "apps.example.com/cleanup";

fn object(finalizers: &[&str]) -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "uid": "uid-1", "resourceVersion": "1", "finalizers": finalizers}
    }))
    .unwrap()
}

#[tokio::test]
async fn a_new_object_is_applied_in_the_reconcile_that_adds_its_finalizer() {
    let (service, mut handle): (_, Handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let api: Api<ConfigMap> = Api::namespaced(Client::new(service, "ns"), "ns");
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("no request");
        assert_eq!(request.method(), Method::PATCH);
        assert!(request.uri().path().ends_with("/configmaps/web"), "{}", request.uri());
        let body: Value = serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        // kube's patch: the list it extends is tested first.
        assert_eq!(body[0], json!({"op": "test", "path": "/metadata/finalizers", "value": ["other"]}));
        assert_eq!(body[1], json!({"op": "add", "path": "/metadata/finalizers/-", "value": NAME}));
        let mut stored = object(&["other", NAME]);
        stored.metadata.resource_version = Some("2".into());
        send.send_response(Response::new(Body::from(serde_json::to_vec(&stored).unwrap())));
        // Nothing more: the apply below runs on the answer, without a read or a requeue.
        assert!(handle.next_request().await.is_none(), "a request after the finalizer patch");
    });
    let mut seen = None;
    let action = finalizer::run(
        &api,
        NAME,
        Arc::new(object(&["other"])),
        |o: Arc<ConfigMap>| {
            seen = Some((o.finalizers().to_vec(), o.resource_version()));
            async { Ok(Action::requeue(std::time::Duration::from_secs(30))) }
        },
        |_| async { Err(reconcile_kit::Error::Waiting("cleanup of a live object".into())) },
    )
    .await
    .unwrap();
    drop(api);
    server.await.unwrap();
    assert_eq!(
        seen,
        Some((vec!["other".to_owned(), NAME.to_owned()], Some("2".to_owned()))),
        "applied what was stored"
    );
    assert_eq!(action, Action::requeue(std::time::Duration::from_secs(30)), "the apply's own action");
}
