#!/usr/bin/env bash
# The prepared GPU check of issue 10 (how to run it: bench/gpu/README.md). In at most about
# 8 minutes: (a) our package, unpacked from the carried abi3 wheel in .gpu/, goes first on the
# path (the machine's own safetensors is the reference) and is checked to be the one
# imported; (b) our CUDA-marked tests run; (c) bench/gpu/device_bench.py measures pinned
# host-to-device bandwidth and the loads onto the GPU. Everything lands in $OUT:
# device_check.log, cuda_tests.xml, gpu_bench.json, gpu_bench.txt.
#
#   bash bench/gpu/device_check.sh            on the GPU machine
#   bash bench/gpu/device_check.sh --dry-run  on a CPU machine: the same steps, the CUDA tests
#                                             skipped, the loads on a small checkpoint with
#                                             the staging ring's CPU copier
set -uo pipefail
cd "$(dirname "$0")/../.."
DRY=0
[ "${1:-}" = "--dry-run" ] && DRY=1
PY=${PYTHON:-python3}
case "$PY" in */*) PY="$(cd "$(dirname "$PY")" && pwd)/$(basename "$PY")" ;; esac  # steps cd
OUT=${OUT:-$PWD/.gpu/out}
mkdir -p "$OUT"
exec > >(tee "$OUT/device_check.log") 2>&1
status=0
step() { echo; echo "=== $* ($(date -u +%H:%M:%S))"; }

step "(a) our package first on the path"
wheel=$(ls .gpu/safetensors-*-abi3-*.whl 2>/dev/null | head -1)
if [ -z "$wheel" ]; then
    echo "no .gpu/safetensors-*-abi3-*.whl: build it first (bench/gpu/README.md) and carry .gpu"
    exit 2
fi
OURS=/tmp/st-ours
rm -rf "$OURS"
"$PY" -m zipfile -e "$wheel" "$OURS" || exit 2
echo "wheel: $wheel -> $OURS"
PYTHONPATH="$OURS" "$PY" - "$OURS" <<'EOF' || exit 2
import sys
import safetensors
import safetensors._safetensors_rust as ext
print("ours:", safetensors.__version__, safetensors.__file__, ext.__file__)
if not safetensors.__file__.startswith(sys.argv[1]) or not ext.__file__.startswith(sys.argv[1]):
    sys.exit("our package is not the one imported")
EOF
env -u PYTHONPATH "$PY" -c 'import safetensors; print("machine'"'"'s own (the reference):", safetensors.__version__, safetensors.__file__)' \
    || echo "no safetensors of the machine's own: the reference will not be measured"
"$PY" -c 'import torch; print("torch", torch.__version__, "cuda", torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else "")'

step "(b) our CUDA tests (pytest -m cuda)"
(cd crates/safetensors-py && PYTHONPATH="$OURS" "$PY" -c 'import safetensors; print("the tests import", safetensors.__file__)')
(cd crates/safetensors-py && PYTHONPATH="$OURS" timeout 150 "$PY" -m pytest -m cuda -q -p no:cacheprovider \
    --junitxml="$OUT/cuda_tests.xml" tests/test_cuda_ring.py tests/test_fast_load.py tests/test_torch.py \
    tests/test_prefetch.py)
rc=$?
echo "pytest exit: $rc"
[ $rc -ne 0 ] && status=1

step "(c) load benchmark"
PEERS=""
if ls .whl/*.whl >/dev/null 2>&1; then
    PEERS=/tmp/st-peers
    rm -rf "$PEERS"
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$PEERS" .whl/*.whl \
        || { echo "the carried peer wheels did not install"; PEERS=""; }
    rm -rf "$PEERS"/safetensors "$PEERS"/safetensors-*  # never shadow the reference
else
    echo "no .whl/ folder: fastsafetensors and runai-model-streamer are measured only if the machine has them"
fi
# The reference 0.9.0rc1 (its prefetch, issue 19): its wheel carried in .whl09/, unpacked
# apart, on the path of its own workers only (the machine's own safetensors stays the 0.8 one).
REF09=""
if ls .whl09/safetensors-0.9.0rc1-*.whl >/dev/null 2>&1; then
    REF09=/tmp/st-ref09
    rm -rf "$REF09"
    "$PY" -m zipfile -e "$(ls .whl09/safetensors-0.9.0rc1-*.whl | head -1)" "$REF09" || REF09=""
else
    echo "no .whl09/safetensors-0.9.0rc1-*.whl: the reference's prefetch is not measured"
fi
if [ $DRY -eq 1 ]; then
    bench=(--device cpu --folder /tmp/st-gpu-bench-dry --layers 2 --hidden 256 --inter 704 --vocab 1000 --runs 1)
else
    bench=(--device cuda:0 --folder /tmp/st-gpu-bench --runs 3)
fi
timeout 300 "$PY" bench/gpu/device_bench.py "${bench[@]}" --ours "$OURS" --peers "$PEERS" --ref09 "$REF09" --out "$OUT"
rc=$?
echo "bench exit: $rc"
[ $rc -ne 0 ] && status=1
step "done: status $status"
exit $status
