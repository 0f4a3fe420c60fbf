# ash-search — `make demo` runs the main job, `make test` runs every test,
# `make bench` runs the benchmarks side by side with their references.
# Each target bootstraps what it needs (Python venvs under .cache/) and
# reuses it afterwards.

SHELL := /bin/bash
CARGO ?= cargo
PYTHON ?= python3
CACHE := .cache
BENCH_VENV := $(CACHE)/venv-bench
PEERS_VENV := $(CACHE)/venv-peers
DEMO_VENV := $(CACHE)/venv-demo
PLUGIN_VENV := $(CACHE)/venv-plugin
WHEEL_VENV := $(CACHE)/venv-wheel
PY_CRATE := crates/ash-py
BIN := target/release/ash-search

.PHONY: all build demo test check lint package-check bench fuzz-build clean plugin-test ort ort-old browser-test \
	wheel python-install python-test

# ONNX Runtime's shared library, from the onnxruntime wheel on PyPI (the
# binary reads it at run time; see src/encoder/runtime.rs for the search order).
ORT_VERSION := 1.31.1
ORT_DIR := $(CACHE)/onnxruntime
ORT_LIB := $(ORT_DIR)/libonnxruntime.so.$(ORT_VERSION)

# ONNX Runtime 1.30.0, the oldest release accepted, for the test that
# encodes with it (it once aborted on long command lines).
ORT_OLD_VERSION := 1.30.0
ORT_OLD_DIR := $(CACHE)/onnxruntime-$(ORT_OLD_VERSION)
ORT_OLD_LIB := $(ORT_OLD_DIR)/libonnxruntime.so.$(ORT_OLD_VERSION)

all: build

build: $(ORT_LIB)
	$(CARGO) build --release --locked

ort: $(ORT_LIB)

ort-old: $(ORT_OLD_LIB)

# $(call fetch_ort,VERSION,DIR): ONNX Runtime's libraries from its PyPI wheel.
define fetch_ort
	mkdir -p $(2)/wheel
	$(PYTHON) -m pip download --quiet --disable-pip-version-check --no-deps --only-binary :all: \
	  --python-version 3.11 --platform manylinux_2_28_x86_64 \
	  onnxruntime==$(1) -d $(2)/wheel
	$(PYTHON) scripts/extract_ort.py $(2)/wheel $(2)
endef

$(ORT_LIB):
	$(call fetch_ort,$(ORT_VERSION),$(ORT_DIR))

$(ORT_OLD_LIB):
	$(call fetch_ort,$(ORT_OLD_VERSION),$(ORT_OLD_DIR))

demo: build $(DEMO_VENV)/.ready
	scripts/demo.sh

# numpy and Pillow for the demo's image generator (no PyTorch).
$(DEMO_VENV)/.ready: scripts/requirements-demo.txt
	$(PYTHON) -m venv $(DEMO_VENV)
	$(DEMO_VENV)/bin/pip install --quiet --disable-pip-version-check -r scripts/requirements-demo.txt
	touch $@

lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	scripts/check_crate_deps.sh
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --locked --no-deps -p ash-mih -p ash-tantivy -p ash-image -p ash-encoder --quiet
	scripts/public_items.sh --check

# The library crates package as they are (could be published).
package-check:
	$(CARGO) package --locked -p ash-mih -p ash-tantivy -p ash-image -p ash-encoder --allow-dirty --no-verify --quiet

test: lint package-check plugin-test python-test $(ORT_LIB) $(ORT_OLD_LIB)
	scripts/ensure_dicom_tools.sh
	$(CARGO) test --locked --workspace --all-targets
	$(CARGO) test --locked --workspace --doc
	$(CARGO) run --locked --quiet -p ash-mih --example mih_only
	$(CARGO) run --locked --quiet -p ash-tantivy --example embed_tantivy
	$(CARGO) run --locked --quiet --release --example embed_images
	$(MAKE) browser-test

# The inner loop: formatting, lints, every library crate's own tests (the
# DICOM fuzzer at 10,000 objects instead of 100,000), and the app's tests
# but those that need the plugin's PyTorch venv (pydicom), Orthanc or
# Chromium (the modules tests/it/dicom.rs and tests/it/dicomweb.rs, the
# browser test), which `make test` runs.
CHECK_SKIP := --skip dicom:: --skip dicomweb::

check: $(ORT_LIB) $(ORT_OLD_LIB)
	$(CARGO) fmt --all --check
	$(CARGO) clippy --locked --workspace --all-targets -- -D warnings
	ASH_FUZZ_COUNT=10000 $(CARGO) test --locked -p ash-mih -p ash-tantivy -p ash-image -p ash-encoder
	$(CARGO) test --locked -p ash-search --lib --bins --test it -- $(CHECK_SKIP)

# The search page in headless Chromium (Debian's), driven by playwright-core
# from npm; uses the binary `cargo test` built.
BROWSER_DIR := tests/browser
$(BROWSER_DIR)/node_modules/.ready: $(BROWSER_DIR)/package-lock.json
	cd $(BROWSER_DIR) && npm ci --no-audit --no-fund --silent
	touch $@

browser-test: $(BROWSER_DIR)/node_modules/.ready $(ORT_LIB)
	scripts/ensure_chromium.sh
	$(CARGO) test --locked --no-run --test it
	$(BROWSER_DIR)/run.sh target/debug/ash-search

# The encoder plugin's environment: PyTorch from PyPI (about 3 GB with its
# CUDA libraries, installed once and reused), ONNX, ONNX Runtime, and Ray
# for the distributed encoding job (ash.distributed).
$(PLUGIN_VENV)/.ready: plugin/requirements.txt $(wildcard plugin/requirements/*.txt)
	$(PYTHON) -m venv $(PLUGIN_VENV)
	$(PLUGIN_VENV)/bin/pip install --quiet --disable-pip-version-check -r plugin/requirements.txt
	touch $@

# The Python module `ash_search` (crates/ash-py): an abi3 wheel for
# CPython 3.10 and later, built by maturin into target/wheels/.
$(WHEEL_VENV)/.ready: $(PY_CRATE)/requirements-build.txt
	$(PYTHON) -m venv $(WHEEL_VENV)
	$(WHEEL_VENV)/bin/pip install --quiet --disable-pip-version-check -r $(PY_CRATE)/requirements-build.txt
	touch $@

wheel: $(WHEEL_VENV)/.ready
	rm -f target/wheels/ash_search-*.whl
	$(WHEEL_VENV)/bin/maturin build --quiet --release --locked -m $(PY_CRATE)/Cargo.toml --out target/wheels

# ...installed into the plugin's venv, where its tests, ash.evaluate and
# ash.serve import it.
python-install: wheel $(PLUGIN_VENV)/.ready
	$(PLUGIN_VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/ash_search-*.whl

# The module's tests, then the wheel in a fresh venv running the README's
# Python example.
python-test: python-install build $(ORT_LIB)
	$(PLUGIN_VENV)/bin/ruff check $(PY_CRATE) && $(PLUGIN_VENV)/bin/ruff format --check $(PY_CRATE)
	cd $(PY_CRATE)/tests && ../../../$(PLUGIN_VENV)/bin/python -m pytest -q
	$(PLUGIN_VENV)/bin/python -c "import doctest, ash_search, sys; sys.exit(doctest.testmod(ash_search).failed)"
	scripts/check_wheel.sh

# The Ray tests (plugin/tests/test_distributed_ray.py) run the release binary;
# ash.serve's tests (plugin/tests/test_serve_ray.py) the Python module.
plugin-test: $(PLUGIN_VENV)/.ready build python-install
	$(PLUGIN_VENV)/bin/ruff check scripts bench tests && $(PLUGIN_VENV)/bin/ruff format --check scripts bench tests
	cd plugin && ../$(PLUGIN_VENV)/bin/ruff check . && ../$(PLUGIN_VENV)/bin/ruff format --check .
	cd plugin && ../$(PLUGIN_VENV)/bin/python -m pytest -q

$(BENCH_VENV)/.ready: bench/requirements.txt
	$(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements.txt
	touch $@

# Milvus Lite and LanceDB for bench/peers.py, with the ash_search wheel.
$(PEERS_VENV)/.ready: bench/requirements-peers.txt
	$(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/pip install --quiet --disable-pip-version-check -r bench/requirements-peers.txt
	touch $@

bench: build $(BENCH_VENV)/.ready $(PLUGIN_VENV)/.ready $(PEERS_VENV)/.ready $(ORT_LIB) python-install
	$(CARGO) build --release --locked --example bench_codes --example bench_index --example bench_serve
	$(BENCH_VENV)/bin/python bench/codes_bench.py
	$(BENCH_VENV)/bin/python bench/encode_bench.py
	$(BENCH_VENV)/bin/python bench/model_bench.py
	$(PLUGIN_VENV)/bin/python bench/ray_bench.py
	$(PLUGIN_VENV)/bin/python bench/shard_bench.py
	$(PEERS_VENV)/bin/pip install --quiet --disable-pip-version-check --force-reinstall --no-deps target/wheels/ash_search-*.whl
	$(PEERS_VENV)/bin/python bench/peers.py
	scripts/ensure_dicom_tools.sh
	$(PLUGIN_VENV)/bin/python bench/dicom_bench.py
	$(PLUGIN_VENV)/bin/python bench/pacs_bench.py
	target/release/examples/bench_index $${BENCH_INDEX_N:-1000000} $${BENCH_INDEX_QUERIES:-200}
	$(CARGO) run --release --locked --quiet -p ash-tantivy --example bench_filters $${BENCH_INDEX_N:-1000000} $${BENCH_INDEX_QUERIES:-200}
	target/release/examples/bench_serve $${BENCH_SERVE_N:-1000000} $${BENCH_SERVE_SECONDS:-5} $${BENCH_SERVE_CLIENTS:-4}

# Builds the fuzz target for the .mih reader (running it is manual:
# `cargo +nightly fuzz run mih_open`, see fuzz/README.md).
fuzz-build:
	cd fuzz && $(CARGO) build

clean:
	$(CARGO) clean
	rm -rf $(CACHE) demo-output $(BROWSER_DIR)/node_modules
