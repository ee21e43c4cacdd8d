#!/usr/bin/env python3
"""Two builds of our package side by side (before and after a change to the read path).

Each build is a folder holding a built ``safetensors`` package (``crates/safetensors-py/python``
of a checkout where ``maturin develop`` ran); each measurement is a fresh process with that
folder first on ``PYTHONPATH``, the builds alternating, their order rotating per repetition.
The files are written once, by the first build, and read warm (read once before the runs).
The report gives each case's median time per build and the ratio B/A.

    python bench/compare/compare_builds.py --a /tmp/before/crates/safetensors-py/python \\
        --b crates/safetensors-py/python --runs 7
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CASES = {
    "load_file(folder)": "the 4-shard checkpoint, mmap backend: views of warm mappings",
    "load_file(folder, backend='pread')": "the parallel reader into fresh tensors",
    "safe_open + get_tensor (one file)": "every tensor of the single file, one by one",
    "get_slice[:, ::2] (pread)": "strided columns of every matrix: runs read by the core",
    "load_for_rank (columns, 4 ranks)": "rank 1's column part of every matrix",
    "safe_open + keys (20 MB header)": "a header of 200k tensors",
}


def write_files(folder: Path) -> None:
    import torch

    from safetensors.torch import save_file, save_sharded

    torch.manual_seed(0)
    tensors = {f"layer.{i}.weight": torch.randn(2048, 2048).to(torch.bfloat16) for i in range(96)}
    save_sharded(tensors, folder / "sharded", max_shard_size="200MB")
    save_file({k: v for k, v in list(tensors.items())[:48]}, folder / "single.safetensors")
    small = {f"t.{i}": torch.zeros(1) for i in range(200_000)}
    save_file(small, folder / "header.safetensors")


def run_case(case: str, folder: Path) -> float:
    import torch

    from safetensors import safe_open
    from safetensors.torch import load_file, load_for_rank

    sharded, single = folder / "sharded", folder / "single.safetensors"
    start = time.perf_counter()
    if case == "load_file(folder)":
        out = load_file(sharded)
        total = sum(int(t[0, 0].float()) for t in out.values())
    elif case == "load_file(folder, backend='pread')":
        out = load_file(sharded, backend="pread")
        total = len(out)
    elif case == "safe_open + get_tensor (one file)":
        with safe_open(single, framework="pt") as f:
            total = sum(f.get_tensor(k).shape[0] for k in f.keys())
    elif case == "get_slice[:, ::2] (pread)":
        with safe_open(single, framework="pt", backend="pread") as f:
            total = sum(f.get_slice(k)[:, ::2].shape[1] for k in f.keys())
    elif case == "load_for_rank (columns, 4 ranks)":
        out = load_for_rank(sharded, {"*": 1}, rank=1, world_size=4)
        total = len(out)
    elif case == "safe_open + keys (20 MB header)":
        with safe_open(folder / "header.safetensors", framework="pt") as f:
            total = len(f.keys())
    else:
        raise ValueError(case)
    elapsed = time.perf_counter() - start
    assert total >= 0 and torch is not None
    return elapsed


def worker(args: argparse.Namespace) -> None:
    if args.write:
        write_files(Path(args.folder))
        return
    print(json.dumps({"seconds": run_case(args.case, Path(args.folder))}))


def measure(python: str, build: str, case: str, folder: Path) -> float:
    env = dict(os.environ, PYTHONPATH=build)
    out = subprocess.run(
        [python, __file__, "--worker", "--case", case, "--folder", str(folder)],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return float(json.loads(out.stdout.strip().splitlines()[-1])["seconds"])


def warm(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            with open(path, "rb") as f:
                while f.read(1 << 24):
                    pass


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--a", help="build A (before): a folder holding the safetensors package")
    parser.add_argument("--b", help="build B (after)")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cases", help="only the cases whose name contains this text")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--write", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return
    if not (args.a and args.b):
        parser.error("--a and --b are required")
    builds = {"A": str(Path(args.a).resolve()), "B": str(Path(args.b).resolve())}
    with tempfile.TemporaryDirectory(prefix="compare-builds-") as tmp:
        folder = Path(tmp)
        env = dict(os.environ, PYTHONPATH=builds["A"])
        subprocess.run([args.python, __file__, "--worker", "--write", "--folder", str(folder)], env=env, check=True)
        warm(folder)
        cases = [c for c in CASES if not args.cases or args.cases in c]
        times: dict = {case: {"A": [], "B": []} for case in cases}
        for run in range(args.runs):
            for case in cases:
                order = ["A", "B"] if run % 2 == 0 else ["B", "A"]
                for name in order:
                    times[case][name].append(measure(args.python, builds[name], case, folder))
    print("| case | A (before) | B (after) | B/A |\n|---|---|---|---|")
    for case, per in times.items():
        a, b = statistics.median(per["A"]), statistics.median(per["B"])
        print(f"| {case} | {a * 1000:.1f} ms | {b * 1000:.1f} ms | {b / a:.2f} |")
    print(f"\nmedians of {args.runs} fresh processes per build and case; A = {builds['A']}, B = {builds['B']}")


if __name__ == "__main__":
    main()
