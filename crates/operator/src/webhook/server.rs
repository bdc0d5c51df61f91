//! The HTTPS server of the conversion webhook: `POST /convert` (and `GET /healthz`),
//! rustls over the certificate of [`super::certs`], with controller-runtime's webhook
//! metrics (`controller_runtime_webhook_requests_total{code,webhook}`,
//! `controller_runtime_webhook_latency_seconds{webhook}`,
//! `controller_runtime_webhook_requests_in_flight{webhook}`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tokio::task::JoinHandle;
use webapp_api::podmanager::CONVERT_PATH;

use super::certs::{self, Tls};
use super::{WebhookError, review};
use crate::manager::Shutdown;

/// The largest ConversionReview accepted. axum's default (2 MB) refused, with 413, the
/// review of a LIST of a few hundred large PodManagers, and a refused review fails the
/// whole LIST (`kubectl get pm -A`, the garbage collector, namespace deletion). The
/// API server caps one object at about 1.5 MiB in etcd and sends a LIST page of up to
/// 500 objects (`kubectl`'s chunk size) in one review; 64 MiB covers the pages clients
/// and controllers ask for, and bounds what one request can make the webhook hold.
pub const MAX_REVIEW_BYTES: usize = 64 << 20;

/// Labels of `controller_runtime_webhook_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP status code of the answer.
    pub code: u16,
    /// The webhook's path, as controller-runtime labels it.
    pub webhook: &'static str,
}

/// Labels of the latency and in-flight metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PathLabels {
    /// The webhook's path.
    pub webhook: &'static str,
}

/// controller-runtime's buckets of `controller_runtime_webhook_latency_seconds`.
const LATENCY_BUCKETS: [f64; 11] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// The conversion webhook's request metrics. The API server waits on every conversion
/// (a v2 read, the garbage collector, a namespace deletion), so its errors and latency
/// are worth an alert of their own.
#[derive(Clone)]
pub struct WebhookMetrics {
    /// Reviews answered, by code (400: a review that could not be read; 413: too large).
    pub requests: Family<RequestLabels, Counter>,
    /// Time to answer a review.
    pub latency: Family<PathLabels, Histogram>,
    /// Reviews being answered.
    pub in_flight: Family<PathLabels, Gauge>,
}

impl Default for WebhookMetrics {
    fn default() -> Self {
        WebhookMetrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(|| Histogram::new(LATENCY_BUCKETS)),
            in_flight: Family::default(),
        }
    }
}

impl WebhookMetrics {
    /// Creates and registers the families, declared before the first review.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = WebhookMetrics::default();
        let path = PathLabels { webhook: CONVERT_PATH };
        // Series at 0 from the start, so a rate and an in-flight panel have data at once.
        let _ = metrics.in_flight.get_or_create(&path);
        let _ = metrics.latency.get_or_create(&path);
        registry.register(
            "controller_runtime_webhook_requests",
            "Total number of admission and conversion requests by HTTP status code",
            reconcile_kit::metrics::Declared(metrics.requests.clone()),
        );
        registry.register(
            "controller_runtime_webhook_latency_seconds",
            "Histogram of the latency of processing admission and conversion requests",
            metrics.latency.clone(),
        );
        registry.register(
            "controller_runtime_webhook_requests_in_flight",
            "Current number of admission and conversion requests being served",
            metrics.in_flight.clone(),
        );
        metrics
    }
}

/// Counts and times each request of a webhook route, its refusals (413, 400) included.
async fn measure(State(metrics): State<WebhookMetrics>, request: Request, next: Next) -> Response {
    let path = PathLabels { webhook: CONVERT_PATH };
    let in_flight = reconcile_kit::metrics::InFlight::enter(metrics.in_flight.get_or_create(&path).clone());
    let started = Instant::now();
    let response = next.run(request).await;
    drop(in_flight);
    metrics.latency.get_or_create(&path).observe(started.elapsed().as_secs_f64());
    let labels = RequestLabels { code: response.status().as_u16(), webhook: CONVERT_PATH };
    metrics.requests.get_or_create(&labels).inc();
    response
}

/// The routes, without TLS (tests drive them directly).
pub fn router(metrics: WebhookMetrics) -> Router {
    Router::new()
        .route(CONVERT_PATH, post(convert).route_layer(middleware::from_fn_with_state(metrics, measure)))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(MAX_REVIEW_BYTES))
}

async fn convert(body: Bytes) -> Response {
    match review::answer(&body) {
        Ok(review) => match serde_json::to_vec(&review) {
            Ok(json) => ([(header::CONTENT_TYPE, "application/json")], json).into_response(),
            Err(error) => (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        },
        Err(message) => (StatusCode::BAD_REQUEST, message).into_response(),
    }
}

/// Binds `addr` and serves HTTPS with `tls` until `shutdown`. Returns the bound address
/// (the port, when `addr` asked for any) and the server task.
pub fn serve(
    addr: SocketAddr,
    tls: &Tls,
    metrics: WebhookMetrics,
    shutdown: Shutdown,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    serve_with(addr, tls_config(tls)?, metrics, shutdown)
}

/// The server's TLS configuration for `tls`; a clone of it reloads the running server
/// ([`RustlsConfig::reload_from_config`]).
pub fn tls_config(tls: &Tls) -> Result<RustlsConfig, WebhookError> {
    Ok(RustlsConfig::from_config(Arc::new(certs::server_config(tls)?)))
}

/// [`serve`] with a TLS configuration the caller keeps, to reload it.
pub fn serve_with(
    addr: SocketAddr,
    config: RustlsConfig,
    metrics: WebhookMetrics,
    shutdown: Shutdown,
) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    let bind = |source| WebhookError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind)?;
    listener.set_nonblocking(true).map_err(bind)?;
    let bound = listener.local_addr().map_err(bind)?;
    let server = axum_server::from_tcp_rustls(listener, config).map_err(bind)?;
    let handle = axum_server::Handle::new();
    let stopper = handle.clone();
    tokio::spawn(async move {
        shutdown.await;
        stopper.graceful_shutdown(Some(Duration::from_secs(5)));
    });
    tracing::info!(addr = %bound, path = CONVERT_PATH, "serving the PodManager conversion webhook (HTTPS)");
    let task = tokio::spawn(async move {
        if let Err(error) = server.handle(handle).serve(router(metrics).into_make_service()).await {
            tracing::error!(%error, "conversion webhook server failed");
        }
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use axum::body::Body;
    use axum::http::Request;
    use tower::ServiceExt;

    use super::*;

    /// A review of 300 PodManagers of 16 KiB each (4.8 MB): more than axum's default.
    fn large_review() -> Vec<u8> {
        let objects: Vec<serde_json::Value> = (0..300)
            .map(|i| {
                serde_json::json!({"apiVersion": "apps.mycompany.com/v1", "kind": "PodManager",
                    "metadata": {"name": format!("pm-{i}"), "annotations": {"note": "x".repeat(16 << 10)}},
                    "spec": {"replicas": 1, "image": "nginx:1.21"}})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "u", "desiredAPIVersion": "apps.mycompany.com/v2", "objects": objects}}))
        .unwrap()
    }

    #[tokio::test]
    async fn a_review_larger_than_axums_default_limit_is_converted() {
        let body = large_review();
        assert!(body.len() > 4 << 20, "{} bytes", body.len());
        let request = Request::post(CONVERT_PATH).body(Body::from(body)).unwrap();
        let metrics = WebhookMetrics::default();
        let response = router(metrics.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(answered(&metrics, 200), 1);
    }

    /// Reviews answered with `code`.
    fn answered(metrics: &WebhookMetrics, code: u16) -> u64 {
        metrics.requests.get(&RequestLabels { code, webhook: CONVERT_PATH }).map_or(0, |counter| counter.get())
    }

    #[tokio::test]
    async fn a_review_beyond_the_limit_is_refused_not_buffered() {
        let request = Request::post(CONVERT_PATH).body(Body::from(vec![b' '; MAX_REVIEW_BYTES + 1])).unwrap();
        let metrics = WebhookMetrics::default();
        let response = router(metrics.clone()).oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
        // Refused before the handler, and still counted: an alert on the webhook's
        // errors must see the reviews it never read.
        assert_eq!((answered(&metrics, 413), answered(&metrics, 200)), (1, 0));
        let in_flight = metrics.in_flight.get(&PathLabels { webhook: CONVERT_PATH }).map(|gauge| gauge.get());
        assert_eq!(in_flight, Some(0));
    }
}
