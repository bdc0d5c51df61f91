# Shared by hack/cluster/{up,down,env}: where the local control plane lives. Sourced, not run.
# The caller sets $here to hack/cluster.
# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034,SC2154 # $here comes from, and the variables go to, the sourcing script

# shellcheck source=versions.env
source "$here/versions.env"

cache=${CLUSTER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/webapp-operator/cluster}
# Which Kubernetes (CLUSTER_KUBE): KUBE_VERSION (default), or the oldest supported,
# KUBE_OLDEST_VERSION (oldest; `make test-oldest`). The oldest is built from its own module
# (k8s-oldest/) and linked from its own bin dir, so building or starting it never swaps the
# binaries under a default cluster; its cluster is named apart unless CLUSTER_NAME says.
case ${CLUSTER_KUBE:-default} in
  default)
    kube_mod=$here/k8s
    bin=$cache/bin # the same directory hack/cluster/build prints
    name=${CLUSTER_NAME:-webapp-operator}
    ;;
  oldest)
    KUBE_VERSION=$KUBE_OLDEST_VERSION
    kube_mod=$here/k8s-oldest
    bin=$cache/bin-oldest
    name=${CLUSTER_NAME:-webapp-operator-oldest}
    ;;
  *)
    printf '[cluster] CLUSTER_KUBE=%s: expected default or oldest\n' "$CLUSTER_KUBE" >&2
    exit 2
    ;;
esac
# kwokctl keeps each cluster (config, pki, etcd data, pids, logs) in $KWOK_WORKDIR/clusters/<name>.
# Keeping it under our cache rather than ~/.kwok means kwokctl never reads a user's ~/.kwok/kwok.yaml.
export KWOK_WORKDIR=$cache/work
cluster_dir=$KWOK_WORKDIR/clusters/$name
# Our own kubeconfig, passed to kwokctl --kubeconfig, so ~/.kube/config is never touched.
kubeconfig=$cache/$name.kubeconfig
# The profile: fake kwok nodes (default), or one real node that runs containers
# (CLUSTER_REAL_NODE=1: no kwok controller, no fake nodes; see node/up).
real_node=${CLUSTER_REAL_NODE:-0}
# The processes kwokctl starts, by the names of their pid files (and of their links in $cluster_dir/bin).
if [ "$real_node" = 1 ]; then
  components=(etcd kube-apiserver kube-controller-manager kube-scheduler)
else
  components=(etcd kube-apiserver kube-controller-manager kube-scheduler kwok-controller)
fi

log() { printf '[cluster] %s\n' "$*" >&2; }

# One up/down at a time per cluster: concurrent callers (say, parallel test binaries) wait
# for the first one instead of racing it. `up` calls `down` while it holds the lock.
# Commands that may leave processes behind (kwokctl) must run with `9>&-`, or the cluster's
# processes would inherit the lock and hold it forever.
take_lock() {
  [ -z "${CLUSTER_LOCK_HELD:-}" ] || return 0
  mkdir -p "$cache"
  exec 9>"$cache/$name.lock"
  flock 9
  export CLUSTER_LOCK_HELD=1
}

# is_ours <pid> [component]: the process is a component (that one) of this cluster. kwokctl
# starts every component inside $cluster_dir; the command name keeps a user's shell that
# sits there out (comm is cut to 15 characters: kube-controller-manager is kube-controller).
is_ours() {
  local comm
  [ "/proc/$1/cwd" -ef "$cluster_dir" ] 2>/dev/null || return 1
  read -r comm <"/proc/$1/comm" 2>/dev/null || return 1
  if [ -n "${2:-}" ]; then [ "$comm" = "${2:0:15}" ]; return; fi
  case $comm in
    etcd | kube-apiserver | kube-controller | kube-scheduler | kwok-controller) return 0 ;;
  esac
  return 1
}

# pid_of <component>: prints the pid of its live process, else fails. kwokctl trusts its
# pid files blindly (and `kwokctl delete` SIGKILLs them), but after a reboot a pid may
# belong to an unrelated process; a zombie has no cwd, so it does not count either.
pid_of() {
  local pid
  pid=$(cat "$cluster_dir/pids/$1.pid" 2>/dev/null) || return 1
  [ -n "$pid" ] && is_ours "$pid" "$1" || return 1
  echo "$pid"
}

# Makes every pid file name the live process of its component, or removes it: kwokctl then
# restarts exactly the components that are down, never starts a second copy of one that
# lost its pid file (it would fail on the port in use), and never kills a stranger.
fix_pid_files() {
  local c d
  for c in "${components[@]}"; do
    pid_of "$c" >/dev/null && continue
    rm -f "$cluster_dir/pids/$c.pid"
    for d in /proc/[0-9]*; do
      if is_ours "${d#/proc/}" "$c"; then
        printf '%s' "${d#/proc/}" >"$cluster_dir/pids/$c.pid"
        break
      fi
    done
  done
}

# Every live component process of this cluster, pid files or not (catches strays).
cluster_pids() {
  local d
  for d in /proc/[0-9]*; do
    if is_ours "${d#/proc/}"; then echo "${d#/proc/}"; fi
  done
}

# The ports kwokctl picked for this cluster at creation (it reuses them on every start).
cluster_ports() {
  sed -n 's/^\s*[a-zA-Z]*Port: \([0-9][0-9]*\)$/\1/p' "$cluster_dir/kwok.yaml" 2>/dev/null || true
}

# foreign_ports <port>...: those another process listens on, e.g. taken while we were down.
foreign_ports() {
  local port pid
  for port in "$@"; do
    ss -Hltn "sport = :$port" 2>/dev/null | grep -q . || continue
    pid=$(ss -Hltnp "sport = :$port" 2>/dev/null | grep -o 'pid=[0-9]*' | head -n1)
    if [ -z "$pid" ] || ! is_ours "${pid#pid=}"; then echo "$port"; fi
  done
}
