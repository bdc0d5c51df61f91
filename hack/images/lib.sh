# Shared by hack/images/{build,operator,import,check}: where the image cache lives, how a
# recipe is hashed, and how a root filesystem becomes an image archive. Sourced, not run.
# The caller sets $here to hack/images.
# shellcheck shell=bash source-path=SCRIPTDIR
# shellcheck disable=SC2034,SC2154 # $here comes from, and the variables go to, the sourcing script

# shellcheck source=images.env
source "$here/images.env"

cache=${IMAGES_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/webapp-operator/images}

log() { printf '[images] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# One build at a time per cache: parallel callers (say, two clusters coming up) wait for
# the first instead of building the same image twice.
take_lock() {
  mkdir -p "$cache"
  exec 8>"$cache/.lock"
  flock 8
}

# hash_of <path>...: a short hash of the files' names and contents (directories taken
# recursively), plus the extra words in $HASH_EXTRA. Keys the cache: a changed recipe
# builds a new archive, an unchanged one is never rebuilt.
hash_of() {
  local files
  files=$(find "$@" -type f -not -name '*~' | LC_ALL=C sort)
  # shellcheck disable=SC2086 # one file name a line, none with spaces (our own tree)
  { sha256sum $files | sed "s|$here/||"; printf '%s\n' "${HASH_EXTRA:-}"; } | sha256sum | cut -c1-16
}

# oci_arch: the OCI architecture of this machine (Debian and OCI agree on amd64, arm64).
oci_arch() { dpkg --print-architecture; }

# apt_sources: the apt sources file the images' packages come from: this machine's own
# (so the images get what the machine's apt is set up to reach, security updates included),
# unless IMAGES_APT_SOURCES names another. mmdebstrap pastes it into the build's sources.
apt_sources() {
  local file=${IMAGES_APT_SOURCES:-}
  if [ -z "$file" ]; then
    for file in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
      [ -s "$file" ] && break
    done
  fi
  [ -s "$file" ] || die "no apt sources file found; set IMAGES_APT_SOURCES"
  grep -q "$DEBIAN_SUITE" "$file" || die "$file has no $DEBIAN_SUITE source; set IMAGES_APT_SOURCES"
  echo "$file"
}

# oci_archive <out.tar> <config.json> <layer.tar>... -- <name>...
# Writes an OCI image-layout archive of one image: the given layers (uncompressed tars,
# bottom first, gzipped here), the image config's `config` object from <config.json>, and
# one index entry per name. `io.containerd.image.name` carries the full name, which is
# what `ctr images import` names the image by. Also writes <out>.index.json, a copy of the
# index, so `import` can compare digests without reading the archive. Deterministic: the
# same inputs give the same digests.
oci_archive() {
  local out=$1 config=$2; shift 2
  local work layer diff_id digest size arch layers_json='[]' diff_ids='[]'
  work=$(mktemp -d "$out.XXXXXX")
  mkdir -p "$work/blobs/sha256"
  arch=$(oci_arch)
  while [ "$1" != -- ]; do
    layer=$1; shift
    diff_id=sha256:$(sha256sum <"$layer" | cut -d' ' -f1)
    gzip -n -6 <"$layer" >"$work/layer.gz"
    digest=$(sha256sum <"$work/layer.gz" | cut -d' ' -f1)
    size=$(stat -c %s "$work/layer.gz")
    mv "$work/layer.gz" "$work/blobs/sha256/$digest"
    layers_json=$(jq -c --arg d "sha256:$digest" --argjson s "$size" \
      '. + [{mediaType: "application/vnd.oci.image.layer.v1.tar+gzip", digest: $d, size: $s}]' <<<"$layers_json")
    diff_ids=$(jq -c --arg d "$diff_id" '. + [$d]' <<<"$diff_ids")
  done
  shift
  # The config blob: a fixed creation time keeps the digest a function of the inputs.
  jq -c --arg arch "$arch" --argjson diff "$diff_ids" \
    '{created: "1970-01-01T00:00:00Z", architecture: $arch, os: "linux", config: .,
      rootfs: {type: "layers", diff_ids: $diff}}' "$config" >"$work/config.json"
  local config_digest config_size manifest_digest manifest_size
  config_digest=$(sha256sum <"$work/config.json" | cut -d' ' -f1)
  config_size=$(stat -c %s "$work/config.json")
  mv "$work/config.json" "$work/blobs/sha256/$config_digest"
  jq -nc --arg d "sha256:$config_digest" --argjson s "$config_size" --argjson layers "$layers_json" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.manifest.v1+json",
      config: {mediaType: "application/vnd.oci.image.config.v1+json", digest: $d, size: $s},
      layers: $layers}' >"$work/manifest.json"
  manifest_digest=$(sha256sum <"$work/manifest.json" | cut -d' ' -f1)
  manifest_size=$(stat -c %s "$work/manifest.json")
  mv "$work/manifest.json" "$work/blobs/sha256/$manifest_digest"
  printf '%s\n' "$@" | jq -R . | jq -sc --arg d "sha256:$manifest_digest" --argjson s "$manifest_size" --arg arch "$arch" \
    '{schemaVersion: 2, mediaType: "application/vnd.oci.image.index.v1+json",
      manifests: [.[] | {mediaType: "application/vnd.oci.image.manifest.v1+json", digest: $d, size: $s,
        platform: {architecture: $arch, os: "linux"},
        annotations: {"io.containerd.image.name": ., "org.opencontainers.image.ref.name": (split(":") | last)}}]}' \
    >"$work/index.json"
  printf '{"imageLayoutVersion":"1.0.0"}' >"$work/oci-layout"
  tar -C "$work" --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -cf "$out.tmp" oci-layout index.json blobs
  cp "$work/index.json" "$out.index.json"
  mv "$out.tmp" "$out"
  rm -rf "$work"
}

# full_name <name>: the name as containerd and kubelet spell it: `nginx:1.21` is
# docker.io/library/nginx:1.21, `me/app` is docker.io/me/app:latest.
full_name() {
  local name=$1 first=${1%%/*}
  if [[ $name != */* ]]; then
    name=docker.io/library/$name
  elif [[ $first != *.* && $first != *:* && $first != localhost ]]; then
    name=docker.io/$name
  fi
  [[ ${name##*/} == *:* ]] || name+=:latest
  echo "$name"
}

# archive_size <archive.tar>: its size, human readable.
archive_size() { du -h "$1" | cut -f1; }
