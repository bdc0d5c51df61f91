// Command pause is the sandbox ("infra") container of every pod on the local real node:
// it holds the pod's namespaces open, reaps the zombies of the processes that end up
// as its children (it is PID 1 of the pod when the PID namespace is shared), and exits
// cleanly on SIGTERM or SIGINT, as registry.k8s.io/pause does. Built static
// (CGO_ENABLED=0), so the image needs nothing but this file.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-v" {
		fmt.Println("pause (webapp-operator local image)")
		return
	}
	signals := make(chan os.Signal, 8)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT, syscall.SIGCHLD)
	for sig := range signals {
		if sig == syscall.SIGCHLD {
			reap()
			continue
		}
		// The upstream pause exits 0 on a stop signal: the sandbox stopped as asked.
		fmt.Fprintf(os.Stderr, "pause: shutting down, got signal %s\n", sig)
		os.Exit(0)
	}
}

// reap collects every child that has exited. Signals coalesce, so one SIGCHLD may stand
// for many children: loop until none is left to collect.
func reap() {
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, syscall.WNOHANG, nil)
		if pid <= 0 || err != nil {
			return
		}
	}
}
