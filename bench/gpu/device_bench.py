#!/usr/bin/env python3
"""Loading onto a GPU at the link's limit: ours vs the reference (vs fastsafetensors and
runai-model-streamer when importable), next to the pinned host-to-device bandwidth.

Not a test (CI never runs it): ``bench/gpu/device_check.sh`` runs it on a machine with a GPU
(see ``bench/gpu/README.md``). The driver writes a llama-like bf16 checkpoint with our
``save_sharded``, reads its files once (warm page cache), then runs every measurement in a
fresh process, implementations interleaved, ``--runs`` times each, and reports medians.

- ``pinned``: one pinned host tensor of ``--pinned-mib`` copied with ``.to(device,
  non_blocking=True)``, timed with CUDA events (the link's limit); ``pageable`` the same from
  ordinary memory.
- ours: ``load_file(folder, device)``, ``safe_open(folder, "pt", device).get_tensors()``,
  ``load_into(state_dict, folder)`` into tensors allocated on the device beforehand, and
  ``load_for_rank(folder, {"*": 0}, rank=0, world_size=1, device)`` (every byte, mode read).
- reference: ``load_file(shard, device)`` per shard (its ``load_file`` takes one file).
- fastsafetensors (``fastsafe_open(files, device, nogds=True)``, ``get_tensor`` + ``clone``)
  and runai-model-streamer (``stream_files`` + ``.to(device)``) when importable.

Each load's time ends with ``torch.cuda.synchronize()``. Every worker prints the module file
it imported and a checksum of the loaded bytes (computed after timing); the report says
whether all checksums agree.

``--device cpu`` (the dry run) exercises the same code paths on the CPU: ours with the
staging ring's CPU copier in place of the CUDA one (as the tests do), on a small checkpoint.
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

# The same llama-like checkpoint as `make bench-load`.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "load"))
from bench_load import llama_like  # noqa: E402

IMPLS = [
    "pinned",
    "pageable",
    "ours_load_file",
    "ours_get_tensors",
    "ours_load_into",
    "ours_load_for_rank",
    "ours_prefetch",
    "ref",
    "ref09_prefetch",
]
PEERS = ["fastsafe", "runai"]
LABELS = {
    "pinned": "pinned host-to-device copy (`.to(device, non_blocking=True)`)",
    "pageable": "pageable host-to-device copy (`.to(device)`)",
    "ours_load_file": "ours: `load_file(folder, device)`",
    "ours_get_tensors": "ours: `safe_open(folder, 'pt', device).get_tensors()`",
    "ours_load_into": "ours: `load_into(state_dict on device, folder)`",
    "ours_load_for_rank": "ours: `load_for_rank(folder, {'*': 0}, rank=0, world_size=1, device)`",
    "ours_prefetch": "ours: `safe_open(folder, 'pt').prefetch(device=device)`, `dict(loader)`",
    "ref": "reference: `load_file(shard, device)` per shard",
    "ref09_prefetch": "reference 0.9.0rc1: `safe_open(shard, 'pt').prefetch(device=device)` per shard",
    "fastsafe": "fastsafetensors: `fastsafe_open(files, device, nogds=True)` + `get_tensor().clone()`",
    "runai": "runai-model-streamer: `stream_files` + `.to(device)`",
}


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize(device)


def checksum(tensors: dict) -> int:
    """Every byte counts: per tensor (in name order) the sum of its 16-bit words, weighted by
    the tensor's rank in that order, modulo 2**61 - 1."""
    import torch

    total = 0
    for i, name in enumerate(sorted(tensors)):
        t = tensors[name].detach().reshape(-1).view(torch.int16)
        total = (total + (i + 1) * int(t.to(torch.int64).sum())) % (2**61 - 1)
    return total


# --- workers (fresh processes) ---------------------------------------------------------------


def copy_worker(impl: str, device: str, mib: int) -> dict:
    import torch

    if not device.startswith("cuda"):
        return {"skipped": "no CUDA device: the host-to-device link is not measured on the CPU"}
    host = torch.empty(mib << 20, dtype=torch.uint8, pin_memory=impl == "pinned")
    host.fill_(1)
    times = []
    for _ in range(6):
        start, stop = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        dst = host.to(device, non_blocking=impl == "pinned")
        stop.record()
        stop.synchronize()
        times.append(start.elapsed_time(stop) / 1000)
        del dst
    seconds = statistics.median(times[1:])  # the first copy warms the path up
    return {"seconds": seconds, "bytes": host.nbytes, "module": torch.__file__, "checksum": None}


def load_worker(impl: str, folder: Path, device: str) -> dict:
    import torch

    files = sorted(str(p) for p in folder.glob("*.safetensors"))
    state = None
    real = device  # where the bytes really go (synchronized before and after timing)
    if impl.startswith("ours"):
        import safetensors
        from safetensors import safe_open
        from safetensors import torch as st

        where = safetensors.__file__
        target = device
        if not device.startswith("cuda"):
            # The dry run: the same staging path, the CPU copier standing in for the GPU's
            # (load_into fills CPU tensors there, with the CPU reader: no ring).
            from safetensors import _torch_staging

            _torch_staging.device_copier = lambda dev: _torch_staging.CpuCopier()
            device = "cuda:0"
        if impl == "ours_load_into":
            with safe_open(folder, "pt") as f:
                shapes = {n: f.get_slice(n).get_shape() for n in f.keys()}
            # Allocated and touched beforehand, as a model's parameters are.
            state = {n: torch.zeros(s, dtype=torch.bfloat16, device=target) for n, s in shapes.items()}
    elif impl == "ref":
        import safetensors
        from safetensors.torch import load_file

        where = safetensors.__file__
    elif impl == "ref09_prefetch":
        if not device.startswith("cuda"):
            return {"skipped": "the reference's prefetch loads to CUDA devices only"}
        import safetensors
        from safetensors import safe_open

        where = safetensors.__file__
        if not hasattr(safe_open, "prefetch"):
            return {"skipped": f"{where} has no prefetch (not the reference 0.9.0rc1: carry its wheel)"}
    elif impl == "fastsafe":
        try:
            import fastsafetensors
            from fastsafetensors import fastsafe_open
        except ImportError as e:
            return {"skipped": f"not importable ({e})"}
        where = fastsafetensors.__file__
    else:
        try:
            import runai_model_streamer
            from runai_model_streamer import SafetensorsStreamer
        except ImportError as e:
            return {"skipped": f"not importable ({e})"}
        where = runai_model_streamer.__file__
    sync(real)
    t0 = time.perf_counter()
    if impl == "ours_load_file":
        out = st.load_file(folder, device=device)
    elif impl == "ours_get_tensors":
        with safe_open(folder, "pt", device=device) as f:
            out = f.get_tensors()
    elif impl == "ours_load_into":
        st.load_into(state, folder)
        out = state
    elif impl == "ours_load_for_rank":
        out = st.load_for_rank(folder, {"*": 0}, rank=0, world_size=1, device=device)
    elif impl == "ours_prefetch":
        with safe_open(folder, "pt") as f, f.prefetch(device=device) as loader:
            out = dict(loader)
    elif impl == "ref":
        out = {}
        for path in files:
            out.update(load_file(path, device=device))
    elif impl == "ref09_prefetch":
        out = {}
        for path in files:
            with safe_open(path, "pt") as f, f.prefetch(device=device) as loader:
                out.update(dict(loader))
    elif impl == "fastsafe":
        out = {}
        with fastsafe_open(filenames=files, nogds=True, device=device) as f:
            for k in f.keys():
                out[k] = f.get_tensor(k).clone()  # the handle's buffers go with it
    else:
        out = {}
        with SafetensorsStreamer() as streamer:
            streamer.stream_files(files)
            for k, t in streamer.get_tensors():
                out[k] = t.to(device)
    sync(real)
    seconds = time.perf_counter() - t0
    nbytes = sum(t.nbytes for t in out.values())
    devices = sorted({str(t.device) for t in out.values()})
    return {"seconds": seconds, "bytes": nbytes, "module": where, "checksum": checksum(out), "devices": devices}


def worker(args: argparse.Namespace) -> None:
    try:
        if args.impl in ("pinned", "pageable"):
            result = copy_worker(args.impl, args.device, args.pinned_mib)
        else:
            result = load_worker(args.impl, Path(args.folder), args.device)
    except Exception as e:  # reported, not fatal: the other measurements still run
        result = {"error": f"{type(e).__name__}: {e}"}
    print("RESULT " + json.dumps(result), flush=True)


def make_checkpoint(args: argparse.Namespace) -> None:
    import torch

    from safetensors.torch import save_sharded

    torch.manual_seed(0)
    shapes = list(llama_like(args.layers, args.hidden, args.inter, args.vocab))
    tensors = {n: torch.empty(s, dtype=torch.bfloat16).uniform_(-1, 1) for n, s in shapes}
    total = sum(t.nbytes for t in tensors.values())
    save_sharded(tensors, args.folder, max_shard_size=-(-total // 4) + 1)
    print(f"checkpoint: {total / 1e9:.3f} GB of bf16, {len(tensors)} tensors in {args.folder}", flush=True)


# --- the driver --------------------------------------------------------------------------------


def env_for(impl: str, args: argparse.Namespace) -> dict:
    """Ours: our package first on the path. The reference: no extra path (the machine's own
    package). Peers: their carried wheels' folder, when given."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    if impl.startswith("ours") or impl == "make":
        env["PYTHONPATH"] = args.ours
    elif impl in PEERS and args.peers:
        env["PYTHONPATH"] = args.peers
    elif impl == "ref09_prefetch" and args.ref09:
        env["PYTHONPATH"] = args.ref09  # the reference 0.9.0rc1, unpacked from its carried wheel
    return env


def run_worker(impl: str, args: argparse.Namespace, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--worker", impl, "--folder", str(args.folder), "--device", args.device]
    cmd += ["--pinned-mib", str(args.pinned_mib)]
    try:
        done = subprocess.run(cmd, env=env_for(impl, args), capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    for line in done.stdout.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return {"error": f"exit {done.returncode}: {(done.stdout + done.stderr)[-800:]}"}


def warm_up(folder: Path) -> None:
    for p in sorted(folder.iterdir()):
        with open(p, "rb", buffering=0) as f:
            while f.read(64 << 20):
                pass


def report(args: argparse.Namespace, results: dict, started: float, show: bool = True) -> None:
    rows = []
    link = None
    checksums = set()
    for impl in IMPLS + PEERS:
        runs = results.get(impl, [])
        ok = [r for r in runs if "seconds" in r]
        row = {"impl": impl, "label": LABELS[impl], "runs": runs}
        if ok:
            sec = statistics.median(r["seconds"] for r in ok)
            row.update(seconds=sec, gbps=ok[0]["bytes"] / sec / 1e9, bytes=ok[0]["bytes"], module=ok[0]["module"])
            checksums |= {r["checksum"] for r in ok if r.get("checksum") is not None}
            if impl == "pinned":
                link = row["gbps"]
        else:
            why = [r.get("skipped") or r.get("error") for r in runs]
            row["status"] = why[0] if why else "not run"
        rows.append(row)
    for row in rows:
        if link and "gbps" in row:
            row["pct_of_pinned"] = 100 * row["gbps"] / link
    summary = {
        "device": args.device,
        "dry_run": not args.device.startswith("cuda"),
        "checkpoint_bytes": args.checkpoint_bytes,
        "runs": args.runs,
        "checksums_agree": len(checksums) == 1,
        "checksums": sorted(checksums),
        "seconds_total": time.time() - started,
        "rows": rows,
        "machine": machine(),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.json").write_text(json.dumps(summary, indent=1))
    lines = [
        f"# GPU load benchmark ({'dry run on the CPU' if summary['dry_run'] else args.device})",
        "",
        f"- checkpoint: {args.checkpoint_bytes / 1e9:.3f} GB bf16 (llama-like, {args.layers} layers, hidden "
        f"{args.hidden}), warm page cache; medians of {args.runs} fresh-process runs",
        f"- machine: {summary['machine']}",
        f"- checksums of the loaded bytes agree across implementations: {summary['checksums_agree']}",
        "",
        "| implementation | median s | GB/s | % of pinned H2D | module |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    for row in rows:
        if "gbps" in row:
            pct = f"{row['pct_of_pinned']:.0f}%" if "pct_of_pinned" in row else ""
            lines.append(f"| {row['label']} | {row['seconds']:.3f} | {row['gbps']:.2f} | {pct} | `{row['module']}` |")
        else:
            lines.append(f"| {row['label']} | | | | {row['status']} |")
    text = "\n".join(lines) + "\n"
    (out / "gpu_bench.txt").write_text(text)
    if show:
        print(text, flush=True)


def machine() -> str:
    import platform

    parts = [platform.processor() or platform.machine(), f"{os.cpu_count()} CPUs"]
    parts.append(f"Python {platform.python_version()}")
    try:
        import torch

        parts.append(f"torch {torch.__version__}")
        if torch.cuda.is_available():
            parts.append(torch.cuda.get_device_name(0))
    except ImportError:
        pass
    return ", ".join(parts)


def driver(args: argparse.Namespace) -> int:
    started = time.time()
    args.folder = Path(args.folder)
    if not (args.folder / "model.safetensors.index.json").exists():
        done = subprocess.run(
            [sys.executable, __file__, "--make"]
            + ["--folder", str(args.folder), "--layers", str(args.layers), "--hidden", str(args.hidden)]
            + ["--inter", str(args.inter), "--vocab", str(args.vocab)],
            env=env_for("make", args),
        )
        if done.returncode:
            return done.returncode
    args.checkpoint_bytes = sum(p.stat().st_size for p in args.folder.glob("*.safetensors"))
    impls = IMPLS + PEERS
    results: dict = {impl: [] for impl in impls}
    for rep in range(args.runs):
        order = impls[rep % len(impls) :] + impls[: rep % len(impls)]
        for impl in order:
            if any("skipped" in r for r in results[impl]):
                continue
            warm_up(args.folder)
            result = run_worker(impl, args, args.worker_timeout)
            results[impl].append(result)
            print(f"run {rep + 1}/{args.runs} {impl}: {json.dumps(result)}", flush=True)
        report(args, results, started, show=False)  # what a timeout would leave
    report(args, results, started)
    return 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cuda:0", help="cuda:N, or cpu for the dry run")
    p.add_argument("--folder", default="/tmp/st-gpu-bench", help="where the checkpoint is written (reused)")
    p.add_argument("--out", default=os.environ.get("OUT", "."), help="where gpu_bench.json/.txt go")
    p.add_argument("--ours", default="", help="PYTHONPATH that puts our package first (ours' workers only)")
    p.add_argument("--peers", default="", help="PYTHONPATH of carried fastsafetensors/runai wheels")
    p.add_argument("--ref09", default="", help="PYTHONPATH of the reference 0.9.0rc1 (its prefetch)")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--layers", type=int, default=18)
    p.add_argument("--hidden", type=int, default=2048)
    p.add_argument("--inter", type=int, default=5632)
    p.add_argument("--vocab", type=int, default=32000)
    p.add_argument("--pinned-mib", type=int, default=1024)
    p.add_argument("--worker-timeout", type=float, default=120)
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--make", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make:
        make_checkpoint(args)
        return 0
    if args.worker:
        args.impl = args.worker
        worker(args)
        return 0
    return driver(args)


if __name__ == "__main__":
    sys.exit(main())
