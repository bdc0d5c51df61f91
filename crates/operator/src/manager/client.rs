//! The one Kubernetes client of the process, instrumented with client-go's metrics
//! (`rest_client_requests_total{code,method}`, `rest_client_request_duration_seconds{verb}`),
//! so that the dashboards and alerts written for Go operators read it. The request count
//! shows how many writes the operator makes (and that a converged object costs none).
//!
//! One difference from client-go: a watch counts as `method="WATCH"`, as the API
//! server's own metrics name it, not as `GET`. Each watch is made again every minute
//! whatever the load, and a GET that reads is a different cost.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tower::{Layer, Service};

/// Labels of `rest_client_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// HTTP status code of the answer, or `<error>` when none came (client-go's value).
    pub code: String,
    /// HTTP method (GET, POST, PATCH, PUT, DELETE), or WATCH for a GET that watches.
    pub method: &'static str,
}

/// Labels of `rest_client_request_duration_seconds`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct VerbLabels {
    /// As [`RequestLabels::method`]; client-go names this label `verb` here.
    pub verb: &'static str,
}

/// client-go's buckets of `rest_client_request_duration_seconds`.
const DURATION_BUCKETS: [f64; 12] = [0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0];

/// Client request metrics.
#[derive(Clone)]
pub struct ClientMetrics {
    /// Requests by answer code and method.
    pub requests: Family<RequestLabels, Counter>,
    /// Time to the answer's headers, by method (for a watch: until it was accepted).
    pub duration: Family<VerbLabels, Histogram>,
}

impl Default for ClientMetrics {
    fn default() -> Self {
        ClientMetrics {
            requests: Family::default(),
            duration: Family::new_with_constructor(|| Histogram::new(DURATION_BUCKETS)),
        }
    }
}

impl ClientMetrics {
    /// Creates and registers the families.
    pub fn register(registry: &mut Registry) -> Self {
        let metrics = ClientMetrics::default();
        registry.register(
            "rest_client_requests",
            "Requests sent to the Kubernetes API server, by answer code and HTTP method (WATCH for watches)",
            reconcile_kit::metrics::Declared(metrics.requests.clone()),
        );
        registry.register(
            "rest_client_request_duration_seconds",
            "Time from a request to the Kubernetes API server to its answer's headers, by method",
            metrics.duration.clone(),
        );
        metrics
    }

    fn record(&self, method: &'static str, code: String, elapsed: Duration) {
        self.requests.get_or_create(&RequestLabels { code, method }).inc();
        self.duration.get_or_create(&VerbLabels { verb: method }).observe(elapsed.as_secs_f64());
    }
}

/// The `method` label of `request`: its HTTP method, or `WATCH` for a watch.
fn method_label<B>(request: &http::Request<B>) -> &'static str {
    let watches = request.uri().query().is_some_and(|query| query.split('&').any(|pair| pair == "watch=true"));
    if watches {
        return "WATCH";
    }
    match *request.method() {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::PATCH => "PATCH",
        http::Method::DELETE => "DELETE",
        http::Method::HEAD => "HEAD",
        // A bounded label set whatever a caller sends.
        _ => "OTHER",
    }
}

/// The layer that counts and times every request of the client.
#[derive(Clone)]
struct Instrument(ClientMetrics);

impl<S> Layer<S> for Instrument {
    type Service = Instrumented<S>;

    fn layer(&self, inner: S) -> Instrumented<S> {
        Instrumented { inner, metrics: self.0.clone() }
    }
}

/// A service whose requests are counted and timed into [`ClientMetrics`].
struct Instrumented<S> {
    inner: S,
    metrics: ClientMetrics,
}

impl<S, B, R> Service<http::Request<B>> for Instrumented<S>
where
    S: Service<http::Request<B>, Response = http::Response<R>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        let method = method_label(&request);
        // The path only where it is logged: the counters keep to bounded labels.
        let path = tracing::enabled!(tracing::Level::DEBUG).then(|| request.uri().path().to_owned());
        let metrics = self.metrics.clone();
        let started = Instant::now();
        let answer = self.inner.call(request);
        Box::pin(async move {
            let result = answer.await;
            let code = match &result {
                Ok(response) => response.status().as_u16().to_string(),
                Err(_) => "<error>".to_owned(),
            };
            if let Some(path) = path {
                tracing::debug!(method, path, code, "request");
            }
            metrics.record(method, code, started.elapsed());
            result
        })
    }
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
    Ok(kube::client::ClientBuilder::try_from(config)?.with_layer(&Instrument(metrics.clone())).build())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn label(method: &str, uri: &str) -> &'static str {
        let request = http::Request::builder().method(method).uri(uri).body(()).unwrap();
        method_label(&request)
    }

    #[test]
    fn a_watch_is_told_from_a_read() {
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments?watch=true&timeoutSeconds=60"), "WATCH");
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments?labelSelector=a&watch=true"), "WATCH");
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments?limit=500"), "GET");
        assert_eq!(label("GET", "/apis/apps/v1/namespaces/a/deployments/watch=true"), "GET");
        assert_eq!(label("PATCH", "/apis/apps/v1/namespaces/a/deployments/web?fieldManager=x"), "PATCH");
        assert_eq!(label("OPTIONS", "/apis"), "OTHER");
    }

    fn exposition(metrics: &ClientMetrics) -> String {
        let mut registry = Registry::default();
        registry.register("rest_client_requests", "", metrics.requests.clone());
        registry.register("rest_client_request_duration_seconds", "", metrics.duration.clone());
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, &registry).unwrap();
        text
    }

    #[tokio::test]
    async fn each_answer_is_counted_by_its_code_and_a_lost_one_as_error() {
        let metrics = ClientMetrics::default();
        let answers = tower::service_fn(|request: http::Request<()>| async move {
            match request.uri().path() {
                "/missing" => Ok(http::Response::builder().status(404).body(()).unwrap()),
                "/down" => Err("connection refused"),
                _ => Ok(http::Response::new(())),
            }
        });
        let mut client = Instrument(metrics.clone()).layer(answers);
        for (method, uri) in [("GET", "/ok"), ("PATCH", "/ok"), ("GET", "/missing"), ("DELETE", "/down")] {
            let request = http::Request::builder().method(method).uri(uri).body(()).unwrap();
            let _ = client.ready().await.unwrap().call(request).await;
        }
        let text = exposition(&metrics);
        for line in [
            "rest_client_requests_total{code=\"200\",method=\"GET\"} 1\n",
            "rest_client_requests_total{code=\"200\",method=\"PATCH\"} 1\n",
            "rest_client_requests_total{code=\"404\",method=\"GET\"} 1\n",
            "rest_client_requests_total{code=\"<error>\",method=\"DELETE\"} 1\n",
            "rest_client_request_duration_seconds_count{verb=\"GET\"} 2\n",
        ] {
            assert!(text.contains(line), "no {line:?} in\n{text}");
        }
    }
}
