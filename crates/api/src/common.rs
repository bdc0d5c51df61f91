//! Types and schema pieces shared by every kind: the lifecycle phase, kstatus
//! conditions, and the validation rules several specs reuse.

/// The `kubectl get <category>` name that lists every kind of this operator family.
pub const CATEGORY: &str = "webapp-operator";

/// The lifecycle phase, shared with the reconcile kit through the `lifecycle` crate.
pub use lifecycle::{LifecycleStatus, Phase};

/// Implements [`LifecycleStatus`] for status types with `phase`, `observed_generation`
/// and `conditions` fields.
macro_rules! lifecycle_status {
    ($($status:ty),+ $(,)?) => {$(
        impl $crate::common::LifecycleStatus for $status {
            fn phase(&self) -> Option<$crate::common::Phase> {
                self.phase
            }
            fn observed_generation(&self) -> Option<i64> {
                self.observed_generation
            }
            fn conditions(&self) -> &[$crate::common::Condition] {
                &self.conditions
            }
        }
    )+};
}
pub(crate) use lifecycle_status;

/// A kstatus condition (`Ready`, `Progressing`, `Degraded`), each with its own
/// `observedGeneration`. The list is a `listType: map` keyed on `type`, so server-side
/// apply merges conditions one by one.
pub type Condition = k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

/// Default port of a web container.
pub(crate) fn default_http_port() -> i32 {
    80
}

/// Schema of a `conditions` list: a `listType: map` keyed on `type`, as kstatus and
/// server-side apply expect.
pub(crate) fn conditions_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
    let mut schema = generator.subschema_for::<Vec<Condition>>();
    schema.insert("x-kubernetes-list-type".into(), "map".into());
    schema.insert("x-kubernetes-list-map-keys".into(), serde_json::json!(["type"]));
    schema
}
