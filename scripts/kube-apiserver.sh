#!/usr/bin/env bash
# Build real Kubernetes binaries and etcd from the Go module proxy: the orchestrator's tests use
# kube-apiserver + etcd, the single-node cluster (scripts/cluster.sh) uses all of them.
#   scripts/kube-apiserver.sh apiserver   $BIN/kube-apiserver-<version> (+ $BIN/kube-apiserver link)
#   scripts/kube-apiserver.sh node        kube-apiserver, kube-controller-manager, kube-scheduler,
#                                         kubelet, kube-proxy and kubectl, in one `go build`
#   scripts/kube-apiserver.sh etcd        $BIN/etcd-<version>           (+ $BIN/etcd link)
#   scripts/kube-apiserver.sh all         etcd and every Kubernetes binary (the default)
#
# k8s.io/kubernetes publishes its go.mod with the staging modules (k8s.io/api, client-go, ...) at
# v0.0.0 and `replace`s them with ./staging paths, so `go install k8s.io/kubernetes/...@v1.x` is
# refused. The known way round: a small wrapper module (in the cache, never in the repository) that
# requires k8s.io/kubernetes v1.X.Y and replaces every v0.0.0 staging module with its published
# v0.X.Y; then `go build k8s.io/kubernetes/cmd/kube-apiserver`. etcd's server module has the same
# shape (replace directives to ../api etc.), so it is built through a wrapper module too.
# Binaries are cached by version: a second run is a no-op.
set -euo pipefail

CACHE="${IOTPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotpipe}"
BIN="$CACHE/bin"
KUBE_VERSION="${KUBE_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
mkdir -p "$BIN"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
need_go() { command -v go >/dev/null || { echo "$1: the Go toolchain is needed (put 'go' on PATH)" >&2; exit 1; }; }

# wrapper <dir> <module> <version> <replace lines...>: a go.mod requiring <module>@<version>.
wrapper() {
  local dir="$1" module="$2" version="$3"
  shift 3
  mkdir -p "$dir"
  {
    printf 'module iotpipe.local/build\n\ngo 1.25\n\nrequire %s %s\n' "$module" "$version"
    if [ $# -gt 0 ]; then printf '\nreplace (\n'; printf '\t%s\n' "$@"; printf ')\n'; fi
  } >"$dir/go.mod"
}

# Link $BIN/<name> to the versioned binary so callers can use the plain name.
publish() { mv -f "$1.tmp" "$1"; ln -sf "$(basename "$1")" "$BIN/$2"; }

NODE_COMPONENTS=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl)

# kubernetes <component...>: build the components missing from $BIN (one `go build`, so the shared
# packages compile once) and link every one of them to its plain name.
kubernetes() {
  local missing=() c
  for c in "$@"; do [ -x "$BIN/$c-$KUBE_VERSION" ] || missing+=("$c"); done
  if [ ${#missing[@]} -gt 0 ]; then
    need_go "${missing[0]}"
    local minor="v0.${KUBE_VERSION#v1.}" dir="$CACHE/build/kubernetes-$KUBE_VERSION" gomod
    say "building ${missing[*]} $KUBE_VERSION through a wrapper module (staging modules at $minor; slow)"
    gomod=$(go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" |
      python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("GoMod") or sys.exit(m.get("Error", "download failed")))')
    # Every staging module: the require lines pinned at v0.0.0 in kubernetes' own go.mod.
    mapfile -t staging < <(awk '$2 == "v0.0.0" && $1 ~ /^k8s\.io\// {print $1}' "$gomod" | sort -u)
    [ ${#staging[@]} -gt 0 ] || { echo "kubernetes: no staging modules found in $gomod" >&2; exit 1; }
    local replaces=() m pkgs=()
    for m in "${staging[@]}"; do replaces+=("$m => $m $minor"); done
    for c in "${missing[@]}"; do pkgs+=("k8s.io/kubernetes/cmd/$c"); done
    wrapper "$dir" k8s.io/kubernetes "$KUBE_VERSION" "${replaces[@]}"
    rm -rf "$dir/out" && mkdir -p "$dir/out"
    (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(cut -d. -f2 <<<"$KUBE_VERSION")" \
      -o out/ "${pkgs[@]}")
    for c in "${missing[@]}"; do mv -f "$dir/out/$c" "$BIN/$c-$KUBE_VERSION.tmp"; done
  fi
  for c in "$@"; do
    if [ -e "$BIN/$c-$KUBE_VERSION.tmp" ]; then publish "$BIN/$c-$KUBE_VERSION" "$c"; else ln -sf "$c-$KUBE_VERSION" "$BIN/$c"; fi
  done
}

etcd() {
  local out="$BIN/etcd-$ETCD_VERSION"
  if [ -x "$out" ]; then ln -sf "$(basename "$out")" "$BIN/etcd"; return 0; fi
  need_go etcd
  local dir="$CACHE/build/etcd-$ETCD_VERSION"
  say "building etcd $ETCD_VERSION through a wrapper module"
  wrapper "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION"
  (cd "$dir" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" \
    -o "$out.tmp" go.etcd.io/etcd/server/v3)
  publish "$out" etcd
}

case "${1:-all}" in
  apiserver | kube-apiserver) kubernetes kube-apiserver ;;
  node) kubernetes "${NODE_COMPONENTS[@]}" ;;
  etcd) etcd ;;
  all) etcd; kubernetes "${NODE_COMPONENTS[@]}" ;;
  *) echo "usage: $0 [apiserver|node|etcd|all]" >&2; exit 2 ;;
esac
