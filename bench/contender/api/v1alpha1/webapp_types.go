package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// WebAppSpec is what the user asks for: one web application. The fields mirror the
// CRD's schema; the API server applies its defaults (port 80, ClusterIP).
type WebAppSpec struct {
	// Image is the container image to run.
	Image string `json:"image"`
	// Replicas is the number of pods; nil leaves the count to an autoscaler.
	Replicas *int32 `json:"replicas,omitempty"`
	// Port is the port the container listens on and the Service exposes.
	Port int32 `json:"port,omitempty"`
	// Env holds the container's environment variables, name to value.
	Env map[string]string `json:"env,omitempty"`
	// Domain, when set, asks for an Ingress (not made by the contender: the bench sets none).
	Domain *string `json:"domain,omitempty"`
	// Resources are the container's requests and limits.
	Resources *corev1.ResourceRequirements `json:"resources,omitempty"`
	// ProbePath is the HTTP path of the readiness probe; unset, a TCP probe on the port.
	ProbePath *string `json:"probePath,omitempty"`
	// ServiceType is how the Service is exposed.
	ServiceType corev1.ServiceType `json:"serviceType,omitempty"`
	// SecurityContext replaces the restricted default of the container when set.
	SecurityContext *corev1.SecurityContext `json:"securityContext,omitempty"`
}

// WebAppStatus is what the controller observed, last time it looked.
type WebAppStatus struct {
	// Phase is Pending, Creating, Running, Failed or Deleting.
	Phase string `json:"phase,omitempty"`
	// ObservedGeneration is the metadata.generation this status describes.
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Replicas is the number of pods the Deployment runs.
	Replicas *int32 `json:"replicas,omitempty"`
	// ReadyReplicas is the number of pods that are ready.
	ReadyReplicas *int32 `json:"readyReplicas,omitempty"`
	// Selector is the label selector of the pods, for the scale subresource.
	Selector string `json:"selector,omitempty"`
	// Message is a human-readable summary of the phase.
	Message string `json:"message,omitempty"`
	// Conditions are the standard conditions (the contender sets Ready).
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status

// WebApp is a web application run as a Deployment behind a Service.
type WebApp struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	Spec   WebAppSpec   `json:"spec,omitempty"`
	Status WebAppStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// WebAppList is a list of WebApps.
type WebAppList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	Items           []WebApp `json:"items"`
}

func init() {
	SchemeBuilder.Register(&WebApp{}, &WebAppList{})
}
