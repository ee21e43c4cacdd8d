# The one place commands live: the README and CI call these targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo
VENV ?= $(CURDIR)/.venv
PY := $(VENV)/bin/python
# Tests that need torch (checkpoint conversion) find it here.
export SAFETENSORS_TEST_PYTHON ?= $(PY)

.PHONY: demo setup test test-rust test-python lint lint-rust lint-python fmt fuzz-check fuzz-smoke bench-rust bench-python ci

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
test: setup test-rust test-python

## Rust tests that need torch (checkpoint conversion) or nginx (the CLI's HTTP test,
## `apt-get install nginx`) are #[ignore]d, so a plain `cargo test` reports them as ignored;
## this target runs them too, and there a missing torch or nginx fails them.
test-rust:
	$(CARGO) test --workspace -- --include-ignored

test-python:
	$(PY) -m pytest -q -p no:cacheprovider crates/safetensors-py/tests

## Every check that reads code: Rust and Python.
lint: lint-rust lint-python

## Rust: formatting, clippy, docs, the no_std build and the fuzz crate.
lint-rust:
	$(CARGO) fmt --all --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc --workspace --no-deps
	$(CARGO) build -p safetensors --no-default-features
	$(MAKE) fuzz-check

PY_LINTED := crates/safetensors-py bench/python

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

## Criterion benchmarks of the core (slow; not part of the tests).
bench-rust:
	BENCH_DIR=$${BENCH_DIR:-/tmp} $(CARGO) bench -p safetensors --bench core

## The Python benchmark: ours vs the reference package (isolated install) vs torch.
## Pass options with BENCH_ARGS, e.g. BENCH_ARGS=--quick.
bench-python: setup
	bench/python/run.sh --snapshot-ours $${BENCH_ARGS:-}

## What CI runs. A missing framework or nginx fails instead of skipping.
ci: export SAFETENSORS_REQUIRE_FRAMEWORKS = 1
ci: export SAFETENSORS_REQUIRE_NGINX = 1
ci: setup lint test-rust test-python fuzz-smoke
