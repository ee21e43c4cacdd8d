# The one place commands live: the README and CI call these targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
PYCRATE := crates/safetensors-py
# Tests that need torch (checkpoint conversion) find it here.
export SAFETENSORS_TEST_PYTHON ?= $(PY)
# Python 3.11 makes the development venv and the fresh venvs of the packaging test.
PYTHON ?= python3.11

.PHONY: demo help setup setup-quick system-packages test test-quick test-rust test-python test-python-quick \
	test-clients wheel sdist test-packaging lint lint-rust lint-python fmt fuzz-check fuzz-smoke \
	fuzz-campaign bench-rust bench-python bench-compare bench-headers bench-sharded bench-load bench-ranks bench-prefetch bench-save bench-writer ci

## Build everything, write a sample model file, read it back and slice it, then look at it
## (and at a conformance vector) with the command-line tool.
demo:
	@# One build, with cargo's progress shown, of exactly what the demo runs: the CLI and the
	@# example (whose dev-dependencies cargo compiles too); not the Python extension.
	$(CARGO) build --release -p safetensors -p safetensors-cli --bins --example write_and_read
	mkdir -p target/demo
	target/release/examples/write_and_read target/demo/demo.safetensors
	target/release/safetensors inspect target/demo/demo.safetensors
	target/release/safetensors validate target/demo/demo.safetensors tests/data/vectors/valid/gpt2_block.safetensors
	target/release/safetensors inspect tests/data/vectors/valid/gpt2_block.safetensors | tail -n 12

## This list: every target with what its comment says.
help:
	@awk 'function show(name, text,   n, w, i, line) { \
			n = split(text, w, " "); line = sprintf("  %-18s", name); \
			for (i = 1; i <= n; i++) { \
				if (length(line) + length(w[i]) > 100) { print line; line = sprintf("  %-18s", "") } \
				line = line " " w[i] } \
			print line } \
		/^## /{doc = doc (doc ? " " : "") substr($$0, 4); next} \
		/^[a-z][a-z-]*:/ && doc {split($$0, t, ":"); show(t[1], doc)} {doc = ""}' \
		$(firstword $(MAKEFILE_LIST))

## The Python environment: .venv with every framework, and our package built into it.
## Stamps in .venv make a repeated run do only what changed (requirements, Rust sources).
setup: $(VENV)/.deps-full.stamp $(VENV)/.ext-built.stamp

## The same without the frameworks (numpy, pytest, maturin only: a small download).
setup-quick: $(VENV)/.deps-quick.stamp $(VENV)/.ext-built.stamp

$(VENV)/.deps-full.stamp: $(PYCRATE)/requirements-dev.txt $(PYCRATE)/requirements-frameworks.txt
	SKIP_BUILD=1 PYTHON=$(PYTHON) VENV=$(VENV) bash $(PYCRATE)/scripts/setup-env.sh
	touch $@ $(VENV)/.deps-quick.stamp

$(VENV)/.deps-quick.stamp: $(PYCRATE)/requirements-dev.txt
	SKIP_BUILD=1 SKIP_FRAMEWORKS=1 PYTHON=$(PYTHON) VENV=$(VENV) bash $(PYCRATE)/scripts/setup-env.sh
	touch $@

# What the extension is built from; the Python sources are installed editable (no rebuild).
EXT_INPUTS := Cargo.toml Cargo.lock crates/safetensors/Cargo.toml $(PYCRATE)/Cargo.toml \
	$(PYCRATE)/pyproject.toml $(shell find crates/safetensors/src $(PYCRATE)/src -name '*.rs')

$(VENV)/.ext-built.stamp: $(EXT_INPUTS) | $(VENV)/.deps-quick.stamp
	SKIP_DEPS=1 PYTHON=$(PYTHON) VENV=$(VENV) bash $(PYCRATE)/scripts/setup-env.sh
	touch $@

## Every test: Rust (core, convert, CLI end to end) and Python (every framework).
test: system-packages setup test-rust test-python

## System packages the tests need (nginx for the HTTP tests): installed when missing where
## possible (root with apt-get), otherwise a one-line message before anything is built.
system-packages:
	bash scripts/system-packages.sh

## Day-to-day: the Rust tests and the Python tests that need only numpy (no framework
## download). CI runs everything (`make ci`).
test-quick: setup-quick test-rust test-python-quick


## Rust tests that need torch (checkpoint conversion) or nginx (the CLI's HTTP test,
## `apt-get install nginx`) are #[ignore]d, so a plain `cargo test` reports them as ignored;
## this target runs them too, and there a missing torch or nginx fails them.
test-rust:
	$(CARGO) test --workspace -- --include-ignored

## The Python tests (every framework; a missing one skips its tests, outside CI).
test-python:
	$(PY) -m pytest -q -p no:cacheprovider $(PYCRATE)/tests

# The framework tests skip when their framework is missing; these files need only numpy.
PY_QUICK_TESTS := test_core_api.py test_errors.py test_numpy.py test_threads.py \
	test_vectors.py test_readme_snippets.py test_writer_numpy.py

## The Python tests that need only numpy.
test-python-quick:
	$(PY) -m pytest -q -p no:cacheprovider $(addprefix $(PYCRATE)/tests/,$(PY_QUICK_TESTS))

## Real Rust clients from crates.io, patched onto our core crate with one [patch.crates-io]
## line: candle-core loads and saves every conformance vector (tests/clients/candle);
## anamnesis reads every header through serde into safetensors::tensor::Metadata
## (tests/clients/anamnesis); a no_std library built with `default-features = false,
## features = ["alloc"]` (tests/clients/nostd).
test-clients:
	CARGO_TARGET_DIR=$(CURDIR)/target/clients $(CARGO) run --locked \
		--manifest-path tests/clients/candle/Cargo.toml -- tests/data/vectors
	CARGO_TARGET_DIR=$(CURDIR)/target/clients $(CARGO) run --locked \
		--manifest-path tests/clients/anamnesis/Cargo.toml -- tests/data/vectors
	CARGO_TARGET_DIR=$(CURDIR)/target/clients $(CARGO) test --locked --quiet \
		--manifest-path tests/clients/nostd/Cargo.toml

## The Python wheel: abi3 (one wheel for CPython 3.9 and later) with a manylinux2014 tag,
## linked through zig (ziglang from PyPI) so no manylinux docker image is needed.
wheel: $(VENV)/.deps-quick.stamp
	$(PY) -m pip install --quiet --disable-pip-version-check -r $(PYCRATE)/requirements-packaging.txt
	rm -f target/wheels/safetensors-*.whl
	cd $(PYCRATE) && PATH="$(VENV)/bin:$$PATH" $(VENV)/bin/maturin build --release --quiet \
		--zig --compatibility manylinux2014 --interpreter $(PY) --out $(CURDIR)/target/wheels

## The source distribution (with the core crate it builds from).
sdist: $(VENV)/.deps-quick.stamp
	rm -f target/wheels/safetensors-*.tar.gz
	cd $(PYCRATE) && $(VENV)/bin/maturin sdist --out $(CURDIR)/target/wheels

## What a user does: install the built wheel, and `pip install ./crates/safetensors-py` from
## source, each into a fresh venv, then save and load a file.
test-packaging: wheel sdist
	PYTHON=$(PYTHON) $(PYCRATE)/scripts/test-packaging.sh target/wheels

## Every check that reads code: Rust and Python.
lint: lint-rust lint-python

## Rust: formatting, clippy, docs, the no_std build and the fuzz crate.
lint-rust:
	$(CARGO) fmt --all --check
	cd tests/clients/candle && $(CARGO) fmt --check
	cd tests/clients/anamnesis && $(CARGO) fmt --check
	cd tests/clients/nostd && $(CARGO) fmt --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(CARGO) build -p safetensors --no-default-features --features alloc
	$(MAKE) fuzz-check

PY_LINTED := crates/safetensors-py bench/python bench/sharded bench/load bench/ranks bench/headers bench/gpu \
	bench/compare \
	bench/prefetch bench/checksum bench/writer

## Python (needs `make setup`): ruff lint and format, mypy on the package, and the extension
## module's stub checked against the built module by stubtest.
lint-python:
	$(PY) -m ruff check $(PY_LINTED)
	$(PY) -m ruff format --check $(PY_LINTED)
	cd crates/safetensors-py && $(PY) -m mypy
	cd crates/safetensors-py && $(PY) -m mypy.stubtest safetensors._safetensors_rust

## Fix what the formatters can: rustfmt, ruff format and ruff's safe fixes.
fmt:
	$(CARGO) fmt --all
	$(PY) -m ruff check --fix $(PY_LINTED)
	$(PY) -m ruff format $(PY_LINTED)

## Fuzz targets must at least build (cargo fuzz run needs nightly).
fuzz-check:
	cd fuzz && $(CARGO) check --bins

## A short coverage-guided run of each fuzz target (stable toolchain).
fuzz-smoke:
	fuzz/smoke.sh $${FUZZ_SECONDS:-30}

## A fuzzing campaign (10 million runs per target by default; FUZZING.md): RUNS=... TARGETS=...
fuzz-campaign:
	RUNS=$${RUNS:-10000000} fuzz/campaign.sh $${TARGETS:-}

## Criterion benchmarks of the core (slow; not part of the tests).
bench-rust:
	BENCH_DIR=$${BENCH_DIR:-/tmp} $(CARGO) bench -p safetensors --bench core

## The Python benchmark: ours vs the reference package (isolated install) vs torch.
## Pass options with BENCH_ARGS, e.g. BENCH_ARGS=--quick.
bench-python: setup
	bench/python/run.sh --snapshot-ours $${BENCH_ARGS:-}

## Loading at the hardware's limit (issue 10): ours vs the reference, runai-model-streamer and
## fastsafetensors (each pip-installed into .bench/load), warm and cold (drops the page cache:
## root), plus the disk's own O_DIRECT speed. BENCH_ARGS="--runs 1" for a quick run.
bench-load: setup
	$(PY) bench/load/bench_load.py $${BENCH_ARGS:-}

## save_file of ~500 MB of torch tensors vs a plain write of the same bytes vs the reference
## (installed with pip --target into /tmp/refpkg, only on the reference worker's PYTHONPATH).
bench-save: setup
	[ -d /tmp/refpkg/safetensors ] || $(PY) -m pip install --quiet --disable-pip-version-check \
		--target /tmp/refpkg safetensors==0.8.0 --no-deps
	$(PY) bench/python/save_vs_write.py --ref /tmp/refpkg $${BENCH_ARGS:-}

## Writing a ~2 GB checkpoint tensor by tensor (issue 23): open_writer vs save_file of the same
## tensors (peak memory) vs a plain write of the same bytes (time), each case a fresh process.
## BENCH_ARGS="--gb 0.5 --rounds 1" for a quick run.
bench-writer: setup
	$(PY) bench/writer/bench_writer.py $${BENCH_ARGS:-}

## Per-rank loading: load_for_rank on a ~1.5 GB sharded checkpoint, 2 ranks (gloo), both modes
## vs one whole load; bytes read per rank (/proc/self/io) with the page cache dropped (root)
## and warm. BENCH_ARGS="--size-gb 0.2 --runs 1" for a quick run, "--no-cold" without root.
bench-ranks: setup
	$(PY) bench/ranks/bench_ranks.py $${BENCH_ARGS:-}

## Prefetch plans per rank (issue 19): safe_open.prefetch of a tensor-parallel plan (2 and 4
## ranks) on bench-load's checkpoint vs load_for_rank, get_slice loops (ours, the reference
## 0.8.0 in /tmp/refpkg) and a whole load, cold (drops the page cache: root) and warm.
bench-prefetch: setup
	$(PY) bench/prefetch/bench_prefetch.py $${BENCH_ARGS:-}

## Checksums (issue 23): save_file with no/xxh3-64/sha256 digests, load_file verify=False/True,
## and `safetensors verify` (GB/s, warm; cold too with --cold, root). BENCH_ARGS="--runs 1".
bench-checksum: setup
	$(CARGO) build --release -p safetensors-cli
	$(PY) bench/checksum/bench_checksum.py $${BENCH_ARGS:-}

## Two builds of the package side by side, before and after a change to the read path (each
## a checkout where `maturin develop` ran): BENCH_ARGS="--a OTHER/crates/safetensors-py/python
## --b crates/safetensors-py/python --runs 7". Medians of fresh processes, ratio B/A.
bench-compare: setup
	$(PY) bench/compare/compare_builds.py $${BENCH_ARGS:-}

## Worst-case headers (1, 10, 60 MB of every hostile shape) through the core, the Python
## package and the CLI: time and peak memory. BENCH_ARGS="--sizes 1,10" for a quick run.
bench-headers: setup
	$(CARGO) build --release -p safetensors-cli
	$(CARGO) build --release -p safetensors --example read_header
	$(PY) bench/headers/bench_headers.py $${BENCH_ARGS:-}

## A sharded ~2 GB bf16 checkpoint (4 shards) loaded with load_file from the local folder and
## over HTTP from nginx on 127.0.0.1: time, requests, bytes moved. Files under /tmp, deleted
## after. BENCH_ARGS="--layers 4 --runs 2" for a quick run.
bench-sharded: system-packages setup
	$(PY) bench/sharded/bench_sharded.py $${BENCH_ARGS:-}

## What CI runs. A missing framework or nginx fails instead of skipping.
ci: export SAFETENSORS_REQUIRE_FRAMEWORKS = 1
ci: export SAFETENSORS_REQUIRE_NGINX = 1
ci: system-packages setup lint test-rust test-python test-clients test-packaging fuzz-smoke
