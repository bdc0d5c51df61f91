//! The one Kubernetes client of the process, with a counter of API requests by HTTP
//! method (`kube_client_requests_total{method}`), which shows how many writes the
//! operator makes (and that a converged object costs none). Watches count as `WATCH`,
//! as the API server's own metrics name them: each watch is made again every minute
//! whatever the load, and a GET that reads is a different cost.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::util::MapRequestLayer;

/// Labels of `kube_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// HTTP method (GET, POST, PATCH, PUT, DELETE), or WATCH for a GET that watches.
    pub method: String,
}

/// Client request counters.
#[derive(Clone, Default)]
pub struct ClientMetrics {
    /// Requests by method.
    pub requests: Family<MethodLabels, Counter>,
}

impl ClientMetrics {
    /// Creates and registers the counters.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ClientMetrics::default();
        registry.register(
            "kube_client_requests",
            "Requests sent to the Kubernetes API server, by HTTP method (WATCH for watches)",
            reconcile_kit::metrics::Declared(metrics.requests.clone()),
        );
        metrics
    }
}

/// The `method` label of `request`: its HTTP method, or `WATCH` for a watch.
fn method_label<B>(request: &http::Request<B>) -> &str {
    let watches = request.uri().query().is_some_and(|query| query.split('&').any(|pair| pair == "watch=true"));
    if watches { "WATCH" } else { request.method().as_str() }
}

/// How long a request waits for the API server's answer before it fails (a retryable
/// error). kube sets no read timeout by default, so a request that an API server
/// accepted and then never answered (one restarting, or gone behind a connection that
/// stays up) would wait for ever, holding its reconcile until the reconcile's own
/// timeout. Longer than the kit's watch requests last (60 s), so a quiet watch is never
/// cut: each ends, and is made again, before this runs out.
pub const READ_TIMEOUT: Duration = Duration::from_secs(75);

/// Builds the client from `config`, counting requests into `metrics`. A read timeout set
/// in `config` is kept; otherwise [`READ_TIMEOUT`], counted from when the request was
/// sent (not from when its pooled connection went idle).
pub fn build(mut config: kube::Config, metrics: &ClientMetrics) -> Result<kube::Client, kube::Error> {
    if config.read_timeout.is_none() {
        config.read_timeout = Some(READ_TIMEOUT);
        config.reset_reader_on_write = true;
    }
    let requests = metrics.requests.clone();
    let counting = MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        requests.get_or_create(&MethodLabels { method: method_label(&request).to_owned() }).inc();
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&counting).build())
}

#[cfg(test)]
mod tests {
    use super::method_label;

    fn label(method: &str, uri: &str) -> String {
        let request = http::Request::builder().method(method).uri(uri).body(()).unwrap();
        method_label(&request).to_owned()
    }

    #[test]
    fn a_watch_is_told_from_a_read() {
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments?watch=true&timeoutSeconds=60"), "WATCH");
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments?labelSelector=a&watch=true"), "WATCH");
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments?limit=500"), "GET");
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments/watch=true"), "GET");
        assert_eq!(label("PATCH", "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=x"), "PATCH");
    }
}
