//! The pure plan of a Memcached: memcached as a non-root process listening on
//! `spec.port`, its cache sized from the memory limit, and a headless Service whose DNS
//! name resolves to every ready pod (memcached clients hash keys over the node list
//! themselves, so a load-balancing virtual IP would be wrong).

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, PodSecurityContext, Probe, SecurityContext, ServicePort, TCPSocketAction,
};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use kube::ResourceExt;
use reconcile_kit::workload::{Exposure, Shape};
use reconcile_kit::{quantity, security};
use webapp_api::Memcached;

/// The `app.kubernetes.io/name` of Memcached children.
pub const APP: &str = "memcached";
/// Name of the container, and of its port (as in the seed).
pub const CONTAINER: &str = "memcached";
/// The uid and gid of the `memcache` user of the official image.
pub const MEMCACHE_UID: i64 = 11211;
/// Share of the memory limit given to the cache; the rest holds connections and the
/// process itself.
const CACHE_SHARE: f64 = 0.8;

/// The Deployment and Service of `memcached`, or why its resources cannot be used.
pub fn shape(memcached: &Memcached) -> Result<Shape, String> {
    let spec = &memcached.spec;
    let port = IntOrString::Int(spec.port);
    let probe = Probe {
        tcp_socket: Some(TCPSocketAction { port: port.clone(), ..TCPSocketAction::default() }),
        ..Probe::default()
    };
    let container = Container {
        name: CONTAINER.into(),
        image: Some(spec.image.clone()),
        args: Some(args(memcached)?),
        ports: Some(vec![ContainerPort {
            name: Some(CONTAINER.into()),
            container_port: spec.port,
            ..ContainerPort::default()
        }]),
        resources: spec.resources.as_deref().cloned(),
        readiness_probe: Some(probe.clone()),
        liveness_probe: Some(probe),
        // A read-only root: memcached writes nothing to disk.
        security_context: Some(SecurityContext { read_only_root_filesystem: Some(true), ..security::unprivileged() }),
        ..Container::default()
    };
    Ok(Shape {
        replicas: Some(spec.size),
        container,
        security_context: Some(PodSecurityContext {
            run_as_non_root: Some(true),
            run_as_user: Some(MEMCACHE_UID),
            run_as_group: Some(MEMCACHE_UID),
            // With the container's settings, what Pod Security `restricted` asks for:
            // without a seccomp profile, restricted namespaces refuse the pods.
            seccomp_profile: Some(security::runtime_default()),
            ..PodSecurityContext::default()
        }),
        exposure: Exposure::Headless,
        ports: vec![ServicePort {
            name: Some(CONTAINER.into()),
            port: spec.port,
            target_port: Some(port),
            protocol: Some("TCP".into()),
            ..ServicePort::default()
        }],
        // The source document's labels (memcached_controller.go, labelsForMemcached), so
        // its `kubectl get pods -l app=memcached` finds the pods.
        pod_labels: [("app".to_owned(), "memcached".to_owned()), ("memcached_cr".to_owned(), memcached.name_any())]
            .into(),
    })
}

/// memcached's command line: the port, and the cache size in MiB from the memory limit
/// when there is one (memcached's default of 64 MiB otherwise).
pub fn args(memcached: &Memcached) -> Result<Vec<String>, String> {
    let mut args = vec!["-p".to_owned(), memcached.spec.port.to_string()];
    let limit = memcached.spec.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory"));
    if let Some(limit) = limit {
        let bytes = quantity::parse(&limit.0)
            .ok_or_else(|| format!("resources.limits.memory: {:?} is not a quantity (example: 256Mi)", limit.0))?;
        let mebibytes = (bytes * CACHE_SHARE / 1_048_576.0).floor().max(1.0);
        args.push("-m".to_owned());
        args.push(format!("{mebibytes}"));
    }
    Ok(args)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use k8s_openapi::api::core::v1::ResourceRequirements;
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
    use proptest::prelude::*;
    use webapp_api::MemcachedSpec;

    use super::*;

    fn memcached(size: i32, memory: Option<&str>) -> Memcached {
        let resources = memory.map(|m| {
            Box::new(ResourceRequirements {
                limits: Some(BTreeMap::from([("memory".to_owned(), Quantity(m.to_owned()))])),
                ..ResourceRequirements::default()
            })
        });
        Memcached::new(
            "memcached-sample",
            MemcachedSpec { size, image: "memcached:1.6".into(), port: 11211, resources },
        )
    }

    #[test]
    fn size_image_and_port_make_a_headless_non_root_memcached() {
        let shape = shape(&memcached(3, None)).unwrap();
        assert_eq!(shape.replicas, Some(3));
        assert_eq!(shape.exposure, Exposure::Headless);
        let port = &shape.container.ports.as_ref().unwrap()[0];
        assert_eq!((port.name.as_deref(), port.container_port), (Some("memcached"), 11211));
        assert_eq!(shape.container.args.as_deref(), Some(&["-p".to_owned(), "11211".to_owned()][..]));
        let pod = shape.security_context.unwrap();
        assert_eq!((pod.run_as_non_root, pod.run_as_user), (Some(true), Some(MEMCACHE_UID)));
        assert!(shape.container.readiness_probe.unwrap().tcp_socket.is_some());
    }

    #[test]
    fn the_cache_is_sized_from_the_memory_limit_with_headroom() {
        assert_eq!(args(&memcached(1, Some("256Mi"))).unwrap(), ["-p", "11211", "-m", "204"]);
        assert_eq!(args(&memcached(1, Some("1Gi"))).unwrap()[3], "819");
        assert_eq!(args(&memcached(1, Some("1"))).unwrap()[3], "1", "never below 1 MiB");
        assert!(args(&memcached(1, Some("lots"))).unwrap_err().contains("not a quantity"));
    }

    proptest! {
        #[test]
        fn no_spec_makes_the_plan_panic(size in 1..=10i32, memory in proptest::option::of("[0-9]{0,6}(Ki|Mi|Gi|m|k|)")) {
            let _ = shape(&memcached(size, memory.as_deref()));
        }
    }
}
