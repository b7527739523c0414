#!/bin/bash
# Entry of the Spark image's pods. Spark on Kubernetes starts its pods with a first argument
# naming the role, and the rest in the environment (Spark's "Running on Kubernetes" docs):
#   driver ARGS...    spark-submit in client mode inside the driver pod, binding to the pod's
#                     address (SPARK_DRIVER_BIND_ADDRESS); ARGS are spark-submit's
#   executor          an executor backend connecting to SPARK_DRIVER_URL, sized by
#                     SPARK_EXECUTOR_CORES / SPARK_EXECUTOR_MEMORY, JVM options SPARK_JAVA_OPT_*
#   anything else     run as a command (e.g. `spark-submit --version`, `python ...`)
set -euo pipefail

role="${1:-}"
case "$role" in
  driver)
    shift
    exec "$SPARK_HOME/bin/spark-submit" \
      --conf "spark.driver.bindAddress=${SPARK_DRIVER_BIND_ADDRESS:?}" \
      --conf "spark.executorEnv.SPARK_DRIVER_POD_IP=${SPARK_DRIVER_BIND_ADDRESS}" \
      --deploy-mode client "$@"
    ;;
  executor)
    shift
    java_opts=()
    while IFS='=' read -r name value; do
      [[ "$name" == SPARK_JAVA_OPT_* ]] && java_opts+=("$value")
    done < <(env | sort -t_ -k4 -n)
    classpath="$SPARK_HOME/jars/*${SPARK_EXTRA_CLASSPATH:+:$SPARK_EXTRA_CLASSPATH}"
    exec java "${java_opts[@]}" \
      -Xms"${SPARK_EXECUTOR_MEMORY:?}" -Xmx"${SPARK_EXECUTOR_MEMORY}" \
      -cp "$classpath" \
      org.apache.spark.scheduler.cluster.k8s.KubernetesExecutorBackend \
      --driver-url "${SPARK_DRIVER_URL:?}" \
      --executor-id "${SPARK_EXECUTOR_ID:?}" \
      --cores "${SPARK_EXECUTOR_CORES:?}" \
      --app-id "${SPARK_APPLICATION_ID:?}" \
      --hostname "${SPARK_EXECUTOR_POD_IP:?}" \
      --resourceProfileId "${SPARK_RESOURCE_PROFILE_ID:-0}" \
      --podName "${SPARK_EXECUTOR_POD_NAME:-}"
    ;;
  *)
    exec "$@"
    ;;
esac
