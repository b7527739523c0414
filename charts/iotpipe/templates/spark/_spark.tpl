{{/* Name of the Spark jobs' KafkaUser (and of the Secret holding its password). */}}
{{- define "iotpipe.spark.kafkaUser" -}}
{{- printf "%s-spark" (include "iotpipe.fullname" .) -}}
{{- end -}}

{{/* Name of the ConfigMap with the JMX exporter's rules (spark/metrics-configmap.yaml). */}}
{{- define "iotpipe.spark.metricsConfigMap" -}}
{{- printf "%s-spark-metrics" (include "iotpipe.fullname" .) -}}
{{- end -}}

{{/*
The account a job's driver runs as. Call with (dict "root" $ "job" "<module>"). Only the
detector's training writes `_models/`, so it alone runs as serviceAccounts.sparkTrainer (its own
IAM role); every other driver as serviceAccounts.spark. Both have the executor-pod Role of
spark-operator/rbac.yaml.
*/}}
{{- define "iotpipe.spark.driverAccount" -}}
{{- if eq .job "train_detector" -}}
{{- .root.Values.serviceAccounts.sparkTrainer.name -}}
{{- else -}}
{{- .root.Values.serviceAccounts.spark.name -}}
{{- end -}}
{{- end -}}

{{/* Where the driver and executor pods mount that ConfigMap. */}}
{{- define "iotpipe.spark.metricsDir" -}}
/etc/iotpipe/spark-metrics
{{- end -}}

{{/*
The JVM options of a driver or executor: HotSpot compiles huge methods (whole-stage codegen
writes methods over its 8,000-byte limit for the stream's classification; docs/bronze-stream.md)
and, with spark.monitoring.enabled, the JMX exporter agent the image ships serves the JVM's
MBeans as Prometheus text on spark.monitoring.port, with the rules in the ConfigMap above.
The agent is attached here, not through the operator's `monitoring` block: that block would
set spark.metrics.namespace to "<namespace>.<app>" (the rules read the app from a name without
dots), and with configFile and metricsPropertiesFile both set its webhook adds no port.
*/}}
{{- define "iotpipe.spark.javaOptions" -}}
{{- $m := .Values.spark.monitoring -}}
{{- $options := list "-XX:-DontCompileHugeMethods" -}}
{{- if $m.enabled -}}
{{- $options = append $options (printf "-javaagent:%s=%d:%s/jmx-exporter.yaml" $m.agentJar (int $m.port) (include "iotpipe.spark.metricsDir" .)) -}}
{{- end -}}
{{- join " " $options -}}
{{- end -}}

{{/*
Driver/executor pod settings shared by both roles. Call with (dict "root" $ "role" $values
"serviceAccount" "<name>").
*/}}
{{- define "iotpipe.spark.pod" -}}
{{- $root := .root -}}
{{- $ports := .ports | default list -}}
{{- if $root.Values.spark.monitoring.enabled -}}
{{- $ports = prepend $ports (dict "name" "jmx-metrics" "containerPort" (int $root.Values.spark.monitoring.port) "protocol" "TCP") -}}
{{- end -}}
cores: {{ .role.cores }}
{{- with .role.coreRequest }}
coreRequest: {{ . | quote }}
{{- end }}
coreLimit: {{ .role.coreLimit | quote }}
memory: {{ .role.memory | quote }}
{{- /* Placement: executors tolerate (and prefer) Terraform's spot group, drivers stay on demand (values.yaml). */}}
{{- with .role.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .role.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
javaOptions: {{ include "iotpipe.spark.javaOptions" $root | quote }}
serviceAccount: {{ required "iotpipe.spark.pod needs a serviceAccount" .serviceAccount }}
labels:
  {{- include "iotpipe.labels" (dict "root" $root "component" "spark") | nindent 2 }}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaClientLabel" $root | nindent 2 }}
  {{- end }}
podSecurityContext:
  {{- include "iotpipe.podSecurityContext" 185 | nindent 2 }}
securityContext:
  {{- include "iotpipe.containerSecurityContext" $root | nindent 2 }}
{{- with $ports }}
ports:
  {{- toYaml . | nindent 2 }}
{{- end }}
env:
  - {name: HOME, value: /tmp}
  - {name: PYTHONDONTWRITEBYTECODE, value: "1"}
  {{- with .env }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaEnv" (dict "root" $root "user" (include "iotpipe.spark.kafkaUser" $root)) | nindent 2 }}
  {{- end }}
  {{- include "iotpipe.lakeEnv" $root | nindent 2 }}
  {{- include "iotpipe.contractEnv" $root | nindent 2 }}
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  - {name: work-dir, mountPath: /opt/spark/work-dir}
  {{- if $root.Values.spark.monitoring.enabled }}
  - {name: spark-metrics, mountPath: {{ include "iotpipe.spark.metricsDir" $root }}, readOnly: true}
  {{- end }}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaCaMount" $root | nindent 2 }}
  {{- end }}
  {{- include "iotpipe.lakeMount" $root | nindent 2 }}
{{- end -}}

{{/*
The spec of one Spark job (a SparkApplication's spec, or a ScheduledSparkApplication's
template). Call with (dict "root" $ "job" "<module>" "args" (list ...) "restartPolicy" (dict ...)),
optionally with "driverPorts" and "driverEnv" (lists) for what only the driver has.
The driver runs as the job's driver account (iotpipe.spark.driverAccount), the executors as
serviceAccounts.sparkExecutor.
*/}}
{{- define "iotpipe.spark.appSpec" -}}
{{- $root := .root -}}
{{- $s := $root.Values.spark -}}
{{- $lake := $root.Values.lake -}}
{{- $driverAccount := include "iotpipe.spark.driverAccount" (dict "root" $root "job" .job) -}}
{{- $executorAccount := $root.Values.serviceAccounts.sparkExecutor.name -}}
type: Python
pythonVersion: "3"
mode: cluster
image: {{ include "iotpipe.image" (dict "root" $root "image" $s.image) }}
imagePullPolicy: {{ $root.Values.global.imagePullPolicy }}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets: [{{ range $i, $secret := . }}{{ if $i }}, {{ end }}{{ $secret.name }}{{ end }}]
{{- end }}
mainApplicationFile: {{ $s.mainApplicationFile }}
arguments:
  {{- toYaml (prepend (.args | default list) .job) | nindent 2 }}
sparkVersion: {{ $s.sparkVersion | quote }}
restartPolicy:
  {{- toYaml .restartPolicy | nindent 2 }}
sparkConf:
  spark.sql.session.timeZone: UTC
  spark.sql.sources.partitionOverwriteMode: dynamic
  spark.kubernetes.submission.waitAppCompletion: "false"
  {{- /* Python workers without the jar and zips Spark puts on their path, which they would
  re-read every task (iotpipe/spark_daemon.py). */}}
  spark.python.daemon.module: iotpipe.spark_daemon
  spark.hadoop.fs.s3a.impl: org.apache.hadoop.fs.s3a.S3AFileSystem
  spark.hadoop.fs.s3a.endpoint.region: {{ $lake.region | quote }}
  {{- with $lake.s3.endpoint }}
  spark.hadoop.fs.s3a.endpoint: {{ . | quote }}
  {{- end }}
  spark.hadoop.fs.s3a.path.style.access: {{ $lake.s3.pathStyleAccess | quote }}
  {{- if $s.monitoring.enabled }}
  {{- /* What the JMX exporter's rules read (files/observability/spark/jmx-exporter.yaml):
  Spark's JMX sink, metric names that start with the app name, Structured Streaming gauges. */}}
  spark.metrics.conf.*.sink.jmx.class: org.apache.spark.metrics.sink.JmxSink
  spark.metrics.namespace: ${spark.app.name}
  spark.sql.streaming.metricsEnabled: "true"
  {{- end }}
  {{- with $s.sparkConf }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
driver:
  {{- include "iotpipe.spark.pod" (dict "root" $root "role" $s.driver "serviceAccount" $driverAccount "ports" .driverPorts "env" .driverEnv) | nindent 2 }}
executor:
  instances: {{ $s.executor.instances }}
  {{- include "iotpipe.spark.pod" (dict "root" $root "role" $s.executor "serviceAccount" $executorAccount) | nindent 2 }}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: 2Gi}
  - name: work-dir
    emptyDir: {sizeLimit: 1Gi}
  {{- if $s.monitoring.enabled }}
  - name: spark-metrics
    configMap:
      name: {{ include "iotpipe.spark.metricsConfigMap" $root }}
  {{- end }}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaCaVolume" $root | nindent 2 }}
  {{- end }}
  {{- include "iotpipe.lakeVolume" $root | nindent 2 }}
{{- end -}}
