// Package controller holds the WebApp reconciler, written the way the kubebuilder book
// teaches (Getting Started and "Using Finalizers"): read from the manager's cache,
// finalizer added and removed with Update, children made with
// controllerutil.CreateOrUpdate and owned through SetControllerReference, status
// written with Status().Update at the end of every reconcile.
package controller

import (
	"context"
	"fmt"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	logf "sigs.k8s.io/controller-runtime/pkg/log"

	appsv1alpha1 "example.com/webapp-contender/api/v1alpha1"
)

// Finalizer holds a WebApp until its children are deleted.
const Finalizer = "apps.example.com/webapp-contender-cleanup"

// Phases of status.phase, as the CRD spells them.
const (
	PhasePending  = "Pending"
	PhaseCreating = "Creating"
	PhaseRunning  = "Running"
)

// WebAppReconciler reconciles a WebApp into a Deployment and a Service.
type WebAppReconciler struct {
	client.Client
	Scheme *runtime.Scheme
}

// Reconcile brings one WebApp's children to its spec and reports their state.
func (r *WebAppReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	log := logf.FromContext(ctx)

	webapp := &appsv1alpha1.WebApp{}
	if err := r.Get(ctx, req.NamespacedName, webapp); err != nil {
		// Deleted meanwhile: the garbage collector takes the children.
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}

	if !webapp.DeletionTimestamp.IsZero() {
		if controllerutil.ContainsFinalizer(webapp, Finalizer) {
			if err := r.cleanup(ctx, webapp); err != nil {
				return ctrl.Result{}, err
			}
			controllerutil.RemoveFinalizer(webapp, Finalizer)
			if err := r.Update(ctx, webapp); err != nil {
				return ctrl.Result{}, err
			}
		}
		// Stop reconciliation as the item is being deleted.
		return ctrl.Result{}, nil
	}

	// The book's first status write, then a re-read so that later writes do not
	// conflict. The CRD defaults status.phase to Pending, so this rarely runs.
	if webapp.Status.Phase == "" {
		webapp.Status.Phase = PhasePending
		webapp.Status.Message = "Starting reconciliation"
		if err := r.Status().Update(ctx, webapp); err != nil {
			return ctrl.Result{}, err
		}
		if err := r.Get(ctx, req.NamespacedName, webapp); err != nil {
			return ctrl.Result{}, err
		}
	}

	// As in the book's "Using Finalizers", the reconcile goes on after the Update:
	// the object it returned carries the new resourceVersion.
	if !controllerutil.ContainsFinalizer(webapp, Finalizer) {
		controllerutil.AddFinalizer(webapp, Finalizer)
		if err := r.Update(ctx, webapp); err != nil {
			return ctrl.Result{}, err
		}
	}

	child := metav1.ObjectMeta{Name: webapp.Name, Namespace: webapp.Namespace}
	deployment := &appsv1.Deployment{ObjectMeta: child}
	if err := r.ensure(ctx, webapp, deployment, func() { mutateDeployment(deployment, webapp) }); err != nil {
		return ctrl.Result{}, fmt.Errorf("deployment: %w", err)
	}
	service := &corev1.Service{ObjectMeta: child}
	if err := r.ensure(ctx, webapp, service, func() { mutateService(service, webapp) }); err != nil {
		return ctrl.Result{}, fmt.Errorf("service: %w", err)
	}

	setStatus(webapp, deployment)
	if err := r.Status().Update(ctx, webapp); err != nil {
		// A conflict means the cache was behind our own last write: the watch event
		// of that write requeues the WebApp anyway.
		if apierrors.IsConflict(err) {
			log.V(1).Info("status conflict, requeued", "webapp", req.NamespacedName)
		}
		return ctrl.Result{}, err
	}
	// No periodic requeue: the Deployment's status changes come through Owns.
	return ctrl.Result{}, nil
}

// ensure makes `child` what `mutate` says, owned by `webapp`, with CreateOrUpdate: a GET
// from the cache, then a Create, or an Update when the mutate changed the object.
func (r *WebAppReconciler) ensure(ctx context.Context, webapp *appsv1alpha1.WebApp, child client.Object, mutate func()) error {
	_, err := controllerutil.CreateOrUpdate(ctx, r.Client, child, func() error {
		mutate()
		return ctrl.SetControllerReference(webapp, child, r.Scheme)
	})
	return err
}

// cleanup deletes the children explicitly (Service first, as ours does) rather than
// leaving them to the garbage collector, so that deletion costs what ours costs.
func (r *WebAppReconciler) cleanup(ctx context.Context, webapp *appsv1alpha1.WebApp) error {
	meta := metav1.ObjectMeta{Name: webapp.Name, Namespace: webapp.Namespace}
	for _, child := range []client.Object{&corev1.Service{ObjectMeta: meta}, &appsv1.Deployment{ObjectMeta: meta}} {
		if err := r.Delete(ctx, child); client.IgnoreNotFound(err) != nil {
			return err
		}
	}
	return nil
}

// setStatus computes the status from the Deployment as CreateOrUpdate left it: Running
// once every wanted replica is available, Creating until then.
func setStatus(webapp *appsv1alpha1.WebApp, deployment *appsv1.Deployment) {
	wanted := int32(1)
	if deployment.Spec.Replicas != nil {
		wanted = *deployment.Spec.Replicas
	}
	available := deployment.Status.AvailableReplicas
	replicas, ready := deployment.Status.Replicas, deployment.Status.ReadyReplicas
	status := &webapp.Status
	status.ObservedGeneration = webapp.Generation
	status.Replicas, status.ReadyReplicas = &replicas, &ready
	status.Selector = "app.kubernetes.io/instance=" + webapp.Name + ",app.kubernetes.io/name=" + appName
	condition := metav1.Condition{Type: "Ready", ObservedGeneration: webapp.Generation}
	if available >= wanted && deployment.Status.ObservedGeneration >= deployment.Generation {
		status.Phase, status.Message = PhaseRunning, fmt.Sprintf("%d/%d replicas available", available, wanted)
		condition.Status, condition.Reason = metav1.ConditionTrue, "Available"
	} else {
		status.Phase, status.Message = PhaseCreating, fmt.Sprintf("%d/%d replicas available", available, wanted)
		condition.Status, condition.Reason = metav1.ConditionFalse, "Progressing"
	}
	condition.Message = status.Message
	// SetStatusCondition keeps lastTransitionTime unless the status flips.
	meta.SetStatusCondition(&status.Conditions, condition)
}

// SetupWithManager registers the controller: WebApps, and the Deployments and Services
// they own, with `concurrency` reconciles at a time.
func (r *WebAppReconciler) SetupWithManager(mgr ctrl.Manager, concurrency int) error {
	return ctrl.NewControllerManagedBy(mgr).
		For(&appsv1alpha1.WebApp{}).
		Owns(&appsv1.Deployment{}).
		Owns(&corev1.Service{}).
		Named("webapp").
		WithOptions(controller.Options{MaxConcurrentReconciles: concurrency}).
		Complete(r)
}
