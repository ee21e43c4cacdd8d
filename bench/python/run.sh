#!/usr/bin/env bash
# Run the Python benchmark: ours vs the reference safetensors vs torch.
#
# Uses the repo-local .venv made by crates/safetensors-py/scripts/setup-env.sh
# (our package + torch + numpy) for every worker; the reference is
# pip-installed with --target into .bench/ref and only put on PYTHONPATH of the
# reference workers. Override the interpreter with PYTHON=/path/to/python.
# Extra arguments go to bench.py, e.g.:  bench/python/run.sh --quick
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
py="${PYTHON:-$root/.venv/bin/python}"
if [ ! -x "$py" ]; then
    echo "no interpreter at $py: run crates/safetensors-py/scripts/setup-env.sh or set PYTHON" >&2
    exit 1
fi
exec "$py" "$root/bench/python/bench.py" --python "$py" "$@"
