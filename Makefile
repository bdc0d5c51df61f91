# webapp-operator — kubebuilder-style targets. `make help` lists them.
SHELL := /usr/bin/env bash
# The release build's cargo: `cargo auditable` once hack/tools/install has built it (`make
# release` does), so the binary carries its dependency list; plain cargo otherwise.
CARGO ?= hack/release/cargo
CLUSTER := hack/cluster
IMG ?= webapp-operator:dev
CONTAINER_TOOL ?= docker

.PHONY: help manifests generate controller-gen kustomize build build-installer release docker-build docker-push node-image test-real-node run install uninstall deploy undeploy course test test-oldest cluster-up cluster-down bench bench-scale chaos

help: ## Show the targets.
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

manifests: ## Regenerate config/crd/ and config/admission/ from the Rust code and bring the Helm chart along.
	"$$(hack/operator-bin --quiet)" crd --out-dir config/crd
	"$$(hack/operator-bin --quiet)" crd --finalizer-policy > config/admission/finalizer-policy.yaml
	@# config/crd/bases/ holds the kubebuilder paths the seeds type
	@# (kubectl apply -f config/crd/bases/<group>_<plural>.yaml): links to the generated files.
	rm -f config/crd/bases/*.yaml
	for crd in config/crd/*_*.yaml; do ln -s "../$${crd##*/}" config/crd/bases/; done
	hack/sync-chart

generate: manifests ## Same as manifests: Rust types need no generated deep-copy code.

# kubebuilder's tool targets, which the seeds type first. Nothing to install here.
controller-gen: ## Not needed: the CRDs are generated from the Rust types by `make manifests`.
	@echo "controller-gen is not used here: the CRDs are generated from the Rust types in"
	@echo "crates/api by the operator binary itself. Run: make manifests"

kustomize: ## Not needed: kustomize is built into kubectl (kubectl apply -k, kubectl kustomize).
	@echo "kustomize is not installed separately here: kubectl has it built in."
	@echo "Use kubectl apply -k <dir> or kubectl kustomize <dir> (hack/kubectl is the kubectl"
	@echo "of the local control plane); make install and make deploy use it."

build: ## Build the operator binary (target/release/webapp-operator), with cargo auditable when installed.
	$(CARGO) build --release --locked -p webapp-operator

build-installer: ## Write dist/install.yaml: the whole kustomize install (CRDs, RBAC, Deployment, Services) in one file, the manager's image being $$IMG.
	mkdir -p dist
	IMG=$(IMG) hack/deploy --render > dist/install.yaml
	@echo "dist/install.yaml: kubectl apply --server-side -f dist/install.yaml"

release: ## Release: auditable build per platform (PLATFORMS), multi-arch image, SBOM, provenance; with RELEASE_IMAGE=registry/repo:tag also push, print the digest, sign and attest (cosign).
	hack/release/all

docker-build: ## Build the operator image $$IMG (needs a container runtime; see docs/development.md).
	$(CONTAINER_TOOL) build -t $(IMG) .

docker-push: ## Push the operator image $$IMG.
	$(CONTAINER_TOOL) push $(IMG)

node-image: build ## Without a registry: wrap the release binary into an image and push it to the real node (CLUSTER_REAL_NODE=1) of $$CLUSTER_NAME.
	CLUSTER_REAL_NODE=1 $(CLUSTER)/node/push-images "$$(hack/images/operator target/release/webapp-operator $(IMG))"

test-real-node: ## Only the real-node stage of make test: a cluster with a real node, the operator from its chart and image, end-to-end tests.
	hack/test-real-node

run: ## CRDs + operator + samples on the cluster of $$KUBECONFIG (default: the local one, started); Ctrl-C stops the operator.
	hack/run-local

install: ## Install the CRDs into the cluster of $$KUBECONFIG (default: the local one).
	hack/install

uninstall: ## Delete every custom resource (waiting for their cleanup), then the CRDs and the tenant roles.
	hack/uninstall

deploy: ## Install CRDs, RBAC and the manager Deployment (config/default), the manager's image being $$IMG.
	hack/check-kube-version
	IMG=$(IMG) hack/deploy

undeploy: ## Remove the manager Deployment and RBAC.
	hack/kubectl delete --ignore-not-found -f config/manager/manager.yaml -f config/rbac/role.yaml -f config/rbac/binding.yaml

course: ## The seeds' commands walked as a learner types them, on a cluster of its own (a stage of make test).
	hack/course

test: ## fmt + clippy + unit tests + integration tests on the local control plane.
	hack/test

test-oldest: ## The integration suite on the oldest Kubernetes supported (KUBE_OLDEST_VERSION), in a cluster of its own (not a stage of make test).
	hack/test-oldest

cluster-up: ## Build (first time) and start the local control plane; prints the kubeconfig.
	$(CLUSTER)/up

cluster-down: ## Stop and delete the local control plane.
	$(CLUSTER)/down

bench: ## Operator and the Go contender vs the control plane's floor at one size (N=50 WebApps): time, CPU, memory, writes, restart, latency.
	bench/converge $(N)

bench-scale: ## The growth curve over N = 100, 300, 1000, 3000 (or SIZES="..."): table and docs/benchmarks-growth.svg.
	bench/scale $(SIZES)

chaos: ## Chaos suite, full profile (200 objects, 20 operator kills, API server/etcd restarts, leader failover, a fighting writer); SEED=n replays a run.
	hack/chaos --profile full $(if $(SEED),--seed $(SEED))
