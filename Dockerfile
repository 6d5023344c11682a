# Builds the smsfold binary in release mode and ships it on a slim Debian.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends cmake pkg-config libssl-dev zlib1g-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release -p smsfold --locked

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends libssl3 zlib1g ca-certificates \
    && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/smsfold /usr/local/bin/smsfold
EXPOSE 9464
ENTRYPOINT ["smsfold"]
CMD ["run"]
