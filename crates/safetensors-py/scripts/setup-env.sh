#!/usr/bin/env bash
# Creates (or updates) the virtualenv at <repo root>/.venv with every framework the Python
# package supports plus the test tools, then builds and installs our package into it.
# Idempotent: re-running only installs what is missing and rebuilds the extension.
#
#   bash crates/safetensors-py/scripts/setup-env.sh            # everything
#   SKIP_FRAMEWORKS=1 bash .../setup-env.sh                    # only build tools + numpy + tests
#   SKIP_BUILD=1 bash .../setup-env.sh                         # dependencies only
#   SKIP_DEPS=1 bash .../setup-env.sh                          # only (re)build the extension
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(cd "$here/.." && pwd)"
root="$(cd "$crate/../.." && pwd)"
venv="${VENV:-$root/.venv}"
python="${PYTHON:-python3.11}"

if [ ! -x "$venv/bin/python" ]; then
    echo "setup-env: creating $venv with $python"
    "$python" -m venv "$venv"
fi
py="$venv/bin/python"
export PIP_DISABLE_PIP_VERSION_CHECK=1

if [ -z "${SKIP_DEPS:-}" ]; then
    # Build + test tools.
    "$py" -m pip install --quiet --upgrade pip
    "$py" -m pip install --quiet -r "$crate/requirements-dev.txt"
fi

if [ -z "${SKIP_FRAMEWORKS:-}" ] && [ -z "${SKIP_DEPS:-}" ]; then
    # One resolver run for all frameworks so pip picks a numpy/ml_dtypes/protobuf set that
    # satisfies every one of them at once (see requirements-frameworks.txt for the pins).
    "$py" -m pip install --quiet -r "$crate/requirements-frameworks.txt"
fi

if [ -z "${SKIP_BUILD:-}" ]; then
    # A version-specific extension left by a build from before the package was abi3 would be
    # imported ahead of the new `.abi3.so` (CPython tries the specific suffix first).
    rm -f "$crate"/python/safetensors/_safetensors_rust.cpython-*.so
    # Build the extension in release mode and install it (editable python sources) into the venv.
    # maturin hands every optional dependency to pip, which answers each with an "Ignoring
    # ...: markers ... don't match" line: 17 lines that say nothing; keep everything else.
    (cd "$crate" && VIRTUAL_ENV="$venv" PATH="$venv/bin:$PATH" "$venv/bin/maturin" develop --release --quiet) 2>&1 |
        { grep -v "^Ignoring [^ ]*: markers " || true; }
fi
echo "setup-env: ready: $venv"
