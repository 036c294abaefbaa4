# Skipper: `make run` starts everything, `make test` tests everything.
# Without DATABASE_URL, targets use a private PostgreSQL cluster under .skipper/ (scripts/db.sh).
SHELL := /bin/bash
SWIFT ?= swift
WITH_DB := scripts/with-db.sh
BIN := .build/debug
ROWS ?= 1000000
MERCHANTS ?= 1000
DAYS ?= 31
STEPS ?= 1

.PHONY: all build run test bench bench-hosts db db-stop migrate-up migrate-down migrate-status seed clean openapi contract embed-migrations embed-ui

all: build

build:
	$(SWIFT) build

## The API on :8080 and two runners, in the foreground; Ctrl-C stops them all.
run: build
	$(WITH_DB) scripts/run.sh

## Every test, against a real PostgreSQL; one at a time, so the timing assertions (cancel within 1 s, 503 within 2 s) never race the heavy suites on 2 cores.
test:
	$(WITH_DB) $(SWIFT) test --no-parallel

## Write this build's OpenAPI document to Tests/APIClientTests/openapi.yaml, the copy the generated client is built from
## (a test fails while the two differ).
openapi:
	$(SWIFT) build --product skipper-api
	$(BIN)/skipper-api openapi > Tests/APIClientTests/openapi.yaml

## Write the migrations built into the library (Sources/Skipper/Migrations/EmbeddedMigrations.swift) from migrations/
## (a test fails while the two differ).
embed-migrations:
	scripts/embed-migrations.sh

## Write the dashboard built into skipper-api (Sources/API/EmbeddedUI.swift) from ui/ (a test fails while the two differ).
embed-ui:
	scripts/embed-ui.sh

## The API contract against a live API: openapi-spec-validator, then a bounded schemathesis run (CONTRACT_MAX_TIME=120).
contract: build
	$(WITH_DB) Tests/Contract/run.sh

## Start (or reuse) the private cluster; prints `export DATABASE_URL=...` for `eval "$$(make -s db)"`.
db:
	@scripts/db.sh start

db-stop:
	@scripts/db.sh stop

migrate-up: build
	$(WITH_DB) $(BIN)/skipper-migrate up
	$(WITH_DB) $(BIN)/skipper-migrate up --path migrations/shop

migrate-down: build
	$(WITH_DB) $(BIN)/skipper-migrate down $(STEPS)

migrate-status: build
	$(WITH_DB) $(BIN)/skipper-migrate status

## Fill transactions (ROWS over MERCHANTS and DAYS) and, when empty, products; server-side SQL.
seed: migrate-up
	$(WITH_DB) scripts/seed.sh $(ROWS) $(MERCHANTS) $(DAYS)

clean:
	-scripts/db.sh stop
	rm -rf .skipper .build

## Release-built benchmark: prints a table and writes bench/results/latest.json.
bench:
	@command -v wrk >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get install -y -qq wrk >/dev/null; } || echo "bench: wrk is missing; the HTTP phase will be skipped"
	for product in skipper-migrate skipper-runner skipper-api skipper-bench; do $(SWIFT) build -c release --product $$product || exit 1; done
	$(WITH_DB) .build/release/skipper-bench

## The no-op drain with runners on 1, 2, 4 and 8 network hosts (Linux namespaces; needs root): writes
## bench/results/hosts.tsv and docs/hosts-scaling.png. Uses a throwaway cluster of its own, removed afterwards.
bench-hosts:
	for product in skipper-migrate skipper-runner; do $(SWIFT) build -c release --product $$product || exit 1; done
	scripts/hosts-bench.sh
