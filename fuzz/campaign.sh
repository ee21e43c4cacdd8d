#!/usr/bin/env bash
# A fuzzing campaign: runs each named target (default: all) for RUNS executions (default
# 10 million) on one core, then merges what it found into the minimized corpus kept in
# fuzz/corpus/<target>. Logs and failing inputs go to fuzz/campaign/ (not committed); the
# last lines of each log give the figures FUZZING.md records.
# Usage: RUNS=10000000 [MAX_TIME=seconds] [MAX_LEN=bytes] [KEEP_MAX_KIB=8] fuzz/campaign.sh [target...]
set -euo pipefail
cd "$(dirname "$0")"
runs=${RUNS:-10000000}
max_time=${MAX_TIME:-0}
# Inputs up to 64 KiB: larger ones only make each run slower, not the search wider.
max_len=${MAX_LEN:-65536}
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(deserialize differential slice pickle http_response)
bin=$(./build.sh)
mkdir -p campaign/logs
for fuzzer in "${targets[@]}"; do
    work=campaign/$fuzzer
    ./seed.sh "$fuzzer" "$work"
    log=campaign/logs/$fuzzer.log
    start=$(date +%s)
    echo "== $fuzzer: $runs runs, started $(date -u +%FT%TZ)" >"$log"
    status=0
    "$bin/$fuzzer" -runs="$runs" -max_total_time="$max_time" -rss_limit_mb=2048 -timeout=10 \
        -max_len="$max_len" -print_final_stats=1 -artifact_prefix="campaign/$fuzzer-" "$work" >>"$log" 2>&1 || status=$?
    echo "== $fuzzer: exit $status after $(( $(date +%s) - start ))s" >>"$log"
    # Keep only the inputs that add coverage.
    rm -rf "corpus/$fuzzer.new" && mkdir -p "corpus/$fuzzer.new"
    "$bin/$fuzzer" -merge=1 "corpus/$fuzzer.new" "$work" >>"$log" 2>&1
    rm -rf "corpus/$fuzzer" && mv "corpus/$fuzzer.new" "corpus/$fuzzer"
    # The repository keeps the small inputs only; the large ones are mostly grown from the
    # conformance vectors and sample checkpoints, which seed.sh adds to every run anyway.
    find "corpus/$fuzzer" -type f -size +"${KEEP_MAX_KIB:-8}"k -delete
    echo "== $fuzzer: corpus $(ls "corpus/$fuzzer" | wc -l) files, $(du -sk "corpus/$fuzzer" | cut -f1) KiB" >>"$log"
done
