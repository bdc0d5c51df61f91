//! Types and schema pieces shared by every kind: the lifecycle phase, kstatus
//! conditions, and the validation rules several specs reuse.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The `kubectl get <category>` name that lists every kind of this operator family.
pub const CATEGORY: &str = "webapp-operator";

/// Lifecycle phase: Pending (accepted), Creating (children being made ready), Running
/// (everything ready), Failed (needs a change to make progress), Deleting (cleaning up).
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq, Hash, JsonSchema)]
pub enum Phase {
    /// Accepted, nothing created yet.
    #[default]
    Pending,
    /// Children are being created or updated and are not all ready yet.
    Creating,
    /// Every child exists and is ready.
    Running,
    /// The operator cannot make progress without a change of the spec or of the cluster.
    Failed,
    /// The object is being deleted; children are being cleaned up.
    Deleting,
}

impl Phase {
    /// The phase as it is written in `status.phase`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Pending => "Pending",
            Phase::Creating => "Creating",
            Phase::Running => "Running",
            Phase::Failed => "Failed",
            Phase::Deleting => "Deleting",
        }
    }
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

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
