{{/*
Kafka helpers shared by the Strimzi resources (kafka/*.yaml) and the chart's own StatefulSet
Kafka (kafka/statefulset/*.yaml). kafka.provider picks one; the client contract is the same.
*/}}

{{/* "true" when the Strimzi resources render. */}}
{{- define "iotpipe.kafka.strimzi" -}}
{{- if and .Values.kafka.enabled (eq .Values.kafka.provider "strimzi") }}true{{ end -}}
{{- end -}}

{{/*
The security context of every container Strimzi runs for the Kafka resource (brokers,
controllers, their init container, the entity operator's two, Kafka Exporter): what Strimzi's
own restricted provider (STRIMZI_POD_SECURITY_PROVIDER_CLASS=restricted) would set, so that the
pods pass the restricted Pod Security Standard k8s/namespace.yaml enforces however the operator
is configured. The pod-level context stays Strimzi's (fsGroup 0 for persistent claims); its
images run as uid 1001.
*/}}
{{- define "iotpipe.kafka.strimziContainerSecurityContext" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* The bootstrap Service clients dial (either provider): <clusterName>-kafka-bootstrap. */}}
{{- define "iotpipe.kafka.bootstrapService" -}}
{{- printf "%s-kafka-bootstrap" .Values.kafka.clusterName -}}
{{- end -}}

{{/* Its DNS name, which the brokers' certificate carries: <service>.<namespace>.svc. */}}
{{- define "iotpipe.kafka.bootstrapHost" -}}
{{- printf "%s.%s.svc" (include "iotpipe.kafka.bootstrapService" .) .Release.Namespace -}}
{{- end -}}

{{/* "true" when the chart runs Kafka itself. */}}
{{- define "iotpipe.kafka.statefulset" -}}
{{- if and .Values.kafka.enabled (eq .Values.kafka.provider "statefulset") }}true{{ end -}}
{{- end -}}

{{/*
The Kafka clients as a YAML list of {name, component, acls}: each enabled service with ACLs,
and the Spark jobs. `name` is the SCRAM user and the name of its Secret (Strimzi's KafkaUser
convention, which the StatefulSet path keeps).
*/}}
{{- define "iotpipe.kafka.users" -}}
{{- $users := list }}
{{- range $svc := include "iotpipe.services" . | fromYamlArray }}
{{- if $svc.kafkaUser }}
{{- $users = append $users (dict "name" $svc.kafkaUser "component" $svc.name "acls" $svc.cfg.kafka.acls) }}
{{- end }}
{{- end }}
{{- if and .Values.kafka.enabled .Values.spark.enabled }}
{{- $users = append $users (dict "name" (include "iotpipe.spark.kafkaUser" .) "component" "spark" "acls" .Values.spark.kafka.acls) }}
{{- end }}
{{- toYaml $users }}
{{- end -}}

{{/* StatefulSet, headless Service and pod names of the chart's own Kafka. */}}
{{- define "iotpipe.kafka.sts.name" -}}
{{- printf "%s-kafka" .Values.kafka.clusterName -}}
{{- end -}}

{{- define "iotpipe.kafka.sts.headless" -}}
{{- printf "%s-kafka-brokers" .Values.kafka.clusterName -}}
{{- end -}}

{{/* The DNS name of pod <index>. Call with (dict "root" $ "index" <int>). */}}
{{- define "iotpipe.kafka.sts.host" -}}
{{- printf "%s-%d.%s.%s.svc" (include "iotpipe.kafka.sts.name" .root) (int .index) (include "iotpipe.kafka.sts.headless" .root) .root.Release.Namespace -}}
{{- end -}}

{{/* Every broker's replication listener, for the setup Job's tools (--bootstrap-server). */}}
{{- define "iotpipe.kafka.sts.adminBootstrap" -}}
{{- $root := . -}}
{{- $hosts := list -}}
{{- range $i := until (int .Values.kafka.statefulset.replicas) -}}
{{- $hosts = append $hosts (printf "%s:9091" (include "iotpipe.kafka.sts.host" (dict "root" $root "index" $i))) -}}
{{- end -}}
{{- join "," $hosts -}}
{{- end -}}

{{/*
A Kafka setting as text, capped at the broker count where it counts replicas (a replication
factor or a minimum in-sync replica count). Call with (dict "key" .. "value" .. "brokers" <int>).
*/}}
{{- define "iotpipe.kafka.sts.capped" -}}
{{- $key := .key -}}
{{- if or (hasSuffix "replication.factor" $key) (hasSuffix "min.insync.replicas" $key) (hasSuffix "min.isr" $key) -}}
{{- min (int64 .value) (int64 .brokers) -}}
{{- else if and (kindIs "float64" .value) (eq (float64 (int64 .value)) .value) -}}
{{- /* a whole number read from YAML as a float: 2592000000, not 2.592e+09 */ -}}
{{- int64 .value -}}
{{- else -}}
{{- .value -}}
{{- end -}}
{{- end -}}

{{/* Labels of the StatefulSet's pods (and its selector). */}}
{{- define "iotpipe.kafka.sts.selectorLabels" -}}
{{- include "iotpipe.selectorLabels" (dict "root" . "component" "kafka") }}
{{- end -}}

{{/* The SCRAM password env vars of the users, SCRAM_PASSWORD_<i>, from their Secrets. */}}
{{- define "iotpipe.kafka.sts.passwordEnv" -}}
{{- range $i, $user := include "iotpipe.kafka.users" . | fromYamlArray }}
- name: SCRAM_PASSWORD_{{ $i }}
  valueFrom:
    secretKeyRef: {name: {{ $user.name }}, key: password}
{{- end }}
{{- end -}}

{{/* JVM options of a short-lived Kafka tool run. */}}
{{- define "iotpipe.kafka.sts.toolJava" -}}
- java
- -Xmx192m
- -XX:+UseSerialGC
- -XX:TieredStopAtLevel=1
- -XX:-UsePerfData
- -Djava.awt.headless=true
- -Dlog4j2.configurationFile=/etc/kafka/log4j2.properties
- -cp
- /opt/kafka/libs/*
{{- end -}}

{{/* The mounts every broker container shares (format and kafka). */}}
{{- define "iotpipe.kafka.sts.mounts" -}}
- name: config
  mountPath: /etc/kafka/server.properties
  subPathExpr: server-$(POD_INDEX).properties
  readOnly: true
- {name: config, mountPath: /etc/kafka/log4j2.properties, subPath: log4j2.properties, readOnly: true}
- {name: tls, mountPath: /etc/kafka/tls, readOnly: true}
- {name: ca, mountPath: /etc/kafka/ca, readOnly: true}
- {name: data, mountPath: /var/lib/kafka}
- {name: tmp, mountPath: /tmp}
{{- end -}}
