//! The pure status mapping of a WebServer: the seed's `replicas`, `readyReplicas` and
//! conditions, plus the phase and a message so that `kubectl get webservers` reads well.

use kube::ResourceExt;
use reconcile_kit::assess::Assessment;
use reconcile_kit::workload::Observed;
use reconcile_kit::workload::labels::selector_labels;
use webapp_api::{WebServer, WebServerStatus};

use super::plan::APP;

/// The status `webserver` should carry given `assessment` and what was `observed`.
pub fn compute(webserver: &WebServer, observed: &Observed, assessment: Assessment) -> WebServerStatus {
    let rollout = observed.rollout();
    WebServerStatus {
        phase: Some(assessment.phase),
        replicas: rollout.current,
        ready_replicas: rollout.ready,
        observed_generation: webserver.metadata.generation,
        selector: Some(observed.pod_selector(&selector_labels(APP, &webserver.name_any()))),
        message: Some(assessment.message),
        conditions: assessment.conditions,
    }
}
