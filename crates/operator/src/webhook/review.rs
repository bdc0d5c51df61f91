//! One ConversionReview: every object converted to the desired version, or a failure
//! that names the object and why. Pure; the server only moves bytes in and out.

use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use serde_json::Value;
use webapp_api::podmanager::conversion::{ConversionError, V2_TEMPLATE, convert};

/// Answers a ConversionReview sent as `body`. `Err` carries a message for a request
/// that is not a ConversionReview at all (answered with HTTP 400).
pub fn answer(body: &[u8]) -> Result<ConversionReview, String> {
    let review: ConversionReview =
        serde_json::from_slice(body).map_err(|e| format!("request body is not a ConversionReview: {e}"))?;
    let Ok(request) = ConversionRequest::from_review(review) else {
        let status = Status::failure("ConversionReview has no request", "BadRequest").with_code(400);
        return Ok(ConversionResponse::invalid(status).into_review());
    };
    Ok(respond(request).into_review())
}

/// Converts every object of `request`; one failure fails the whole review, as the API
/// server expects.
pub fn respond(request: ConversionRequest) -> ConversionResponse {
    let desired = request.desired_api_version.clone();
    let mut converted = Vec::with_capacity(request.objects.len());
    for object in &request.objects {
        let name = object.pointer("/metadata/name").and_then(|n| n.as_str()).unwrap_or("?").to_owned();
        match convert(object.clone(), &desired).or_else(|error| degraded(object, &desired, &name, error)) {
            Ok(value) => converted.push(value),
            Err(error) => {
                let message = format!("cannot convert PodManager {name} to {desired}: {error}");
                tracing::warn!(%message, "conversion failed");
                return ConversionResponse::for_request(request).failure(Status::failure(&message, "ConversionFailed"));
            }
        }
    }
    ConversionResponse::for_request(request).success(converted)
}

/// One object whose v1 `v2-template` annotation was edited into something unreadable
/// must not fail the review, which would fail every read of a list that holds it
/// (`kubectl get pm -A`, the garbage collector, namespace deletion): it is served in
/// its v1 form (the annotation dropped, so v2 readers see the default template), and a
/// warning is logged. The controller reports the object itself as Failed with a
/// Warning event. Any other error still fails the review.
fn degraded(object: &Value, desired: &str, name: &str, error: ConversionError) -> Result<Value, ConversionError> {
    let ConversionError::BadAnnotation(why) = &error else { return Err(error) };
    let mut without = object.clone();
    if let Some(annotations) = without.pointer_mut("/metadata/annotations").and_then(Value::as_object_mut) {
        annotations.remove(V2_TEMPLATE);
    }
    let value = convert(without, desired)?;
    tracing::warn!(name, reason = %why, "PodManager served without its unreadable {V2_TEMPLATE} annotation");
    Ok(value)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn review(desired: &str, objects: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview",
            "request": {"uid": "u-1", "desiredAPIVersion": desired, "objects": objects}}))
        .unwrap()
    }

    fn v1(name: &str) -> Value {
        json!({"apiVersion": "apps.mycompany.com/v1", "kind": "PodManager", "metadata": {"name": name},
            "spec": {"replicas": 2, "image": "nginx:1.20"}})
    }

    #[test]
    fn a_mixed_list_converts_in_order_with_the_request_uid() {
        let v2 = convert(v1("b"), "apps.mycompany.com/v2").unwrap();
        let answer = answer(&review("apps.mycompany.com/v2", vec![v1("a"), v2.clone()])).unwrap();
        let response = answer.response.unwrap();
        assert_eq!(response.uid, "u-1");
        assert_eq!(response.result.status, Some(kube::core::response::StatusSummary::Success));
        assert_eq!(response.converted_objects.len(), 2);
        assert_eq!(response.converted_objects[0]["spec"]["template"]["spec"]["containers"][0]["image"], "nginx:1.20");
        assert_eq!(response.converted_objects[1], v2);
    }

    #[test]
    fn an_unreadable_annotation_degrades_that_object_only() {
        let mut bad = v1("broken");
        bad["metadata"]["annotations"] = json!({"apps.mycompany.com/v2-template": "{", "kept": "yes"});
        let response = answer(&review("apps.mycompany.com/v2", vec![v1("a"), bad])).unwrap().response.unwrap();
        assert!(response.result.is_success(), "{:?}", response.result);
        let objects = &response.converted_objects;
        assert_eq!(objects.len(), 2, "the list is whole");
        let broken = &objects[1];
        assert_eq!(broken.pointer("/spec/template/spec/containers/0/image"), Some(&json!("nginx:1.20")));
        assert_eq!(broken.pointer("/metadata/annotations"), Some(&json!({"kept": "yes"})), "{broken}");
    }

    #[test]
    fn any_other_bad_object_fails_the_review_with_its_name_and_reason() {
        let empty = json!({"apiVersion": "apps.mycompany.com/v2", "kind": "PodManager", "metadata": {"name": "broken"},
            "spec": {"replicas": 1, "template": {"spec": {"containers": []}}}});
        let response = answer(&review("apps.mycompany.com/v1", vec![v1("a"), empty])).unwrap().response.unwrap();
        assert_eq!(response.uid, "u-1");
        assert_eq!(response.result.reason, "ConversionFailed");
        assert!(response.result.message.contains("PodManager broken"), "{}", response.result.message);
        assert!(response.converted_objects.is_empty());
    }

    #[test]
    fn garbage_gets_a_clear_error_never_a_panic() {
        assert!(answer(b"not json").unwrap_err().contains("not a ConversionReview"));
        let no_request = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "ConversionReview"});
        let response = answer(&serde_json::to_vec(&no_request).unwrap()).unwrap().response.unwrap();
        assert_eq!(response.result.code, 400);
        let unknown = answer(&review("apps.mycompany.com/v9", vec![v1("a")])).unwrap().response.unwrap();
        assert!(unknown.result.message.contains("apps.mycompany.com/v9"), "{}", unknown.result.message);
    }
}
