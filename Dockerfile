# Builds the smsfold binary in release mode and ships it on a slim Debian.
# The build stage runs the same `cargo build --release -p smsfold --locked`
# that scripts/check-deploy.sh runs on the host.
# NOTE: never built where it was written, which has no Docker engine.
FROM rust:1.95.0-bookworm AS build
# rdkafka-sys compiles librdkafka, which needs cmake and the OpenSSL, SASL,
# zlib and zstd headers.
RUN apt-get update \
    && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev libsasl2-dev zlib1g-dev libzstd-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p smsfold --locked

FROM debian:bookworm-slim
# The shared libraries the binary links beside libc: scripts/check-deploy.sh
# compares this list with `ldd target/release/smsfold`.
RUN apt-get update \
    && apt-get install -y --no-install-recommends libssl3 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin smsfold
COPY --from=build /src/target/release/smsfold /usr/local/bin/smsfold
# A numeric user, so that Kubernetes can check runAsNonRoot.
USER 10001
EXPOSE 9464
ENTRYPOINT ["smsfold"]
CMD ["run"]
