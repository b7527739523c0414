#!/usr/bin/env bash
# Build every image of the pipeline, from Debian root filesystems made here (no registry needed).
#   scripts/images.sh                 every image (the default)
#   scripts/images.sh NAME...         only these (and what they are built FROM)
#   scripts/images.sh --list          the image names
#   scripts/images.sh prepare         only the roots and the staged jars the Dockerfiles need
#                                     (skaffold's hook before it builds the bases)
#
# Roots: `mmdebstrap --variant=minbase bookworm` with a few packages, imported with
# `docker import` as iotpipe/debian:bookworm (python3), iotpipe/debian-jre:bookworm (python3 +
# OpenJDK 17 JRE) and iotpipe/debian-postgres:bookworm (PostgreSQL 15). Each is made once (about
# a minute); remove it (`docker rmi`) to make it anew. Every other image is FROM one of them and
# tagged iotpipe/<name>:dev. Docker's layer cache lives in docker's own store, outside the clone.
#
# The jars images carry come from the same Maven Central fetch the tests use (`iotpipe jars`,
# cached in ~/.cache/iotpipe/jars) and are staged into build/images/ (git-ignored) for the
# Dockerfiles to COPY. The classic builder builds them (Debian's docker.io has no BuildKit);
# `--network host` lets RUN steps reach PyPI as the host does.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${IOTPIPE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/iotpipe}"
STAGE=build/images
TAG=dev
say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { echo "images: $*" >&2; exit 1; }

# name | Dockerfile | build args (space-separated KEY=VALUE) | target
IMAGES=(
  "base-builder|Dockerfile.base||builder"
  "base|Dockerfile.base||runtime"
  "base-jre|Dockerfile.base|DEBIAN_IMAGE=iotpipe/debian-jre:bookworm|runtime"
  "sensor-simulator|services/sensor_simulator/Dockerfile||"
  "dlq-inspector|services/dlq_inspector/Dockerfile||"
  "warehouse-loader|services/warehouse_loader/Dockerfile||"
  "orchestrator|services/orchestrator/Dockerfile||"
  "quality-gate|services/quality_gate/Dockerfile||"
  "spark|spark-operator/image/Dockerfile||"
  "kafka|k8s/images/kafka/Dockerfile||"
  "postgres|k8s/images/postgres/Dockerfile||"
)

# ---- dockerd ----------------------------------------------------------------------------------

docker_up() {
  if ! command -v dockerd >/dev/null || ! command -v mmdebstrap >/dev/null; then
    scripts/tools.sh docker
  fi
  docker info >/dev/null 2>&1 && return 0
  [ "$(id -u)" -eq 0 ] || die "docker is not running and starting dockerd needs root"
  mkdir -p "$CACHE/docker"
  say "starting dockerd (log $CACHE/docker/dockerd.log)"
  setsid dockerd --storage-driver overlay2 --pidfile "$CACHE/docker/dockerd.pid" \
    >>"$CACHE/docker/dockerd.log" 2>&1 </dev/null &
  local i
  for ((i = 0; i < 60; i++)); do docker info >/dev/null 2>&1 && return 0; sleep 1; done
  die "dockerd did not start; see $CACHE/docker/dockerd.log"
}

# ---- roots and staged files ------------------------------------------------------------------

root() {  # root <image> <packages...>
  local image="$1" include
  shift
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  include=$(IFS=,; echo "$*")
  say "making $image (mmdebstrap bookworm + $include)"
  mmdebstrap --quiet --variant=minbase --include="$include" bookworm - | docker import - "$image" >/dev/null
}

roots() {
  root iotpipe/debian:bookworm ca-certificates python3 python3-venv
  root iotpipe/debian-jre:bookworm ca-certificates python3 python3-venv openjdk-17-jre-headless procps
  root iotpipe/debian-postgres:bookworm ca-certificates postgresql-15
}

# The jars, as the Dockerfiles expect them under build/images/:
#   spark-jars/<folder>/   Spark's Kafka connector and the jobs' jar, in the folders iotpipe.jars
#                          names (so a session in the image finds them without Maven)
#   s3-jars/, jmx/         hadoop-aws + its AWS SDK, and the JMX exporter agent (image/pom.xml)
#   kafka-jars/            the Kafka broker's jars (the project's own KRaft broker)
#   host-ca-certificates.crt  this machine's CA bundle, trusted by the builder stage only (its
#                          downloads pass the same TLS proxy, if any, as the host's)
stage() {
  say "staging jars into $STAGE"
  local connector jobs kafka
  connector=$(uv run --frozen python -c 'from iotpipe import jars; print(jars.ensure("spark-kafka"))')
  jobs=$(uv run --frozen python -c 'from iotpipe import jars; print(jars.spark_jobs_jar().parent)')
  kafka=$(uv run --frozen python -c 'from iotpipe import jars; print(jars.ensure("kafka"))')
  rm -rf "$STAGE" && mkdir -p "$STAGE/spark-jars" "$STAGE/s3-jars" "$STAGE/jmx" "$STAGE/kafka-jars"
  cp -r "$connector" "$jobs" "$STAGE/spark-jars/"
  cp "$kafka"/*.jar "$STAGE/kafka-jars/"
  mvn -B -q -s jvm/settings.xml -f spark-operator/image/pom.xml dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$PWD/$STAGE/s3-jars"
  mv "$STAGE"/s3-jars/jmx_prometheus_javaagent-*.jar "$STAGE/jmx/jmx_prometheus_javaagent.jar"
  cp "${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}" "$STAGE/host-ca-certificates.crt"
}

pause_image() {
  local out="$CACHE/build/pause"
  mkdir -p "$out"
  say "building iotpipe/pause:3.10 (k8s/images/pause/pause.c, static)"
  gcc -static -O2 -Wall -Werror -o "$out/pause" k8s/images/pause/pause.c
  tar -C "$out" -cf - pause | docker import -c 'ENTRYPOINT ["/pause"]' -c 'USER 65535:65535' - iotpipe/pause:3.10 >/dev/null
}

build() {  # build <name>|<dockerfile>|<args>|<target>
  local name dockerfile args target
  IFS='|' read -r name dockerfile args target <<<"$1"
  local cmd=(docker build --network host -q -f "$dockerfile" -t "iotpipe/$name:$TAG")
  [ -n "$target" ] && cmd+=(--target "$target")
  local a
  for a in $args; do cmd+=(--build-arg "$a"); done
  say "building iotpipe/$name:$TAG ($dockerfile${target:+, target $target})"
  local start=$SECONDS before after
  before=$(docker image inspect -f '{{.Id}}' "iotpipe/$name:$TAG" 2>/dev/null || true)
  "${cmd[@]}" . >/dev/null
  echo "    iotpipe/$name:$TAG in $((SECONDS - start)) s" >&2
  # The image it replaces, untagged now, would keep its gigabytes (a few rebuilds fill the disk).
  after=$(docker image inspect -f '{{.Id}}' "iotpipe/$name:$TAG")
  if [ -n "$before" ] && [ "$before" != "$after" ]; then
    docker image rm "$before" >/dev/null 2>&1 || true  # (still used by another tag: kept)
  fi
}

wanted() {  # wanted <name> <requested...>: asked for (none asked: all)? The bases always are
  local name="$1" r      # (cached layers: seconds), since the others build FROM them.
  shift
  [ $# -eq 0 ] && return 0
  case "$name" in base | base-builder | base-jre) return 0 ;; esac
  for r in "$@"; do [ "$r" = "$name" ] && return 0; done
  return 1
}

case "${1:-}" in
  -h | --help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  --list) for i in "${IMAGES[@]}"; do echo "iotpipe/${i%%|*}:$TAG"; done; echo "iotpipe/pause:3.10"; exit 0 ;;
  prepare) docker_up; roots; stage; exit 0 ;;
esac

start=$SECONDS
docker_up
roots
stage
if wanted pause "$@"; then pause_image; fi
for image in "${IMAGES[@]}"; do
  if wanted "${image%%|*}" "$@"; then build "$image"; fi
done
say "images built in $((SECONDS - start)) s"
