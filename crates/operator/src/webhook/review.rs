//! One ConversionReview: every object converted to the desired version, or a failure
//! that names the object and why. Pure; the server only moves bytes in and out.

use kube::core::Status;
use kube::core::conversion::{ConversionRequest, ConversionResponse, ConversionReview};
use webapp_api::podmanager::conversion::convert;

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
        match convert(object.clone(), &desired) {
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

#[cfg(test)]
mod tests {
    use serde_json::{Value, json};

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
    fn a_bad_object_fails_the_review_with_its_name_and_reason() {
        let mut bad = v1("broken");
        bad["metadata"]["annotations"] = json!({"apps.mycompany.com/v2-template": "{"});
        let response = answer(&review("apps.mycompany.com/v2", vec![v1("a"), bad])).unwrap().response.unwrap();
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
