{{/* Names and labels. */}}
{{- define "webapp-operator.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webapp-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "webapp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "webapp-operator.labels" -}}
{{ include "webapp-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end }}

{{- define "webapp-operator.serviceAccountName" -}}
{{- default (include "webapp-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
The operator's RBAC rules, read from files/role.yaml: a verbatim copy of
config/rbac/role.yaml (hack/sync-chart copies it; CI fails when the copy differs), so
the rules have one source that every controller's author edits. Its ClusterRole holds
the controllers' rules, its Role those of the leader-election Lease.

Returns YAML: operator (all controller rules), namespaced and cluster (the same rules
split by the scope of their resources, for namespace-scope mode, where a Role cannot
grant cluster-scoped resources) and leader.
*/}}
{{- define "webapp-operator.rules" -}}
{{- $clusterScoped := list "nodes" "namespaces" "persistentvolumes" "customresourcedefinitions" "storageclasses" "csidrivers" "csinodes" "volumeattachments" "clusterroles" "clusterrolebindings" "priorityclasses" "ingressclasses" "runtimeclasses" "mutatingwebhookconfigurations" "validatingwebhookconfigurations" "apiservices" "certificatesigningrequests" -}}
{{- $operator := list -}}
{{- $leader := list -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" (.Files.Get "files/role.yaml") -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if eq (toString $obj.kind) "ClusterRole" -}}
{{- $operator = concat $operator $obj.rules -}}
{{- else if eq (toString $obj.kind) "Role" -}}
{{- $leader = concat $leader $obj.rules -}}
{{- end -}}
{{- end -}}
{{- if not $operator -}}
{{- fail "files/role.yaml has no ClusterRole rules: run hack/sync-chart" -}}
{{- end -}}
{{- $namespaced := list -}}
{{- $cluster := list -}}
{{- range $rule := $operator -}}
{{- $global := 0 -}}
{{- range $resource := ($rule.resources | default list) -}}
{{- if has (first (splitList "/" $resource)) $clusterScoped -}}
{{- $global = add1 $global -}}
{{- end -}}
{{- end -}}
{{- if or $rule.nonResourceURLs (and $rule.resources (eq $global (len $rule.resources))) -}}
{{- $cluster = append $cluster $rule -}}
{{- else if eq $global 0 -}}
{{- $namespaced = append $namespaced $rule -}}
{{- else -}}
{{- fail (printf "config/rbac/role.yaml: a rule mixes cluster-scoped and namespaced resources (%v); split it" $rule.resources) -}}
{{- end -}}
{{- end -}}
{{- toYaml (dict "operator" $operator "namespaced" $namespaced "cluster" $cluster "leader" $leader) -}}
{{- end }}
