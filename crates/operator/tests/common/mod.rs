//! Shared harness of the integration tests: the local control plane's kubeconfig, one
//! namespace per test (deleted afterwards), the CRDs, and the operator run in-process
//! (namespace-scoped, so tests running in parallel never see each other's objects).
//!
//! These tests never skip: without a cluster they fail with the cluster script's error.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures::FutureExt;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams, PostParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Api, Client};
use reconcile_kit::testing::StepTrace;
use tokio::sync::oneshot;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::prelude::*;
use webapp_api::{Phase, WebApp};
use webapp_operator::controllers::ControllerKind;
use webapp_operator::manager::{self, Config};

/// Repository root.
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The cluster tests start when `WEBAPP_TEST_KUBECONFIG` is unset: `CLUSTER_NAME`, by
/// default one of their own, never the `make run` one (whose operator would reconcile
/// the tests' objects).
pub const TEST_CLUSTER: &str = "webapp-operator-test";

/// Path of the local control plane's kubeconfig: `WEBAPP_TEST_KUBECONFIG`, or what
/// `hack/cluster/up` prints (starting the test cluster if needed).
pub fn kubeconfig_path() -> &'static Path {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        if let Ok(path) = std::env::var("WEBAPP_TEST_KUBECONFIG") {
            return PathBuf::from(path);
        }
        let cluster = std::env::var("CLUSTER_NAME").unwrap_or_else(|_| TEST_CLUSTER.to_owned());
        let output = Command::new(repo().join("hack/cluster/up"))
            .env("CLUSTER_NAME", cluster)
            .output()
            .expect("cannot run hack/cluster/up");
        assert!(
            output.status.success(),
            "hack/cluster/up failed; integration tests need the local control plane:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// The directory of the control plane binaries `hack/cluster/build` made (kubectl, helm).
pub fn cluster_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let output = Command::new(repo().join("hack/cluster/build")).output().expect("cannot run hack/cluster/build");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
    })
}

/// A binary that `hack/cluster/build` builds (kubectl, helm, kstatus, ...).
pub fn tool(name: &str) -> Command {
    Command::new(cluster_bin().join(name))
}

/// The built kubectl (next to the control plane binaries), on the local control plane.
pub fn kubectl() -> Command {
    let mut command = Command::new(cluster_bin().join("kubectl"));
    command.arg("--kubeconfig").arg(kubeconfig_path());
    command
}

/// Runs kubectl and returns its stdout; panics with stderr on failure.
pub fn kubectl_ok(args: &[&str]) -> String {
    let output = kubectl().args(args).output().expect("cannot run kubectl");
    assert!(output.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs kubectl with `input` on stdin; panics with stderr on failure.
pub fn kubectl_stdin(args: &[&str], input: &[u8]) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child =
        kubectl().args(args).stdin(Stdio::piped()).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    child.stdin.take().unwrap().write_all(input).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// `helm template` of the chart as release `release` in `namespace`, with more helm
/// arguments (`--set`, `--show-only`); panics with helm's error. Rendered for the oldest
/// Kubernetes the operator supports: helm template otherwise assumes 1.20, which the
/// chart's kubeVersion refuses.
pub fn helm_template(release: &str, namespace: &str, args: &[&str]) -> String {
    let (major, minor) = webapp_operator::manager::MINIMUM_KUBERNETES;
    let chart = repo().join("charts/webapp-operator");
    let output = tool("helm")
        .args(["template", release, chart.to_str().unwrap(), "--namespace", namespace])
        .args(["--kube-version", &format!("{major}.{minor}.0")])
        .args(args)
        .output()
        .expect("cannot run helm");
    assert!(output.status.success(), "helm template failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Client configuration for the local control plane.
pub async fn kube_config() -> kube::Config {
    let kubeconfig = Kubeconfig::read_from(kubeconfig_path()).expect("unreadable kubeconfig");
    kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default()).await.expect("bad kubeconfig")
}

/// A client for the local control plane.
pub async fn client() -> Client {
    Client::try_from(kube_config().await).expect("cannot build client")
}

/// The PodManager conversion webhook of this test process: one HTTPS server on a thread
/// of its own (so it outlives every test's runtime), with a self-signed CA. Returns its
/// URL and CA bundle. kubectl reads PodManagers through v2, the preferred version, so
/// every test that touches them needs a webhook, whether or not it runs the operator.
pub fn test_webhook() -> &'static (String, String) {
    static WEBHOOK: OnceLock<(String, String)> = OnceLock::new();
    WEBHOOK.get_or_init(|| {
        let tls = webapp_operator::webhook::certs::self_signed(
            &webapp_operator::webhook::default_hosts(),
            webapp_operator::webhook::certs::DEFAULT_LIFE,
        )
        .unwrap();
        let ca = tls.ca_pem.clone();
        let (bound_tx, bound_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let never = futures::future::pending::<()>().boxed().shared();
                let (addr, task) =
                    webapp_operator::webhook::server::serve(free_port(), &tls, Default::default(), never).unwrap();
                bound_tx.send(addr).unwrap();
                let _ = task.await;
            });
        });
        let addr = bound_rx.recv().expect("test webhook did not start");
        (format!("https://{addr}{}", webapp_api::podmanager::CONVERT_PATH), ca)
    })
}

/// Every CRD as the tests install it: PodManager's conversion through [`test_webhook`].
pub fn test_crds() -> Vec<CustomResourceDefinition> {
    let (url, ca) = test_webhook();
    let mut crds = webapp_api::crds_with(&webapp_api::WebhookEndpoint::Url(url.clone()));
    for crd in &mut crds {
        let config =
            crd.spec.conversion.as_mut().and_then(|c| c.webhook.as_mut()).and_then(|w| w.client_config.as_mut());
        if let Some(config) = config {
            config.ca_bundle = Some(k8s_openapi::ByteString(ca.as_bytes().to_vec()));
        }
    }
    crds
}

/// Installs (server-side apply, idempotent) every CRD and waits until established.
pub async fn install_crds(client: &Client) {
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    // A PodManager CRD installed from config/crd points at a Service that another field
    // manager owns; the apply below would add a URL next to it (invalid). Point it at
    // this process's webhook first, as the operator does (fails harmlessly without a CRD).
    let (url, ca) = test_webhook();
    let target = webapp_operator::webhook::crd::Target::Url(url.clone());
    let owner = webapp_operator::webhook::owner::identity(&target);
    let _ = webapp_operator::webhook::crd::register(client, ca, &target, &owner).await;
    for crd in test_crds() {
        let name = crd.metadata.name.clone().unwrap();
        api.patch(&name, &PatchParams::apply("webapp-operator-tests").force(), &Patch::Apply(&crd))
            .await
            .expect("CRD rejected");
    }
    for crd in webapp_api::crds() {
        let name = crd.metadata.name.clone().unwrap();
        eventually(Duration::from_secs(30), || async {
            let crd = api.get(&name).await.ok()?;
            let conditions = crd.status?.conditions?;
            conditions.iter().any(|c| c.type_ == "Established" && c.status == "True").then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("CRD {name} not established"));
    }
}

/// A namespace of its own for one test, deleted when dropped.
pub struct TestNamespace {
    /// Its name.
    pub name: String,
}

impl TestNamespace {
    /// Creates `t-<prefix>-<random>` and waits for its default ServiceAccount.
    pub async fn new(client: &Client, prefix: &str) -> Self {
        let namespaces: Api<Namespace> = Api::all(client.clone());
        let mut attempts = 0;
        let name = loop {
            let suffix: u32 =
                std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos() % 100_000;
            let name = format!("t-{prefix}-{suffix}");
            let namespace: Namespace = serde_json::from_value(serde_json::json!({"metadata": {"name": name}})).unwrap();
            match namespaces.create(&PostParams::default(), &namespace).await {
                Ok(_) => break name,
                // The draw hit a namespace an earlier run of the same test left terminating.
                Err(kube::Error::Api(status)) if status.code == 409 && attempts < 5 => attempts += 1,
                Err(e) => panic!("cannot create namespace {name}: {e}"),
            }
        };
        let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), &name);
        eventually(Duration::from_secs(30), || async { accounts.get_opt("default").await.ok().flatten() })
            .await
            .expect("no default ServiceAccount: is the controller manager running?");
        TestNamespace { name }
    }
}

impl Drop for TestNamespace {
    fn drop(&mut self) {
        // Finalizers of our own custom resources need the operator, which is gone by
        // now: drop them first so the namespace does not hang in Terminating.
        for kind in ["webapps", "webservers", "memcacheds", "podmanagers", "databases"] {
            let _ = kubectl()
                .args([
                    "-n",
                    &self.name,
                    "patch",
                    kind,
                    "--all",
                    "--type=merge",
                    "-p",
                    r#"{"metadata":{"finalizers":null}}"#,
                ])
                .output();
        }
        let _ = kubectl().args(["delete", "namespace", &self.name, "--wait=false"]).output();
    }
}

/// Polls `check` until it returns `Some`, or gives up after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return Some(value);
        }
        if Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The step spans of every reconcile in this test process. Installed once, globally,
/// with the operator's logs going to the test output (shown when a test fails).
pub fn trace() -> &'static StepTrace {
    static TRACE: OnceLock<StepTrace> = OnceLock::new();
    TRACE.get_or_init(|| {
        let trace = StepTrace::default();
        // WEBAPP_TEST_LOG overrides the filter, e.g. to see each request of the operator:
        // `info,webapp_operator::manager::client=debug`.
        let filter = EnvFilter::try_from_env("WEBAPP_TEST_LOG").unwrap_or_else(|_| EnvFilter::new("info,kube=warn"));
        let logs = tracing_subscriber::fmt::layer().with_test_writer().with_filter(filter);
        let _ = tracing_subscriber::registry().with(logs).with(trace.clone()).try_init();
        trace
    })
}

/// The operator, running in-process against the local control plane and watching one
/// namespace. Stopped (gracefully) by [`Operator::stop`] or when dropped.
pub struct Operator {
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    /// Address of its /metrics server.
    pub metrics: SocketAddr,
}

impl Operator {
    /// Starts the WebApp controller for `namespace`.
    pub async fn start(namespace: &str) -> Self {
        Self::start_with(namespace, vec![ControllerKind::Webapp]).await
    }

    /// Starts `controllers` for `namespace`.
    pub async fn start_with(namespace: &str, controllers: Vec<ControllerKind>) -> Self {
        Self::start_config(Self::config(namespace, controllers)).await
    }

    /// The configuration `start_with` uses: namespace-scoped, no leader election.
    pub fn config(namespace: &str, controllers: Vec<ControllerKind>) -> Config {
        Config {
            namespace: Some(namespace.to_owned()),
            controllers,
            concurrency: 2,
            metrics_addr: free_port(),
            leader_elect: false,
            leader_election_namespace: None,
            leader_election_id: webapp_operator::manager::leader::LEASE.to_owned(),
            instance: Some(format!("test-{namespace}")),
            // The webhook patches the cluster-wide CRD: only tests of it start one.
            webhook: None,
            cleanup_budget: Duration::from_secs(120),
        }
    }

    /// Starts the operator with `config` and waits until it is ready.
    pub async fn start_config(config: Config) -> Self {
        Self::start_as(config, kube_config().await).await
    }

    /// Starts the operator with `config`, authenticated by `kube_config` (the test's
    /// admin identity, or a ServiceAccount token), and waits until it is ready.
    pub async fn start_as(config: Config, kube_config: kube::Config) -> Self {
        trace();
        let metrics = config.metrics_addr;
        let (stop, stopped) = oneshot::channel::<()>();
        let shutdown = async move {
            let _ = stopped.await;
        }
        .boxed()
        .shared();
        let task = tokio::spawn(async move {
            manager::run_with(config, kube_config, shutdown).await.expect("operator failed");
        });
        let operator = Operator { stop: Some(stop), task: Some(task), metrics };
        eventually(Duration::from_secs(20), || async { operator.get("/readyz").await.filter(|body| body == "ok") })
            .await
            .expect("operator not ready");
        operator
    }

    /// GETs a path of the metrics server.
    pub async fn get(&self, path: &str) -> Option<String> {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.metrics).await.ok()?;
        let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
        stream.write_all(request.as_bytes()).await.ok()?;
        let mut response = String::new();
        stream.read_to_string(&mut response).await.ok()?;
        let (head, body) = response.split_once("\r\n\r\n")?;
        head.starts_with("HTTP/1.0 200")
            .then(|| body.to_owned())
            .or_else(|| head.starts_with("HTTP/1.1 200").then(|| body.to_owned()))
    }

    /// The value of one sample of the metrics, e.g. `leader_election_master_status`.
    /// A series that is not exported fails the test, naming the series it has of the
    /// same name: read as 0, a renamed or relabelled metric would pass every check
    /// that something is zero.
    pub async fn metric(&self, sample: &str) -> f64 {
        let body = self.get("/metrics").await.expect("no metrics");
        sample_in(&body, sample).unwrap_or_else(|| panic!("{}", missing(&body, sample)))
    }

    /// Like [`Operator::metric`], for a counter with labels, which prometheus-client
    /// exports only once that label set was first incremented: 0 while the series is
    /// absent, provided its family is registered (its `# TYPE` line is there), so a
    /// renamed family still fails the test.
    pub async fn metric_or_zero_if_family_exists(&self, sample: &str) -> f64 {
        let body = self.get("/metrics").await.expect("no metrics");
        if let Some(value) = sample_in(&body, sample) {
            return value;
        }
        let family = family_of(sample);
        let registered = body
            .lines()
            .any(|line| line.strip_prefix("# TYPE ").and_then(|rest| rest.split_whitespace().next()) == Some(family));
        assert!(registered, "no metric family {family}: {}", missing(&body, sample));
        0.0
    }

    /// Requests the operator's client has sent with any of `methods` (a method it never
    /// used counts 0, as long as the request counter is registered).
    pub async fn requests(&self, methods: &[&str]) -> f64 {
        let body = self.get("/metrics").await.expect("no metrics");
        assert!(
            body.lines().any(|line| line == "# TYPE rest_client_requests counter"),
            "no metric family rest_client_requests in\n{body}"
        );
        // Summed over the answers' codes: a request counts whatever it was answered.
        let labels: Vec<String> = methods.iter().map(|method| format!("method=\"{method}\"")).collect();
        body.lines()
            .filter(|line| line.starts_with("rest_client_requests_total{"))
            .filter(|line| labels.iter().any(|label| line.contains(label.as_str())))
            .filter_map(|line| line.rsplit_once(' ').and_then(|(_, value)| value.parse::<f64>().ok()))
            .sum()
    }

    /// Waits until every Event the operator has told is sent: reconciles queue their
    /// Events and the operator sends them a moment later, so a check of the Events (one
    /// that none of a reason exists above all) reads them only after this.
    pub async fn events_sent(&self) {
        let pending = "webapp_operator_events_pending";
        let sent = eventually(Duration::from_secs(30), || async { (self.metric(pending).await == 0.0).then_some(()) });
        assert!(sent.await.is_some(), "Events still unsent after 30 s");
    }

    /// Requests the operator's client has sent that write (POST, PUT, PATCH, DELETE).
    pub async fn writes(&self) -> f64 {
        self.requests(&WRITES).await
    }

    /// Forces `times` reconciles of object `name` with metadata-only changes (no new
    /// generation), waiting for each through the counter `sample` of the metrics.
    pub async fn resync<K>(&self, api: &Api<K>, name: &str, sample: &str, times: u32)
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        // A value never used before, so that every call changes the object.
        static MARK: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        // The object may not have had a reconcile of this result yet.
        let before = self.metric_or_zero_if_family_exists(sample).await;
        for i in 0..times {
            let mark = MARK.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let patch = serde_json::json!({"metadata": {"annotations": {"test/resync": mark.to_string()}}});
            api.patch(name, &PatchParams::default(), &Patch::Merge(&patch)).await.unwrap();
            let seen = before + f64::from(i) + 1.0;
            eventually(Duration::from_secs(20), || async {
                (self.metric_or_zero_if_family_exists(sample).await >= seen).then_some(())
            })
            .await
            .unwrap_or_else(|| panic!("no reconcile of {name} counted by {sample} within 20 s"));
        }
    }

    /// The writes a converged object costs over `times` forced reconciles (counted by
    /// `sample`): zero, if it is at rest. Forced reconciles run first, from the
    /// converged state, until one passes without a request, so that whatever the
    /// operator still had to say about convergence (events, a last status) is said
    /// before the count starts. The operator must have written before (it made the
    /// object's children): the positive control without which a counter that never
    /// moves would pass.
    pub async fn writes_at_rest<K>(&self, api: &Api<K>, name: &str, sample: &str, times: u32) -> f64
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        self.requests_at_rest(api, name, sample, times, &WRITES).await
    }

    /// The requests with any of `methods` a converged object costs over `times` forced
    /// reconciles, like [`Operator::writes_at_rest`].
    pub async fn requests_at_rest<K>(&self, api: &Api<K>, name: &str, sample: &str, times: u32, methods: &[&str]) -> f64
    where
        K: kube::Resource + Clone + serde::de::DeserializeOwned + std::fmt::Debug,
    {
        let written = self.writes().await;
        assert!(written > 0.0, "no write counted while {name} was created: the request counter counts nothing");
        // Settle first: the counter that `resync` waits on also counts a reconcile a
        // child's late status change started, whose writes (a coalesced status, the
        // Running event) may still be on their way when it is counted. Settled is one
        // forced reconcile with no such request around it, tried a few times; an object
        // written at every reconcile never settles, and the measure below shows it.
        // An Event is a write, sent a moment after its reconcile was counted: each count
        // is read once the Events told before it are sent.
        for _ in 0..5 {
            self.events_sent().await;
            let before = self.requests(methods).await;
            self.resync(api, name, sample, 1).await;
            self.events_sent().await;
            if self.requests(methods).await == before {
                break;
            }
        }
        self.events_sent().await;
        let before = self.requests(methods).await;
        self.resync(api, name, sample, times).await;
        self.events_sent().await;
        self.requests(methods).await - before
    }

    /// Whether the manager has returned by itself: stopped, or failed (e.g. it lost the
    /// leader Lease). Its /metrics server goes on answering until [`Operator::stop`].
    pub fn has_stopped(&self) -> bool {
        self.task.as_ref().is_none_or(|task| task.is_finished())
    }

    /// Stops the operator and waits for in-flight reconciles to finish. Returns whether
    /// it stopped cleanly: the manager returned `Ok` within 20 s.
    pub async fn stop(mut self) -> bool {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.task.take() {
            Some(task) => matches!(tokio::time::timeout(Duration::from_secs(20), task).await, Ok(Ok(()))),
            None => false,
        }
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// The HTTP methods that write.
pub const WRITES: [&str; 4] = ["POST", "PUT", "PATCH", "DELETE"];

/// The value of `sample` (name and labels, exactly as exported) in a text exposition.
fn sample_in(body: &str, sample: &str) -> Option<f64> {
    body.lines().find_map(|line| {
        let (series, value) = line.rsplit_once(' ')?;
        (series == sample).then(|| value.parse().ok()).flatten()
    })
}

/// The family a sample belongs to, as its `# TYPE` line names it: prometheus-client
/// names a counter's family without the `_total` of its samples.
fn family_of(sample: &str) -> &str {
    let name = sample.split('{').next().unwrap_or(sample);
    name.strip_suffix("_total").unwrap_or(name)
}

/// Why `sample` was not found, with the series whose names start like its own (its
/// first word: `controller`, `kube`), so a rename or a relabelling shows.
fn missing(body: &str, sample: &str) -> String {
    let stem = sample.split('_').next().unwrap_or(sample);
    let nearby: Vec<&str> = body
        .lines()
        .filter(|line| !line.starts_with('#') && line.starts_with(stem))
        .filter_map(|line| line.rsplit_once(' ').map(|(series, _)| series))
        .collect();
    format!("metric {sample} is not exported; series starting with {stem}: {nearby:?}")
}

fn free_port() -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap()
}

/// Waits up to 90 s for the WebApp to satisfy `check`; panics with its last status.
pub async fn wait_for(api: &Api<WebApp>, name: &str, what: &str, check: impl Fn(&WebApp) -> bool) -> WebApp {
    let found = eventually(Duration::from_secs(90), || async { api.get(name).await.ok().filter(|w| check(w)) }).await;
    if let Some(webapp) = found {
        return webapp;
    }
    let last = api.get(name).await.ok().and_then(|w| w.status);
    panic!("WebApp {name} never got {what}; last status: {last:#?}")
}

/// The WebApp's `status.phase`.
pub fn phase(webapp: &WebApp) -> Option<Phase> {
    webapp.status.as_ref()?.phase
}

/// Whether a WebApp is Running with `generation` observed.
pub fn running_at(generation: i64) -> impl Fn(&WebApp) -> bool {
    move |w| {
        phase(w) == Some(Phase::Running) && w.status.as_ref().and_then(|s| s.observed_generation) == Some(generation)
    }
}

/// Creates WebApp `name` with `spec` in `ns`; returns the namespace's WebApp API.
pub async fn create(client: &Client, ns: &str, name: &str, spec: serde_json::Value) -> Api<WebApp> {
    let api: Api<WebApp> = Api::namespaced(client.clone(), ns);
    let webapp: WebApp = serde_json::from_value(
        serde_json::json!({"apiVersion": "apps.example.com/v1alpha1", "kind": "WebApp", "metadata": {"name": name}, "spec": spec}),
    )
    .unwrap();
    api.create(&PostParams::default(), &webapp).await.expect("WebApp rejected");
    api
}

/// The reasons of every Event in `ns` (after [`Operator::events_sent`], for a check
/// that one is absent).
pub async fn event_reasons(client: &Client, ns: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let list = events.list(&ListParams::default()).await.unwrap();
    list.items.into_iter().filter_map(|e| e.reason).collect()
}

/// Waits until `ns` holds an Event of every reason in `reasons` (up to 20 s for each,
/// like [`expect_event`]); panics with the Events it holds otherwise.
pub async fn expect_events(client: &Client, ns: &str, reasons: &[&str]) {
    for reason in reasons {
        expect_event(client, ns, &format!("of reason {reason}"), |e| e.reason.as_deref() == Some(reason)).await;
    }
}

/// Waits up to 20 s until `ns` holds an Event that `wanted` accepts, and returns every
/// Event of `ns` then; panics with the Events it holds otherwise. Events are published
/// after the write they tell of, so a test that has seen the write still waits for them.
pub async fn expect_event(client: &Client, ns: &str, what: &str, wanted: impl Fn(&Event) -> bool) -> Vec<Event> {
    let events: Api<Event> = Api::namespaced(client.clone(), ns);
    let found = eventually(Duration::from_secs(20), || async {
        let items = events.list(&ListParams::default()).await.ok()?.items;
        items.iter().any(&wanted).then_some(items)
    })
    .await;
    match found {
        Some(items) => items,
        None => panic!("no event {what}; found {:?}", events.list(&ListParams::default()).await.map(|l| l.items)),
    }
}

/// A client, the CRDs, a namespace of the test's own and the operator watching it.
pub async fn setup(prefix: &str) -> (Client, TestNamespace, Operator) {
    let client = client().await;
    install_crds(&client).await;
    let ns = TestNamespace::new(&client, prefix).await;
    let operator = Operator::start(&ns.name).await;
    (client, ns, operator)
}

/// PersistentVolumes made for one test, deleted with it.
pub struct Volumes {
    names: Vec<String>,
}

impl Drop for Volumes {
    fn drop(&mut self) {
        for name in &self.names {
            let _ = kubectl().args(["delete", "pv", name, "--wait=false"]).output();
        }
    }
}

/// The cluster's StorageClasses (as `hack/cluster/up` applies them) and one
/// PersistentVolume per `(claim, size)`, pre-bound to that claim in `ns`.
pub async fn volumes(client: &Client, ns: &str, class: &str, claims: &[(&str, &str)]) -> Volumes {
    let classes: Api<k8s_openapi::api::storage::v1::StorageClass> = Api::all(client.clone());
    for document in include_str!("../../../../hack/cluster/storage.yaml").split("\n---\n") {
        let class: k8s_openapi::api::storage::v1::StorageClass = serde_saphyr::from_str(document).unwrap();
        let params = PatchParams::apply("webapp-operator-tests").force();
        classes.patch(&kube::ResourceExt::name_any(&class), &params, &Patch::Apply(&class)).await.unwrap();
    }
    let api: Api<k8s_openapi::api::core::v1::PersistentVolume> = Api::all(client.clone());
    let mut names = Vec::new();
    for (claim, size) in claims {
        let name = format!("{ns}-{claim}");
        let volume: k8s_openapi::api::core::v1::PersistentVolume =
            serde_json::from_value(serde_json::json!({"metadata": {"name": name},
            "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": class,
                "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": format!("/tmp/webapp-operator/{name}")},
                "claimRef": {"namespace": ns, "name": claim}}}))
            .unwrap();
        api.create(&PostParams::default(), &volume).await.unwrap();
        names.push(name);
    }
    Volumes { names }
}

/// What [`fake_pod`] makes a pod report, as a kubelet would. kwok's nodes run nothing,
/// so a container cannot really crash or fail its probe: the pod's status is written
/// with the admin client instead. kwok's stages only move Pending pods (and those of
/// the test stages' labels), so a Running pod keeps what is written here.
#[derive(Clone, Copy, Debug)]
pub enum Faked<'a> {
    /// Every container waits with this reason and message (`CrashLoopBackOff`,
    /// `CreateContainerConfigError`, ...); the pod stays Running, not Ready.
    Waiting(&'a str, &'a str),
    /// Every container runs but fails its readiness probe: Running, not Ready.
    NotReady,
    /// Every container exited 0: phase `Succeeded`, as a pod whose command ended.
    Succeeded,
}

/// Makes pod `name` of `ns` report `state`, once kwok has made it Running and Ready
/// (waited for, up to 60 s: written earlier, kwok's `pod-ready` stage would overwrite
/// it). Returns the pod as written.
pub async fn fake_pod(client: &Client, ns: &str, name: &str, state: Faked<'_>) -> k8s_openapi::api::core::v1::Pod {
    use k8s_openapi::api::core::v1::Pod;
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let ready = |pod: &Pod| {
        let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
        conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
    };
    let pod = eventually(Duration::from_secs(60), || async { pods.get_opt(name).await.ok()?.filter(ready) })
        .await
        .unwrap_or_else(|| panic!("pod {name} never became Ready under kwok"));
    let names: Vec<String> = pod.spec.iter().flat_map(|s| &s.containers).map(|c| c.name.clone()).collect();
    let container = |name: &String| match state {
        Faked::Waiting(reason, message) => serde_json::json!({"name": name, "image": "faked", "imageID": "",
            "ready": false, "started": false, "restartCount": 5,
            "state": {"waiting": {"reason": reason, "message": message}}}),
        Faked::NotReady => serde_json::json!({"name": name, "image": "faked", "imageID": "", "ready": false,
            "started": true, "restartCount": 0, "state": {"running": {"startedAt": "2026-01-01T00:00:00Z"}}}),
        Faked::Succeeded => serde_json::json!({"name": name, "image": "faked", "imageID": "", "ready": false,
            "started": false, "restartCount": 0, "state": {"terminated": {"exitCode": 0, "reason": "Completed",
            "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}}}),
    };
    let (phase, why) = match state {
        Faked::Succeeded => ("Succeeded", "PodCompleted"),
        Faked::Waiting(..) | Faked::NotReady => ("Running", "ContainersNotReady"),
    };
    // Strategic merge: conditions merge by type, so PodScheduled and Initialized stay.
    let patch = serde_json::json!({"status": {"phase": phase,
        "conditions": [{"type": "Ready", "status": "False", "reason": why},
            {"type": "ContainersReady", "status": "False", "reason": why}],
        "containerStatuses": names.iter().map(container).collect::<Vec<_>>()}});
    pods.patch_status(name, &PatchParams::default(), &Patch::Strategic(&patch))
        .await
        .unwrap_or_else(|e| panic!("cannot fake the status of pod {name}: {e}"))
}

/// Waits until Deployment `name`'s rollout has settled at `replicas`: its status says
/// so, every ReplicaSet it owns has acted on its latest spec, and exactly `replicas`
/// pods of the instance exist, none of them going. The Deployment's status alone can
/// say "done" and then dip: under load its controller may see a scale to 1 and back
/// (a drift and its repair) only after reporting the repaired spec as complete, and the
/// ReplicaSet then deletes pods and makes them again, which the status follows and the
/// owner's status reports. A check that nothing is written at rest starts after this.
pub async fn deployment_settled(client: &Client, ns: &str, name: &str, replicas: i32) {
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::Pod;
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), ns);
    let replica_sets: Api<ReplicaSet> = Api::namespaced(client.clone(), ns);
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let settled = eventually(Duration::from_secs(60), || async {
        let deployment = deployments.get(name).await.ok()?;
        let status = deployment.status.as_ref()?;
        let done = status.observed_generation == deployment.metadata.generation
            && [status.replicas, status.updated_replicas, status.ready_replicas, status.available_replicas]
                .iter()
                .all(|n| *n == Some(replicas))
            && status.unavailable_replicas.is_none();
        let uid = deployment.metadata.uid.as_deref()?;
        let owned = replica_sets
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .filter(|rs| rs.metadata.owner_references.iter().flatten().any(|owner| owner.uid == uid));
        let mut wanted = 0;
        for rs in owned {
            let spec = rs.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            let rs_status = rs.status.as_ref()?;
            let acted = rs_status.observed_generation == rs.metadata.generation
                && rs_status.replicas == spec
                && rs_status.ready_replicas.unwrap_or(0) == spec;
            if !acted {
                return None;
            }
            wanted += spec;
        }
        let selector = format!("app.kubernetes.io/instance={name}");
        let live = pods.list(&ListParams::default().labels(&selector)).await.ok()?.items;
        let steady = live.len() == usize::try_from(replicas).ok()?
            && live.iter().all(|pod| pod.metadata.deletion_timestamp.is_none());
        (done && wanted == replicas && steady).then_some(())
    })
    .await;
    assert!(settled.is_some(), "Deployment {ns}/{name} never settled at {replicas} replicas");
}

/// The names of the live (not terminating) pods of instance `instance` (the
/// `app.kubernetes.io/instance` label every kind's pods carry), sorted.
pub async fn instance_pods(client: &Client, ns: &str, instance: &str) -> Vec<String> {
    let pods: Api<k8s_openapi::api::core::v1::Pod> = Api::namespaced(client.clone(), ns);
    let selector = format!("app.kubernetes.io/instance={instance}");
    let list = pods.list(&ListParams::default().labels(&selector)).await.unwrap();
    let mut names: Vec<String> = list
        .items
        .into_iter()
        .filter(|p| p.metadata.deletion_timestamp.is_none())
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    names
}

/// Asserts that an object of someone else's was left as it was by the operator: the
/// resourceVersion it had `before` (so not even a no-op write), no field managed by
/// the operator, no owner reference. `what` names it in the failure.
pub fn assert_untouched(
    before: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    after: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    what: &str,
) {
    assert_eq!(after.resource_version, before.resource_version, "{what} was written");
    let managers: Vec<&str> = after.managed_fields.iter().flatten().filter_map(|f| f.manager.as_deref()).collect();
    assert!(!managers.contains(&"webapp-operator"), "{what} was written by us: {managers:?}");
    assert!(after.owner_references.is_none(), "{what} was adopted");
}
