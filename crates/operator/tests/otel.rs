//! OpenTelemetry export (cargo feature `otel`; `cargo test -p webapp-operator --features
//! otel --test otel`): an in-process OTLP/gRPC receiver, the opentelemetry-proto trace
//! service on a tonic server, collects what the operator exports while one WebApp is
//! created, and the spans form the expected tree: one `reconcile` span with the object's
//! attributes (OpenTelemetry's `k8s.namespace.name` among them), its steps as children
//! in pipeline order, all under the configured service name.
#![cfg(feature = "otel")]
// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use kube::Api;
use kube::api::PostParams;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value;
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::json;
use tracing_subscriber::prelude::*;
use webapp_api::{Phase, WebApp};
use webapp_operator::telemetry::otel::Otel;

/// Keeps every export request it receives.
#[derive(Clone, Default)]
struct Receiver {
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.requests.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

impl Receiver {
    /// Serves OTLP/gRPC on a free local port; returns its endpoint.
    fn serve(&self) -> String {
        let addr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
        let server = tonic::transport::Server::builder().add_service(TraceServiceServer::new(self.clone())).serve(addr);
        tokio::spawn(server);
        format!("http://{addr}")
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
    let otel = Otel::new(&receiver.serve(), "webapp-operator-test").unwrap();
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
    // The batch exporter sends from its own thread through the gRPC channel on this
    // runtime: block this worker only, the other drives the channel.
    tokio::task::block_in_place(|| otel.flush());

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
