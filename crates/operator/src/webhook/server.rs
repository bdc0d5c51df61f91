//! The HTTPS server of the conversion webhook: `POST /convert` (and `GET /healthz`),
//! rustls over the certificate of [`super::certs`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;
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

/// The routes, without TLS (tests drive them directly).
pub fn router() -> Router {
    Router::new()
        .route(CONVERT_PATH, post(convert))
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
pub fn serve(addr: SocketAddr, tls: &Tls, shutdown: Shutdown) -> Result<(SocketAddr, JoinHandle<()>), WebhookError> {
    serve_with(addr, tls_config(tls)?, shutdown)
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
        if let Err(error) = server.handle(handle).serve(router().into_make_service()).await {
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
        let response = router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    }

    #[tokio::test]
    async fn a_review_beyond_the_limit_is_refused_not_buffered() {
        let request = Request::post(CONVERT_PATH).body(Body::from(vec![b' '; MAX_REVIEW_BYTES + 1])).unwrap();
        let response = router().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
