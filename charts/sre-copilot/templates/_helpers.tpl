{{/* Names, labels, and the checks every render runs. */}}

{{- define "sre-copilot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A fully qualified app name, truncated at 63 characters (the DNS label limit). If the release name
already contains the chart name it is used alone.
*/}}
{{- define "sre-copilot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "sre-copilot.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sre-copilot.labels" -}}
helm.sh/chart: {{ include "sre-copilot.chart" . }}
{{ include "sre-copilot.selectorLabels" . }}
app.kubernetes.io/version: {{ include "sre-copilot.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "sre-copilot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sre-copilot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
The bot's pods. The component label keeps the Service, the PDB and the Deployment off the
migration Job's pod, which shares the selector labels above.
*/}}
{{- define "sre-copilot.serverSelectorLabels" -}}
{{ include "sre-copilot.selectorLabels" . }}
app.kubernetes.io/component: server
{{- end }}

{{- define "sre-copilot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sre-copilot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sre-copilot.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "sre-copilot.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "sre-copilot.imageTag" .) }}
{{- end }}

{{/* The Secret the pods read: the user's existingSecret or the one this chart creates. */}}
{{- define "sre-copilot.secretName" -}}
{{- if .Values.existingSecret }}
{{- .Values.existingSecret }}
{{- else }}
{{- include "sre-copilot.fullname" . }}
{{- end }}
{{- end }}

{{/* "true" when the database is an external one (PostgreSQL), not the pod's SQLite file. */}}
{{- define "sre-copilot.externalDatabase" -}}
{{- if or .Values.existingSecret .Values.secrets.DATABASE_URL }}true{{ end }}
{{- end }}

{{/* "true" when the hook Job migrates the database, so the pods must not. */}}
{{- define "sre-copilot.hookMigrates" -}}
{{- if and .Values.migrations.enabled (include "sre-copilot.externalDatabase" .) }}true{{ end }}
{{- end }}

{{/* The Prometheus label selector of this release's scrape job (the ServiceMonitor's). */}}
{{- define "sre-copilot.promSelector" -}}
job="{{ include "sre-copilot.fullname" . }}", namespace="{{ .Release.Namespace }}"
{{- end }}

{{/* The container env shared by the Deployment and the migration Job (besides envFrom). */}}
{{- define "sre-copilot.baseEnv" -}}
- name: SRE_COPILOT_DATA_DIR
  value: /data
- name: HOME
  value: /tmp
{{- end }}

{{/* The non-empty `config` values as env entries (for the hook Job, which runs before the ConfigMap exists). */}}
{{- define "sre-copilot.configEnv" -}}
{{- range $key, $value := .Values.config }}
{{- if $value }}
- name: {{ $key }}
  value: {{ $value | toString | quote }}
{{- end }}
{{- end }}
{{- end }}

{{/* Volumes and mounts for a read-only root: /tmp and the data directory. */}}
{{- define "sre-copilot.volumeMounts" -}}
- name: data
  mountPath: /data
- name: tmp
  mountPath: /tmp
{{- end }}

{{/* Refuse values that would render a broken install. */}}
{{- define "sre-copilot.validate" -}}
{{- $drain := add (int .Values.preStopSleepSeconds) 30 }}
{{- if le (int .Values.terminationGracePeriodSeconds) $drain }}
{{- fail (printf "terminationGracePeriodSeconds is %d, but a stopping pod needs preStopSleepSeconds (%d) plus up to 30 s to drain: set it above %d, or the kubelet kills the pod mid-drain." (int .Values.terminationGracePeriodSeconds) (int .Values.preStopSleepSeconds) $drain) }}
{{- end }}
{{- $replicas := int .Values.replicaCount }}
{{- if gt $replicas 1 }}
{{- if not (include "sre-copilot.externalDatabase" .) }}
{{- fail (printf "replicaCount is %d, but without a database URL the copilot uses SQLite in the pod's data volume, which does not scale out. Set secrets.DATABASE_URL (or existingSecret, a Secret with a DATABASE_URL key) to a PostgreSQL URL, or set replicaCount to 1." $replicas) }}
{{- end }}
{{- if hasPrefix "sqlite" (lower .Values.secrets.DATABASE_URL) }}
{{- fail (printf "replicaCount is %d, but secrets.DATABASE_URL is a SQLite URL, which does not scale out. Use a PostgreSQL URL, or set replicaCount to 1." $replicas) }}
{{- end }}
{{- end }}
{{- end }}
