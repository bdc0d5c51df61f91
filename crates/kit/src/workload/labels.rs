//! The labels every child carries (the `app.kubernetes.io/*` recommended labels), the
//! pod selector made from them, and the watch selector of one kind's children.

use std::collections::BTreeMap;

use crate::MANAGER;

/// The application kind (`webapp`, `webserver`, ...).
pub const NAME: &str = "app.kubernetes.io/name";
/// The custom resource's name.
pub const INSTANCE: &str = "app.kubernetes.io/instance";
/// Always the operator's name.
pub const MANAGED_BY: &str = "app.kubernetes.io/managed-by";

/// Labels of the children of custom resource `instance` of kind `app`. The first two
/// are the pod selector; all three select the children in watches.
pub fn child_labels(app: &str, instance: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        (NAME.to_owned(), app.to_owned()),
        (INSTANCE.to_owned(), instance.to_owned()),
        (MANAGED_BY.to_owned(), MANAGER.to_owned()),
    ])
}

/// The pod selector of custom resource `instance` of kind `app`.
pub fn selector_labels(app: &str, instance: &str) -> BTreeMap<String, String> {
    let mut labels = child_labels(app, instance);
    labels.remove(MANAGED_BY);
    labels
}

/// The label selector of every child of kind `app` this operator manages, for watches.
pub fn kind_selector(app: &str) -> String {
    let mut labels = child_labels(app, "");
    labels.remove(INSTANCE);
    selector_string(&labels)
}

/// `k=v,k=v` form of a label map, for label selectors and `status.selector`.
pub fn selector_string(labels: &BTreeMap<String, String>) -> String {
    labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors_are_stable_and_scoped_to_one_kind() {
        assert_eq!(
            kind_selector("webapp"),
            "app.kubernetes.io/managed-by=webapp-operator,app.kubernetes.io/name=webapp"
        );
        assert_eq!(
            selector_string(&selector_labels("webapp", "web")),
            "app.kubernetes.io/instance=web,app.kubernetes.io/name=webapp"
        );
    }
}
