//! The HTTPS server of the conversion webhook: `POST /convert` (and `GET /healthz`),
//! rustls over the certificate of [`super::certs`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;
use tokio::task::JoinHandle;
use webapp_api::podmanager::CONVERT_PATH;

use super::certs::{self, Tls};
use super::{WebhookError, review};
use crate::manager::Shutdown;

/// The routes, without TLS (tests drive them directly).
pub fn router() -> Router {
    Router::new().route(CONVERT_PATH, post(convert)).route("/healthz", get(|| async { "ok" }))
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
    let config = RustlsConfig::from_config(Arc::new(certs::server_config(tls)?));
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
