# The one place commands live: the README and CI call these targets.
SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
CARGO ?= cargo

.PHONY: demo test test-rust lint fuzz-check fuzz-smoke bench-rust ci

## Build everything, write a sample model file, read it back and slice it.
demo:
	$(CARGO) build --release --workspace
	mkdir -p target/demo
	$(CARGO) run -q --release -p safetensors --example write_and_read -- target/demo/demo.safetensors

## Every test: Rust (unit, conformance, property, doc).
test: test-rust

test-rust:
	$(CARGO) test --workspace

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

## What CI runs.
ci: lint test fuzz-smoke
