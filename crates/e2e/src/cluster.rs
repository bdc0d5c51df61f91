//! The real-node cluster the stage started, and the tools built with it. Both come from
//! the environment `hack/test-real-node` sets; a test run without it fails at once,
//! naming what is missing, rather than skipping.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

/// The kubeconfig of the real-node cluster (`WEBAPP_E2E_KUBECONFIG`).
pub fn kubeconfig() -> PathBuf {
    required("WEBAPP_E2E_KUBECONFIG").into()
}

/// The directory of kubectl and helm (`WEBAPP_E2E_BIN`, what `hack/cluster/build` prints).
pub fn bin() -> PathBuf {
    required("WEBAPP_E2E_BIN").into()
}

/// The namespace the operator's chart is installed in (`WEBAPP_E2E_OPERATOR_NAMESPACE`).
pub fn operator_namespace() -> String {
    required("WEBAPP_E2E_OPERATOR_NAMESPACE")
}

/// The Helm release of the operator (`WEBAPP_E2E_RELEASE`).
pub fn release() -> String {
    required("WEBAPP_E2E_RELEASE")
}

/// The repository root (for config/samples and the chart).
pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

#[allow(clippy::panic)]
fn required(variable: &str) -> String {
    std::env::var(variable).unwrap_or_else(|_| {
        panic!(
            "{variable} is not set: these tests run on a real node, through hack/test-real-node (a stage of make test)"
        )
    })
}

/// kubectl on the real-node cluster.
pub fn kubectl() -> Command {
    let mut command = Command::new(bin().join("kubectl"));
    command.arg("--kubeconfig").arg(kubeconfig()).arg("--request-timeout=30s");
    command
}

/// helm on the real-node cluster.
pub fn helm() -> Command {
    let mut command = Command::new(bin().join("helm"));
    command.arg("--kubeconfig").arg(kubeconfig());
    command
}

/// What a command printed, or why it failed (its stderr), as one error.
pub fn run(mut command: Command, stdin: Option<&str>) -> Result<String, String> {
    let described = format!("{command:?}");
    command.stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() });
    command.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = command.spawn().map_err(|e| format!("{described}: {e}"))?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).map_err(|e| format!("{described}: {e}"))?;
    }
    let Output { status, stdout, stderr } = child.wait_with_output().map_err(|e| format!("{described}: {e}"))?;
    if status.success() {
        Ok(String::from_utf8_lossy(&stdout).into_owned())
    } else {
        Err(format!("{described} failed ({status}): {}", String::from_utf8_lossy(&stderr).trim()))
    }
}

/// Runs kubectl with `args` and returns its stdout.
pub fn kubectl_run(args: &[&str]) -> Result<String, String> {
    let mut command = kubectl();
    command.args(args);
    run(command, None)
}

/// Applies `manifest` (YAML or JSON) in namespace `ns`.
pub fn apply(ns: &str, manifest: &str) -> Result<String, String> {
    let mut command = kubectl();
    command.args(["apply", "-n", ns, "-f", "-"]);
    run(command, Some(manifest))
}

/// One object as JSON (`kubectl get <what> -o json`), or `None` when it does not exist.
pub fn get(ns: &str, what: &str) -> Result<Option<serde_json::Value>, String> {
    let out = kubectl_run(&["get", "-n", ns, what, "-o", "json", "--ignore-not-found"])?;
    if out.trim().is_empty() {
        return Ok(None);
    }
    serde_json::from_str(&out).map(Some).map_err(|e| format!("kubectl get {what}: {e}"))
}

/// `status.phase` of a custom resource, if it has one yet.
pub fn phase(ns: &str, what: &str) -> Result<Option<String>, String> {
    Ok(get(ns, what)?.and_then(|o| o.pointer("/status/phase").and_then(|p| p.as_str()).map(str::to_owned)))
}
