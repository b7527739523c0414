{{/* Name of the Spark jobs' KafkaUser (and of the Secret holding its password). */}}
{{- define "iotpipe.spark.kafkaUser" -}}
{{- printf "%s-spark" (include "iotpipe.fullname" .) -}}
{{- end -}}

{{/* Driver/executor pod settings shared by both roles. Call with (dict "root" $ "role" $values). */}}
{{- define "iotpipe.spark.pod" -}}
{{- $root := .root -}}
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
{{- /* HotSpot skips compiling methods over 8,000 bytes of bytecode; whole-stage codegen
writes bigger ones for the stream's classification (docs/bronze-stream.md). */}}
javaOptions: "-XX:-DontCompileHugeMethods"
serviceAccount: {{ $root.Values.serviceAccounts.spark.name }}
labels:
  {{- include "iotpipe.labels" (dict "root" $root "component" "spark") | nindent 2 }}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaClientLabel" $root | nindent 2 }}
  {{- end }}
podSecurityContext:
  {{- include "iotpipe.podSecurityContext" 185 | nindent 2 }}
securityContext:
  {{- include "iotpipe.containerSecurityContext" $root | nindent 2 }}
{{- with .ports }}
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
volumeMounts:
  - {name: tmp, mountPath: /tmp}
  - {name: work-dir, mountPath: /opt/spark/work-dir}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaCaMount" $root | nindent 2 }}
  {{- end }}
{{- end -}}

{{/*
The spec of one Spark job (a SparkApplication's spec, or a ScheduledSparkApplication's
template). Call with (dict "root" $ "job" "<module>" "args" (list ...) "restartPolicy" (dict ...)),
optionally with "driverPorts" and "driverEnv" (lists) for what only the driver has.
*/}}
{{- define "iotpipe.spark.appSpec" -}}
{{- $root := .root -}}
{{- $s := $root.Values.spark -}}
{{- $lake := $root.Values.lake -}}
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
  {{- toYaml (prepend .args .job) | nindent 2 }}
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
  {{- with $s.sparkConf }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
driver:
  {{- include "iotpipe.spark.pod" (dict "root" $root "role" $s.driver "ports" .driverPorts "env" .driverEnv) | nindent 2 }}
executor:
  instances: {{ $s.executor.instances }}
  {{- include "iotpipe.spark.pod" (dict "root" $root "role" $s.executor) | nindent 2 }}
volumes:
  - name: tmp
    emptyDir: {sizeLimit: 2Gi}
  - name: work-dir
    emptyDir: {sizeLimit: 1Gi}
  {{- if $root.Values.kafka.enabled }}
  {{- include "iotpipe.kafkaCaVolume" $root | nindent 2 }}
  {{- end }}
{{- if $s.monitoring.enabled }}
monitoring:
  exposeDriverMetrics: true
  exposeExecutorMetrics: true
  prometheus:
    jmxExporterJar: /opt/iotpipe/jmx_prometheus_javaagent.jar
    port: {{ $s.monitoring.port }}
    portName: jmx-metrics
{{- end }}
{{- end -}}
