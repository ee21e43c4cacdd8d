"""Writing a ~2 GB checkpoint tensor by tensor (issue 23): ``open_writer`` against ``save_file``
of the same tensors (peak memory) and against a plain write of the same bytes (time).

Every tensor is produced just before it is needed (``torch.full``: memory speed, so the
figures are the writers', not the producer's). Four cases, each in a fresh process:

* ``plain``: produce a tensor, ``f.write`` its bytes, drop it; tensor after tensor into one
  file (no header): the least any writer of these bytes can cost;
* ``stream``: ``safetensors.torch.open_writer`` with the specs, then produce, ``write``,
  drop, tensor after tensor; the file renamed into place at the end;
* ``stream_xxh3``: the same with ``checksum="xxh3-64"``;
* ``save_file``: produce every tensor into a dict, then ``save_file`` it (the dict is the
  whole checkpoint in memory, which is what the streaming writer avoids).

Peak memory is the process's VmHWM less its VmRSS just before the case starts (torch
imported, nothing produced); time is wall clock from the first tensor produced to the file
closed (renamed, for the safetensors writers), and the process's CPU time (user + system,
which a busy machine disturbs less); page cache warm, no fsync (as ``save_file`` and the
plain write); ``--dir /dev/shm`` takes the disk's writeback out of the figures. The driver
runs ``--rounds`` rounds of one process a case, the order rotated each round, and reports
medians, and each case's time / plain.

    .venv/bin/python bench/writer/bench_writer.py [--gb 2] [--rounds 3] [--dir /tmp]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

CASES = ["plain", "stream", "stream_xxh3", "save_file"]
LARGE = (4096, 4096)  # F32: 64 MiB each
SMALL = (4096, 16)  # BF16: 128 KiB each
SMALL_COUNT = 256


def specs(gb: float) -> dict:
    """The checkpoint: many 64 MiB F32 matrices and 256 small BF16 ones, ~``gb`` GB in all."""
    import torch

    large_bytes = LARGE[0] * LARGE[1] * 4
    small_total = SMALL_COUNT * SMALL[0] * SMALL[1] * 2
    count = max(1, round((gb * 1e9 - small_total) / large_bytes))
    out = {f"layers.{i:02d}.weight": (torch.float32, LARGE) for i in range(count)}
    out.update({f"norms.{i:03d}": (torch.bfloat16, SMALL) for i in range(SMALL_COUNT)})
    return out


def produce(name: str, dtype, shape):
    """Tensor ``name``, made now (a value of its own, at memory speed)."""
    import torch

    return torch.full(shape, float(sum(name.encode()) % 97), dtype=dtype)


def status(field: str) -> int:
    """A /proc/self/status field in bytes."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise KeyError(field)


def worker(case: str, gb: float, folder: str) -> None:
    import torch

    from safetensors.torch import open_writer, save_file

    plan = specs(gb)
    path = os.path.join(folder, f"bench-writer-{case}-{os.getpid()}.safetensors")
    base = status("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    if case == "plain":
        with open(path, "wb") as f:
            for name, (dtype, shape) in plan.items():
                t = produce(name, dtype, shape)
                f.write(memoryview(t.view(torch.uint8).numpy()))
                del t
    elif case in ("stream", "stream_xxh3"):
        checksum = "xxh3-64" if case == "stream_xxh3" else None
        with open_writer(path, plan, checksum=checksum) as w:
            for name, (dtype, shape) in plan.items():
                t = produce(name, dtype, shape)
                w.write(name, t)
                del t
    elif case == "save_file":
        tensors = {name: produce(name, dtype, shape) for name, (dtype, shape) in plan.items()}
        save_file(tensors, path)
        del tensors
    else:
        raise SystemExit(f"unknown case {case}")
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    peak = status("VmHWM") - base
    size = os.path.getsize(path)
    os.unlink(path)
    print(json.dumps({"case": case, "seconds": elapsed, "cpu": cpu, "peak": peak, "bytes": size}))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gb", type=float, default=2.0, help="checkpoint size in GB (default 2)")
    p.add_argument("--rounds", type=int, default=3, help="processes per case (default 3)")
    p.add_argument("--dir", default="/tmp", help="folder written to (default /tmp)")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        worker(args.worker, args.gb, args.dir)
        return

    results: dict = {c: [] for c in CASES}
    for r in range(args.rounds):
        order = CASES[r % len(CASES) :] + CASES[: r % len(CASES)]
        for case in order:
            cmd = [sys.executable, __file__, "--worker", case, "--gb", str(args.gb), "--dir", args.dir]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            row = json.loads(out.strip().splitlines()[-1])
            results[case].append(row)
            print(
                f"round {r + 1} {case:12s} {row['seconds']:7.3f} s  cpu {row['cpu']:7.3f} s  "
                f"peak +{row['peak'] / 2**20:7.0f} MiB",
                flush=True,
            )

    size = results["stream"][0]["bytes"]
    plain = statistics.median(r["seconds"] for r in results["plain"])
    plain_cpu = statistics.median(r["cpu"] for r in results["plain"])
    print(f"\n{size / 1e9:.2f} GB in {args.dir}, {len(specs(args.gb))} tensors, {args.rounds} processes a case")
    print("| case | median s | min s | time / plain | CPU s (median) | CPU / plain | peak memory above start |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for case in CASES:
        secs = [r["seconds"] for r in results[case]]
        med = statistics.median(secs)
        cpu = statistics.median(r["cpu"] for r in results[case])
        peak = max(r["peak"] for r in results[case])
        print(
            f"| {case} | {med:.3f} | {min(secs):.3f} | {med / plain:.3f} | {cpu:.3f} | {cpu / plain_cpu:.3f} "
            f"| {peak / 2**20:,.0f} MiB |"
        )


if __name__ == "__main__":
    main()
