//! The control plane's own CPU time: what a contender's convergence cost the processes
//! that serve it (kube-apiserver, etcd, kube-controller-manager, kube-scheduler, kwok),
//! read from `/proc` when they run on this machine, as the project's local control
//! plane does. Every contender waits on these processes, which share the machine's
//! cores with it: their CPU per WebApp is what an operator's requests and watches add
//! to the floor's, and so what its convergence time is made of.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::process::usage;

/// The components, by the file name of their binary.
const COMPONENTS: [&str; 5] =
    ["kube-apiserver", "etcd", "kube-controller-manager", "kube-scheduler", "kwok-controller"];

/// The processes of one local control plane.
#[derive(Clone, Debug, Default)]
pub struct ControlPlane {
    processes: Vec<(&'static str, u32)>,
}

impl ControlPlane {
    /// The control plane whose kube-apiserver serves `port` (`--secure-port=<port>`):
    /// it and the components started from the same directory. None when it does not
    /// run here (a remote cluster), and then [`ControlPlane::cpu`] says nothing.
    pub fn serving(port: u16) -> Self {
        let cmdlines: Vec<(u32, Vec<String>)> = std::fs::read_dir("/proc")
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|entry| {
                let pid = entry.file_name().to_str()?.parse().ok()?;
                let raw = std::fs::read(entry.path().join("cmdline")).ok()?;
                let args = raw.split(|b| *b == 0).filter(|a| !a.is_empty());
                Some((pid, args.map(|a| String::from_utf8_lossy(a).into_owned()).collect()))
            })
            .collect();
        let Some(dir) = cmdlines.iter().find_map(|(_, args)| apiserver_dir(args, port)) else {
            return ControlPlane::default();
        };
        let processes = cmdlines.iter().filter_map(|(pid, args)| Some((component_in(args, &dir)?, *pid))).collect();
        ControlPlane { processes }
    }

    /// The CPU time each component has used so far, or `None` when none was found or
    /// one has gone (a control plane restarted meanwhile: its new processes' time would
    /// not difference with the old ones').
    pub fn cpu(&self) -> Option<Cpu> {
        let mut seconds = BTreeMap::new();
        for (component, pid) in &self.processes {
            let used = usage(*pid).ok()?.cpu_seconds;
            *seconds.entry((*component).to_owned()).or_insert(0.0) += used;
        }
        (!seconds.is_empty()).then_some(Cpu(seconds))
    }
}

/// The directory of the binary of `args` when it is the kube-apiserver serving `port`.
fn apiserver_dir(args: &[String], port: u16) -> Option<String> {
    let (dir, name) = args.first()?.rsplit_once('/')?;
    let serves = args.iter().any(|a| a.strip_prefix("--secure-port=") == Some(&port.to_string()));
    (name == "kube-apiserver" && serves).then(|| dir.to_owned())
}

/// The component of `args` when its binary was started from `dir`.
fn component_in(args: &[String], dir: &str) -> Option<&'static str> {
    let (from, name) = args.first()?.rsplit_once('/')?;
    (from == dir).then(|| COMPONENTS.iter().find(|c| **c == name).copied()).flatten()
}

/// CPU seconds by component.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cpu(pub BTreeMap<String, f64>);

impl Cpu {
    /// What was used from `before` to `self`, or `None` when the two do not read the
    /// same components (a component missing from either cannot be differenced).
    pub fn since(&self, before: &Cpu) -> Option<Cpu> {
        if self.0.len() != before.0.len() {
            return None;
        }
        let used = self.0.iter().map(|(name, now)| Some((name.clone(), now - before.0.get(name)?)));
        used.collect::<Option<BTreeMap<_, _>>>().map(Cpu)
    }

    /// All components together.
    pub fn total(&self) -> f64 {
        self.0.values().sum()
    }

    /// `41.2 s (kube-apiserver 20.1, etcd 6.3, ...)`, the largest first.
    pub fn describe(&self) -> String {
        let mut parts: Vec<(&String, &f64)> = self.0.iter().collect();
        parts.sort_by(|a, b| b.1.total_cmp(a.1));
        let mut text = format!("{:.1} s (", self.total());
        for (i, (name, seconds)) in parts.iter().enumerate() {
            let _ = write!(text, "{}{name} {seconds:.1}", if i == 0 { "" } else { ", " });
        }
        text + ")"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &str) -> Vec<String> {
        line.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn the_components_are_those_started_beside_the_apiserver_of_the_port() {
        let ours = "/c/clusters/bench/bin";
        let apiserver = args(&format!("{ours}/kube-apiserver --etcd-servers=x --secure-port=32764"));
        assert_eq!(apiserver_dir(&apiserver, 32764).as_deref(), Some(ours));
        assert_eq!(apiserver_dir(&apiserver, 6443), None, "another cluster's");
        assert_eq!(apiserver_dir(&args("/usr/bin/etcd --secure-port=32764"), 32764), None, "not an apiserver");

        assert_eq!(component_in(&args(&format!("{ours}/etcd --name=node0")), ours), Some("etcd"));
        assert_eq!(component_in(&args(&format!("{ours}/kwok-controller")), ours), Some("kwok-controller"));
        assert_eq!(component_in(&args("/c/clusters/test/bin/etcd"), ours), None, "the test cluster's etcd");
        assert_eq!(component_in(&args(&format!("{ours}/kubectl get pods")), ours), None, "not a component");
    }

    #[test]
    fn cpu_is_differenced_and_described_largest_first() {
        let cpu = |pairs: &[(&str, f64)]| Cpu(pairs.iter().map(|(n, s)| ((*n).to_owned(), *s)).collect());
        let before = cpu(&[("etcd", 1.0), ("kube-apiserver", 2.0), ("kube-scheduler", 0.0)]);
        let after = cpu(&[("etcd", 4.0), ("kube-apiserver", 12.5), ("kube-scheduler", 0.5)]);
        let used = after.since(&before).expect("the same components");
        assert_eq!(used, cpu(&[("etcd", 3.0), ("kube-apiserver", 10.5), ("kube-scheduler", 0.5)]));
        assert_eq!(used.total(), 14.0);
        assert_eq!(after.since(&cpu(&[("etcd", 1.0), ("kube-apiserver", 2.0)])), None, "one missing before");
        assert_eq!(
            cpu(&[("etcd", 1.0), ("kwok-controller", 1.0)]).since(&cpu(&[("etcd", 0.0), ("kube-apiserver", 0.0)])),
            None
        );
        assert_eq!(used.describe(), "14.0 s (kube-apiserver 10.5, etcd 3.0, kube-scheduler 0.5)");
    }
}
