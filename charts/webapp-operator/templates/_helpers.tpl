{{/* Names and labels. nameOverride replaces the chart's name, fullnameOverride the whole
full name (every object's name, the Lease's, the webhook Service's and Secret's). */}}
{{- define "webapp-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webapp-operator.fullname" -}}
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

{{- define "webapp-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "webapp-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name | quote }}
{{- end }}

{{/*
Every object's labels: the chart's, then commonLabels (which cannot replace the chart's
own). Built as a dict, not parsed from text, so that a release named "y" or "on" stays a
string.
*/}}
{{- define "webapp-operator.labels" -}}
{{- $own := dict "app.kubernetes.io/name" (include "webapp-operator.name" .) "app.kubernetes.io/instance" .Release.Name
  "app.kubernetes.io/version" .Chart.AppVersion "app.kubernetes.io/managed-by" .Release.Service
  "helm.sh/chart" (printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_") }}
{{- toYaml (merge $own (deepCopy (.Values.commonLabels | default dict))) }}
{{- end }}

{{/*
The leader-election Lease: one per release, so that two releases in one namespace each
elect their own leader. "<fullname>-leader", which for the release webapp-operator is the
name every earlier version used (webapp-operator-leader): old and new replicas share it
during an upgrade's rollout and never lead at once.
*/}}
{{- define "webapp-operator.leaseName" -}}
{{- default (printf "%s-leader" (include "webapp-operator.fullname" .)) .Values.leaderElection.id | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "webapp-operator.serviceAccountName" -}}
{{- default (include "webapp-operator.fullname" .) .Values.serviceAccount.name }}
{{- end }}

{{/*
The operator's RBAC rules, read from files/role.yaml: a verbatim copy of
config/rbac/role.yaml (hack/sync-chart copies it; CI fails when the copy differs), so
the rules have one source that every controller's author edits. Its ClusterRole holds
the controllers' rules, its Roles those of the leader-election Lease (*-leader-election)
and of the webhook certificate's Secret (*-webhook-certs).

Returns YAML: operator (all controller rules), namespaced and cluster (the same rules
split by the scope of their resources, for namespace-scope mode, where a Role cannot
grant cluster-scoped resources), leader and webhookCerts (config/'s Secret name in
resourceNames; rbac.yaml puts the release's in its place).
*/}}
{{- define "webapp-operator.rules" -}}
{{- $clusterScoped := list "nodes" "namespaces" "persistentvolumes" "customresourcedefinitions" "storageclasses" "csidrivers" "csinodes" "volumeattachments" "clusterroles" "clusterrolebindings" "priorityclasses" "ingressclasses" "runtimeclasses" "mutatingwebhookconfigurations" "validatingwebhookconfigurations" "apiservices" "certificatesigningrequests" -}}
{{- $operator := list -}}
{{- $leader := list -}}
{{- $webhookCerts := list -}}
{{- range $doc := regexSplit "(?m)^---[ \t]*$" (.Files.Get "files/role.yaml") -1 -}}
{{- $obj := fromYaml $doc -}}
{{- if eq (toString $obj.kind) "ClusterRole" -}}
{{- $operator = concat $operator $obj.rules -}}
{{- else if and (eq (toString $obj.kind) "Role") (hasSuffix "-leader-election" (toString $obj.metadata.name)) -}}
{{- $leader = concat $leader $obj.rules -}}
{{- else if and (eq (toString $obj.kind) "Role") (hasSuffix "-webhook-certs" (toString $obj.metadata.name)) -}}
{{- $webhookCerts = concat $webhookCerts $obj.rules -}}
{{- else if $obj.kind -}}
{{- fail (printf "files/role.yaml: unknown %s %v; teach templates/_helpers.tpl where it goes" $obj.kind $obj.metadata.name) -}}
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
{{- toYaml (dict "operator" $operator "namespaced" $namespaced "cluster" $cluster "leader" $leader "webhookCerts" $webhookCerts) -}}
{{- end }}


{{/*
Whether PodManager's conversion webhook runs: with the podmanager controller (all
controllers run when the list is empty). "true" or empty.
*/}}
{{- define "webapp-operator.webhook" -}}
{{- if or (not .Values.controllers) (has "podmanager" .Values.controllers) -}}
true
{{- end -}}
{{- end }}

{{- define "webapp-operator.webhookService" -}}
{{- printf "%s-webhook" (include "webapp-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The Secret of the webhook certificate: generated by the operator, or cert-manager's. */}}
{{- define "webapp-operator.webhookSecret" -}}
{{- printf "%s-webhook-tls" (include "webapp-operator.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The operator's image: [registry/]repository, then @digest when a digest is set (it wins
over the tag: the pods run exactly the image that was built and signed, whatever the tag
points at later), else :tag (default: the chart's appVersion).
*/}}
{{- define "webapp-operator.image" -}}
{{- $name := .Values.image.repository -}}
{{- with .Values.image.registry -}}
{{- $name = printf "%s/%s" (trimSuffix "/" .) $name -}}
{{- end -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" $name .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" $name (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}
{{- end }}
