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

/// The Helm chart carries config/'s CRDs and RBAC rules verbatim (hack/sync-chart copies
/// them), so that `kubectl apply -k config/default` and `helm install` grant and install
/// the same things.
#[test]
fn the_chart_carries_the_crds_and_rules_of_config() {
    assert_eq!(read("charts/webapp-operator/files/role.yaml"), read("config/rbac/role.yaml"), "run hack/sync-chart");
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
    assert_eq!(names("charts/webapp-operator/crds"), names("config/crd"), "run hack/sync-chart");
    for name in names("config/crd") {
        let (chart, config) = (format!("charts/webapp-operator/crds/{name}"), format!("config/crd/{name}"));
        assert!(read(&chart) == read(&config), "{chart} differs from {config}: run hack/sync-chart");
    }
}
