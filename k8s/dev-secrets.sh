#!/usr/bin/env bash
# Create the Secrets a local cluster needs, with random values, unless they exist already
# (skaffold's dev profile runs this before each deploy; re-running keeps the old values).
#   iotpipe-api-tokens   one bearer token per service (the chart's apiTokensSecret)
#   iotpipe-minio        MinIO's root keys, also the S3 keys the lake's clients use
#   iotpipe-postgres     PostgreSQL's password
#   iotpipe-warehouse    the loader's warehouse DSN (key dsn)
# Read a token back:  kubectl -n iotpipe get secret iotpipe-api-tokens -o jsonpath='{.data.dlq-inspector}' | base64 -d
set -euo pipefail
NAMESPACE=${NAMESPACE:-iotpipe}
CONTEXT=${KUBE_CONTEXT:-${SKAFFOLD_KUBE_CONTEXT:-}}
kc() { kubectl ${CONTEXT:+--context "$CONTEXT"} -n "$NAMESPACE" "$@"; }
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }

kubectl ${CONTEXT:+--context "$CONTEXT"} apply -f "$(dirname "$0")/namespace.yaml" >/dev/null

create() {  # create NAME KEY=VALUE...
  local name=$1; shift
  if kc get secret "$name" >/dev/null 2>&1; then
    echo "secret/$name exists, kept"
    return
  fi
  local args=()
  for pair in "$@"; do args+=(--from-literal="$pair"); done
  kc create secret generic "$name" "${args[@]}"
}

create iotpipe-api-tokens \
  "sensor-simulator=$(random)" "dlq-inspector=$(random)" \
  "quality-gate=$(random)" "warehouse-loader=$(random)"
create iotpipe-minio "AWS_ACCESS_KEY_ID=iotpipe" "AWS_SECRET_ACCESS_KEY=$(random)"
if ! kc get secret iotpipe-postgres >/dev/null 2>&1; then
  password=$(random)
  create iotpipe-postgres "POSTGRES_PASSWORD=$password"
  kc delete secret iotpipe-warehouse --ignore-not-found >/dev/null
  create iotpipe-warehouse "dsn=postgresql://iotpipe:$password@postgres.iotpipe.svc:5432/iotpipe"
fi
