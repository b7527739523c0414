{{/*
The enabled HTTP services, each merged over serviceDefaults, as a YAML list of
{key, name, fullname, serviceAccount, kafkaUser, cfg}. Every services/ template ranges over it:
    {{- range $svc := include "iotpipe.services" . | fromYamlArray }}
*/}}
{{- define "iotpipe.services" -}}
{{- $root := . -}}
{{- range $key := list "sensorSimulator" "dlqInspector" "qualityGate" "warehouseLoader" }}
{{- $values := index $root.Values $key }}
{{- if $values.enabled }}
{{- $cfg := mustMergeOverwrite (deepCopy $root.Values.serviceDefaults) (deepCopy $values) }}
{{- $name := kebabcase $key }}
- key: {{ $key }}
  name: {{ $name }}
  fullname: {{ printf "%s-%s" (include "iotpipe.fullname" $root) $name }}
  serviceAccount: {{ (index $root.Values.serviceAccounts $key).name }}
  kafkaUser: {{ if and $root.Values.kafka.enabled $cfg.kafka.acls }}{{ printf "%s-%s" (include "iotpipe.fullname" $root) $name }}{{ end }}
  cfg:
    {{- toYaml $cfg | nindent 4 }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Environment of one service's container. Call with (dict "root" $ "svc" $svc). */}}
{{- define "iotpipe.serviceEnv" -}}
{{- $root := .root -}}
{{- $svc := .svc -}}
{{- $p := $svc.cfg.envPrefix -}}
- name: {{ $p }}PORT
  value: {{ $svc.cfg.port | quote }}
- name: {{ $p }}LOG_LEVEL
  value: {{ $svc.cfg.logLevel | quote }}
- name: {{ $p }}LOG_JSON
  value: "true"
- name: {{ $p }}API_TOKEN
  valueFrom:
    secretKeyRef:
      name: {{ $root.Values.apiTokensSecret }}
      key: {{ $svc.name }}
- name: HOME
  value: /tmp
{{- if $svc.kafkaUser }}
{{ include "iotpipe.kafkaEnv" (dict "root" $root "user" $svc.kafkaUser) }}
{{- end }}
{{ include "iotpipe.lakeEnv" $root }}
{{- if eq $svc.key "dlqInspector" }}
- name: DLQ_LEDGER_TOPIC
  value: {{ $root.Values.kafka.topics.replays.name | quote }}
{{ include "iotpipe.contractEnv" $root }}
{{- end }}
{{- if eq $svc.key "warehouseLoader" }}
{{- $wh := $root.Values.warehouse }}
- name: LOADER_DIALECT
  value: {{ ternary "redshift" "postgresql" (eq $wh.dialect "redshift") }}
- name: LOADER_WAREHOUSE_DSN
  valueFrom:
    secretKeyRef:
      name: {{ $wh.credentialsSecret }}
      key: dsn
{{- if and (eq $wh.dialect "redshift") $wh.redshift.copyRoleArn }}
- name: LOADER_REDSHIFT_IAM_ROLE
  value: {{ $wh.redshift.copyRoleArn | quote }}
{{- end }}
{{- if $root.Values.qualityGate.enabled }}
- name: LOADER_QUALITY_GATE_URL
  value: {{ printf "http://%s-quality-gate:%d" (include "iotpipe.fullname" $root) (int $root.Values.serviceDefaults.port) | quote }}
{{- end }}
{{- end }}
{{- range $name, $value := $svc.cfg.env }}
- name: {{ printf "%s%s" $p $name }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end -}}
