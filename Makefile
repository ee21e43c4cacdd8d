# The one place commands live: the README and CI call these targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Tests that need torch (checkpoint conversion) find it here.
export SAFETENSORS_TEST_PYTHON ?= $(PY)

.PHONY: demo setup test test-rust test-python lint fuzz-check fuzz-smoke fuzz-campaign bench-rust bench-python bench-headers ci

## Build everything, write a sample model file, read it back and slice it, then look at it
## (and at a conformance vector) with the command-line tool.
demo:
	$(CARGO) build --release --workspace
	mkdir -p target/demo
	$(CARGO) run -q --release -p safetensors --example write_and_read -- target/demo/demo.safetensors
	target/release/safetensors inspect target/demo/demo.safetensors
	target/release/safetensors validate target/demo/demo.safetensors tests/data/vectors/valid/gpt2_block.safetensors
	target/release/safetensors inspect tests/data/vectors/valid/gpt2_block.safetensors | tail -n 12

## The Python environment: .venv with every framework, and our package built into it.
setup:
	bash crates/safetensors-py/scripts/setup-env.sh

## Every test: Rust (core, convert, CLI end to end) and Python (every framework).
## The CLI's HTTP test needs nginx (`apt-get install nginx`); without it that test skips.
test: setup test-rust test-python

test-rust:
	$(CARGO) test --workspace

test-python:
	$(PY) -m pytest -q -p no:cacheprovider crates/safetensors-py/tests

## Formatting, clippy, docs, the no_std build and the fuzz crate.
lint:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(CARGO) build -p safetensors --no-default-features
	$(MAKE) fuzz-check

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

## Worst-case headers (1, 10, 60 MB of every hostile shape) through the core, the Python
## package and the CLI: time and peak memory. BENCH_ARGS="--sizes 1,10" for a quick run.
bench-headers: setup
	$(CARGO) build --release -p safetensors-cli
	$(CARGO) build --release -p safetensors --example read_header
	$(PY) bench/headers/bench_headers.py $${BENCH_ARGS:-}

## What CI runs. A missing framework or nginx fails instead of skipping.
ci: export SAFETENSORS_REQUIRE_FRAMEWORKS = 1
ci: export SAFETENSORS_REQUIRE_NGINX = 1
ci: setup lint test-rust test-python fuzz-smoke
