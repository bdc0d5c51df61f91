# The operator image: `make docker-build IMG=registry/webapp-operator:tag`.
# Stage 1 builds with the same cargo command as `make build` (a test in
# crates/operator/tests/packaging.rs keeps the two equal); stage 2 is a distroless
# runtime with no shell and no package manager, running as a non-root user.
FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p webapp-operator

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /src/target/release/webapp-operator /usr/local/bin/webapp-operator
USER 65532:65532
ENTRYPOINT ["/usr/local/bin/webapp-operator"]
CMD ["run"]
