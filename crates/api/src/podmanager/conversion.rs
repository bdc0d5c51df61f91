//! Lossless conversion between PodManager v1 (hub) and v2 (spoke).
//!
//! v2 holds a whole Pod template; v1 holds the image of the first container and the
//! Pod labels. Everything else of a v2 template (other containers, ports, env,
//! resources, probes, annotations, the first container's name) travels in the v1
//! object's annotation [`V2_TEMPLATE`], and comes back on the way to v2. What v1 holds
//! itself is never copied into the annotation, so a v1 client that changes the image or
//! the labels changes the v2 view too. A template that v1 can hold entirely (one
//! container named `app`, labels only) needs no annotation.
//!
//! Round trips are exact: v1 → v2 → v1 and v2 → v1 → v2 give the input back (tested
//! by the proptests below). The functions are pure; the webhook server only moves
//! JSON in and out of them.

use kube::ResourceExt;
use serde_json::Value;

use super::v2::{Container, PodTemplate, TemplateSpec};
use super::{GROUP, v1, v2};

/// Annotation of a v1 PodManager holding what v1 cannot express of a v2 template.
pub const V2_TEMPLATE: &str = "apps.mycompany.com/v2-template";
/// Name of the one container of a PodManager written through v1.
pub const CONTAINER: &str = "app";

/// Why an object could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConversionError {
    /// The v1 object's [`V2_TEMPLATE`] annotation was edited into something unreadable.
    #[error("annotation {V2_TEMPLATE} does not hold a v2 Pod template: {0}")]
    BadAnnotation(String),
    /// A v2 template without containers (the schema refuses it; a request may not).
    #[error("spec.template.spec.containers must hold at least one container")]
    NoContainers,
    /// The object is not a PodManager of a version this operator knows.
    #[error("cannot convert {from:?} to {to:?}: versions are {GROUP}/v1 and {GROUP}/v2")]
    UnknownVersion {
        /// apiVersion of the object.
        from: String,
        /// apiVersion asked for.
        to: String,
    },
    /// The object does not have the shape of its version.
    #[error("object is not a valid {version} PodManager: {message}")]
    Malformed {
        /// Its apiVersion.
        version: String,
        /// What is wrong.
        message: String,
    },
}

/// The template of a PodManager written through v1 with no annotation: one container
/// `app` (its image is held by v1 itself).
fn v1_shaped() -> PodTemplate {
    PodTemplate {
        spec: TemplateSpec { containers: vec![Container { name: CONTAINER.into(), ..Container::default() }] },
        ..PodTemplate::default()
    }
}

/// The full Pod template of a v1 PodManager: what v1 says, completed by the
/// annotation. The controller builds Pods from this, so objects written through v2
/// get every field they asked for.
pub fn template(pm: &v1::PodManager) -> Result<PodTemplate, ConversionError> {
    let mut template = match pm.annotations().get(V2_TEMPLATE) {
        Some(text) => serde_json::from_str(text).map_err(|e| ConversionError::BadAnnotation(e.to_string()))?,
        None => v1_shaped(),
    };
    let first = template.spec.containers.first_mut().ok_or(ConversionError::NoContainers)?;
    first.image.clone_from(&pm.spec.image);
    template.metadata.labels.clone_from(&pm.spec.pod_labels);
    Ok(template)
}

/// v1 → v2.
pub fn to_v2(pm: &v1::PodManager) -> Result<v2::PodManager, ConversionError> {
    let template = template(pm)?;
    let mut metadata = pm.metadata.clone();
    if let Some(annotations) = &mut metadata.annotations {
        annotations.remove(V2_TEMPLATE);
        if annotations.is_empty() {
            metadata.annotations = None;
        }
    }
    Ok(v2::PodManager {
        metadata,
        spec: v2::PodManagerSpec { replicas: pm.spec.replicas, template },
        status: pm.status.clone(),
    })
}

/// v2 → v1.
pub fn to_v1(pm: &v2::PodManager) -> Result<v1::PodManager, ConversionError> {
    let mut rest = pm.spec.template.clone();
    let first = rest.spec.containers.first_mut().ok_or(ConversionError::NoContainers)?;
    let image = std::mem::take(&mut first.image);
    let pod_labels = std::mem::take(&mut rest.metadata.labels);
    let mut metadata = pm.metadata.clone();
    if rest != v1_shaped() {
        let text = serde_json::to_string(&rest)
            .map_err(|e| ConversionError::Malformed { version: format!("{GROUP}/v2"), message: e.to_string() })?;
        metadata.annotations.get_or_insert_default().insert(V2_TEMPLATE.into(), text);
    }
    Ok(v1::PodManager {
        metadata,
        spec: v1::PodManagerSpec { replicas: pm.spec.replicas, image, pod_labels },
        status: pm.status.clone(),
    })
}

/// Converts one object of a ConversionReview to `desired_api_version`. An object
/// already in that version comes back unchanged.
pub fn convert(object: Value, desired_api_version: &str) -> Result<Value, ConversionError> {
    let from = object.get("apiVersion").and_then(Value::as_str).unwrap_or_default().to_owned();
    let (v1, v2) = (format!("{GROUP}/v1"), format!("{GROUP}/v2"));
    let unknown = || ConversionError::UnknownVersion { from: from.clone(), to: desired_api_version.to_owned() };
    if from != v1 && from != v2 {
        return Err(unknown());
    }
    if from == desired_api_version {
        return Ok(object);
    }
    let malformed = |e: serde_json::Error| ConversionError::Malformed { version: from.clone(), message: e.to_string() };
    let converted = if desired_api_version == v2 {
        serde_json::to_value(to_v2(&serde_json::from_value(object).map_err(malformed)?)?)
    } else if desired_api_version == v1 {
        serde_json::to_value(to_v1(&serde_json::from_value(object).map_err(malformed)?)?)
    } else {
        return Err(unknown());
    };
    converted.map_err(malformed)
}

#[cfg(test)]
mod tests;
