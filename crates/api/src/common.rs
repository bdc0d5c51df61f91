//! Types and schema pieces shared by every kind: the lifecycle phase, kstatus
//! conditions, and the validation rules several specs reuse.

/// The `kubectl get <category>` name that lists every kind of this operator family.
pub const CATEGORY: &str = "webapp-operator";

/// The lifecycle phase, shared with the reconcile kit through the `lifecycle` crate.
pub use lifecycle::{LifecycleStatus, Phase};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::{CustomResourceDefinition, JSON};

/// `crd` with `status` defaulting to `{phase: Pending}`: the API server itself shows a
/// new object as Pending (accepted, nothing created yet) from its first read and its
/// first watch event on, as it does for a new Pod, and as Gateway API's CRDs do with
/// their status. The operator's first status write is then `Creating`, with its
/// children made: one status write fewer per object than writing `Pending` itself,
/// and the lifecycle `Pending → Creating → Running` stays visible. Schema defaults
/// apply on every read (also of objects created before), and only where `status` is
/// absent, so a status the operator wrote is never touched.
pub fn pending_by_default(mut crd: CustomResourceDefinition) -> CustomResourceDefinition {
    for version in &mut crd.spec.versions {
        let status = version
            .schema
            .as_mut()
            .and_then(|schema| schema.open_api_v3_schema.as_mut())
            .and_then(|schema| schema.properties.as_mut())
            .and_then(|properties| properties.get_mut("status"));
        if let Some(status) = status {
            status.default = Some(JSON(serde_json::json!({"phase": Phase::Pending})));
        }
    }
    crd
}

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
