#!/usr/bin/env bash
# The cluster's add-ons, every part built here from the registries (no image is pulled):
#   CoreDNS                 kube-system/coredns, Service kube-dns at $CLUSTER_DNS (cluster.local only)
#   Kubeflow Spark operator namespace spark-operator, its chart from its Go module with
#                           spark-operator/values.yaml (controller + webhook)
#   prometheus-operator     namespace monitoring, its CRDs from its Go module
#   Prometheus              monitoring/iotpipe (k8s/addons/prometheus.yaml), built from its Go module:
#                           every ServiceMonitor, PodMonitor and PrometheusRule of namespace iotpipe
#   Pushgateway             monitoring/pushgateway (k8s/addons/pushgateway.yaml), from its Go module:
#                           where the batch jobs push their metrics
#
#   scripts/addons.sh build        the binaries (scripts/tools.sh coredns spark-operator prometheus-operator
#                                  prometheus-server pushgateway)
#   scripts/addons.sh images [N..] the images FROM the local bases (iotpipe/debian:bookworm; the Spark
#                                  operator FROM iotpipe/spark:dev): coredns, prometheus-operator,
#                                  prometheus-config-reloader, prometheus, pushgateway, spark-operator
#                                  (default: all)
#   scripts/addons.sh list-images  the add-on images, one a line (scripts/cluster.sh load-images takes them)
#   scripts/addons.sh load         scripts/cluster.sh load-images with every add-on image
#   scripts/addons.sh install      install (or upgrade) them into the cluster of $KUBECONFIG (--help)
#   scripts/addons.sh wait         wait until every add-on is Ready (ADDONS_TIMEOUT, default 300 s)
#   scripts/addons.sh uninstall    remove them again (the CRDs stay, and with them any custom resources)
#   scripts/addons.sh template-spark-operator [helm args]  the Spark operator release install makes, rendered
#
# Versions are the ones scripts/tools.sh pins; the manifests in k8s/addons/ name the same image
# tags (tests/addons checks that). Images use imagePullPolicy Never: the node never contacts a
# registry, so the images must be loaded first (`scripts/addons.sh load`).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${IOTPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotpipe}"
BIN="$CACHE/bin"
ADDONS=k8s/addons
CLUSTER_DNS="${CLUSTER_DNS:-10.96.0.10}"
TIMEOUT="${ADDONS_TIMEOUT:-300}"
export PATH="$BIN:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "addons: $*" >&2; exit 1; }
usage() { sed -n '2,24p' "$0" | sed 's/^# \{0,1\}//'; }

# A version pinned in scripts/tools.sh (the one place the add-on versions are written).
pin() {
  local v
  v=$(sed -n "s/^$1=//p" scripts/tools.sh)
  [ -n "$v" ] || die "scripts/tools.sh pins no $1"
  echo "$v"
}
COREDNS_VERSION=$(pin COREDNS_VERSION)
SPARK_OPERATOR_VERSION=$(pin SPARK_OPERATOR_VERSION)
PROMETHEUS_OPERATOR_VERSION=$(pin PROMETHEUS_OPERATOR_VERSION)
PROMETHEUS_SERVER_VERSION=$(pin PROMETHEUS_SERVER_VERSION)
PUSHGATEWAY_VERSION=$(pin PUSHGATEWAY_VERSION)
SPARK_IMAGE="${SPARK_IMAGE:-iotpipe/spark:dev}"
BASE_IMAGE="${BASE_IMAGE:-iotpipe/debian:bookworm}"

ADDON_NAMES=(coredns prometheus-operator prometheus-config-reloader prometheus pushgateway spark-operator)

image_of() {
  case "$1" in
    coredns) echo "iotpipe/coredns:$COREDNS_VERSION" ;;
    prometheus-operator) echo "iotpipe/prometheus-operator:$PROMETHEUS_OPERATOR_VERSION" ;;
    prometheus-config-reloader) echo "iotpipe/prometheus-config-reloader:$PROMETHEUS_OPERATOR_VERSION" ;;
    prometheus) echo "iotpipe/prometheus:$PROMETHEUS_SERVER_VERSION" ;;
    pushgateway) echo "iotpipe/pushgateway:$PUSHGATEWAY_VERSION" ;;
    spark-operator) echo "iotpipe/spark-operator:$SPARK_OPERATOR_VERSION" ;;
    *) die "no add-on image named $1 (one of: ${ADDON_NAMES[*]})" ;;
  esac
}

list_images() { local n; for n in "${ADDON_NAMES[@]}"; do image_of "$n"; done; }

build() {
  scripts/tools.sh coredns
  scripts/tools.sh spark-operator
  scripts/tools.sh prometheus-operator
  scripts/tools.sh prometheus-server
  scripts/tools.sh pushgateway
}

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

# image <name>: docker build k8s/addons/<name>/Dockerfile in a context of its own (the Dockerfile
# and, for the Go add-ons, the binary), so the repository's .dockerignore plays no part.
image() {
  local name="$1" tag ctx binary=""
  tag=$(image_of "$name")
  case "$name" in
    coredns) binary="coredns-$COREDNS_VERSION" ;;
    prometheus-operator | prometheus-config-reloader) binary="$name-$PROMETHEUS_OPERATOR_VERSION" ;;
    prometheus) binary="prometheus-server-$PROMETHEUS_SERVER_VERSION" ;;
    pushgateway) binary="pushgateway-$PUSHGATEWAY_VERSION" ;;
    spark-operator) binary="spark-operator-$SPARK_OPERATOR_VERSION" ;;
  esac
  local from="$BASE_IMAGE" arg="BASE"
  [ "$name" = spark-operator ] && from="$SPARK_IMAGE" arg="SPARK"
  have_image "$from" || die "$tag is built FROM $from, which is not there yet (scripts/images.sh builds it)"
  ctx="$CACHE/build/addon-images/$name"
  rm -rf "$ctx" && mkdir -p "$ctx"
  cp "$ADDONS/$name/Dockerfile" "$ctx/Dockerfile"
  if [ -n "$binary" ]; then
    [ -x "$BIN/$binary" ] || die "$BIN/$binary is missing: run scripts/addons.sh build"
    cp "$BIN/$binary" "$ctx/$name"
  fi
  say "docker build $tag (FROM $from)"
  docker build --network host -q --build-arg "$arg=$from" -t "$tag" "$ctx" >/dev/null
}

images() {
  local names=("$@") n
  [ ${#names[@]} -gt 0 ] || names=("${ADDON_NAMES[@]}")
  for n in "${names[@]}"; do image "$n"; done
}

# ---- install ------------------------------------------------------------------------------------

install_usage() {
  cat <<EOF
usage: scripts/addons.sh install

Installs (or upgrades) the add-ons into the cluster that \$KUBECONFIG points at (default:
$CACHE/cluster/kubeconfig, the one scripts/cluster.sh writes), in this order:
  1. CoreDNS: $ADDONS/coredns.yaml, the kube-dns Service at \$CLUSTER_DNS (now $CLUSTER_DNS)
  2. prometheus-operator $PROMETHEUS_OPERATOR_VERSION: its CRDs (the module's example/prometheus-operator-crd,
     applied server-side), then $ADDONS/prometheus-operator/operator.yaml
  3. Prometheus: $ADDONS/prometheus.yaml; the Pushgateway $PUSHGATEWAY_VERSION: $ADDONS/pushgateway.yaml
  4. the Spark operator $SPARK_OPERATOR_VERSION: the job namespace (k8s/namespace.yaml), then helm upgrade --install spark-operator <the chart in its Go
     module> -n spark-operator -f spark-operator/values.yaml, with the local image
     (docker.io/$(image_of spark-operator), pullPolicy Never)
The images must be in the node already (scripts/addons.sh load). Then: scripts/addons.sh wait.
Environment: KUBECONFIG, CLUSTER_DNS (default 10.96.0.10), IOTPIPE_CACHE.
EOF
}

# module_dir <module>@<version>: the module's source in the Go module cache (downloaded if missing).
module_dir() {
  command -v go >/dev/null || die "the Go toolchain is needed to fetch $1 (put 'go' on PATH)"
  go mod download -json "$1" |
    python3 -c 'import json, sys; m = json.load(sys.stdin); print(m.get("Dir") or sys.exit(m.get("Error", "download failed")))'
}

kube_env() {
  if [ -z "${KUBECONFIG:-}" ]; then
    [ -s "$CACHE/cluster/kubeconfig" ] || die "set KUBECONFIG (no cluster at $CACHE/cluster/kubeconfig)"
    export KUBECONFIG="$CACHE/cluster/kubeconfig"
  fi
  command -v kubectl >/dev/null || die "kubectl is missing (scripts/tools.sh cluster builds it)"
  kubectl version --request-timeout=10s >/dev/null 2>&1 || die "no API server answers for KUBECONFIG=$KUBECONFIG"
}

# wait_condition CONDITION SECONDS [kubectl args] OBJECT...: `kubectl wait` that also waits while
# an object has no status yet (a CRD just applied, a Prometheus the operator has not seen):
# there kubectl fails at once with ".status.conditions accessor error" instead of waiting.
wait_condition() {
  local condition=$1 seconds=$2 deadline
  shift 2
  deadline=$(( $(date +%s) + seconds ))
  until kubectl wait --for "condition=$condition" --timeout="${seconds}s" "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -lt "$deadline" ] || { kubectl wait --for "condition=$condition" --timeout=1s "$@"; die "not $condition in ${seconds}s: $*"; }
    sleep 2
  done
}

install() {
  case "${1:-}" in -h | --help) install_usage; return 0 ;; "") ;; *) install_usage >&2; exit 2 ;; esac
  kube_env
  command -v helm >/dev/null || die "helm is missing (scripts/tools.sh helm)"
  [[ "$CLUSTER_DNS" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]] || die "CLUSTER_DNS=$CLUSTER_DNS is not an IPv4 address"

  say "CoreDNS $COREDNS_VERSION (kube-dns at $CLUSTER_DNS)"
  sed "s/^  clusterIP: 10\.96\.0\.10$/  clusterIP: $CLUSTER_DNS/" "$ADDONS/coredns.yaml" | kubectl apply -f - >/dev/null

  local prom spark
  prom=$(module_dir "github.com/prometheus-operator/prometheus-operator@$PROMETHEUS_OPERATOR_VERSION")
  say "prometheus-operator $PROMETHEUS_OPERATOR_VERSION: CRDs, operator"
  # (server-side: the CRDs are larger than client-side apply's last-applied annotation allows)
  kubectl apply --server-side --force-conflicts --field-manager=iotpipe-addons \
    -f "$prom/example/prometheus-operator-crd/" >/dev/null
  wait_condition Established 60 \
    crd/prometheuses.monitoring.coreos.com crd/servicemonitors.monitoring.coreos.com \
    crd/podmonitors.monitoring.coreos.com crd/prometheusrules.monitoring.coreos.com
  kubectl apply -f "$ADDONS/prometheus-operator/operator.yaml" >/dev/null
  say "Prometheus monitoring/iotpipe"
  kubectl apply -f "$ADDONS/prometheus.yaml" >/dev/null
  say "Pushgateway $PUSHGATEWAY_VERSION monitoring/pushgateway"
  kubectl apply -f "$ADDONS/pushgateway.yaml" >/dev/null

  spark=$(module_dir "github.com/kubeflow/spark-operator/v2@$SPARK_OPERATOR_VERSION")
  say "Spark operator $SPARK_OPERATOR_VERSION (helm, spark-operator/values.yaml)"
  # Its chart puts the controller's and webhook's Roles into the job namespace, which must exist.
  kubectl apply -f k8s/namespace.yaml >/dev/null
  mapfile -t args < <(spark_operator_release "$spark")
  helm upgrade --install "${args[@]}" --create-namespace >/dev/null
}

# The Spark operator's release, one helm argument a line: name, chart, namespace, values (the
# project's spark-operator/values.yaml, then the local image).
spark_operator_release() {
  local image
  image=$(image_of spark-operator)
  printf '%s\n' spark-operator "$1/charts/spark-operator-chart" --namespace spark-operator \
    -f spark-operator/values.yaml --set image.registry=docker.io --set "image.repository=${image%:*}" \
    --set "image.tag=${image##*:}" --set image.pullPolicy=Never
}

# What install would give helm for the Spark operator, rendered (tests/addons validates it).
template() {
  local spark args
  spark=$(module_dir "github.com/kubeflow/spark-operator/v2@$SPARK_OPERATOR_VERSION")
  mapfile -t args < <(spark_operator_release "$spark")
  helm template "${args[@]}" "$@"
}

wait_ready() {
  kube_env
  say "waiting for the add-ons (up to ${TIMEOUT}s each)"
  kubectl -n kube-system rollout status deployment/coredns --timeout="${TIMEOUT}s"
  kubectl -n monitoring rollout status deployment/prometheus-operator --timeout="${TIMEOUT}s"
  kubectl -n monitoring rollout status deployment/pushgateway --timeout="${TIMEOUT}s"
  kubectl -n spark-operator rollout status deployment/spark-operator-controller --timeout="${TIMEOUT}s"
  kubectl -n spark-operator rollout status deployment/spark-operator-webhook --timeout="${TIMEOUT}s"
  wait_condition Available "$TIMEOUT" -n monitoring prometheus/iotpipe
}

uninstall() {
  kube_env
  helm uninstall spark-operator --namespace spark-operator --ignore-not-found >/dev/null 2>&1 || true
  kubectl delete --ignore-not-found -f "$ADDONS/pushgateway.yaml" >/dev/null 2>&1 || true
  kubectl delete --ignore-not-found -f "$ADDONS/prometheus.yaml" >/dev/null 2>&1 || true
  kubectl delete --ignore-not-found -f "$ADDONS/prometheus-operator/operator.yaml" >/dev/null
  kubectl delete --ignore-not-found -f "$ADDONS/coredns.yaml" >/dev/null
  kubectl delete namespace --ignore-not-found spark-operator >/dev/null
}

case "${1:-help}" in
  build) build ;;
  images) shift; images "$@" ;;
  list-images) list_images ;;
  load) mapfile -t all < <(list_images); scripts/cluster.sh load-images "${all[@]}" ;;
  install) shift; install "$@" ;;
  template-spark-operator) shift; template "$@" ;;
  wait) wait_ready ;;
  uninstall) uninstall ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
