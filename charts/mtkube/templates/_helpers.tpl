{{/* Names, labels and the operator's RBAC rules, shared by every template. */}}

{{- define "mtkube.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* RELEASE-mtkube, or RELEASE alone when it already says mtkube; at most 63 characters. */}}
{{- define "mtkube.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Name of the operator's objects (Deployment, Service, Roles): FULLNAME-operator. */}}
{{- define "mtkube.operatorName" -}}
{{- printf "%s-operator" (include "mtkube.fullname" . | trunc 54 | trimSuffix "-") -}}
{{- end -}}

{{- define "mtkube.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The operator pods' selector; immutable once installed. */}}
{{- define "mtkube.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mtkube.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: operator
{{- end -}}

{{/* Labels of every object of the release, without a component. */}}
{{- define "mtkube.commonLabels" -}}
helm.sh/chart: {{ include "mtkube.chart" . }}
app.kubernetes.io/name: {{ include "mtkube.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: mtkube
{{- end -}}

{{/* Labels of the operator's objects. */}}
{{- define "mtkube.labels" -}}
{{ include "mtkube.commonLabels" . }}
app.kubernetes.io/component: operator
{{- end -}}

{{- define "mtkube.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "mtkube.operatorName" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- required "serviceAccount.name: name the existing ServiceAccount when serviceAccount.create is false" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "mtkube.leaseName" -}}
{{- default (include "mtkube.operatorName" .) .Values.leaderElection.leaseName -}}
{{- end -}}

{{/* repository:tag, or repository@sha256:... when the tag is a digest. Call with (list repository tag default). */}}
{{- define "mtkube.imageRef" -}}
{{- $repository := index . 0 -}}
{{- $tag := default (index . 2) (index . 1) -}}
{{- if hasPrefix "sha256:" $tag -}}
{{- printf "%s@%s" $repository $tag -}}
{{- else -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}
{{- end -}}

{{- define "mtkube.proxyName" -}}
{{- default (printf "%s-proxy" (include "mtkube.fullname" . | trunc 57 | trimSuffix "-")) .Values.proxy.name -}}
{{- end -}}

{{/*
What the operator may do where it watches MTProxies. The same rules as the ClusterRole in
operator/deploy/rbac.yaml (test/helm/chart.test.ts compares them); the reasons are written there.
*/}}
{{- define "mtkube.operatorRules" -}}
- apiGroups: [mtkube.dev]
  resources: [mtproxies]
  verbs: [get, list, watch]
- apiGroups: [mtkube.dev]
  resources: [mtproxies/status]
  verbs: [get, patch, update]
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, watch, create, patch, delete]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, list, watch, create, patch]
- apiGroups: [""]
  resources: [events]
  verbs: [create, patch]
- apiGroups: [""]
  resources: [persistentvolumeclaims]
  verbs: [get, create, patch]
- apiGroups: [policy]
  resources: [poddisruptionbudgets]
  verbs: [get, create, patch, delete]
- apiGroups: [monitoring.coreos.com]
  resources: [servicemonitors]
  verbs: [get, create, patch, delete]
{{- end -}}

{{/* Leader election: one Lease in the release namespace. */}}
{{- define "mtkube.leaseRules" -}}
- apiGroups: [coordination.k8s.io]
  resources: [leases]
  verbs: [get, create, update]
{{- end -}}
