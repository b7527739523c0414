{{/*
Helpers of the `helm test` hooks (tests.enabled): Pods that check the installed release through
its Services, in images the release already runs (no other image is pulled), locked down like
every other pod of the chart (the restricted Pod Security Standard). Their checks are the
Python scripts in files/tests/, passed to `python -c`.
*/}}

{{/*
Metadata of a test hook. Call with (dict "root" $ "name" .. "component" .. "weight" .. ["keep" true]).
A kept hook (the test Pods) stays after it ran, for `helm test --logs` (which reads the logs
after every hook ran) and `kubectl logs`, until the next `helm test` replaces it; the others
(the Kafka check's NetworkPolicy) are deleted once they succeeded.
*/}}
{{- define "iotpipe.tests.metadata" -}}
name: {{ .name }}
namespace: {{ .root.Release.Namespace }}
labels:
  {{- include "iotpipe.labels" (dict "root" .root "component" .component) | nindent 2 }}
  iotpipe.io/helm-test: "true"
annotations:
  helm.sh/hook: test
  helm.sh/hook-weight: {{ .weight | quote }}
  helm.sh/hook-delete-policy: {{ ternary "before-hook-creation" "before-hook-creation,hook-succeeded" (default false .keep) }}
{{- end -}}

{{/*
The spec of a test Pod: one container running a files/tests/ script with `args`.
Call with (dict "root" $ "script" "<file>" "args" (list ..) "image" <image values>
"volumes" <yaml or ""> "mounts" <yaml or "">).
*/}}
{{- define "iotpipe.tests.podSpec" -}}
{{- $root := .root -}}
restartPolicy: Never
activeDeadlineSeconds: {{ add (int $root.Values.tests.waitSeconds) 60 }}
automountServiceAccountToken: false
enableServiceLinks: false
securityContext:
  {{- include "iotpipe.podSecurityContext" 10001 | nindent 2 }}
{{- with $root.Values.global.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
containers:
  - name: check
    image: {{ include "iotpipe.image" (dict "root" $root "image" .image) }}
    imagePullPolicy: {{ $root.Values.global.imagePullPolicy }}
    command:
      - python
      - -c
      - {{ $root.Files.Get (printf "files/tests/%s" .script) | required (printf "files/tests/%s is missing" .script) | quote }}
      {{- range .args }}
      - {{ . | quote }}
      {{- end }}
      - --wait
      - {{ $root.Values.tests.waitSeconds | quote }}
    resources:
      {{- toYaml $root.Values.tests.resources | nindent 6 }}
    securityContext:
      {{- include "iotpipe.containerSecurityContext" $root | nindent 6 }}
    {{- with .mounts }}
    volumeMounts:
      {{- . | nindent 6 }}
    {{- end }}
{{- with .volumes }}
volumes:
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The image the Kafka check runs in: the first enabled service's, else the orchestrator's. */}}
{{- define "iotpipe.tests.pythonImage" -}}
{{- $services := include "iotpipe.services" . | fromYamlArray -}}
{{- if $services -}}
{{- toYaml (first $services).cfg.image -}}
{{- else if .Values.orchestrator.enabled -}}
{{- toYaml .Values.orchestrator.image -}}
{{- end -}}
{{- end -}}
