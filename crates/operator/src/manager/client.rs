//! The one Kubernetes client of the process, with a counter of API requests by HTTP
//! method (`kube_client_requests_total{method}`), which shows how many writes the
//! operator makes (and that a converged object costs none).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::registry::Registry;
use tower::util::MapRequestLayer;

/// Labels of `kube_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MethodLabels {
    /// HTTP method (GET, POST, PATCH, PUT, DELETE).
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
            "Requests sent to the Kubernetes API server, by HTTP method",
            metrics.requests.clone(),
        );
        metrics
    }
}

/// Builds the client from `config`, counting requests into `metrics`.
pub fn build(config: kube::Config, metrics: &ClientMetrics) -> Result<kube::Client, kube::Error> {
    let requests = metrics.requests.clone();
    let counting = MapRequestLayer::new(move |request: http::Request<kube::client::Body>| {
        requests.get_or_create(&MethodLabels { method: request.method().as_str().to_owned() }).inc();
        request
    });
    Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&counting).build())
}
