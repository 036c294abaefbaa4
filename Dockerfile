# Skipper: one image holding skipper-api, skipper-runner and skipper-migrate (and the migrations).
# Build stage: Swift toolchain plus libpq's headers (skipper-migrate links libpq).
FROM swift:6.1-bookworm AS build
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq-dev pkg-config \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# Resolve dependencies in their own layer so source changes do not refetch them.
COPY Package.swift ./
RUN swift package resolve
COPY Sources ./Sources
COPY Tests ./Tests
RUN swift build -c release --static-swift-stdlib \
        --product skipper-api --product skipper-runner --product skipper-migrate \
    && mkdir -p /out \
    && cp "$(swift build -c release --show-bin-path)"/skipper-api \
          "$(swift build -c release --show-bin-path)"/skipper-runner \
          "$(swift build -c release --show-bin-path)"/skipper-migrate /out/

# An optional PgBouncer in transaction pooling mode (compose's `pgbouncer` profile): Debian's package, our config.
FROM debian:bookworm-slim AS pgbouncer
RUN apt-get update \
    && apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10002 --home-dir /nonexistent --shell /usr/sbin/nologin bouncer
COPY scripts/pgbouncer.ini /etc/pgbouncer/skipper.ini
COPY scripts/pgbouncer-start.sh /usr/local/bin/pgbouncer-start
USER bouncer
EXPOSE 6432
CMD ["pgbouncer-start"]

# Runtime stage (the default target): a slim Debian with libpq, running as an unprivileged user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends libpq5 ca-certificates tzdata libjs-chart.js \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 skipper \
    && useradd --system --uid 10001 --gid skipper --home-dir /app --shell /usr/sbin/nologin skipper
WORKDIR /app
COPY --from=build /out/ /usr/local/bin/
COPY migrations ./migrations
USER skipper:skipper
ENV PORT=8080
EXPOSE 8080
STOPSIGNAL SIGTERM
CMD ["skipper-api"]
