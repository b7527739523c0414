{{/*
Helpers shared by every template. Per-component helpers live beside their templates
(services/_service.tpl, spark/_spark.tpl).
*/}}

{{/* The release's name prefix: `iotpipe` for release `iotpipe`. */}}
{{- define "iotpipe.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 40 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 40 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Standard labels. Call with (dict "root" $ "component" "<name>"). */}}
{{- define "iotpipe.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .root.Chart.Name .root.Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/part-of: iotpipe
{{ include "iotpipe.selectorLabels" . }}
{{- with .root.Values.global.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Labels that select a component's pods. */}}
{{- define "iotpipe.selectorLabels" -}}
app.kubernetes.io/name: {{ .component }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Object metadata: name, namespace, labels. Call with (dict "root" $ "name" .. "component" ..). */}}
{{- define "iotpipe.metadata" -}}
name: {{ .name }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "iotpipe.labels" . | nindent 2 }}
{{- end -}}

{{/*
An image reference: <registry>/<repository>@<digest> when a digest is given, else
<registry>/<repository>:<tag> (the image's own tag, else global.imageTag, else appVersion).
Call with (dict "root" $ "image" .Values.x.image).
*/}}
{{- define "iotpipe.image" -}}
{{- $registry := .root.Values.global.imageRegistry -}}
{{- $repo := ternary (printf "%s/%s" $registry .image.repository) .image.repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (.image.tag | default .root.Values.global.imageTag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/* Pod-level security defaults. Call with the uid. */}}
{{- define "iotpipe.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Container-level security defaults. */}}
{{- define "iotpipe.containerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Service-account annotations: the IRSA role plus any extra. Call with the account's values. */}}
{{- define "iotpipe.serviceAccountAnnotations" -}}
{{- $annotations := deepCopy (.annotations | default dict) -}}
{{- if .roleArn -}}
{{- $_ := set $annotations "eks.amazonaws.com/role-arn" .roleArn -}}
{{- end -}}
{{- with $annotations }}
annotations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* Kafka client environment for a Strimzi KafkaUser. Call with (dict "root" $ "user" "<KafkaUser name>"). */}}
{{- define "iotpipe.kafkaEnv" -}}
{{- $kafka := .root.Values.kafka -}}
- name: KAFKA_BOOTSTRAP_SERVERS
  value: {{ printf "%s:%d" (include "iotpipe.kafka.bootstrapHost" .root) (int $kafka.port) | quote }}
- name: KAFKA_SECURITY_PROTOCOL
  value: SASL_SSL
- name: KAFKA_SASL_MECHANISM
  value: SCRAM-SHA-512
- name: KAFKA_SASL_USERNAME
  value: {{ .user | quote }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .user }}
      key: password
- name: KAFKA_SSL_CAFILE
  value: /etc/iotpipe/kafka-ca/ca.crt
- name: KAFKA_EVENTS_TOPIC
  value: {{ $kafka.topics.events.name | quote }}
- name: KAFKA_DLQ_TOPIC
  value: {{ $kafka.topics.dlq.name | quote }}
- name: KAFKA_CLIENT_ID
  value: {{ .user | quote }}
{{- end -}}

{{/* The cluster CA volume that KAFKA_SSL_CAFILE points into. */}}
{{- define "iotpipe.kafkaCaVolume" -}}
- name: kafka-ca
  secret:
    secretName: {{ printf "%s-cluster-ca-cert" .Values.kafka.clusterName }}
    items:
      - {key: ca.crt, path: ca.crt}
{{- end -}}

{{- define "iotpipe.kafkaCaMount" -}}
- name: kafka-ca
  mountPath: /etc/iotpipe/kafka-ca
  readOnly: true
{{- end -}}

{{/* The event contract's bounds (iotpipe.settings.ContractSettings); "none" is no bound. */}}
{{- define "iotpipe.contractEnv" -}}
{{- $contract := .Values.contract -}}
- name: CONTRACT_MAX_AHEAD_SECONDS
  value: {{ $contract.maxEventAheadSeconds | default "none" | quote }}
- name: CONTRACT_MAX_BEHIND_SECONDS
  value: {{ $contract.maxEventBehindSeconds | default "none" | quote }}
{{- end -}}

{{/* Lake environment: where the lake is and how to reach S3. */}}
{{- define "iotpipe.lakeEnv" -}}
{{- $lake := .Values.lake -}}
- name: LAKE_ROOT
  value: {{ $lake.root | quote }}
- name: AWS_REGION
  value: {{ $lake.region | quote }}
- name: AWS_DEFAULT_REGION
  value: {{ $lake.region | quote }}
{{- with $lake.s3.endpoint }}
- name: AWS_ENDPOINT_URL_S3
  value: {{ . | quote }}
{{- end }}
{{- with $lake.s3.credentialsSecret }}
- name: AWS_ACCESS_KEY_ID
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: AWS_ACCESS_KEY_ID}
- name: AWS_SECRET_ACCESS_KEY
  valueFrom:
    secretKeyRef: {name: {{ . }}, key: AWS_SECRET_ACCESS_KEY}
{{- end }}
{{- end -}}

{{/* The lake's claim (lake.volumeClaim), mounted at lake.root: clusters without S3. */}}
{{- define "iotpipe.lakeVolume" -}}
{{- with .Values.lake.volumeClaim }}
- name: lake
  persistentVolumeClaim: {claimName: {{ . | quote }}}
{{- end }}
{{- end -}}

{{- define "iotpipe.lakeMount" -}}
{{- if .Values.lake.volumeClaim }}
- {name: lake, mountPath: {{ .Values.lake.root | trimPrefix "file:" | quote }}}
{{- end }}
{{- end -}}

{{/*
"true" when the prometheus-operator objects (ServiceMonitor, PodMonitor, PrometheusRule) render:
monitoring.enabled is on AND the cluster serves monitoring.coreos.com/v1. So the chart installs
on a cluster without prometheus-operator, whatever monitoring.enabled says. `helm install` and
`helm upgrade` read the API versions from the cluster; `helm template` knows only the built-in
ones unless told (`--api-versions monitoring.coreos.com/v1`).
*/}}
{{- define "iotpipe.monitoring.operator" -}}
{{- if and .Values.monitoring.enabled (.Capabilities.APIVersions.Has "monitoring.coreos.com/v1") }}true{{ end -}}
{{- end -}}

{{/* The label that lets a pod through the Kafka listener's NetworkPolicy. */}}
{{- define "iotpipe.kafkaClientLabel" -}}
iotpipe.io/kafka-client: "true"
{{- end -}}
