#!/usr/bin/env bash
# Builds every fuzz target on the stable toolchain with libFuzzer's coverage
# instrumentation (what cargo-fuzz does, minus its nightly-only AddressSanitizer: the
# core's only `unsafe` is the mmap call). Prints the folder holding the binaries.
set -euo pipefail
cd "$(dirname "$0")"
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps the flags off build scripts, which must not be instrumented.
cargo build --release --bins --target "$target" --target-dir target/smoke >&2
echo "$PWD/target/smoke/$target/release"
