#!/usr/bin/env bash
# A short coverage-guided run of every fuzz target, starting from the minimized corpus
# kept in fuzz/corpus (see FUZZING.md). Fails on any crash, timeout or out-of-memory.
# Usage: fuzz/smoke.sh [seconds per target, default 30]
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-30}
bin=$(./build.sh)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for fuzzer in deserialize differential slice pickle http_response; do
    ./seed.sh "$fuzzer" "$work/$fuzzer"
    echo "fuzzing $fuzzer for ${seconds}s"
    "$bin/$fuzzer" -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=10 \
        -artifact_prefix="$work/" "$work/$fuzzer" 2>&1 | grep -E "^Done|ERROR|panicked|deadly" || true
    if ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* >/dev/null 2>&1; then
        echo "fuzzer $fuzzer found a failing input:"; ls "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* 2>/dev/null
        mkdir -p artifacts && cp "$work"/crash-* "$work"/leak-* "$work"/timeout-* "$work"/oom-* artifacts/ 2>/dev/null || true
        exit 1
    fi
done
