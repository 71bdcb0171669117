# sessionctx-server in a container: Debian 12, built from this repository, run by a
# user without privileges. docs/operations.md ("In a container") explains the choices
# and has a Kubernetes manifest. The test command runs these steps without a
# container engine (scripts/check-container.sh), so they cannot rot unnoticed.
#
#   docker build -t sessionctx .
#   docker run -p 8080:8080 sessionctx --store memory:

# --- build: the packages scripts/install-deps.sh server names, then the server preset
FROM debian:bookworm-slim AS build
WORKDIR /src
COPY . .
RUN scripts/install-deps.sh server
RUN cmake --preset server && cmake --build --preset server --target sessionctx-server sessionctl

# --- run: the shared libraries the two programs link, nothing to build with
FROM debian:bookworm-slim
COPY scripts/install-deps.sh /usr/local/share/sessionctx/install-deps.sh
RUN /usr/local/share/sessionctx/install-deps.sh runtime && rm -rf /var/lib/apt/lists/*
RUN useradd --system --uid 10001 --home-dir /var/lib/sessionctx --create-home sessionctx
COPY --from=build /src/build/server/bin/sessionctx-server /src/build/server/bin/sessionctl /usr/local/bin/
USER 10001
WORKDIR /var/lib/sessionctx
VOLUME /var/lib/sessionctx
EXPOSE 8080
# Liveness: GET /healthz; readiness: GET /readyz (the store answers). Messages and the
# access log as JSON lines (stderr and stdout) for the cluster's log collector.
ENTRYPOINT ["sessionctx-server", "--listen", "0.0.0.0:8080", "--log-format", "json", "--access-log", "json"]
CMD ["--store", "rocksdb:sessions"]
