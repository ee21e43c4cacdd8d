"""``save_file`` of ~500 MB of torch tensors vs a plain write of the same bytes (issue 10 item 4).

Three writers, each to a fresh path on the same disk (``--dir``), page cache warm (the
tensors are in memory; nothing is flushed to disk during the timing):

* ``plain``: ``open(path, "wb").write(buf)`` of one bytes object holding the file's bytes;
* ``ours``: ``safetensors.torch.save_file`` (this checkout's package);
* ``ref``: the reference package's ``save_file``, run with ``PYTHONPATH=<--ref>`` in its own
  process (install it with ``pip install --target /tmp/refpkg safetensors==0.8.0 --no-deps``);
  skipped when ``--ref`` does not hold it.

Each worker process builds the same tensors (a few large, many small; F32 and BF16), then
times ``--saves`` saves, each to a new file that is deleted after its timing (wall clock, and
the process's CPU time, user + system, which a busy machine disturbs less). The driver runs
``--rounds`` rounds of one process per writer, the order rotated each round, and reports
medians and minimums over every save, and each writer / plain.

    .venv/bin/python bench/python/save_vs_write.py --ref /tmp/refpkg
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path


def tensors(total_mb: int) -> dict:
    import torch

    g = torch.Generator().manual_seed(0)
    out = {}
    large = total_mb * 9 // 10  # 90% in 4 large tensors, the rest in 200 small ones
    for i in range(4):
        out[f"large.{i}"] = torch.randn(large * (1 << 20) // 4 // 4 // 1024, 1024, generator=g)
    small = (total_mb - large) * (1 << 20) // 200 // 2
    for i in range(200):
        out[f"small.{i:03d}"] = torch.randn(small, generator=g).to(torch.bfloat16)
    return out


def worker(args: argparse.Namespace) -> None:
    import torch

    t = tensors(args.mb)
    if args.impl == "plain":
        from safetensors.torch import save

        buf = save(t)  # the very bytes save_file writes, in one bytes object

        def write(path: str) -> None:
            with open(path, "wb") as f:
                f.write(buf)
    else:
        import safetensors
        from safetensors.torch import save_file

        where = Path(safetensors.__file__).resolve()
        if (args.impl == "ref") != str(where).startswith(str(Path(args.ref).resolve())):
            raise SystemExit(f"{args.impl}: imported safetensors from {where}")

        def write(path: str) -> None:
            save_file(t, path)

    times, cpu = [], []
    for i in range(args.saves):
        path = os.path.join(args.dir, f"save-{args.impl}-{os.getpid()}-{i}.safetensors")
        t0, c0 = time.perf_counter(), time.process_time()
        write(path)
        times.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        size = os.path.getsize(path)
        os.unlink(path)
    print(json.dumps({"times": times, "cpu": cpu, "bytes": size, "torch": torch.__version__}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--mb", type=int, default=500, help="MB of tensors (default 500)")
    ap.add_argument("--rounds", type=int, default=5, help="processes per writer (default 5)")
    ap.add_argument("--saves", type=int, default=3, help="timed saves per process (default 3)")
    ap.add_argument("--dir", default="/tmp/st-bench-save", help="where the files go (same disk for all)")
    ap.add_argument("--ref", default="/tmp/refpkg", help="the reference package's --target folder")
    args = ap.parse_args()
    if args.impl:
        worker(args)
        return

    os.makedirs(args.dir, exist_ok=True)
    impls = ["plain", "ours"] + (["ref"] if (Path(args.ref) / "safetensors").is_dir() else [])
    results: dict = {i: [] for i in impls}
    cpu: dict = {i: [] for i in impls}
    size = 0
    for r in range(args.rounds):
        for impl in impls[r % len(impls) :] + impls[: r % len(impls)]:
            env = dict(os.environ)
            env.pop("PYTHONPATH", None)
            if impl == "ref":
                env["PYTHONPATH"] = args.ref
            cmd = [sys.executable, __file__, "--impl", impl, "--mb", str(args.mb), "--saves", str(args.saves)]
            cmd += ["--dir", args.dir, "--ref", args.ref]
            out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600, check=True).stdout
            report = json.loads(out.strip().splitlines()[-1])
            results[impl] += report["times"]
            cpu[impl] += report["cpu"]
            size = report["bytes"]
    os.rmdir(args.dir)
    plain = statistics.median(results["plain"])
    plain_cpu = statistics.median(cpu["plain"])
    print(f"file: {size / 1e6:.1f} MB; {args.rounds} processes x {args.saves} saves per writer; load {os.getloadavg()}")
    print("| writer | median ms | min ms | median / plain | CPU ms (median) | CPU / plain |")
    print("|---|---:|---:|---:|---:|---:|")
    for impl in impls:
        med, c = statistics.median(results[impl]), statistics.median(cpu[impl])
        print(
            f"| {impl} | {med * 1e3:.0f} | {min(results[impl]) * 1e3:.0f} | {med / plain:.3f} | "
            f"{c * 1e3:.0f} | {c / plain_cpu:.3f} |"
        )


if __name__ == "__main__":
    main()
