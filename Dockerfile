# bindproxy: build with cargo, run on a slim Debian as a non-root user.
#
#   docker build -t bindproxy .
#   docker run --rm -p 6432:6432 \
#     -v "$PWD/config.yaml:/etc/bindproxy/config.yaml:ro" \
#     -v bindproxy-data:/var/lib/bindproxy bindproxy
#
# The mounted config must listen on 0.0.0.0:6432 (127.0.0.1 is unreachable from outside the
# container). Relative SQLite paths (sqlite:///data/app.db) resolve in /var/lib/bindproxy, so mount
# a volume there. Without a file at /etc/bindproxy/config.yaml bindproxy refuses to start.

FROM rust:1-bookworm AS build
# pg_query (PostgreSQL's parser, used for routing) generates its bindings with libclang
RUN apt-get update \
    && apt-get install -y --no-install-recommends clang libclang-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY Cargo.toml Cargo.lock config.example.yaml ./
COPY src ./src
# The same build as the README's `cargo run --release`, with the lock file enforced.
RUN cargo build --release --locked --bin bindproxy

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --user-group --uid 10001 --home-dir /var/lib/bindproxy --shell /usr/sbin/nologin bindproxy \
    && mkdir -p /etc/bindproxy /var/lib/bindproxy/data \
    && chown -R bindproxy:bindproxy /var/lib/bindproxy
COPY --from=build /src/target/release/bindproxy /usr/local/bin/bindproxy
ENV BINDPROXY_CONFIG=/etc/bindproxy/config.yaml
WORKDIR /var/lib/bindproxy
# numeric, so that Kubernetes' runAsNonRoot can check it (deploy/kubernetes/statefulset.yaml)
USER 10001
# 6432: the PostgreSQL protocol; 9930: admin_http (/healthz /readyz /metrics) when the config sets it
EXPOSE 6432 9930
ENTRYPOINT ["/usr/local/bin/bindproxy"]
CMD ["run"]
