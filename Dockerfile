# syntax=docker/dockerfile:1
#
# Container images of the nis programs: one image per program, the same for docker compose
# and Kubernetes.
#
#   docker build --target students    -t nis-students:local .
#   docker build --target courses     -t nis-courses:local .
#   docker build --target initializer -t nis-initializer:local .
#
# Each image is one static binary (musl, whole-program LTO, stripped; `cargo build --profile
# dist`) on distroless/static: CA certificates, tzdata and /etc/passwd, no shell, no package
# manager, no libc. Every image runs as uid/gid 65532 (distroless' "nonroot"). The services'
# healthcheck is their own `healthcheck` subcommand, which asks their /readyz, so nothing else
# is needed inside. docs/deploy.md ("Images") has the sizes and the reasons.

ARG RUST_VERSION=1.95
ARG DEBIAN_RELEASE=bookworm
# The images are built for x86_64; for arm64 pass --build-arg RUST_TARGET=aarch64-unknown-linux-musl.
ARG RUST_TARGET=x86_64-unknown-linux-musl

# ---------------------------------------------------------------- build
FROM rust:${RUST_VERSION}-slim-${DEBIAN_RELEASE} AS chef
ARG RUST_TARGET
ARG CARGO_CHEF_VERSION=0.1.78
# musl-tools: the C compiler for the musl target (ring, mimalloc). Its version is the one of
# the Debian release the rust image pins.
# hadolint ignore=DL3008
RUN apt-get update \
 && apt-get install -y --no-install-recommends musl-tools \
 && rm -rf /var/lib/apt/lists/* \
 && rustup target add "${RUST_TARGET}" \
 && cargo install cargo-chef --locked --version "${CARGO_CHEF_VERSION}"
ENV CARGO_TERM_COLOR=never
WORKDIR /src

# The recipe is the workspace's dependency graph only (manifests + lock file), so it changes
# when dependencies change, not when code changes.
FROM chef AS planner
COPY . .
RUN cargo chef prepare --recipe-path recipe.json

FROM chef AS builder
ARG RUST_TARGET
COPY --from=planner /src/recipe.json recipe.json
# The dependency layer, rebuilt only when recipe.json changes. Same profile, target and
# packages as the build below, so that every cooked crate is reused.
RUN cargo chef cook --profile dist --locked --target "${RUST_TARGET}" --recipe-path recipe.json \
      -p students -p courses -p initializer
COPY . .
# All three programs in one cargo call: they share most of the dependency graph, and BuildKit
# runs this stage once for all the targets below.
RUN cargo build --profile dist --locked --target "${RUST_TARGET}" -p students -p courses -p initializer \
 && mkdir -p /out \
 && cp "target/${RUST_TARGET}/dist/students" "target/${RUST_TARGET}/dist/courses" \
       "target/${RUST_TARGET}/dist/initializer" /out/

# ---------------------------------------------------------------- runtime
# USER is numeric so that a kubelet with runAsNonRoot can verify it.
FROM gcr.io/distroless/static-debian12:nonroot AS runtime
USER 65532:65532

# ---------------------------------------------------------------- students
FROM runtime AS students
COPY --from=builder /out/students /usr/local/bin/students
ENV HTTP_ADDR=0.0.0.0:8020 GRPC_ADDR=0.0.0.0:50020 LOG_FORMAT=json
EXPOSE 8020 50020
# Ready = its database answers (docker compose orders start-up on it; Kubernetes ignores
# HEALTHCHECK and probes /readyz and /healthz itself).
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/students", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/students"]
# `migrate` instead applies the migrations and exits.
CMD ["serve"]

# ---------------------------------------------------------------- courses
FROM runtime AS courses
COPY --from=builder /out/courses /usr/local/bin/courses
ENV HTTP_ADDR=0.0.0.0:8010 GRPC_ADDR=0.0.0.0:50010 LOG_FORMAT=json
EXPOSE 8010 50010
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD ["/usr/local/bin/courses", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/courses"]
# `migrate` instead creates the MongoDB collections and indexes and exits.
CMD ["serve"]

# ---------------------------------------------------------------- initializer
# One-shot (creates/updates the JetStream streams, exits 0): nothing to health-check.
FROM runtime AS initializer
COPY --from=builder /out/initializer /usr/local/bin/initializer
ENV LOG_FORMAT=json
HEALTHCHECK NONE
ENTRYPOINT ["/usr/local/bin/initializer"]
