#!/usr/bin/env bash
# What a user of the Python package does, each time in a fresh virtual environment:
#   1. installs the built wheel (`make wheel`) with the [numpy] extra, imports it, saves and
#      loads a file: with $PYTHON, and with every other CPython 3.9+ found on PATH (one abi3
#      wheel serves them all);
#   2. runs `pip install ./crates/safetensors-py[numpy]` (a source build through maturin) and
#      does the same round trip;
# and checks the wheel's tags (abi3, manylinux2014) and that the sdist carries the core crate.
#
#   crates/safetensors-py/scripts/test-packaging.sh target/wheels
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
crate="$(cd "$here/.." && pwd)"
dist="$(cd "${1:?usage: test-packaging.sh DIST_DIR}" && pwd)"
python="${PYTHON:-python3.11}"
export PIP_DISABLE_PIP_VERSION_CHECK=1

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

fail() {
    echo "test-packaging: FAIL: $*" >&2
    exit 1
}

# --- the files ----------------------------------------------------------------------------
shopt -s nullglob
wheels=("$dist"/safetensors-*.whl)
sdists=("$dist"/safetensors-*.tar.gz)
[ "${#wheels[@]}" -eq 1 ] || fail "expected one wheel in $dist, found ${#wheels[@]}"
[ "${#sdists[@]}" -eq 1 ] || fail "expected one sdist in $dist, found ${#sdists[@]}"
wheel="${wheels[0]}"
sdist="${sdists[0]}"
name="$(basename "$wheel")"
case "$name" in
*-cp39-abi3-*manylinux_2_17_x86_64*.whl | *-cp39-abi3-*manylinux2014_x86_64*.whl) ;;
*) fail "$name: expected an abi3 wheel for CPython 3.9+ tagged manylinux2014 (glibc 2.17)" ;;
esac
"$python" -c 'import sys, zipfile; print("\n".join(zipfile.ZipFile(sys.argv[1]).namelist()))' "$wheel" |
    grep -x "safetensors/_safetensors_rust.abi3.so" >/dev/null ||
    fail "$name: the extension is not built for the stable ABI (no _safetensors_rust.abi3.so)"
tar -tzf "$sdist" | grep "crates/safetensors/src/lib.rs" >/dev/null ||
    fail "$(basename "$sdist"): the core crate's sources are missing"
echo "test-packaging: $name, $(basename "$sdist")"

# --- a save/load round trip, run outside the checkout so only the installed package is seen --
cat >"$work/round_trip.py" <<'EOF'
import pathlib
import sys

import numpy as np

import safetensors
from safetensors import deserialize, safe_open, serialize
from safetensors.numpy import load_file, save_file

ext = pathlib.Path(safetensors._safetensors_rust.__file__)
assert pathlib.Path(sys.prefix) in ext.parents, f"imported from {ext}, not the venv"
want = {"weight": np.arange(12, dtype=np.float32).reshape(3, 4), "step": np.array(7, dtype=np.int64)}
save_file(want, "model.safetensors", metadata={"format": "np"})
got = load_file("model.safetensors")
assert sorted(got) == ["step", "weight"]
assert all(np.array_equal(got[k], want[k]) and got[k].dtype == want[k].dtype for k in want)
with safe_open("model.safetensors", framework="np") as f:
    assert f.metadata() == {"format": "np"}
    assert np.array_equal(f.get_slice("weight")[1:, 2:], want["weight"][1:, 2:])
data = serialize({"x": {"dtype": "uint8", "shape": [3], "data": b"abc"}})
assert deserialize(data)[0][1]["data"] == bytearray(b"abc")
print(f"round trip ok: safetensors {safetensors.__version__} on Python {sys.version.split()[0]} ({ext.name})")
EOF

round_trip() { # venv-dir
    (cd "$work" && "$1/bin/python" round_trip.py)
}

# --- 1. the wheel, with every CPython found ------------------------------------------------
pythons=("$python")
for extra in python3.9 python3.10 python3.12 python3.13 python3.14; do
    # Run it rather than look it up: a pyenv shim exists even for versions it will not run.
    [ "$extra" != "$python" ] && "$extra" -c "" >/dev/null 2>&1 && pythons+=("$extra")
done
for py in "${pythons[@]}"; do
    venv="$work/wheel-$py"
    "$py" -m venv "$venv"
    "$venv/bin/python" -m pip install --quiet "$wheel[numpy]"
    round_trip "$venv"
done

# --- 2. from source, as the README says ------------------------------------------------------
venv="$work/source"
"$python" -m venv "$venv"
"$venv/bin/python" -m pip install --quiet "$crate[numpy]"
round_trip "$venv"
echo "test-packaging: ok (wheel on ${pythons[*]}; source install on $python)"
