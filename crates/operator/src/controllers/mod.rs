//! One module per controller. Each is a thin I/O shell around a pure plan:
//! observe (reflector stores) → plan (`desired()`, pure) → act (kit apply/delete) →
//! report (status, conditions, events).

pub mod children;
pub mod podmanager;
pub mod webapp;

use std::collections::BTreeMap;

use reconcile_kit::MANAGER;

/// Label keys every child carries.
pub mod labels {
    /// The application kind (`webapp`, ...).
    pub const NAME: &str = "app.kubernetes.io/name";
    /// The custom resource's name.
    pub const INSTANCE: &str = "app.kubernetes.io/instance";
    /// Always `webapp-operator`.
    pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";
}

/// Labels of the children of custom resource `instance` of kind `app`. The first two
/// are the pod selector; all three select the children in watches.
pub fn child_labels(app: &str, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (labels::NAME.to_owned(), app.to_owned()),
        (labels::INSTANCE.to_owned(), instance.to_owned()),
        (labels::MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}

/// The pod selector of custom resource `instance` of kind `app`.
pub fn selector_labels(app: &str, instance: &str) -> BTreeMap<String, String> {
    let mut labels = child_labels(app, instance);
    labels.remove(labels::MANAGED_BY);
    labels
}

/// The label selector of every child of kind `app` this operator manages, for watches.
pub fn kind_selector(app: &str) -> String {
    let mut labels = child_labels(app, "");
    labels.remove(labels::INSTANCE);
    selector_string(&labels)
}

/// `k=v,k=v` form of a label map, for label selectors and `status.selector`.
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

/// Which controllers a process runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum)]
pub enum ControllerKind {
    /// WebApp: Deployment + Service + Ingress.
    Webapp,
    /// PodManager: bare Pods `<name>-<i>`.
    Podmanager,
}
