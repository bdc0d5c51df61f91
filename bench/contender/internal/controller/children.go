package controller

import (
	"sort"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"

	appsv1alpha1 "example.com/webapp-contender/api/v1alpha1"
)

// The children's labels, the same as the Rust operator's (same objects, same bytes).
const (
	appName   = "webapp"
	managedBy = "webapp-operator"
	container = "app"
)

func labels(webapp *appsv1alpha1.WebApp) map[string]string {
	return map[string]string{
		"app.kubernetes.io/name":       appName,
		"app.kubernetes.io/instance":   webapp.Name,
		"app.kubernetes.io/managed-by": managedBy,
	}
}

func selector(webapp *appsv1alpha1.WebApp) map[string]string {
	return map[string]string{"app.kubernetes.io/name": appName, "app.kubernetes.io/instance": webapp.Name}
}

// mutateDeployment sets the fields the WebApp owns on the live Deployment (or a new
// one) and leaves the API server's defaults alone: CreateOrUpdate compares the whole
// object before and after, and a mutate that replaced the template whole would wipe
// the defaults and send an Update on every reconcile.
func mutateDeployment(deployment *appsv1.Deployment, webapp *appsv1alpha1.WebApp) {
	deployment.Labels = labels(webapp)
	spec := &deployment.Spec
	// Unset, an autoscaler owns the count (and the API server's default of 1 stays).
	if webapp.Spec.Replicas != nil {
		spec.Replicas = webapp.Spec.Replicas
	}
	// The selector cannot change once created.
	if deployment.CreationTimestamp.IsZero() {
		spec.Selector = &metav1.LabelSelector{MatchLabels: selector(webapp)}
	}
	spec.Template.Labels = labels(webapp)
	if len(spec.Template.Spec.Containers) != 1 || spec.Template.Spec.Containers[0].Name != container {
		spec.Template.Spec.Containers = []corev1.Container{{Name: container}}
	}
	c := &spec.Template.Spec.Containers[0]
	c.Image = webapp.Spec.Image
	c.Ports = []corev1.ContainerPort{{Name: "http", ContainerPort: webapp.Spec.Port, Protocol: corev1.ProtocolTCP}}
	c.Env = env(webapp.Spec.Env)
	c.Resources = corev1.ResourceRequirements{}
	if webapp.Spec.Resources != nil {
		c.Resources = *webapp.Spec.Resources.DeepCopy()
	}
	handler := corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(webapp.Spec.Port)}}
	if webapp.Spec.ProbePath != nil {
		handler = corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: *webapp.Spec.ProbePath, Port: intstr.FromInt32(webapp.Spec.Port), Scheme: corev1.URISchemeHTTP,
		}}
	}
	// Only the handler: the thresholds and periods are the API server's defaults.
	if c.ReadinessProbe == nil {
		c.ReadinessProbe = &corev1.Probe{}
	}
	c.ReadinessProbe.ProbeHandler = handler
	c.SecurityContext = restricted()
	if webapp.Spec.SecurityContext != nil {
		c.SecurityContext = webapp.Spec.SecurityContext.DeepCopy()
	}
}

// env lists the spec's map in name order: Go's map order is random, and a list in a
// new order each time would be an Update each time.
func env(vars map[string]string) []corev1.EnvVar {
	if len(vars) == 0 {
		return nil
	}
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	sort.Strings(names)
	out := make([]corev1.EnvVar, 0, len(names))
	for _, name := range names {
		out = append(out, corev1.EnvVar{Name: name, Value: vars[name]})
	}
	return out
}

// restricted is what Pod Security `restricted` asks of a container, the Rust
// operator's default too.
func restricted() *corev1.SecurityContext {
	yes, no := true, false
	return &corev1.SecurityContext{
		RunAsNonRoot:             &yes,
		AllowPrivilegeEscalation: &no,
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// mutateService sets the fields the WebApp owns on the live Service (or a new one),
// leaving the cluster IP and the other defaults alone.
func mutateService(service *corev1.Service, webapp *appsv1alpha1.WebApp) {
	service.Labels = labels(webapp)
	service.Spec.Type = webapp.Spec.ServiceType
	if service.Spec.Type == "" {
		service.Spec.Type = corev1.ServiceTypeClusterIP
	}
	service.Spec.Selector = selector(webapp)
	port := corev1.ServicePort{
		Name: "http", Port: webapp.Spec.Port, TargetPort: intstr.FromInt32(webapp.Spec.Port), Protocol: corev1.ProtocolTCP,
	}
	// A NodePort or LoadBalancer Service keeps the node port the API server chose.
	if len(service.Spec.Ports) == 1 {
		port.NodePort = service.Spec.Ports[0].NodePort
	}
	service.Spec.Ports = []corev1.ServicePort{port}
}
