//! A namespace per test, deleted when the test ends, and pods run to completion in it
//! (the clients of the tests: psql, pg_restore, ls on a volume).

use std::time::Duration;

use crate::cluster::{self, kubectl_run};
use crate::wait;

/// A namespace of one test; deleted (without waiting) when dropped. The operator runs in
/// the cluster, so finalizers of the test's objects are honoured as a user's would be.
pub struct Namespace {
    /// Its name.
    pub name: String,
}

impl Namespace {
    /// Creates `e2e-<prefix>-<n>` and waits for its default ServiceAccount.
    pub fn new(prefix: &str) -> Result<Self, String> {
        let n =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0)
                % 100_000;
        let name = format!("e2e-{prefix}-{n}");
        kubectl_run(&["create", "namespace", &name])?;
        wait::until("default ServiceAccount", Duration::from_secs(60), || {
            Ok(cluster::get(&name, "serviceaccount/default")?.map(|_| ()))
        })?;
        Ok(Namespace { name })
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = kubectl_run(&["delete", "namespace", &self.name, "--wait=false"]);
    }
}

/// A pod that runs `script` with `sh -c` to completion: its image, environment (plain
/// values and Secret keys) and volumes (claims mounted at a path).
pub struct Job<'a> {
    /// Pod name.
    pub name: &'a str,
    /// Image (imported into the node).
    pub image: &'a str,
    /// The shell script.
    pub script: &'a str,
    /// `(variable, value)` pairs.
    pub env: Vec<(&'a str, String)>,
    /// `(variable, secret, key)` triples.
    pub secret_env: Vec<(&'a str, String, &'a str)>,
    /// `(claim, mount path)` pairs.
    pub claims: Vec<(String, &'a str)>,
    /// uid to run as (the postgres image's tools refuse root for some commands).
    pub run_as: i64,
}

impl Job<'_> {
    /// Runs the pod in `ns` until it ends; returns its logs when it succeeded, and an
    /// error with its logs when it failed.
    pub fn run(&self, ns: &str) -> Result<String, String> {
        let mut env: Vec<serde_json::Value> =
            self.env.iter().map(|(name, value)| serde_json::json!({"name": name, "value": value})).collect();
        env.extend(self.secret_env.iter().map(|(name, secret, key)| {
            serde_json::json!({"name": name, "valueFrom": {"secretKeyRef": {"name": secret, "key": key}}})
        }));
        let volumes: Vec<_> = self
            .claims
            .iter()
            .enumerate()
            .map(|(i, (claim, _))| serde_json::json!({"name": format!("v{i}"), "persistentVolumeClaim": {"claimName": claim}}))
            .collect();
        let mounts: Vec<_> = self
            .claims
            .iter()
            .enumerate()
            .map(|(i, (_, path))| serde_json::json!({"name": format!("v{i}"), "mountPath": path}))
            .collect();
        let pod = serde_json::json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": self.name},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": {"runAsUser": self.run_as, "runAsGroup": self.run_as, "fsGroup": self.run_as},
                "containers": [{
                    "name": "main", "image": self.image, "imagePullPolicy": "IfNotPresent",
                    "command": ["sh", "-c", self.script],
                    "env": env, "volumeMounts": mounts,
                }],
                "volumes": volumes,
            }
        });
        cluster::apply(ns, &pod.to_string())?;
        let what = format!("pod/{}", self.name);
        let phase = wait::until(&format!("{what} to end"), Duration::from_secs(180), || {
            let phase = cluster::get(ns, &what)?
                .and_then(|p| p.pointer("/status/phase").and_then(|v| v.as_str()).map(str::to_owned));
            Ok(phase.filter(|p| p == "Succeeded" || p == "Failed"))
        })?;
        let logs = kubectl_run(&["logs", "-n", ns, &what])?;
        if phase == "Succeeded" { Ok(logs) } else { Err(format!("{what} failed:\n{logs}")) }
    }
}
