# The operator image: `make docker-build IMG=registry/webapp-operator:tag`.
# Stage 1 builds with the same cargo command as `make build` (a test in
# crates/operator/tests/packaging.rs keeps the two equal); stage 2 is a distroless
# runtime with no shell and no package manager, running as a non-root user.
#
# Both bases are pinned by digest (hack/release/pin-base-images; hack/test fails on a FROM
# without one). The digests were not resolved on this project's machines, which reach no
# registry; each is one that public sources recorded for its tag, and
# `hack/release/pin-base-images --verify` checks them wherever a registry is reachable
# (`hack/release/pin-base-images` moves them to the tags' current digests):
# - rust:1.95-bookworm: a BuildKit log resolving docker.io/library/rust:1.95-bookworm to it
#   (2026-09-27), and the release provenance of Tree Ring v0.15.4
#   (github.com/TerminallyLazy/Tree-Ring-Memory), whose x86_64 and aarch64 builds both
#   name it: a multi-platform index.
# - distroless/cc-debian12:nonroot: the FROM of github.com/aldemi-tech/runku's
#   deployments/docker/server.Dockerfile, and of three other public Dockerfiles.
FROM docker.io/library/rust:1.95-bookworm@sha256:6258907abe69656e41cd992e0b705cdcfabcbbe3db374f92ed2d47121282d4a1 AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p webapp-operator

FROM gcr.io/distroless/cc-debian12:nonroot@sha256:9dac0a79194e45a7da0158a9c6da57b217585af0786db3845d1f0ec1a0dd182f
COPY --from=build /src/target/release/webapp-operator /usr/local/bin/webapp-operator
USER 65532:65532
# One malloc arena, not one per thread: the tokio workers' arenas each kept their own
# free memory, 1.0 MiB of a 23.1 MiB peak at 1000 WebApps and 4.9 MiB of a restart's
# (docs/benchmarks.md, "A smaller binary and a smaller WebApp"). glibc's per-thread
# caches still serve small allocations without a lock.
ENV GLIBC_TUNABLES=glibc.malloc.arena_max=1
ENTRYPOINT ["/usr/local/bin/webapp-operator"]
CMD ["run"]
