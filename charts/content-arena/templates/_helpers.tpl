{{/*
Common labels. Object names are fixed (see values.yaml), so no fullname helper.
*/}}
{{- define "content-arena.chart" -}}
{{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels for every object: include with (dict "root" $ "name" "x" "component" "y"). */}}
{{- define "content-arena.labels" -}}
helm.sh/chart: {{ include "content-arena.chart" .root }}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/version: {{ .root.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
app.kubernetes.io/part-of: content-arena
{{- with .component }}
app.kubernetes.io/component: {{ . }}
{{- end }}
{{- end }}

{{/* Pod template labels: selector label + component (used by NetworkPolicies). */}}
{{- define "content-arena.podLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
app.kubernetes.io/part-of: content-arena
{{- end }}

{{/* Project image: (dict "root" $ "image" .Values.api.image). */}}
{{- define "content-arena.image" -}}
{{- $repo := .image.repository -}}
{{- if not (contains "/" $repo) -}}
{{- $repo = printf "%s/%s" (trimSuffix "/" .root.Values.image.registry) $repo -}}
{{- end -}}
{{- $tag := .image.tag | default .root.Values.image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repo (toString $tag) -}}
{{- end }}

{{/* Pod-level securityContext for a uid: (dict "uid" 10001). */}}
{{- define "content-arena.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
runAsGroup: {{ .uid }}
fsGroup: {{ .uid }}
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Container-level securityContext: (dict "uid" 10001). */}}
{{- define "content-arena.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .uid }}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{/* Connection settings shared by the API and training Jobs. */}}
{{- define "content-arena.appEnv" -}}
- name: ARENA_CONFIG
  value: /etc/arena/arena.yaml
- name: DB_PASSWORD
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.db.name }}
      key: {{ .Values.secrets.db.passwordKey }}
# Expanded by the kubelet; the password must be URL-safe.
- name: ARENA_STORAGE__URL
  value: postgresql+psycopg://arena:$(DB_PASSWORD)@postgres:5432/arena
- name: ARENA_QUEUE__URL
  value: redis://redis:6379/0
- name: ARENA_MLFLOW__TRACKING_URI
  value: http://mlflow:5000
- name: ARENA_LLM__HOST
  value: http://ollama:11434
{{- end }}

{{- define "content-arena.imagePullSecrets" -}}
{{- with .Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}

{{/* storageClassName line for a PVC spec when one is set. */}}
{{- define "content-arena.storageClass" -}}
{{- with .storageClassName }}
storageClassName: {{ . | quote }}
{{- end }}
{{- end }}
