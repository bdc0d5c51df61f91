//! The container image is built the way `make build` builds the binary. No container
//! runtime exists where CI runs, so the Dockerfile cannot be built there; this keeps it
//! honest instead: its build command is the Makefile's, and its runtime is non-root.

// Test helpers panic on purpose: a failed call is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

fn read(file: &str) -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").join(file)).unwrap()
}

/// The recipe lines of a Makefile target, with `$(CARGO)` as its default `cargo`.
fn make_recipe(makefile: &str, target: &str) -> Vec<String> {
    let mut lines = makefile.lines().skip_while(|l| !l.starts_with(&format!("{target}:"))).skip(1);
    let mut recipe = Vec::new();
    while let Some(line) = lines.next().and_then(|l| l.strip_prefix('\t')) {
        recipe.push(line.replace("$(CARGO)", "cargo"));
    }
    recipe
}

#[test]
fn the_dockerfile_builds_with_the_makefiles_command() {
    let build = make_recipe(&read("Makefile"), "build");
    assert_eq!(build, ["cargo build --release --locked -p webapp-operator"]);
    let dockerfile = read("Dockerfile");
    let runs: Vec<&str> = dockerfile.lines().filter_map(|l| l.strip_prefix("RUN ")).collect();
    assert_eq!(runs, [build[0].as_str()], "the image must build exactly as `make build` does");
}

#[test]
fn the_image_runs_the_binary_as_a_non_root_user() {
    let dockerfile = read("Dockerfile");
    let last_stage = dockerfile.rsplit("\nFROM ").next().unwrap();
    assert!(last_stage.contains("distroless") && last_stage.contains(":nonroot"), "{last_stage}");
    assert!(last_stage.lines().any(|l| l == "USER 65532:65532"));
    assert!(last_stage.contains("COPY --from=build /src/target/release/webapp-operator"));
    let docker_build = make_recipe(&read("Makefile"), "docker-build");
    assert_eq!(docker_build, ["$(CONTAINER_TOOL) build -t $(IMG) ."]);
}

/// The Helm chart carries config/'s CRDs, RBAC rules, tenant roles and finalizer policy verbatim
/// (hack/sync-chart copies them), so that `kubectl apply -k config/default` and `helm
/// install` grant and install the same things. The CRDs are `files/crds/`, rendered by
/// `templates/crds.yaml`, never `crds/` (which Helm does not upgrade).
#[test]
fn the_chart_carries_the_crds_and_rules_of_config() {
    for file in ["role.yaml", "tenant_roles.yaml"] {
        let (chart, config) = (format!("charts/webapp-operator/files/{file}"), format!("config/rbac/{file}"));
        assert_eq!(read(&chart), read(&config), "{chart}: run hack/sync-chart");
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let names = |dir: &str| {
        let mut names: Vec<String> = std::fs::read_dir(root.join(dir))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            // The CRD files only: config/crd/bases/ links the kubebuilder paths to them.
            .filter(|name| name.ends_with(".yaml") && name != "kustomization.yaml")
            .collect();
        names.sort();
        names
    };
    assert!(!root.join("charts/webapp-operator/crds").exists(), "crds/ is back: Helm never upgrades it");
    assert_eq!(names("charts/webapp-operator/files/crds"), names("config/crd"), "run hack/sync-chart");
    for name in names("config/crd") {
        let (chart, config) = (format!("charts/webapp-operator/files/crds/{name}"), format!("config/crd/{name}"));
        assert!(read(&chart) == read(&config), "{chart} differs from {config}: run hack/sync-chart");
    }
    let policy = read("config/admission/finalizer-policy.yaml");
    assert!(policy == webapp_operator::admission::render().unwrap(), "config/admission: run make manifests");
    assert!(read("charts/webapp-operator/files/finalizer-policy.yaml") == policy, "run hack/sync-chart");
}

/// The oldest Kubernetes is one number: the operator's start-up check
/// (`MINIMUM_KUBERNETES`), the chart's `kubeVersion`, `hack/check-kube-version` (make
/// install/deploy/run), the README, the k8s-openapi feature the client is built against
/// and the version `make test-oldest` runs on all say the same minor.
#[test]
fn the_oldest_kubernetes_supported_is_the_same_everywhere() {
    let (major, minor) = webapp_operator::manager::MINIMUM_KUBERNETES;
    let chart = read("charts/webapp-operator/Chart.yaml");
    assert!(
        chart.lines().any(|l| l == format!("kubeVersion: \">={major}.{minor}.0-0\"")),
        "Chart.yaml's kubeVersion is not >={major}.{minor}.0-0"
    );
    let script = read("hack/check-kube-version");
    assert!(
        script.lines().any(|l| l == format!("minimum={minor}")),
        "hack/check-kube-version's minimum is not {minor}"
    );
    assert!(read("README.md").contains(&format!("Kubernetes {major}.{minor} or newer")), "README.md");
    assert!(
        read("Cargo.toml")
            .lines()
            .any(|l| l.starts_with("k8s-openapi = ") && l.contains(&format!("\"v{major}_{minor}\""))),
        "the workspace's k8s-openapi feature is not v{major}_{minor}"
    );
    assert!(
        read("hack/cluster/versions.env")
            .lines()
            .any(|l| l.starts_with(&format!("KUBE_OLDEST_VERSION=v{major}.{minor}."))),
        "hack/cluster/versions.env's KUBE_OLDEST_VERSION is not {major}.{minor}.x"
    );
}

/// Every name in the Makefile's .PHONY is a target (and every `## ` documented target is
/// phony), so `make help` and .PHONY say the same.
#[test]
fn the_makefiles_phony_names_are_its_targets() {
    let makefile = read("Makefile");
    let phony: Vec<&str> =
        makefile.lines().find_map(|l| l.strip_prefix(".PHONY:")).expect("no .PHONY line").split_whitespace().collect();
    // `name: [prerequisites] ## help`, as `make help` reads them.
    let targets: Vec<&str> = makefile
        .lines()
        .filter(|l| l.contains(" ## "))
        .filter_map(|l| l.split_once(':').map(|(name, _)| name))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
        .collect();
    for name in &phony {
        assert!(targets.contains(name), ".PHONY names {name}, which is no documented target");
    }
    for target in &targets {
        assert!(phony.contains(target), "target {target} is not in .PHONY");
    }
}

/// The workspace declares only dependencies a member uses, and pins kube to 5.0.x
/// while its unstable runtime features are on (they may change in a minor release).
#[test]
fn workspace_dependencies_are_used_and_kube_is_pinned_while_unstable() {
    let workspace = read("Cargo.toml");
    let section = workspace.split("[workspace.dependencies]").nth(1).unwrap();
    let section = section.split("\n[").next().unwrap();
    let declared: Vec<&str> = section
        .lines()
        .filter(|l| !l.starts_with('#') && l.contains(" = "))
        .filter_map(|l| l.split(" = ").next())
        .collect();
    assert!(declared.contains(&"kube") && declared.len() > 10, "could not read [workspace.dependencies]");
    let members: Vec<String> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(".."))
        .unwrap()
        .map(|e| e.unwrap().path().join("Cargo.toml"))
        .filter(|p| p.exists())
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for name in declared {
        let used = members.iter().any(|m| {
            m.lines().any(|l| {
                l.starts_with(&format!("{name} = {{ workspace = true")) || l.starts_with(&format!("{name}.workspace"))
            })
        });
        assert!(used, "[workspace.dependencies] declares {name}, which no member uses");
    }
    let kube_lines = std::iter::once(workspace.as_str())
        .chain(members.iter().map(String::as_str))
        .flat_map(|m| m.lines().filter(|l| l.starts_with("kube = { version")).map(str::to_owned).collect::<Vec<_>>());
    for line in kube_lines {
        assert!(line.starts_with("kube = { version = \"~5.0\""), "kube not pinned to 5.0.x: {line}");
    }
}

#[test]
fn the_images_and_the_bench_run_the_binary_with_the_same_malloc_settings() {
    let setting = "GLIBC_TUNABLES=glibc.malloc.arena_max=1";
    assert!(read("Dockerfile").lines().any(|l| l == format!("ENV {setting}")), "Dockerfile: ENV {setting}");
    assert!(read("hack/images/operator").contains(&format!("\"{setting}\"")), "hack/images/operator: {setting}");
    let (name, value) = setting.split_once('=').unwrap();
    let bench = format!("MALLOC_TUNABLES: (&str, &str) = (\"{name}\", \"{value}\")");
    assert!(read("crates/bench/src/operator.rs").contains(&bench), "the bench measures what the image runs: {bench}");
}

/// The release binary links its functions in the order of crates/operator/link-order.txt
/// (build.rs), which names them by symbol. Built beside another crate (`cargo build -p
/// webapp-operator -p webapp-bench`), the operator's dependencies would get the union of
/// both crates' features, and so other symbol names: the list would no longer apply, and
/// the bench would measure a binary the image does not run. So every script builds it alone.
#[test]
fn the_release_operator_is_built_alone_so_that_its_link_order_applies() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = vec![root.join("Makefile"), root.join("Dockerfile"), root.join(".ci/run")];
    let mut dirs = vec![root.join("bench"), root.join("hack")];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else {
                files.push(path);
            }
        }
    }
    let mut builds = 0;
    for file in files {
        let Ok(text) = std::fs::read_to_string(&file) else { continue };
        for line in text.lines().filter(|l| l.contains("build --release") && l.contains("-p webapp-operator")) {
            builds += 1;
            assert_eq!(
                line.matches(" -p ").count(),
                1,
                "{}: the operator built beside another crate: {line}",
                file.display()
            );
        }
    }
    assert!(builds >= 4, "the release builds were not found ({builds})");
    let list = read("crates/operator/link-order.txt");
    let symbols: Vec<&str> = list.lines().filter(|l| !l.starts_with('#')).collect();
    assert!(symbols.len() > 1000, "crates/operator/link-order.txt lists {} functions", symbols.len());
    assert!(symbols.iter().all(|s| !s.is_empty() && !s.contains(char::is_whitespace)), "one symbol per line");
}
