# The single `medallion` binary (scheduler, executor, CLI) on a distroless base, as non-root.
#   docker build -t medallion:0.1.0 .
# checkov:skip=CKV_DOCKER_2:health is probed by Kubernetes (gRPC health on the job port, TCP on the executor ports); the image has no shell or probe tool

# ---- build: the Rust toolchain the workspace pins, with the autoscaler (`kube`) feature
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock rustfmt.toml ./
COPY proto proto
COPY jobs jobs
COPY scheduler scheduler
COPY executor executor
COPY cli cli
COPY tests tests
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --features medallion-cli/kube --bin medallion \
 && install -D -m 0755 target/release/medallion /out/medallion

# ---- run: glibc, CA certificates and nothing else; UID 65532 (nonroot)
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/medallion /usr/local/bin/medallion
COPY pipelines /etc/medallion/examples
USER 65532:65532
ENV RUST_LOG=info
EXPOSE 50050 50051 50052 9090
ENTRYPOINT ["/usr/local/bin/medallion"]
CMD ["--help"]
