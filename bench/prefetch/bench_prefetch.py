"""Prefetch plans per rank (issue 19): ``safe_open.prefetch`` of a tensor-parallel plan against
``load_for_rank``, a ``get_slice`` loop (ours and the reference 0.8's) and a whole load.

The checkpoint is ``make bench-load``'s: llama-like, bf16, 18 layers, 2.1 GB in 4 shards
(written under ``--dir`` if missing). The plan is what the reference's prefetch can express:
the big matrices (embeddings, q/k/v/o, gate/up/down, LM head) split along their first
dimension across ``--world-sizes`` ranks by ``torch.chunk``'s rule, the norms replicated.
Each rank runs as a fresh process by itself (rank and world size given, as on its own
machine), with the page cache dropped before it (cold: needs root) or the files read once
before it (warm), and reports its time, the bytes the kernel fetched from storage for it
(``/proc/self/io`` ``read_bytes``) and its peak RSS (``VmHWM``). Implementations:

- ``prefetch``: ``safe_open(folder, "pt", backend="pread").prefetch(plan, memory_budget=...)``,
  every tensor taken as it lands (``dict(loader)``);
- ``load_for_rank``: ``safetensors.torch.load_for_rank(folder, {pattern: 0 | None})``;
- ``get_slice``: ``safe_open(folder, "pt", backend="pread")`` and ``get_slice(name)[rows]``
  for each tensor in file order (what code written for 0.8 does), ours, and
  ``get_slice_mmap`` the same with the default mmap backend (row slices are views of the
  mapping, as the reference's are);
- ``ref_get_slice``: the same code on the reference 0.8.0 (installed with ``pip install
  --target`` into ``--ref``, only on that worker's ``PYTHONPATH``), one ``safe_open`` per shard
  as 0.8 takes no folders;

Every implementation's tensors are touched inside the timing (one byte a page): a view of a
mapping is only loaded once its pages are.
- ``whole``: ``load_file(folder, backend="pread")``, the whole checkpoint in one process.

    make bench-prefetch                                             # the full run
    .venv/bin/python bench/prefetch/bench_prefetch.py --runs 1 --world-sizes 2
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench" / "load"))
SPLIT = [
    "*.embed_tokens.weight",
    "lm_head.weight",
    "*.self_attn.[qkvo]_proj.weight",
    "*.mlp.*_proj.weight",
]
IMPLS = ["prefetch", "load_for_rank", "get_slice", "get_slice_mmap", "ref_get_slice"]
LABELS = {
    "prefetch": "ours: `safe_open.prefetch(plan)`",
    "load_for_rank": "ours: `load_for_rank` (same engine)",
    "get_slice": 'ours: `get_slice` loop (`backend="pread"`: copies)',
    "get_slice_mmap": 'ours: `get_slice` loop (`backend="mmap"`: views of the mapping)',
    "ref_get_slice": "reference 0.8.0: `get_slice` loop (views of its mapping)",
    "whole": "ours: `load_file` (whole checkpoint)",
}


def proc_io() -> dict:
    out = {}
    for line in Path("/proc/self/io").read_text().splitlines():
        key, value = line.split(":")
        out[key] = int(value)
    return out


def peak_rss_mib() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def shards(folder: Path) -> list:
    return sorted(p for p in folder.iterdir() if p.suffix == ".safetensors")


def rows(shape: list, world_size: int, rank: int):
    """``torch.chunk``'s part of the first dimension: the slice of rows of ``rank``."""
    n = shape[0]
    chunk = -(-n // world_size)
    start = min(rank * chunk, n)
    return slice(start, min(start + chunk, n))


def plan_of(names_shapes: list, world_size: int, rank: int) -> dict:
    return {
        name: rows(shape, world_size, rank) if any(fnmatch.fnmatchcase(name, p) for p in SPLIT) else None
        for name, shape in names_shapes
    }


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    folder, ws, rank = Path(args.location), args.world_size, args.rank
    from safetensors import safe_open

    if args.impl == "ref_get_slice":
        # 0.8 opens one file at a time: every shard, its tensors in file order.
        before, t0 = proc_io(), time.perf_counter()
        out = {}
        for path in shards(folder):
            with safe_open(str(path), framework="pt") as f:
                for name in f.offset_keys() if hasattr(f, "offset_keys") else f.keys():
                    sl = f.get_slice(name)
                    index = plan_of([(name, sl.get_shape())], ws, rank)[name]
                    out[name] = sl[index] if index is not None else f.get_tensor(name)
    elif args.impl == "whole":
        from safetensors.torch import load_file

        before, t0 = proc_io(), time.perf_counter()
        out = load_file(folder, backend="pread")
    elif args.impl == "load_for_rank":
        from safetensors.torch import load_for_rank

        before, t0 = proc_io(), time.perf_counter()
        out = load_for_rank(folder, dict.fromkeys(SPLIT, 0), rank=rank, world_size=ws)
    else:
        before, t0 = proc_io(), time.perf_counter()
        backend = "mmap" if args.impl == "get_slice_mmap" else "pread"
        with safe_open(folder, framework="pt", backend=backend) as f:
            names = f.offset_keys()
            plan = plan_of([(n, f.get_tensor_meta(n).shape) for n in names], ws, rank)
            if args.impl == "prefetch":
                with f.prefetch(plan, memory_budget=args.budget_mib << 20) as loader:
                    out = dict(loader)
            else:
                out = {n: f.get_slice(n)[i] if i is not None else f.get_tensor(n) for n, i in plan.items()}
    # Every implementation's tensors are touched (a byte a page): a lazy view is not a load.
    touched = sum(int(t.reshape(-1).view(torch.uint8)[::4096].sum()) for t in out.values() if t.nelement())
    elapsed = time.perf_counter() - t0
    after = proc_io()
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "read_bytes": after["read_bytes"] - before["read_bytes"],
                "rchar": after["rchar"] - before["rchar"],
                "tensor_bytes": sum(t.nelement() * t.element_size() for t in out.values()),
                "peak_rss_mib": peak_rss_mib(),
                "touched": touched,
            }
        )
    )


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def warm(folder: Path) -> None:
    for f in sorted(folder.iterdir()):
        with open(f, "rb") as fh:
            while fh.read(16 << 20):
                pass


def launch(args: argparse.Namespace, impl: str, world_size: int, rank: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if impl == "ref_get_slice":
        env["PYTHONPATH"] = args.ref
    cmd = [sys.executable, __file__, "--worker", "--impl", impl, "--location", str(args.folder)]
    cmd += ["--rank", str(rank), "--world-size", str(world_size), "--budget-mib", str(args.budget_mib)]
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900, cwd="/tmp")
    if done.returncode != 0:
        raise RuntimeError(f"{impl} rank {rank}/{world_size} failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--impl", help=argparse.SUPPRESS)
    ap.add_argument("--location", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world-size", type=int, default=2, help=argparse.SUPPRESS)
    ap.add_argument("--world-sizes", default="2,4", help="rank counts (default 2,4)")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/st-bench-prefetch"), help="the checkpoint")
    ap.add_argument("--layers", type=int, default=18, help="llama-like layers if written (18: 2.1 GB)")
    ap.add_argument("--runs", type=int, default=1, help="runs per cell (medians)")
    ap.add_argument("--budget-mib", type=int, default=256, help="prefetch's memory_budget (MiB)")
    ap.add_argument("--ref", default="/tmp/refpkg", help="where the reference 0.8.0 is pip-installed")
    ap.add_argument("--modes", default="cold,warm")
    ap.add_argument("--out", help="also write the Markdown report here")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return
    if not (Path(args.ref) / "safetensors").is_dir():
        subprocess.run(
            [sys.executable, "-m", "pip", "install", "-q", "--target", args.ref, "safetensors==0.8.0", "--no-deps"],
            check=True,
        )
    if not args.folder.is_dir() or not shards(args.folder):
        from bench_load import make_checkpoint

        args.folder.mkdir(parents=True, exist_ok=True)
        make_checkpoint(args.folder, args.layers)
    file_bytes = sum(p.stat().st_size for p in args.folder.iterdir())
    sizes = [int(x) for x in args.world_sizes.split(",")]
    caches = args.modes.split(",")
    results: dict = {}
    cells = [(impl, ws) for ws in sizes for impl in IMPLS] + [("whole", 1)]
    for run in range(args.runs):
        order = cells[run % len(cells) :] + cells[: run % len(cells)]
        for cache in caches:
            for impl, ws in order:
                for rank in range(ws):
                    drop_caches() if cache == "cold" else warm(args.folder)
                    report = launch(args, impl, ws, rank)
                    results.setdefault((impl, ws, cache, rank), []).append(report)
                    print(f"run {run} {cache} {impl} {rank}/{ws}: {report}", file=sys.stderr)
    text = render(args, results, cells, caches, file_bytes)
    print(text)
    if args.out:
        Path(args.out).write_text(text)


def render(args: argparse.Namespace, results: dict, cells: list, caches: list, file_bytes: int) -> str:
    import torch

    lines = [
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average at end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- machine: {os.cpu_count()} logical cores; Python {sys.version.split()[0]}, torch {torch.__version__}",
        f"- checkpoint: `make bench-load`'s, {mb(file_bytes)} MB in {len(shards(args.folder))} shards; "
        f"prefetch memory_budget {args.budget_mib} MiB; medians of {args.runs} run(s), each rank a fresh "
        "process by itself; cold = page cache dropped before it, warm = files read once before it",
        "",
        "| implementation | ranks | cache | time s (slowest rank) | read from storage MB per rank (max) "
        "| tensor bytes MB per rank (max) | share of checkpoint read (max) | peak RSS MiB (max) |",
        "|---|---:|---|---:|---:|---:|---:|---:|",
    ]
    for impl, ws in cells:
        for cache in caches:
            reps = [results[(impl, ws, cache, r)] for r in range(ws)]

            def med(key: str, rank: int) -> float:
                return statistics.median(rep[key] for rep in reps[rank])

            t = max(med("seconds", r) for r in range(ws))
            read = max(med("read_bytes", r) for r in range(ws))
            share = f"{read / file_bytes:.0%}" if cache == "cold" else "n/a"
            lines.append(
                f"| {LABELS[impl]} | {ws} | {cache} | {t:.2f} | {mb(read)} | "
                f"{mb(max(med('tensor_bytes', r) for r in range(ws)))} | {share} | "
                f"{max(med('peak_rss_mib', r) for r in range(ws)):,.0f} |"
            )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
