# Developer entry points. Each target is a thin wrapper around scripts/;
# see scripts/lib.sh for how servers are found, started and stopped.
SHELL := bash
.DEFAULT_GOAL := help
export NIS_RUN_DIR := $(CURDIR)/.run

.PHONY: help up down logs test fmt lint

help: ## Show this help
	@echo "Targets:"
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z]+):.*## /  make \1\t/' | expand -t 16

up: ## Start PostgreSQL/Redis/NATS if missing, build, start the services (REPLICAS=N processes each, default 1), wait until ready
	@bash scripts/up.sh

down: ## Stop the services and the servers that make up/test started (nothing else)
	@bash scripts/down.sh

logs: ## Follow the service logs (.run/*.log)
	@mkdir -p .run; ls .run/*.log >/dev/null 2>&1 || { echo "no logs in .run/ yet: run 'make up'"; exit 1; }
	tail -n 100 -F .run/*.log

test: ## Ensure servers, fmt check, clippy, then cargo nextest on the workspace
	@bash scripts/test.sh

fmt: ## Format the code (cargo fmt --all)
	cargo fmt --all

lint: ## cargo fmt --check, clippy -D warnings, shellcheck
	@bash scripts/lint.sh

.PHONY: bench
bench: ## The services against a bare baseline: Markdown table and chart in docs/benchmarks.md (~25 min; BENCH_ROUNDS, BENCH_DURATION...)
	@bash scripts/bench.sh

.PHONY: chaos
chaos: ## Seeded fault campaign on 2 replicas of each service (SEED=n, DURATION=secs, default 180); see docs/chaos.md
	@SEED=$(SEED) DURATION=$(DURATION) bash scripts/chaos.sh
