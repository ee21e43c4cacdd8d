"""Checksums (issue 23): what recording digests costs a save, what checking them costs a
load, and how fast ``safetensors verify`` reads a checkpoint.

A ~1 GB checkpoint of float32 tensors (64 x 16 MiB, random bytes) is written under ``--dir``.
Each case runs in a fresh process, alone, on a warm page cache (the file read once before),
and, with ``--cold`` (root: drops the page cache), once more cold for ``verify``:

- ``save_file`` with no checksum, ``checksum="xxh3-64"`` and ``checksum="sha256"``;
- ``load_file`` (numpy, every page touched) with ``verify=False`` and ``verify=True`` on a file
  with each kind of digest;
- ``safetensors verify FILE`` (the release CLI) on each file: GB/s of tensor data.

    make bench-checksum                       # the full run
    .venv/bin/python bench/checksum/bench_checksum.py --runs 1 --tensors 8
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CLI = ROOT / "target" / "release" / "safetensors"
TENSOR_BYTES = 16 << 20

SAVE = (
    """
import sys, time, numpy as np
from safetensors.numpy import save_file
n, out, checksum = int(sys.argv[1]), sys.argv[2], sys.argv[3]
rng = np.random.default_rng(0)
tensors = {f"layer.{i}.weight": rng.integers(0, 255, %d, dtype=np.uint8).view(np.float32) for i in range(n)}
t = time.perf_counter()
save_file(tensors, out, checksum=None if checksum == "none" else checksum)
print(time.perf_counter() - t)
"""
    % TENSOR_BYTES
)

LOAD = """
import sys, time, numpy as np
from safetensors.numpy import load_file
path, verify = sys.argv[1], sys.argv[2] == "1"
t = time.perf_counter()
out = load_file(path, verify=verify)
touched = sum(int(a.view(np.uint8)[::4096].sum()) for a in out.values())
print(time.perf_counter() - t)
"""


def timed(code: str, *args: str) -> float:
    out = subprocess.run([sys.executable, "-c", code, *args], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def warm(path: Path) -> None:
    with open(path, "rb") as f:
        while f.read(64 << 20):
            pass


def drop_cache() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def verify_seconds(path: Path) -> float:
    t = time.perf_counter()
    done = subprocess.run([str(CLI), "verify", str(path)], capture_output=True, text=True)
    elapsed = time.perf_counter() - t
    if done.returncode != 0:
        raise SystemExit(f"verify failed: {done.stdout}{done.stderr}")
    return elapsed


def median(f, runs: int) -> float:
    return statistics.median(f() for _ in range(runs))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/bench-checksum"))
    ap.add_argument("--tensors", type=int, default=64, help="16 MiB tensors in the checkpoint")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--cold", action="store_true", help="also verify with the page cache dropped (root)")
    args = ap.parse_args()
    if not CLI.exists():
        raise SystemExit(f"{CLI} is missing: cargo build --release -p safetensors-cli")
    args.dir.mkdir(parents=True, exist_ok=True)
    gb = args.tensors * TENSOR_BYTES / 1e9
    print(f"{args.tensors} tensors, {gb:.2f} GB of float32; median of {args.runs} fresh processes\n")

    files = {}
    print("| save_file | seconds | GB/s | vs no checksum |")
    print("| --- | --- | --- | --- |")
    base = None
    for checksum in ["none", "xxh3-64", "sha256"]:
        path = args.dir / f"{checksum}.safetensors"
        files[checksum] = path
        seconds = median(lambda: timed(SAVE, str(args.tensors), str(path), checksum), args.runs)
        base = base or seconds
        print(f"| checksum={checksum} | {seconds:.3f} | {gb / seconds:.2f} | {seconds / base:.2f}x |")

    print("\n| load_file (numpy, warm, pages touched) | seconds | vs verify=False |")
    print("| --- | --- | --- |")
    for checksum in ["xxh3-64", "sha256"]:
        path = files[checksum]
        warm(path)
        plain = median(lambda: timed(LOAD, str(path), "0"), args.runs)
        checked = median(lambda: timed(LOAD, str(path), "1"), args.runs)
        print(f"| {checksum} file, verify=False | {plain:.3f} | 1.00x |")
        print(f"| {checksum} file, verify=True | {checked:.3f} | {checked / plain:.2f}x |")

    print("\n| safetensors verify | cache | seconds | GB/s |")
    print("| --- | --- | --- | --- |")
    for checksum in ["xxh3-64", "sha256"]:
        path = files[checksum]
        warm(path)
        seconds = median(lambda: verify_seconds(path), args.runs)
        print(f"| {checksum} | warm | {seconds:.3f} | {gb / seconds:.2f} |")
        if args.cold:

            def cold() -> float:
                drop_cache()
                return verify_seconds(path)

            seconds = median(cold, args.runs)
            print(f"| {checksum} | cold | {seconds:.3f} | {gb / seconds:.2f} |")
    for path in files.values():
        path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
