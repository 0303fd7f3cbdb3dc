# Task file: `make help`. CI runs `make test` (see .ci/run).
export CARGO_TARGET_DIR ?= $(HOME)/.cache/medallion-target
BIN := $(CARGO_TARGET_DIR)/debug/medallion
PYTHON ?= python3

.PHONY: help setup build demo test fmt lint bench cluster-demo

help: ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | sed 's/:.*## /\t/'

setup: ## install the Python packages the tests use as independent Delta readers
	@$(PYTHON) -c "import deltalake, pyarrow" 2>/dev/null || $(PYTHON) -m pip install --quiet "deltalake>=1.1,<2" pyarrow

build: ## build the medallion binary
	cargo build --bin medallion

demo: setup build ## generate example landing data and run the example pipeline on an embedded cluster
	$(BIN) generate --dataset example --out data/landing --orders 100000
	$(BIN) run --spec pipelines/example/pipeline.toml

test: setup ## run every test (unit and end-to-end)
	cargo test --workspace

fmt: ## format the code
	cargo fmt --all

lint: ## clippy with warnings as errors
	cargo clippy --workspace --all-targets -- -D warnings

bench: build ## example pipeline at 1M orders: rows/s per table, total seconds, peak RSS
	$(BIN) bench --orders 1000000
