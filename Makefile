# The one place commands live: the README and CI call these targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Tests that need torch (checkpoint conversion) find it here.
export SAFETENSORS_TEST_PYTHON ?= $(PY)

.PHONY: demo setup test test-rust test-python lint fuzz-check fuzz-smoke bench-rust bench-python ci

## Build everything, write a sample model file, read it back and slice it.
demo:
	$(CARGO) build --release --workspace
	mkdir -p target/demo
	$(CARGO) run -q --release -p safetensors --example write_and_read -- target/demo/demo.safetensors

## The Python environment: .venv with every framework, and our package built into it.
setup:
	bash crates/safetensors-py/scripts/setup-env.sh

## Every test: Rust (unit, conformance, property, doc, convert) and Python (all frameworks).
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

## Criterion benchmarks of the core (slow; not part of the tests).
bench-rust:
	BENCH_DIR=$${BENCH_DIR:-/tmp} $(CARGO) bench -p safetensors --bench core

## What CI runs. Missing frameworks fail instead of skipping.
ci: export SAFETENSORS_REQUIRE_FRAMEWORKS = 1
ci: setup lint test-rust test-python fuzz-smoke
