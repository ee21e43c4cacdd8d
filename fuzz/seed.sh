#!/usr/bin/env bash
# Fills folder $2 with the seeds of fuzz target $1: the minimized corpus kept in
# fuzz/corpus/<target>, plus the project's own sample files for the file-reading targets.
set -euo pipefail
cd "$(dirname "$0")"
fuzzer=$1 dest=$2
mkdir -p "$dest"
if [ -d "corpus/$fuzzer" ]; then cp -r "corpus/$fuzzer/." "$dest/"; fi
case "$fuzzer" in
    deserialize | differential)
        cp ../tests/data/vectors/valid/*.safetensors ../tests/data/vectors/invalid/*.safetensors "$dest/" ;;
    pickle)
        cp ../crates/safetensors-convert/tests/data/*.pt "$dest/" ;;
esac
