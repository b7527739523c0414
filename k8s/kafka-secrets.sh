#!/usr/bin/env bash
# Create the Secrets of the chart's own Kafka (kafka.provider: statefulset), with the names and
# keys Strimzi gives them, so the services read them exactly as on EKS. Each Secret is created
# only if it does not exist yet (re-running keeps the old values, like k8s/dev-secrets.sh):
#   <cluster>-cluster-ca       ca.crt, ca.key   the cluster CA (its key stays here, to sign a new
#                                               broker certificate later)
#   <cluster>-cluster-ca-cert  ca.crt           the CA the clients trust (Strimzi's name and key)
#   <cluster>-kafka-tls        keystore.pem     the brokers' private key (PKCS#8) followed by their
#                              tls.crt          certificate and the CA; tls.crt is the certificate
#                                               alone. SANs: the bootstrap Service and every pod of
#                                               the headless Service, each with .<ns>, .<ns>.svc and
#                                               .<ns>.svc.cluster.local. CN <cluster>-kafka is the
#                                               brokers' own principal (super user).
#   <user>, one per client     password         a random SCRAM-SHA-512 password
#                              sasl.jaas.config the JAAS line for it (Strimzi's KafkaUser keys)
# If the CA has to be made anew, the broker certificate is made anew too (signed by it).
#
#   k8s/kafka-secrets.sh
# Environment: NAMESPACE (iotpipe), KAFKA_CLUSTER (the chart's kafka.clusterName, iotpipe),
# RELEASE (the Helm release, iotpipe), KAFKA_USERS (default: the chart's Kafka clients
# <release>-sensor-simulator, <release>-dlq-inspector and <release>-spark), KUBE_CONTEXT
# (default: SKAFFOLD_KUBE_CONTEXT, else kubectl's current context).
# Read a password back:
#   kubectl -n iotpipe get secret iotpipe-spark -o jsonpath='{.data.password}' | base64 -d
set -euo pipefail
NAMESPACE=${NAMESPACE:-iotpipe}
CLUSTER=${KAFKA_CLUSTER:-iotpipe}
RELEASE=${RELEASE:-iotpipe}
USERS=${KAFKA_USERS:-"$RELEASE-sensor-simulator $RELEASE-dlq-inspector $RELEASE-spark"}
CONTEXT=${KUBE_CONTEXT:-${SKAFFOLD_KUBE_CONTEXT:-}}
kc() { kubectl ${CONTEXT:+--context "$CONTEXT"} -n "$NAMESPACE" "$@"; }
exists() { kc get secret "$1" >/dev/null 2>&1; }
random() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
umask 077

kubectl ${CONTEXT:+--context "$CONTEXT"} apply -f "$(dirname "$0")/namespace.yaml" >/dev/null

# ---- the cluster CA -------------------------------------------------------------------------
new_ca=false
if exists "$CLUSTER-cluster-ca"; then
  echo "secret/$CLUSTER-cluster-ca exists, kept"
  kc get secret "$CLUSTER-cluster-ca" -o jsonpath='{.data.ca\.crt}' | base64 -d >"$work/ca.crt"
  kc get secret "$CLUSTER-cluster-ca" -o jsonpath='{.data.ca\.key}' | base64 -d >"$work/ca.key"
else
  openssl req -x509 -newkey rsa:3072 -nodes -sha256 -days 3650 \
    -subj "/O=iotpipe/CN=$CLUSTER-cluster-ca" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    -keyout "$work/ca.key" -out "$work/ca.crt" 2>/dev/null
  kc create secret generic "$CLUSTER-cluster-ca" \
    --from-file=ca.crt="$work/ca.crt" --from-file=ca.key="$work/ca.key"
  new_ca=true
fi
if exists "$CLUSTER-cluster-ca-cert" && [ "$new_ca" = false ]; then
  echo "secret/$CLUSTER-cluster-ca-cert exists, kept"
else
  kc delete secret "$CLUSTER-cluster-ca-cert" --ignore-not-found >/dev/null
  kc create secret generic "$CLUSTER-cluster-ca-cert" --from-file=ca.crt="$work/ca.crt"
fi

# ---- the brokers' certificate ---------------------------------------------------------------
if exists "$CLUSTER-kafka-tls" && [ "$new_ca" = false ]; then
  echo "secret/$CLUSTER-kafka-tls exists, kept"
else
  sans=""
  for name in "$CLUSTER-kafka-bootstrap" "$CLUSTER-kafka-brokers" "*.$CLUSTER-kafka-brokers"; do
    for suffix in "" ".$NAMESPACE" ".$NAMESPACE.svc" ".$NAMESPACE.svc.cluster.local"; do
      # a wildcard needs a domain under it (*.<headless>.<ns>...), not a bare *.<headless>
      [ -z "$suffix" ] && [ "${name:0:2}" = "*." ] && continue
      sans="$sans${sans:+,}DNS:$name$suffix"
    done
  done
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/tls.key" 2>/dev/null
  openssl req -new -key "$work/tls.key" -subj "/CN=$CLUSTER-kafka" -out "$work/tls.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=serverAuth,clientAuth"
    echo "subjectAltName=$sans"
  } >"$work/tls.ext"
  openssl x509 -req -in "$work/tls.csr" -CA "$work/ca.crt" -CAkey "$work/ca.key" \
    -CAcreateserial -days 825 -sha256 -extfile "$work/tls.ext" -out "$work/tls.crt" 2>/dev/null
  cat "$work/tls.key" "$work/tls.crt" "$work/ca.crt" >"$work/keystore.pem"
  kc delete secret "$CLUSTER-kafka-tls" --ignore-not-found >/dev/null
  kc create secret generic "$CLUSTER-kafka-tls" \
    --from-file=keystore.pem="$work/keystore.pem" --from-file=tls.crt="$work/tls.crt"
fi

# ---- one SCRAM user per client --------------------------------------------------------------
for user in $USERS; do
  if exists "$user"; then
    echo "secret/$user exists, kept"
    continue
  fi
  password=$(random)
  jaas="org.apache.kafka.common.security.scram.ScramLoginModule required username=\"$user\" password=\"$password\";"
  kc create secret generic "$user" --from-literal=password="$password" \
    --from-literal=sasl.jaas.config="$jaas"
done
