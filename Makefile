# The way in: `make demo` and `make test`. `make help` lists every target.
SHELL := /bin/bash
.DEFAULT_GOAL := help
UV ?= uv
RUN := $(UV) run --frozen
export PATH := $(HOME)/.cache/iotpipe/bin:$(PATH)

.PHONY: help setup setup-demo demo test test-fast lint lint-py test-py bench up down status clean images test-cluster cluster-up cluster-down

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

setup: ## Install what is missing for every target (apt, uv + locked Python env, jars, Go-built tools)
	@scripts/tools.sh all

setup-demo: ## Install only what the demo needs (apt: JDK, Maven, PostgreSQL; uv + Python env; jars)
	@scripts/tools.sh demo

demo: setup-demo ## Run the whole pipeline locally and print a report
	$(RUN) local-pipeline demo

test: setup lint-py test-py ## ruff, mypy and every test (what CI runs)

test-fast: ## Unit tests only (no broker, Spark or database; about a minute)
	@scripts/tools.sh python
	$(RUN) pytest tests/unit -q -p no:randomly

lint-py:
	$(RUN) ruff check .
	$(RUN) ruff format --check services tests bench
	$(RUN) mypy services/*/src tests bench
	$(RUN) iotpipe schema --check --output docs/sensor-event.schema.json

test-py:
	$(RUN) pytest -m "not cluster" --durations=25

test-cluster: setup ## The cluster tier: images, a single-node cluster, the chart, the pipeline on it (root)
	@scripts/tools.sh cluster && scripts/tools.sh addons
	@scripts/images.sh && scripts/addons.sh images
	$(RUN) pytest -m cluster --durations=25

lint: setup lint-py ## Every static check (make test runs the same checks as tests)
	helm lint charts/iotpipe
	$(RUN) python scripts/chart_docs.py --check
	tofu fmt -check -recursive terraform
	checkov --quiet --compact --config-file terraform/.checkov.yaml
	promtool check rules observability/rules/*.yaml

bench: setup ## Benchmarks (NAME=<name> for one); results in bench/results/
	$(RUN) python -m bench $(NAME)

up: ## Start the local stack (Kafka, PostgreSQL)
	$(RUN) iotpipe local up
down: ## Stop the local stack
	$(RUN) iotpipe local down
status: ## What the local stack runs, and where
	$(RUN) iotpipe local status

clean: down ## Stop the stack and remove its state
	rm -rf .pytest_cache .mypy_cache .ruff_cache

images: setup ## Build every image from Debian roots made here (scripts/images.sh; no registry needed)
	@scripts/images.sh
cluster-up: ## Start a single-node Kubernetes cluster on this machine (scripts/cluster.sh; root)
	@scripts/tools.sh cluster
	@scripts/cluster.sh up
cluster-down: ## Stop that cluster (only what cluster-up started)
	@scripts/cluster.sh down
