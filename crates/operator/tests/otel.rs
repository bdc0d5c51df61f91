//! OpenTelemetry export (cargo feature `otel`, on by default): an in-process OTLP/HTTP
//! receiver (axum, decoding the opentelemetry-proto messages) collects what the operator
//! exports while one WebApp is created, and the spans form the expected tree: one
//! `reconcile` span with the object's attributes (OpenTelemetry's `k8s.namespace.name`
//! among them), its steps as children in pipeline order, all under the configured
//! service name. A second receiver speaks HTTPS with a certificate of a CA of its own:
//! trusted through `OTEL_EXPORTER_OTLP_CERTIFICATE`'s file, refused without it.
#![cfg(feature = "otel")]
// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use common::*;
use kube::Api;
use kube::api::PostParams;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;
use serde_json::json;
use tracing_subscriber::prelude::*;
use webapp_api::{Phase, WebApp};
use webapp_operator::telemetry::otel::{Otel, OtelConfig, traces_url};

/// Keeps every export request it receives.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

/// OTLP/HTTP's traces endpoint: a protobuf request in, a protobuf response out.
async fn export(State(receiver): State<Receiver>, body: Bytes) -> ([(&'static str, &'static str); 1], Vec<u8>) {
    let request = ExportTraceServiceRequest::decode(body).expect("not an OTLP trace export");
    receiver.requests.lock().unwrap().push(request);
    let response = ExportTraceServiceResponse { partial_success: None };
    ([("content-type", "application/x-protobuf")], response.encode_to_vec())
}

impl Receiver {
    fn router(&self) -> axum::Router {
        axum::Router::new().route("/v1/traces", post(export)).with_state(self.clone())
    }

    fn listener() -> (std::net::TcpListener, SocketAddr) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        (listener, addr)
    }

    /// Serves OTLP/HTTP on a free local port; returns the collector's base URL.
    fn serve(&self) -> String {
        let (listener, addr) = Self::listener();
        let router = self.router();
        tokio::spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
        format!("http://{addr}")
    }

    /// Serves OTLP/HTTPS with `tls` on a free local port; returns the base URL.
    fn serve_tls(&self, tls: &webapp_operator::webhook::certs::Tls) -> String {
        let (listener, addr) = Self::listener();
        let config = webapp_operator::webhook::server::tls_config(tls).unwrap();
        let server = axum_server::from_tcp_rustls(listener, config).unwrap();
        tokio::spawn(server.serve(self.router().into_make_service()));
        format!("https://localhost:{}", addr.port())
    }

    /// Every span received, with the service name of its resource.
    fn spans(&self) -> Vec<(String, Span)> {
        let requests = self.requests.lock().unwrap();
        let resources = requests.iter().flat_map(|r| r.resource_spans.iter());
        resources
            .flat_map(|resource| {
                let service = resource.resource.as_ref().and_then(|r| string(&r.attributes, "service.name"));
                let spans = resource.scope_spans.iter().flat_map(|scope| scope.spans.iter());
                spans.map(move |span| (service.clone().unwrap_or_default(), span.clone()))
            })
            .collect()
    }
}

fn string(attributes: &[opentelemetry_proto::tonic::common::v1::KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?.value.as_ref()?;
    match value {
        any_value::Value::StringValue(s) => Some(s.clone()),
        other => Some(format!("{other:?}")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_reconcile_exports_a_reconcile_span_with_its_steps_as_children() {
    let receiver = Receiver::default();
    let config = OtelConfig {
        traces_url: traces_url(&receiver.serve()),
        service: "webapp-operator-test".into(),
        certificate: None,
    };
    let otel = Otel::new(&config).unwrap();
    // Installed before the harness's own subscriber, which then stays out (try_init).
    tracing_subscriber::registry().with(otel.layer()).try_init().expect("a subscriber was installed before");

    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, "otel").await;
    let operator = Operator::start(&ns.name).await;
    let api: Api<WebApp> = Api::namespaced(client.clone(), &ns.name);
    let webapp: WebApp = serde_json::from_value(json!({
        "apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp", "metadata": {"name": "traced"},
        "spec": {"image": "nginx:1.20", "replicas": 1, "domain": "traced.example.com"},
    }))
    .unwrap();
    api.create(&PostParams::default(), &webapp).await.unwrap();
    let running = eventually(Duration::from_secs(90), || async {
        let webapp = api.get("traced").await.ok()?;
        (webapp.status?.phase == Some(Phase::Running)).then_some(())
    })
    .await;
    assert!(running.is_some(), "the WebApp never ran");
    operator.stop().await;
    // The batch exporter sends from its own thread through this runtime: block this
    // worker only, the other carries the request.
    tokio::task::block_in_place(|| otel.flush()).expect("the export failed");

    let spans = receiver.spans();
    assert!(!spans.is_empty(), "nothing exported");
    assert!(spans.iter().all(|(service, _)| service == "webapp-operator-test"), "service.name");
    let object = format!("{}/traced", ns.name);
    let children = |parent: &Span| {
        let mut steps: Vec<&Span> = spans
            .iter()
            .map(|(_, span)| span)
            .filter(|span| span.trace_id == parent.trace_id && span.parent_span_id == parent.span_id)
            .collect();
        steps.sort_by_key(|span| span.start_time_unix_nano);
        steps
    };
    let step = |span: &Span| string(&span.attributes, "step").unwrap_or_default();
    // The first reconcile of the new WebApp that runs steps (the one before only adds
    // the finalizer): the whole pipeline, from `plan` (a new WebApp is Pending by the
    // CRD's status default, so `accept` has nothing to do).
    let (_, reconcile) = spans
        .iter()
        .find(|(_, span)| {
            span.name == "reconcile"
                && string(&span.attributes, "object").as_deref() == Some(object.as_str())
                && children(span).first().is_some_and(|first| step(first) == "plan")
        })
        .unwrap_or_else(|| panic!("no reconcile span of {object} with a plan step in {} spans", spans.len()));
    assert!(reconcile.parent_span_id.is_empty(), "a reconcile is a root span");
    assert_eq!(string(&reconcile.attributes, "controller").as_deref(), Some("webapp"));
    assert_eq!(string(&reconcile.attributes, "k8s.namespace.name").as_deref(), Some(ns.name.as_str()));
    let steps = children(reconcile);
    assert!(steps.iter().all(|span| span.name == "step"), "only steps under a reconcile");
    let names: Vec<String> = steps.iter().take(5).map(|span| step(span)).collect();
    assert_eq!(names, ["plan", "deployment", "service", "ingress", "observe"]);
    for span in &steps {
        assert_eq!(string(&span.attributes, "object").as_deref(), Some(object.as_str()));
        assert!(string(&span.attributes, "outcome").is_some(), "a step span records its outcome");
        assert!(span.end_time_unix_nano >= span.start_time_unix_nano);
        assert!(span.start_time_unix_nano >= reconcile.start_time_unix_nano);
        assert!(span.end_time_unix_nano <= reconcile.end_time_unix_nano, "a step ends within its reconcile");
    }
    otel.shutdown();
}

/// Exports one span of the operator's target through `otel`, and flushes: `Ok` once the
/// receiver acknowledged it, the exporter's error otherwise.
fn export_one(otel: &Otel, name: &'static str) -> Result<(), String> {
    let subscriber = tracing_subscriber::registry().with(otel.layer());
    tracing::subscriber::with_default(subscriber, || {
        tracing::info_span!(target: "webapp_operator::probe", "probe", probe = name).in_scope(|| {});
    });
    tokio::task::block_in_place(|| otel.flush()).map_err(|error| error.to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_collector_is_trusted_through_the_ca_file_and_refused_without_it() {
    let tls = webapp_operator::webhook::certs::self_signed(&["localhost".into()], Duration::from_secs(3600)).unwrap();
    let receiver = Receiver::default();
    let url = traces_url(&receiver.serve_tls(&tls));
    let dir = std::env::temp_dir().join(format!("otel-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let ca = dir.join("ca.pem");
    std::fs::write(&ca, &tls.ca_pem).unwrap();

    // Without the CA: the handshake fails, the flush says so, and nothing arrived.
    let untrusting =
        Otel::new(&OtelConfig { traces_url: url.clone(), service: "untrusting".into(), certificate: None }).unwrap();
    let refused = export_one(&untrusting, "untrusted");
    assert!(refused.is_err(), "exported to a collector whose CA is not trusted");
    assert!(receiver.spans().is_empty(), "the receiver got spans over a refused handshake");

    let trusting =
        Otel::new(&OtelConfig { traces_url: url, service: "trusting".into(), certificate: Some(ca) }).unwrap();
    export_one(&trusting, "trusted").expect("the export over TLS failed");
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!((spans[0].0.as_str(), spans[0].1.name.as_str()), ("trusting", "probe"));
    assert_eq!(string(&spans[0].1.attributes, "probe").as_deref(), Some("trusted"));
    trusting.shutdown();
    untrusting.shutdown();
    std::fs::remove_dir_all(&dir).unwrap();
}
