//! The pure plan of a WebServer: one container serving `spec.port`, probed on it, and a
//! ClusterIP Service on the same port.

use k8s_openapi::api::core::v1::{Container, ContainerPort, Probe, ServicePort, TCPSocketAction};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use reconcile_kit::security;
use reconcile_kit::workload::{Exposure, Shape};
use webapp_api::WebServer;

/// The `app.kubernetes.io/name` of WebServer children.
pub const APP: &str = "webserver";
/// Name of the one container of a WebServer pod.
pub const CONTAINER: &str = "web";

/// The Deployment and Service of `webserver`.
pub fn shape(webserver: &WebServer) -> Shape {
    let spec = &webserver.spec;
    let port = IntOrString::Int(spec.port);
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        ports: Some(vec![ContainerPort { name: Some("http".into()), container_port: spec.port, ..Default::default() }]),
        readiness_probe: Some(Probe {
            tcp_socket: Some(TCPSocketAction { port: port.clone(), ..TCPSocketAction::default() }),
            ..Probe::default()
        }),
        security_context: Some(security::container_or_restricted(spec.security_context.as_deref())),
        ..Container::default()
    };
    Shape {
        replicas: Some(spec.replicas),
        container,
        security_context: None,
        exposure: Exposure::Typed("ClusterIP".into()),
        ports: vec![ServicePort {
            name: Some("http".into()),
            port: spec.port,
            target_port: Some(port),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }],
        pod_labels: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use webapp_api::WebServerSpec;

    use super::*;

    fn webserver(replicas: i32, image: &str, port: i32) -> WebServer {
        WebServer::new("my-webserver", WebServerSpec { replicas, image: image.into(), port, security_context: None })
    }

    #[test]
    fn replicas_image_and_port_go_to_the_pods_and_the_service() {
        let shape = shape(&webserver(3, "nginx:latest", 8080));
        assert_eq!(shape.replicas, Some(3));
        assert_eq!(shape.container.image.as_deref(), Some("nginx:latest"));
        assert_eq!(shape.container.ports.as_ref().unwrap()[0].container_port, 8080);
        let probe = shape.container.readiness_probe.unwrap().tcp_socket.unwrap();
        assert_eq!(probe.port, IntOrString::Int(8080));
        assert_eq!((shape.ports[0].port, shape.ports[0].target_port.clone()), (8080, Some(IntOrString::Int(8080))));
        assert_eq!(shape.exposure, Exposure::Typed("ClusterIP".into()));
    }

    proptest! {
        #[test]
        fn every_spec_maps_without_panicking(replicas in 1..=10i32, port in 1..=65535i32, image in "[a-z0-9:./-]{1,40}") {
            let shape = shape(&webserver(replicas, &image, port));
            prop_assert_eq!(shape.replicas, Some(replicas));
            prop_assert_eq!(shape.ports[0].port, port);
        }
    }
}
