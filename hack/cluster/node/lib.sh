# The real node of the local control plane (CLUSTER_REAL_NODE=1): where its state lives,
# its fixed network, and how its processes are found. Sourced by hack/cluster/node/{up,down}
# after hack/cluster/lib.sh (which sets $cache, $name, $cluster_dir, $kubeconfig, $bin).
# shellcheck shell=bash
# shellcheck disable=SC2034,SC2154 # variables go to, and come from, the sourcing scripts

# One real node per machine: kube-proxy's iptables chains and the pod bridge are host-wide,
# so two real nodes would fight over them. `up` takes a machine-wide lock (node_lock).
node_lock=$cache/real-node.lock
# Everything the node writes (containerd's root and state, kubelet's root dir, CNI's IP
# allocations, volumes, logs) lives here, apart from kwokctl's cluster dir so that
# deleting the cluster never rm -rf's a directory with mounts in it.
node_dir=$cache/nodes/$name
node_name=webapp-node
# The node's networks, never 10/8, 172.16/12 or 192.168/16. Pods get addresses from
# 198.18.123.0/24 (in 198.18.0.0/15, which RFC 2544 reserves for network tests and is
# never routed), on a bridge the node creates: every pod address is inside a network
# namespace the node made. Not link-local, though that was the plan: the API server
# refuses link-local endpoint addresses ("may not be in the link-local range
# (169.254.0.0/16, fe80::/10)"), so neither the kubernetes Service nor any pod behind a
# Service could have endpoints, and kubelet refuses a link-local node IP. Service
# addresses are virtual (kube-proxy translates them before they leave the host) and do
# stay link-local; their range is routed to the bridge, so a packet for a ClusterIP
# that kube-proxy has not translated yet goes nowhere instead of out of the machine.
bridge=wonode0
pod_cidr=198.18.123.0/24
node_ip=198.18.123.1
service_cidr=169.254.124.0/24
kubernetes_service_ip=169.254.124.1
# kubelet's API (logs, exec, port-forward), on the bridge address only.
kubelet_port=10250
# The sandbox image: hack/images/build makes it under this name (images.env names it once).
pause_image=$(
  # shellcheck source=../../images/images.env
  source "$here/../images/images.env" && echo "$PAUSE_IMAGE"
)
# Processes of the node, by the names they are started under (comm, cut to 15 chars).
node_components=(registry containerd kubelet kube-proxy coredns apiserver-proxy)

containerd_sock=$node_dir/containerd/containerd.sock
runc_root=$node_dir/runc

node_log() { printf '[node] %s\n' "$*" >&2; }

# is_node_process <pid>: the process runs in the node's dir (every node component is
# started there; shims and containers have their bundle or rootfs below it).
is_node_process() {
  local cwd
  cwd=$(readlink "/proc/$1/cwd" 2>/dev/null) || return 1
  case $cwd in "$node_dir" | "$node_dir"/*) return 0 ;; esac
  return 1
}

# node_pids: every live process of the node (components, shims, containers).
node_pids() {
  local d
  for d in /proc/[0-9]*; do
    if is_node_process "${d#/proc/}"; then echo "${d#/proc/}"; fi
  done
}

# node_mounts: mount points at or below the node dir, deepest first.
node_mounts() {
  awk -v dir="$node_dir" '$5 == dir || index($5, dir "/") == 1 {print $5}' /proc/self/mountinfo | sort -r
}

# node_cgroups: the node's cgroup directories (kubelet's cgroupRoot), deepest first.
cgroup_root=webapp-operator-node
node_cgroups() {
  local hierarchy
  for hierarchy in /sys/fs/cgroup/*/ /sys/fs/cgroup/unified/; do
    [ -d "$hierarchy$cgroup_root" ] || continue
    find "$hierarchy$cgroup_root" -depth -type d 2>/dev/null
  done
}
