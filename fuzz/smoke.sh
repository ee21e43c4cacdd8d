#!/usr/bin/env bash
# A short coverage-guided run of every fuzz target on the stable toolchain: the same
# instrumentation cargo-fuzz uses, minus the nightly-only AddressSanitizer (the core's
# `unsafe` is only the mmap call). Seeds with the conformance vectors.
# Usage: fuzz/smoke.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
target=$(rustc -vV | sed -n 's/^host: //p')
export RUSTFLAGS="-Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
-Cllvm-args=-sanitizer-coverage-trace-compares --cfg fuzzing -Cdebug-assertions -Coverflow-checks"
# --target keeps the flags off build scripts, which must not be instrumented.
cargo build --release --bins --target "$target" --target-dir target/smoke
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for fuzzer in deserialize slice; do
    mkdir -p "$work/$fuzzer"
    if [ "$fuzzer" = deserialize ]; then
        cp ../tests/data/vectors/valid/*.safetensors ../tests/data/vectors/invalid/*.safetensors "$work/$fuzzer/"
    fi
    echo "fuzzing $fuzzer for ${seconds}s"
    "target/smoke/$target/release/$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 \
        -artifact_prefix="$work/" "$work/$fuzzer" 2>&1 | grep -E "^Done|ERROR|panicked|deadly" || true
    if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* >/dev/null 2>&1; then
        echo "fuzzer $fuzzer found a failing input:"; ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* 2>/dev/null
        mkdir -p artifacts && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* artifacts/ 2>/dev/null || true
        exit 1
    fi
done
