// Command webapp-contender is the bench's third contender: the WebApp job (Deployment +
// Service, finalizer, status phases) done by a controller-runtime operator written the
// way the kubebuilder book teaches, to set the Rust operator beside what a Go team
// would write. Namespace-scoped, no leader election, no webhook; /metrics and /readyz
// on one address, as the bench expects of every contender.
package main

import (
	"flag"
	"net/http"
	"os"

	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	appsv1alpha1 "example.com/webapp-contender/api/v1alpha1"
	"example.com/webapp-contender/internal/controller"
)

func main() {
	var namespace, metricsAddr string
	var concurrency int
	flag.StringVar(&namespace, "namespace", "", "the only namespace watched (empty: all)")
	flag.IntVar(&concurrency, "concurrency", 1, "reconciles at a time (controller-runtime's default: 1)")
	flag.StringVar(&metricsAddr, "metrics-addr", "127.0.0.1:8080", "address of /metrics and /readyz")
	opts := zap.Options{}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()
	// Info and above by default: the bench wants the process quiet while measured.
	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	log := ctrl.Log.WithName("setup")

	scheme := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(scheme))
	utilruntime.Must(appsv1alpha1.AddToScheme(scheme))

	cacheOptions := cache.Options{}
	if namespace != "" {
		cacheOptions.DefaultNamespaces = map[string]cache.Config{namespace: {}}
	}
	// /readyz on the metrics server: the bench waits for it at the metrics address.
	// Ready once serving, like the Rust operator's (and controller-runtime's healthz.Ping).
	readyz := http.StripPrefix("/readyz", &healthz.Handler{Checks: map[string]healthz.Checker{"ping": healthz.Ping}})
	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme: scheme,
		Cache:  cacheOptions,
		Metrics: metricsserver.Options{
			BindAddress:   metricsAddr,
			ExtraHandlers: map[string]http.Handler{"/readyz": readyz},
		},
		HealthProbeBindAddress: "0",
		LeaderElection:         false,
	})
	if err != nil {
		log.Error(err, "unable to create the manager")
		os.Exit(1)
	}
	reconciler := &controller.WebAppReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme()}
	if err := reconciler.SetupWithManager(mgr, concurrency); err != nil {
		log.Error(err, "unable to create the controller", "controller", "webapp")
		os.Exit(1)
	}
	if err := mgr.Start(ctrl.SetupSignalHandler()); err != nil {
		log.Error(err, "manager stopped")
		os.Exit(1)
	}
}
