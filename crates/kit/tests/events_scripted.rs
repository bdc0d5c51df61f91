//! Events against scripted API replies (tower-test): a reconcile only queues its Events,
//! and the sender sends them, one object's in the order they were told, past a refusal,
//! until every copy of `Events` is gone; a stop sends what is queued, and gives it up
//! once the drain's time runs out. The integration tests read the Events of every
//! controller on the real control plane.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::ObjectReference;
use kube::Client;
use kube::client::Body;
use prometheus_client::metrics::gauge::Gauge;
use reconcile_kit::events::{Drain, Events, run_beside};
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn web() -> ObjectReference {
    ObjectReference {
        api_version: Some("apps.example.com/v1alpha1".into()),
        kind: Some("WebApp".into()),
        name: Some("web".into()),
        namespace: Some("ns".into()),
        uid: Some("uid-1".into()),
        ..ObjectReference::default()
    }
}

/// Answers the next request, an Event's create, with `status`; returns what it sent.
async fn answer(handle: &mut Handle, status: u16) -> Value {
    let (request, send) = handle.next_request().await.expect("no request");
    assert_eq!(request.method(), Method::POST);
    assert!(request.uri().path().ends_with("/apis/events.k8s.io/v1/namespaces/ns/events"), "{}", request.uri());
    let sent: Value = serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
    let body = if status == 201 {
        sent.clone()
    } else {
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": status, "message": "etcd is busy"})
    };
    send.send_response(Response::builder().status(status).body(Body::from(body.to_string().into_bytes())).unwrap());
    sent
}

#[tokio::test]
async fn reconciles_queue_events_and_the_sender_sends_them_in_order_past_a_refusal() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let pending = Gauge::default();
    let (events, sender) = Events::new(Client::new(service, "ns"), None, pending.clone());

    // Nothing answers yet, and telling returns: a reconcile never waits for the API.
    let told = async {
        events.normal(&web(), "Created", "Created Deployment web and Service web").await;
        events.warning(&web(), "PodsFailing", "pod web-1: ImagePullBackOff").await;
        events.normal(&web(), "Running", "1 of 1 ready").await;
    };
    tokio::time::timeout(Duration::from_secs(5), told).await.expect("telling waited for the API server");
    assert_eq!(pending.get(), 3, "told, none sent");

    let sending = tokio::spawn(sender);
    let first = answer(&mut handle, 500).await;
    let second = answer(&mut handle, 201).await;
    let third = answer(&mut handle, 201).await;
    let reasons: Vec<&str> = [&first, &second, &third].iter().map(|e| e["reason"].as_str().unwrap()).collect();
    assert_eq!(reasons, ["Created", "PodsFailing", "Running"], "one object's Events keep their order");
    assert_eq!(second["type"], "Warning");
    assert_eq!(third["regarding"]["name"], "web");

    // The sender goes on until the last copy of `events` is gone, then ends.
    events.normal(&web(), "ResourcesSynced", "Resources synced to generation 2").await;
    assert_eq!(answer(&mut handle, 201).await["reason"], "ResourcesSynced");
    drop(events);
    tokio::time::timeout(Duration::from_secs(5), sending).await.expect("the sender did not end").unwrap();
    assert_eq!(pending.get(), 0, "every Event told was sent or given up");
}

/// Work that tells one Event, then ends, dropping its `Events` as stopping controllers do.
async fn tell_and_stop(events: Events) -> &'static str {
    events.normal(&web(), "Deleted", "Deleted Deployment web and Service web").await;
    "stopped"
}

#[tokio::test(start_paused = true)]
async fn a_stop_gives_up_the_unsent_events_once_the_drain_runs_out() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let pending = Gauge::default();
    let (events, sender) = Events::new(Client::new(service, "ns"), None, pending.clone());

    // The API server takes the request and never answers: without the bound, the stop
    // would wait forever, and the outer timeout (paused time runs ahead) fails the test.
    let stopping = run_beside(tell_and_stop(events), sender, Duration::from_secs(5));
    let stopped = tokio::time::timeout(Duration::from_secs(60), async {
        let (output, drain) = stopping.await;
        (output, drain, tokio::time::Instant::now())
    });
    let start = tokio::time::Instant::now();
    let unanswered = async {
        let (request, _never_answered) = handle.next_request().await.expect("the Event was not sent");
        assert_eq!(request.method(), Method::POST);
        std::future::pending::<()>().await
    };
    let (output, drain, end) = tokio::select! {
        stopped = stopped => stopped.expect("the stop waited past its drain for an API server that does not answer"),
        () = unanswered => unreachable!(),
    };
    assert_eq!((output, drain), ("stopped", Drain::Unsent));
    assert!(end - start >= Duration::from_secs(5), "given up after {:?}, before the drain ran out", end - start);
    assert_eq!(pending.get(), 1, "the Event given up is still counted as pending");
}

#[tokio::test(start_paused = true)]
async fn a_stop_sends_the_queued_events_first() {
    let (service, mut handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    let pending = Gauge::default();
    let (events, sender) = Events::new(Client::new(service, "ns"), None, pending.clone());

    let answered = tokio::spawn(async move { answer(&mut handle, 201).await["reason"].clone() });
    let (output, drain) = run_beside(tell_and_stop(events), sender, Duration::from_secs(5)).await;
    assert_eq!((output, drain), ("stopped", Drain::Sent));
    assert_eq!(answered.await.unwrap(), "Deleted", "the Event told just before the stop was sent");
    assert_eq!(pending.get(), 0);
}
