//! `apply` and `delete` against scripted API replies (tower-test): what they send, and
//! what they never send. The same behaviour is shown on the real control plane by the operator's
//! integration tests; these pin down the request sequence.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use http::{Method, Request, Response};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::client::Body;
use kube::{Api, Client};
use reconcile_kit::apply::{APPLIED_HASH, Applied, Deletion, apply, create_only, delete};
use reconcile_kit::{Class, Error};
use serde_json::{Value, json};

type Handle = tower_test::mock::Handle<Request<Body>, Response<Body>>;

fn client() -> (Client, Handle) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<Body>>();
    (Client::new(service, "ns"), handle)
}

fn desired() -> ConfigMap {
    serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": "ns", "ownerReferences": [
            {"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp", "name": "web", "uid": "uid-1", "controller": true}]},
        "data": {"a": "1"}
    }))
    .unwrap()
}

fn reply(value: &Value) -> Response<Body> {
    Response::builder().body(Body::from(serde_json::to_vec(value).unwrap())).unwrap()
}

/// Answers the next request, asserting its method and path; returns its body.
async fn expect(handle: &mut Handle, method: Method, path: &str, response: Response<Body>) -> Value {
    let (request, send) = handle.next_request().await.expect("no request");
    assert_eq!(request.method(), method);
    assert!(request.uri().path().ends_with(path), "{}", request.uri());
    let body = request.into_body().collect_bytes().await.unwrap();
    send.send_response(response);
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// Answers the next request, a create, with 409: the name is taken. Returns what the
/// create sent.
async fn taken(handle: &mut Handle) -> Value {
    let (request, send) = handle.next_request().await.expect("no request");
    assert_eq!(request.method(), Method::POST, "a create, which cannot overwrite");
    let body = request.into_body().collect_bytes().await.unwrap();
    send.send_response(already_exists());
    serde_json::from_slice(&body).unwrap_or(Value::Null)
}

/// The API server's answer to a create whose name is taken.
fn already_exists() -> Response<Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "AlreadyExists",
        "code": 409, "message": "configmaps \"web\" already exists"});
    Response::builder().status(409).body(Body::from(status.to_string().into_bytes())).unwrap()
}

#[tokio::test]
async fn creates_a_child_no_cache_has_seen_with_one_create() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let server = tokio::spawn(async move {
        let (request, send) = handle.next_request().await.expect("no request");
        assert_eq!(request.method(), Method::POST);
        assert!(request.uri().path().ends_with("/configmaps"), "{}", request.uri());
        assert!(request.uri().query().unwrap_or("").contains("fieldManager=webapp-operator"), "{}", request.uri());
        let sent: Value = serde_json::from_slice(&request.into_body().collect_bytes().await.unwrap()).unwrap();
        send.send_response(reply(&sent));
        assert!(sent["metadata"]["annotations"][APPLIED_HASH].is_string(), "the intent hash is recorded");
        assert!(sent["metadata"]["uid"].is_null(), "a new child has no uid to hold on to");
        assert_eq!(sent["data"]["a"], "1");
        // One request: no GET before it, no apply after it.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await.is_err());
    });
    assert_eq!(apply(&api, None, desired()).await.unwrap().0, Applied::Created);
    server.await.unwrap();
}

/// A child of ours made by our create, whose fields a create left under an `Update`
/// entry of our manager, with the data our create set (`a` and `dropped`).
fn created_by_us() -> Value {
    let mut created = owned_live("cm-1");
    created["metadata"]["resourceVersion"] = json!("7");
    created["data"]["dropped"] = json!("x");
    created["metadata"]["managedFields"] = json!([
        {"manager": "webapp-operator", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:data": {"f:a": {}, "f:dropped": {}}}},
        {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
         "fieldsV1": {"f:metadata": {"f:labels": {}}}}]);
    created
}

/// Answers the fold of the create entry and checks it: our create's fields become our
/// apply entry's, another manager's entry stays, and the patch holds on to the
/// resourceVersion it was computed from.
async fn expect_fold(handle: &mut Handle, reply_with: &Value) {
    let fold = expect(handle, Method::PATCH, "/configmaps/web", reply(reply_with)).await;
    assert_eq!(fold["metadata"]["resourceVersion"], "7", "the fold is conditional");
    assert_eq!(
        fold["metadata"]["managedFields"],
        json!([
            {"manager": "kube-controller-manager", "operation": "Update", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:metadata": {"f:labels": {}}}},
            {"manager": "webapp-operator", "operation": "Apply", "apiVersion": "v1", "fieldsType": "FieldsV1",
             "fieldsV1": {"f:data": {"f:a": {}, "f:dropped": {}}}}]),
        "the create's fields are ours to apply, and to drop"
    );
}

/// A create that finds the name taken reads what is there and decides as for a cached
/// copy: here a child of ours, made by a reconcile whose write the cache has not seen,
/// that differs. Our create left its fields under an `Update` entry: before the apply,
/// that entry is folded into ours, so the apply removes what the intent dropped.
#[tokio::test]
async fn a_create_in_the_way_reads_and_a_created_child_has_its_fields_taken_over_before_its_first_change() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let server = tokio::spawn(async move {
        taken(&mut handle).await;
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&created_by_us())).await;
        expect_fold(&mut handle, &created_by_us()).await;
        let applied = expect(&mut handle, Method::PATCH, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        assert_eq!(applied["metadata"]["uid"], "cm-1", "the apply carries the uid ownership was checked on");
        assert_eq!(applied["data"], json!({"a": "1"}), "the intent, without the dropped key");
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await.is_err());
    });
    assert_eq!(apply(&api, None, desired()).await.unwrap().0, Applied::Updated);
    server.await.unwrap();
}

/// The cache keeps only a marker of the create entry: the first change reads the child
/// for the entry's fields, folds them, then applies. A fold refused because the child
/// changed meanwhile is computed again from a fresh read.
#[tokio::test]
async fn a_cached_marker_of_our_create_reads_the_fields_and_folds_them_before_the_first_change() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let mut cached: ConfigMap = serde_json::from_value(created_by_us()).unwrap();
    cached.metadata.annotations = Some([(APPLIED_HASH.to_owned(), "stale".to_owned())].into());
    reconcile_kit::apply::keep_create_marker(&mut cached.metadata);
    assert!(cached.metadata.managed_fields.as_ref().is_some_and(|m| m[0].fields_v1.is_none()), "only a marker");
    let server = tokio::spawn(async move {
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&created_by_us())).await;
        let conflict = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "Conflict", "code": 409,
            "message": "the object has been modified"});
        let refused = Response::builder().status(409).body(Body::from(conflict.to_string().into_bytes())).unwrap();
        expect(&mut handle, Method::PATCH, "/configmaps/web", refused).await;
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&created_by_us())).await;
        expect_fold(&mut handle, &created_by_us()).await;
        let applied = expect(&mut handle, Method::PATCH, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        assert_eq!(applied["metadata"]["uid"], "cm-1");
    });
    assert_eq!(apply(&api, Some(&cached), desired()).await.unwrap().0, Applied::Updated);
    server.await.unwrap();
}

#[tokio::test]
async fn a_cached_child_of_ours_that_differs_is_applied_without_a_get() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    // An outdated child of ours, as the cache has it: the apply goes out at once and
    // holds on to the uid the cache saw (the API server refuses it if that object was
    // replaced meanwhile).
    let mut older = desired();
    older.data = Some([("a".to_owned(), "0".to_owned())].into());
    older.metadata.annotations = Some([(APPLIED_HASH.to_owned(), "stale".to_owned())].into());
    older.metadata.uid = Some("cm-uid".into());
    let server = tokio::spawn(async move {
        let sent = expect(&mut handle, Method::PATCH, "/configmaps/web", reply(&json!({}))).await;
        (sent, handle)
    });
    assert_eq!(apply(&api, Some(&older), desired()).await.unwrap().0, Applied::Updated);
    let (sent, mut handle) = server.await.unwrap();
    assert_eq!(sent["metadata"]["uid"], "cm-uid", "the apply carries the uid of the cached child");
    assert_eq!(sent["data"]["a"], "1");

    // Nothing cached, and the create finds the name taken: the API server's copy
    // decides, and when it is what we sent plus server defaults, nothing is written.
    let mut live = sent.clone();
    live["metadata"]["resourceVersion"] = json!("7");
    let live_json = live.clone();
    let server = tokio::spawn(async move {
        taken(&mut handle).await;
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&live_json)).await;
        handle
    });
    assert_eq!(apply(&api, None, desired()).await.unwrap().0, Applied::Unchanged);
    let mut handle = server.await.unwrap();

    // An up-to-date cache: no request at all.
    let cached: ConfigMap = serde_json::from_value(live).unwrap();
    assert_eq!(apply(&api, Some(&cached), desired()).await.unwrap().0, Applied::Unchanged);
    let next = tokio::time::timeout(std::time::Duration::from_millis(100), handle.next_request());
    assert!(next.await.is_err(), "no request may be sent");
}

#[tokio::test]
async fn a_cached_child_we_do_not_control_is_checked_with_the_api_server() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let mut theirs = desired();
    theirs.metadata.owner_references = None;
    theirs.metadata.uid = Some("cm-uid".into());
    let theirs_json = serde_json::to_value(&theirs).unwrap();
    let server = tokio::spawn(async move {
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&theirs_json)).await;
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await.is_err());
    });
    let error = apply(&api, Some(&theirs), desired()).await.unwrap_err();
    assert!(matches!(error, Error::NotOwned { .. }), "{error}");
    server.await.unwrap();
}

#[tokio::test]
async fn never_touches_an_object_it_does_not_own() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let server = tokio::spawn(async move {
        let theirs = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "web", "namespace": "ns"}, "data": {"mine": "no"}});
        taken(&mut handle).await;
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&theirs)).await;
        // Any further request would be a write: none may come.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await.is_err());
    });
    let error = apply(&api, None, desired()).await.unwrap_err();
    assert!(matches!(error, Error::NotOwned { .. }), "{error}");
    assert_eq!(error.class(), Class::Blocked);
    server.await.unwrap();
}

/// The API server's refusal of a write that carried the uid of an object that was
/// replaced meanwhile, as `kube-apiserver` answers it (see `apply`'s module docs).
fn refusal(code: u16, message: &str, field: &str) -> Response<Body> {
    let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": code, "message": message,
        "reason": if code == 409 { "Conflict" } else { "Invalid" },
        "details": {"name": "web", "kind": "configmaps", "causes": [{"reason": "FieldValueInvalid", "field": field}]}});
    Response::builder().status(code).body(Body::from(status.to_string().into_bytes())).unwrap()
}

fn owned_live(uid: &str) -> Value {
    let mut live = serde_json::to_value(desired()).unwrap();
    live["metadata"]["uid"] = json!(uid);
    live["data"]["a"] = json!("0");
    live
}

/// A create-only write (a bare Pod, replaced rather than changed) that finds the name
/// taken never writes what is there: one of ours with another intent, or one on its
/// way out, is a stale plan (plan again); one of ours that already holds the intent
/// is our own create the cache has not seen; and one gone by the time it is read is
/// created next time, never applied now.
#[tokio::test]
async fn a_create_only_write_never_writes_a_child_that_stands_under_the_name() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let server = tokio::spawn(async move {
        // The intent as our create would store it, with its hash.
        let mut same = taken(&mut handle).await;
        same["metadata"]["uid"] = json!("cm-1");
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&same)).await;

        for live in [owned_live("cm-2"), {
            let mut going = same.clone();
            going["metadata"]["deletionTimestamp"] = json!("2026-01-01T00:00:00Z");
            going
        }] {
            taken(&mut handle).await;
            expect(&mut handle, Method::GET, "/configmaps/web", reply(&live)).await;
        }

        taken(&mut handle).await;
        let gone =
            json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": "NotFound", "code": 404});
        let not_found = Response::builder().status(404).body(Body::from(gone.to_string().into_bytes())).unwrap();
        expect(&mut handle, Method::GET, "/configmaps/web", not_found).await;
        // Nothing else: no apply, no fold, no delete.
        assert!(tokio::time::timeout(std::time::Duration::from_millis(200), handle.next_request()).await.is_err());
    });
    let (outcome, live) = create_only(&api, desired()).await.unwrap();
    assert_eq!((outcome, live.metadata.uid.as_deref()), (Applied::Unchanged, Some("cm-1")));
    for case in ["another intent", "going", "gone"] {
        let outcome = create_only(&api, desired()).await;
        assert!(matches!(outcome, Err(Error::Stale { .. })), "{case}: {outcome:?}");
    }
    server.await.unwrap();
}

#[tokio::test]
async fn an_apply_to_an_existing_child_holds_on_to_the_uid_it_checked() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let server = tokio::spawn(async move {
        taken(&mut handle).await;
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        let sent = expect(&mut handle, Method::PATCH, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        assert_eq!(sent["metadata"]["uid"], "cm-1", "the apply carries the uid ownership was checked on");

        // Replaced between our check and our write: the API server refuses the uid.
        taken(&mut handle).await;
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        let immutable = "ConfigMap \"web\" is invalid: metadata.uid: Invalid value: \"cm-1\": field is immutable";
        expect(&mut handle, Method::PATCH, "/configmaps/web", refusal(422, immutable, "metadata.uid")).await;
    });
    assert_eq!(apply(&api, None, desired()).await.unwrap().0, Applied::Updated);
    let error = apply(&api, None, desired()).await.unwrap_err();
    assert!(matches!(error, Error::Stale { .. }), "{error}");
    assert_eq!(error.class(), Class::Retryable, "the next reconcile looks again");
    server.await.unwrap();
}

#[tokio::test]
async fn a_delete_holds_on_to_the_uid_it_checked() {
    let (client, mut handle) = client();
    let api: Api<ConfigMap> = Api::namespaced(client, "ns");
    let server = tokio::spawn(async move {
        expect(&mut handle, Method::GET, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        let sent = expect(&mut handle, Method::DELETE, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        assert_eq!(sent["preconditions"]["uid"], "cm-1", "{sent}");
        assert_eq!(sent["propagationPolicy"], "Background");

        expect(&mut handle, Method::GET, "/configmaps/web", reply(&owned_live("cm-1"))).await;
        let failed = "Operation cannot be fulfilled on configmaps \"web\": Precondition failed: UID in precondition: cm-1, UID in object meta: cm-2";
        expect(&mut handle, Method::DELETE, "/configmaps/web", refusal(409, failed, "")).await;
    });
    assert_eq!(delete(&api, "web", "uid-1").await.unwrap(), Deletion::Requested);
    let error = delete(&api, "web", "uid-1").await.unwrap_err();
    assert!(matches!(error, Error::Stale { .. }), "{error}");
    server.await.unwrap();
}
