# ash-search — `make demo` runs the main job, `make test` runs every test,
# `make bench` runs the benchmarks side by side with their references.
# Each target bootstraps what it needs (Python venvs under .cache/) and
# reuses it afterwards.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
CACHE := .cache
BENCH_VENV := $(CACHE)/venv-bench
BIN := target/release/ash-search

.PHONY: all build demo test lint bench fuzz-build clean

all: build

build:
	$(CARGO) build --release --locked

demo: build
	scripts/demo.sh

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --all-targets -- -D warnings

test: lint
	$(CARGO) test --locked --all-targets
	$(CARGO) test --locked --doc

$(BENCH_VENV)/.ready: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

bench: build $(BENCH_VENV)/.ready
	$(CARGO) build --release --locked --example bench_codes --example bench_index
	$(BENCH_VENV)/bin/python bench/codes_bench.py
	target/release/examples/bench_index $${BENCH_INDEX_N:-1000000} $${BENCH_INDEX_QUERIES:-200}

# Builds the fuzz target for the .mih reader (running it is manual:
# `cargo +nightly fuzz run mih_open`, see fuzz/README.md).
fuzz-build:
	cd fuzz && $(CARGO) build

clean:
	$(CARGO) clean
	rm -rf $(CACHE) demo-output
