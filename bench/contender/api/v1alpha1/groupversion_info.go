// Package v1alpha1 holds the WebApp API types (apps.example.com/v1alpha1), written by
// hand the way `kubebuilder create api` lays them out. The CRD itself is the Rust
// operator's (config/crd/apps.example.com_webapps.yaml): the contender reads and writes
// the same objects, so no CRD is generated here.
package v1alpha1

import (
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/scheme"
)

var (
	// GroupVersion is the group and version of the WebApp kind.
	GroupVersion = schema.GroupVersion{Group: "apps.example.com", Version: "v1alpha1"}

	// SchemeBuilder adds the types of this group-version to a scheme.
	SchemeBuilder = &scheme.Builder{GroupVersion: GroupVersion}

	// AddToScheme adds the types of this group-version to a scheme.
	AddToScheme = SchemeBuilder.AddToScheme
)
