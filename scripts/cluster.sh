#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, every part built from the registries:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy and kubectl
# (scripts/kube-apiserver.sh builds them from the Go module proxy), containerd + runc and the CNI
# plugins (Debian packages), and the pause image (k8s/pause, built by scripts/images.sh).
#
#   scripts/cluster.sh up                  start the cluster (idempotent); prints how to use it
#   scripts/cluster.sh down                stop what `up` started (by pid) and clean up its pods
#   scripts/cluster.sh status              what runs, and where
#   scripts/cluster.sh load-images IMG...  copy local docker images into the node's containerd
#   scripts/cluster.sh load-built IMG      the same for a skaffold build, under the name skaffold
#                                          deploys it by (<repository>:<image id>)
#   scripts/cluster.sh prepare             what the release needs besides the chart: the add-ons,
#                                          Secrets, PostgreSQL, volumes (skaffold's hook)
#   scripts/cluster.sh deploy              the built images into the node, prepare, then `helm
#                                          upgrade --install` with values-local.yaml; waits until
#                                          every pod is Ready
#   scripts/cluster.sh reset               remove the release and its data (Kafka, PostgreSQL,
#                                          the lake); the cluster and the add-ons stay
#   scripts/cluster.sh env                 the exports that point kubectl/helm at the cluster
#
# Addresses stay on this machine: the node's address (NODE_IP, default 10.250.0.1) is added to
# the loopback device, pods get 10.244.0.0/24 (CNI ptp + host-local: every pod is a network
# namespace with a veth routed by the host, no bridge), Services 10.96.0.0/16 (kube-proxy,
# iptables). Nothing here forwards or masquerades traffic to any other host.
# State lives in $IOTPIPE_CACHE/cluster (default ~/.cache/iotpipe/cluster), outside the clone.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${IOTPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotpipe}"
BIN="$CACHE/bin"
STATE="${IOTPIPE_CLUSTER_STATE:-$CACHE/cluster}"
RUN_DIR=/run/iotpipe-cluster
NODE_NAME="${NODE_NAME:-iotpipe-node}"
NODE_IP="${NODE_IP:-10.250.0.1}"
POD_CIDR=10.244.0.0/24
SERVICE_CIDR=10.96.0.0/16
API_SERVICE_IP=10.96.0.1
CLUSTER_DNS=10.96.0.10
API_PORT="${API_PORT:-6443}"
ETCD_PORT="${ETCD_PORT:-2479}"
CNI_BIN="${CNI_BIN:-/usr/lib/cni}"
PAUSE_IMAGE="${PAUSE_IMAGE:-docker.io/iotpipe/pause:3.10}"
CONTEXT=iotpipe-local
KUBECONFIG_FILE="$STATE/kubeconfig"
export PATH="$BIN:$PATH"

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "cluster: $*" >&2; exit 1; }

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; }

# ---- certificates ---------------------------------------------------------------------------

# cert <name> <CN> <O or ""> [SANs]: a key and a certificate signed by the cluster CA.
cert() {
  local name="$1" cn="$2" org="$3" sans="${4:-}" subj
  [ -s "$STATE/pki/$name.crt" ] && return 0
  subj="/CN=$cn"; [ -n "$org" ] && subj="/O=$org$subj"
  openssl genrsa -out "$STATE/pki/$name.key" 2048 2>/dev/null
  openssl req -new -key "$STATE/pki/$name.key" -subj "$subj" -out "$STATE/pki/$name.csr" 2>/dev/null
  local ext="$STATE/pki/$name.ext"
  {
    echo "basicConstraints=CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    [ -n "$sans" ] && echo "subjectAltName=$sans"
  } >"$ext"
  openssl x509 -req -in "$STATE/pki/$name.csr" -CA "$STATE/pki/ca.crt" -CAkey "$STATE/pki/ca.key" \
    -CAcreateserial -days 365 -sha256 -extfile "$ext" -out "$STATE/pki/$name.crt" 2>/dev/null
  rm -f "$STATE/pki/$name.csr" "$ext"
}

pki() {
  mkdir -p "$STATE/pki" && chmod 700 "$STATE/pki"
  if [ ! -s "$STATE/pki/ca.crt" ]; then
    say "cluster CA and certificates"
    openssl genrsa -out "$STATE/pki/ca.key" 2048 2>/dev/null
    openssl req -x509 -new -key "$STATE/pki/ca.key" -subj "/CN=iotpipe-local-ca" -days 3650 \
      -sha256 -out "$STATE/pki/ca.crt" 2>/dev/null
  fi
  cert apiserver kube-apiserver "" \
    "IP:$NODE_IP,IP:127.0.0.1,IP:$API_SERVICE_IP,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local,DNS:localhost"
  cert admin admin system:masters
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert controller-manager system:kube-controller-manager ""
  cert scheduler system:kube-scheduler ""
  cert kube-proxy system:kube-proxy ""
  cert kubelet "system:node:$NODE_NAME" system:nodes "IP:$NODE_IP,DNS:$NODE_NAME"
  if [ ! -s "$STATE/pki/sa.key" ]; then
    openssl genrsa -out "$STATE/pki/sa.key" 2048 2>/dev/null
    openssl rsa -in "$STATE/pki/sa.key" -pubout -out "$STATE/pki/sa.pub" 2>/dev/null
  fi
}

# kubeconfig <name> <cert>: a kubeconfig authenticating with the client certificate <cert>.
kubeconfig() {
  local out="$STATE/$1.kubeconfig" crt="$2"
  KUBECONFIG="$out" kubectl config set-cluster "$CONTEXT" --server="https://$NODE_IP:$API_PORT" \
    --certificate-authority="$STATE/pki/ca.crt" --embed-certs >/dev/null
  KUBECONFIG="$out" kubectl config set-credentials "$1" --client-certificate="$STATE/pki/$crt.crt" \
    --client-key="$STATE/pki/$crt.key" --embed-certs >/dev/null
  KUBECONFIG="$out" kubectl config set-context "$CONTEXT" --cluster="$CONTEXT" --user="$1" >/dev/null
  KUBECONFIG="$out" kubectl config use-context "$CONTEXT" >/dev/null
}

# config <path>: write stdin to path only if that changes it. The components watch their
# configuration files (kube-proxy exits when its file is rewritten, even with the same bytes),
# so `up` on a running cluster must leave unchanged files alone.
config() {
  local new
  new=$(cat)
  [ -f "$1" ] && [ "$(cat "$1")" = "$new" ] && return 0
  printf '%s\n' "$new" >"$1"
}

# ---- processes ------------------------------------------------------------------------------

running() { [ -s "$STATE/pids/$1" ] && kill -0 "$(cat "$STATE/pids/$1")" 2>/dev/null; }

# start <name> <command...>: run it in the background, its pid in pids/<name>, log in logs/.
start() {
  local name="$1"; shift
  running "$name" && return 0
  say "starting $name"
  setsid "$@" >>"$STATE/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$STATE/pids/$name"
}

# wait_for <what> <seconds> <command...>: retry the command until it succeeds.
wait_for() {
  local what="$1" timeout="$2" i; shift 2
  for ((i = 0; i < timeout; i++)); do
    "$@" >/dev/null 2>&1 && return 0
    sleep 1
  done
  die "$what did not come up in ${timeout}s; its log: $STATE/logs/"
}

stop() {
  local name="$1" pid i
  running "$name" || { rm -f "$STATE/pids/$name"; return 0; }
  pid=$(cat "$STATE/pids/$name")
  say "stopping $name (pid $pid)"
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 30; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$STATE/pids/$name"
}

# ---- the parts ------------------------------------------------------------------------------

check_tools() {
  local missing=() t
  for t in etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
    command -v "$t" >/dev/null || missing+=("$t")
  done
  [ ${#missing[@]} -eq 0 ] || die "missing ${missing[*]}: run scripts/tools.sh cluster"
  for t in containerd runc ctr iptables openssl conntrack; do
    command -v "$t" >/dev/null || die "missing $t: run scripts/tools.sh cluster"
  done
  [ -x "$CNI_BIN/ptp" ] || die "missing CNI plugins in $CNI_BIN: run scripts/tools.sh cluster"
}

network() {
  [[ "$(ip -o addr show dev lo)" == *" $NODE_IP/"* ]] || ip addr add "$NODE_IP/32" dev lo
  sysctl -qw net.ipv4.ip_forward=1
  [ -e /proc/sys/net/bridge/bridge-nf-call-iptables ] && sysctl -qw net.bridge.bridge-nf-call-iptables=1
  forward_rules
  mkdir -p "$STATE/cni/net.d"
  # ptp: a veth per pod, routed by the host (so kube-proxy's iptables rules see every packet).
  config "$STATE/cni/net.d/10-iotpipe.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "iotpipe",
  "plugins": [
    {"type": "ptp", "ipMasq": false, "mtu": 1500,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "$POD_CIDR"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "$STATE/cni/ipam"}},
    {"type": "portmap", "capabilities": {"portMappings": true}},
    {"type": "loopback"}
  ]
}
EOF
}

# Pod traffic crosses the host's FORWARD chain, whose policy Docker sets to DROP: a chain of
# our own, first in FORWARD, accepts what comes from or goes to the pod range (nothing else).
FORWARD_CHAIN=IOTPIPE-FORWARD
forward_rules() {
  iptables -N "$FORWARD_CHAIN" 2>/dev/null || iptables -F "$FORWARD_CHAIN"
  iptables -A "$FORWARD_CHAIN" -s 10.244.0.0/16 -j ACCEPT
  iptables -A "$FORWARD_CHAIN" -d 10.244.0.0/16 -j ACCEPT
  iptables -C FORWARD -j "$FORWARD_CHAIN" 2>/dev/null || iptables -I FORWARD 1 -j "$FORWARD_CHAIN"
}

forward_rules_down() {
  iptables -D FORWARD -j "$FORWARD_CHAIN" 2>/dev/null || true
  iptables -F "$FORWARD_CHAIN" 2>/dev/null || true
  iptables -X "$FORWARD_CHAIN" 2>/dev/null || true
}

containerd_up() {
  mkdir -p "$STATE/containerd" "$RUN_DIR"
  local RESTRICT_OOM=false
  (echo -1 >/proc/self/oom_score_adj) 2>/dev/null || RESTRICT_OOM=true
  config "$STATE/containerd/config.toml" <<EOF
version = 2
root = "$STATE/containerd/root"
state = "$RUN_DIR/containerd"
[grpc]
  address = "$RUN_DIR/containerd.sock"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Root here may lack CAP_SYS_RESOURCE (it does on these sandboxes): then no process may lower
  # its oom_score_adj, and runc fails every pod sandbox (the kubelet asks for -998). Never go
  # below containerd's own score instead.
  restrict_oom_score_adj = $RESTRICT_OOM
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$CNI_BIN"
    conf_dir = "$STATE/cni/net.d"
  # No registry is reachable: every image is loaded (scripts/cluster.sh load-images).
  [plugins."io.containerd.grpc.v1.cri".registry.mirrors."docker.io"]
    endpoint = ["http://127.0.0.1:1"]
EOF
  start containerd containerd --config "$STATE/containerd/config.toml"
  wait_for containerd 30 ctr --address "$RUN_DIR/containerd.sock" version
}

etcd_up() {
  start etcd etcd --name "$NODE_NAME" --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-advertise-peer-urls "http://127.0.0.1:$((ETCD_PORT + 1))" \
    --initial-cluster "$NODE_NAME=http://127.0.0.1:$((ETCD_PORT + 1))" \
    --quota-backend-bytes 4294967296 --log-level warn
  wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"
}

apiserver_up() {
  start kube-apiserver kube-apiserver \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --bind-address 0.0.0.0 --advertise-address "$NODE_IP" --secure-port "$API_PORT" \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --tls-cert-file "$STATE/pki/apiserver.crt" --tls-private-key-file "$STATE/pki/apiserver.key" \
    --client-ca-file "$STATE/pki/ca.crt" \
    --kubelet-client-certificate "$STATE/pki/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$STATE/pki/apiserver-kubelet-client.key" \
    --kubelet-certificate-authority "$STATE/pki/ca.crt" \
    --kubelet-preferred-address-types InternalIP \
    --service-account-key-file "$STATE/pki/sa.pub" \
    --service-account-signing-key-file "$STATE/pki/sa.key" \
    --service-account-issuer "https://kubernetes.default.svc.cluster.local" \
    --authorization-mode Node,RBAC \
    --enable-admission-plugins NodeRestriction \
    --allow-privileged=true \
    --enable-aggregator-routing=true \
    --profiling=false
  wait_for kube-apiserver 120 kubectl --kubeconfig "$KUBECONFIG_FILE" get --raw /readyz
}

controllers_up() {
  start kube-controller-manager kube-controller-manager \
    --kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authentication-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --authorization-kubeconfig "$STATE/controller-manager.kubeconfig" \
    --bind-address 127.0.0.1 \
    --service-account-private-key-file "$STATE/pki/sa.key" \
    --root-ca-file "$STATE/pki/ca.crt" \
    --cluster-signing-cert-file "$STATE/pki/ca.crt" --cluster-signing-key-file "$STATE/pki/ca.key" \
    --use-service-account-credentials=true \
    --service-cluster-ip-range "$SERVICE_CIDR" \
    --leader-elect=false --profiling=false
  start kube-scheduler kube-scheduler \
    --kubeconfig "$STATE/scheduler.kubeconfig" \
    --authentication-kubeconfig "$STATE/scheduler.kubeconfig" \
    --authorization-kubeconfig "$STATE/scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --leader-elect=false --profiling=false
}

kubelet_up() {
  mkdir -p "$STATE/kubelet" "$STATE/pod-logs"
  # Pods with dnsPolicy Default get this resolv.conf: only the cluster's DNS, nothing outside.
  echo "nameserver $CLUSTER_DNS" | config "$STATE/resolv.conf"
  config "$STATE/kubelet-config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: "$STATE/pki/ca.crt"}
authorization: {mode: Webhook}
address: "$NODE_IP"
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
tlsCertFile: "$STATE/pki/kubelet.crt"
tlsPrivateKeyFile: "$STATE/pki/kubelet.key"
cgroupDriver: cgroupfs
containerRuntimeEndpoint: "unix://$RUN_DIR/containerd.sock"
clusterDNS: ["$CLUSTER_DNS"]
clusterDomain: cluster.local
resolvConf: "$STATE/resolv.conf"
podLogsDir: "$STATE/pod-logs"
failSwapOn: false
# This machine has cgroup v1 only (Kubernetes 1.35 refuses it unless told).
failCgroupV1: false
maxPods: 60
serializeImagePulls: false
# Images are loaded, never pulled: never garbage-collect them.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
# Nor reclaim disk by deleting them under pressure (the eviction manager does, pause included,
# and then no pod starts): small absolute floors instead of a share of a large disk that image
# builds beside the cluster can reach.
evictionHard: {memory.available: "256Mi", nodefs.available: "512Mi", imagefs.available: "512Mi"}
enforceNodeAllocatable: [pods]
EOF
  start kubelet kubelet --config "$STATE/kubelet-config.yaml" --kubeconfig "$STATE/kubelet.kubeconfig" \
    --root-dir "$STATE/kubelet" --hostname-override "$NODE_NAME" --node-ip "$NODE_IP" --v 1
  wait_for "node $NODE_NAME" 120 kubectl --kubeconfig "$KUBECONFIG_FILE" get node "$NODE_NAME"
}

proxy_up() {
  config "$STATE/kube-proxy-config.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: {kubeconfig: "$STATE/kube-proxy.kubeconfig"}
mode: iptables
clusterCIDR: 10.244.0.0/16
hostnameOverride: $NODE_NAME
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
EOF
  start kube-proxy kube-proxy --config "$STATE/kube-proxy-config.yaml"
}

up() {
  [ "$(id -u)" -eq 0 ] || die "the kubelet and containerd need root (run as root or with sudo)"
  check_tools
  mkdir -p "$STATE/pids" "$STATE/logs"
  pki
  kubeconfig admin admin && mv -f "$STATE/admin.kubeconfig" "$KUBECONFIG_FILE"
  kubeconfig controller-manager controller-manager
  kubeconfig scheduler scheduler
  kubeconfig kube-proxy kube-proxy
  kubeconfig kubelet kubelet
  network
  containerd_up
  # Every pod's sandbox: built here (scripts/images.sh pause), never pulled.
  docker image inspect "${PAUSE_IMAGE#docker.io/}" >/dev/null 2>&1 || scripts/images.sh pause
  load_images "${PAUSE_IMAGE#docker.io/}"
  etcd_up
  apiserver_up
  controllers_up
  kubelet_up
  proxy_up
  wait_for "node Ready" 120 kubectl --kubeconfig "$KUBECONFIG_FILE" wait --for=condition=Ready \
    "node/$NODE_NAME" --timeout=1s
  wait_for "default ServiceAccount" 60 kubectl --kubeconfig "$KUBECONFIG_FILE" get serviceaccount default
  say "cluster $CONTEXT is up: export KUBECONFIG=$KUBECONFIG_FILE"
}

# The pods' containers, network namespaces and mounts are the kubelet's and containerd's: take
# them down with the cluster so nothing of it outlives `down`.
cleanup_pods() {
  local sock="$RUN_DIR/containerd.sock" id
  if running containerd; then
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks kill -s SIGKILL "$id" >/dev/null 2>&1 || true
    done
    sleep 2
    for id in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io tasks delete -f "$id" >/dev/null 2>&1 || true
    done
    for id in $(ctr --address "$sock" -n k8s.io containers ls -q 2>/dev/null); do
      ctr --address "$sock" -n k8s.io containers delete "$id" >/dev/null 2>&1 || true
    done
  fi
  # containerd's shims outlive it by design; these are the ones of this cluster's state dir.
  pkill -f "containerd-shim-runc-v2 .*-address $sock" 2>/dev/null || true
  local m
  for m in $(awk -v s="$STATE/" -v r="$RUN_DIR/" 'index($2, s) == 1 || index($2, r) == 1 {print $2}' /proc/self/mounts | sort -r); do
    umount -l "$m" 2>/dev/null || true
  done
  local ns
  for ns in $(ip netns list 2>/dev/null | awk '/^cni-/ {print $1}'); do ip netns delete "$ns" 2>/dev/null || true; done
  rm -rf "$STATE/cni/ipam"
}

down() {
  stop kube-proxy
  command -v kube-proxy >/dev/null && kube-proxy --cleanup >/dev/null 2>&1 || true
  stop kubelet
  cleanup_pods
  stop kube-scheduler
  stop kube-controller-manager
  stop kube-apiserver
  stop etcd
  stop containerd
  forward_rules_down
  ip addr del "$NODE_IP/32" dev lo 2>/dev/null || true
  say "cluster stopped (state kept in $STATE; rm -rf it for a clean start)"
}

status() {
  local name
  for name in containerd etcd kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy; do
    if running "$name"; then echo "$name: running (pid $(cat "$STATE/pids/$name"))"; else echo "$name: stopped"; fi
  done
  running kube-apiserver && kubectl --kubeconfig "$KUBECONFIG_FILE" get nodes -o wide || true
}

# load-images IMG...: docker save | ctr import into the node's image store (namespace k8s.io),
# so pods with imagePullPolicy Never/IfNotPresent run them.
# An image the node already has with the same docker image id (recorded in $STATE/loaded) is
# not copied again: a copy of every image takes minutes.
load_images() {
  [ $# -gt 0 ] || die "load-images: name at least one image"
  running containerd || die "the cluster is not running (scripts/cluster.sh up)"
  local sock="$RUN_DIR/containerd.sock" image id stamp in_node todo=()
  in_node=$(ctr --address "$sock" -n k8s.io images ls -q)
  mkdir -p "$STATE/loaded"
  for image in "$@"; do
    id=$(docker image inspect -f '{{.Id}}' "$image") || die "no docker image $image"
    stamp="$STATE/loaded/${image//[\/:]/_}"
    if [ "$(cat "$stamp" 2>/dev/null)" = "$id" ] && grep -qxF "docker.io/${image#docker.io/}" <<<"$in_node"; then
      continue
    fi
    todo+=("$image")
  done
  [ ${#todo[@]} -gt 0 ] || return 0
  say "loading ${todo[*]} into the node"
  docker save "${todo[@]}" | ctr --address "$sock" -n k8s.io images import - >/dev/null
  for image in "${todo[@]}"; do
    docker image inspect -f '{{.Id}}' "$image" >"$STATE/loaded/${image//[\/:]/_}"
  done
}

# load_built <image>: load a skaffold build into the node under the name skaffold deploys it by.
# Not pushed, a local build is deployed as <repository>:<image id> (skaffold tags it so after its
# build hooks run), so the hook tags it that way itself and loads that.
load_built() {
  local image="${1:?load-built: name the image (skaffold passes \$SKAFFOLD_IMAGE)}" id by_id
  id=$(docker image inspect -f '{{.Id}}' "$image") || die "no docker image $image"
  by_id="${image%:*}:${id#sha256:}"
  docker tag "$image" "$by_id"
  load_images "$by_id"
}

# ---- the pipeline on the cluster ------------------------------------------------------------

# The lake's node folder: values-local.yaml mounts it at this same path in every pod (Spark's
# sink log records absolute paths, so the lake reads the same on the node as in a pod). Outside
# $STATE: a pod's non-root user must be able to traverse its parents (/root is 0700).
LAKE_DIR=/var/lib/iotpipe/lake
VOLUMES_DIR="$STATE/volumes"

kc() { kubectl --kubeconfig "$KUBECONFIG_FILE" "$@"; }

# No storage provisioner runs on a single node: each claim the pipeline makes gets a hostPath
# volume made for it beforehand (a PersistentVolume whose claimRef names the claim binds it the
# moment the claim appears; helm's hook Jobs need Kafka, whose StatefulSet claim must bind).
# volume <namespace> <claim> <size> <access mode> [node folder [name]] (default name and folder
# $namespace-$claim)
volume() {
  local ns="$1" claim="$2" size="$3" mode="$4" dir="${5:-$VOLUMES_DIR/$1-$2}" name="${6:-$1-$2}"
  mkdir -p "$dir" && chmod 0777 "$dir"  # (written by the pods' non-root users)
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolume
metadata:
  name: $name
  labels: {app.kubernetes.io/part-of: iotpipe-local}
spec:
  capacity: {storage: $size}
  accessModes: [$mode]
  persistentVolumeReclaimPolicy: Retain
  storageClassName: ""
  claimRef: {namespace: $ns, name: $claim}
  hostPath: {path: "$dir", type: Directory}
EOF
}

# The lake: a node folder as a ReadWriteMany volume, claimed as iotpipe-lake (values-local.yaml).
lake_claim() {
  volume iotpipe iotpipe-lake 50Gi ReadWriteMany "$LAKE_DIR" iotpipe-lake
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: iotpipe-lake
  namespace: iotpipe
  labels: {app.kubernetes.io/part-of: iotpipe-local}
spec:
  accessModes: [ReadWriteMany]
  storageClassName: ""
  volumeName: iotpipe-lake
  resources: {requests: {storage: 50Gi}}
EOF
}

# reset: the release and its data gone (helm uninstall, the namespace, its volumes and their
# folders, the lake), so the next deploy starts from nothing; the cluster and add-ons stay.
reset() {
  running kube-apiserver || die "the cluster is not running (scripts/cluster.sh up)"
  say "removing the release iotpipe and its data"
  helm --kubeconfig "$KUBECONFIG_FILE" uninstall iotpipe -n iotpipe --wait --timeout 5m >/dev/null 2>&1 || true
  kc delete namespace iotpipe --ignore-not-found --wait=true --timeout=300s >/dev/null
  kc delete pv -l app.kubernetes.io/part-of=iotpipe-local --ignore-not-found --wait=true >/dev/null
  rm -rf "$VOLUMES_DIR"/iotpipe-* "${LAKE_DIR:?}"/* "$LAKE_DIR"/.[!.]* 2>/dev/null || true
}

# all_ready <namespace>: every pod Running and Ready (or finished: hook Jobs).
all_ready() {
  local out
  out=$(kc -n "$1" get pods -o jsonpath='{range .items[*]}{.status.phase} {.status.conditions[?(@.type=="Ready")].status}{"\n"}{end}')
  [ -n "$out" ] && ! grep -vqE '^(Succeeded .*|Running True)$' <<<"$out"
}

# Everything the release needs that is not in the chart: the add-ons, the namespace and the
# Spark operator's RBAC, Secrets (k8s/dev-secrets.sh, kafka-secrets.sh), PostgreSQL, the lake
# claim and Kafka's volume. `skaffold run -p local` runs it as a hook before helm.
prepare() {
  running kube-apiserver || die "the cluster is not running (scripts/cluster.sh up)"
  export KUBECONFIG="$KUBECONFIG_FILE" KUBE_CONTEXT="$CONTEXT"
  # The pause image first: without it no pod starts, and a node that ran out of disk may
  # have deleted it since `up` loaded it (deploy and skaffold's hook both come here).
  load_images "${PAUSE_IMAGE#docker.io/}"
  scripts/addons.sh load
  scripts/addons.sh install
  scripts/addons.sh wait
  kc apply -f k8s/namespace.yaml -f spark-operator/rbac.yaml >/dev/null
  k8s/dev-secrets.sh
  k8s/kafka-secrets.sh
  docker image inspect iotpipe/postgres:dev >/dev/null 2>&1 || scripts/images.sh postgres
  load_images iotpipe/postgres:dev
  volume iotpipe data-postgres-0 5Gi ReadWriteOnce
  kc apply -f k8s/postgres.yaml >/dev/null
  lake_claim
  volume iotpipe data-iotpipe-kafka-0 2Gi ReadWriteOnce
}

# deploy: the images scripts/images.sh built (iotpipe/*:dev) into the node, prepare, then the
# chart with values-local.yaml; waits until every pod is Ready.
deploy() {
  running kube-apiserver || die "the cluster is not running (scripts/cluster.sh up)"
  local images i
  mapfile -t images < <(docker images --format '{{.Repository}}:{{.Tag}}' | grep -E '^iotpipe/[a-z-]+:dev$' | grep -v '^iotpipe/base' || true)
  [ ${#images[@]} -gt 0 ] || die "no iotpipe/*:dev images: run scripts/images.sh first"
  load_images "${images[@]}"
  prepare
  say "helm upgrade --install iotpipe (charts/iotpipe/values-local.yaml)"
  helm --kubeconfig "$KUBECONFIG_FILE" upgrade --install iotpipe charts/iotpipe -n iotpipe \
    -f charts/iotpipe/values-local.yaml --timeout 15m >/dev/null 2> >(grep -v 'found symbolic link' >&2) \
    || die "helm upgrade --install failed"
  for ((i = 0; i < 180; i++)); do all_ready iotpipe && break; sleep 5; done
  all_ready iotpipe || { kc -n iotpipe get pods >&2; die "the release's pods are not all Ready after 15 min"; }
  kc -n iotpipe get pods
  say "deployed: kubectl -n iotpipe get pods (KUBECONFIG=$KUBECONFIG_FILE)"
}

case "${1:-help}" in
  up) up ;;
  down) down ;;
  status) status ;;
  load-images) shift; load_images "$@" ;;
  load-built) shift; load_built "$@" ;;
  prepare) prepare ;;
  reset) reset ;;
  deploy) deploy ;;
  env) echo "export KUBECONFIG=$KUBECONFIG_FILE" ;;
  -h | --help | help) usage ;;
  *) usage >&2; exit 2 ;;
esac
