"""Per-rank loading benchmark: ``safetensors.torch.load_for_rank`` on a sharded checkpoint.

Writes a llama-like bf16 checkpoint (about ``--size-gb`` GB, sharded) under ``--dir``, then
loads it four ways: ``mode="read"`` with each rank's process started alone (rank and world
size given, no group: what one rank on its own machine reads), ``mode="read"`` and
``mode="broadcast"`` with ``--world-size`` rank processes started together (gloo on
127.0.0.1; they share this machine's page cache, so which of them fetches a page from storage
is a race), and, as the baseline, one process loading the whole checkpoint with
``load_file(..., backend="pread")``. Each process reports the time
of its load and the bytes it read as the kernel counts them (``/proc/self/io``:
``read_bytes``, fetched from storage; ``rchar``, asked of read()/pread()), so the page cache
is dropped before each "cold" run (``sync; echo 3 > /proc/sys/vm/drop_caches``, needs
root) and filled before each "warm" one. Runs alternate the order of the modes; the report
gives medians. The checkpoint is deleted at the end unless ``--keep``.

The plan is Megatron's: attention q/k/v, MLP gate/up, embeddings and the LM head split
along dim 0 (column parallel), attention output and MLP down along dim 1 (row parallel),
norms replicated.

    make bench-ranks                       # = .venv/bin/python bench/ranks/bench_ranks.py
    .venv/bin/python bench/ranks/bench_ranks.py --size-gb 0.2 --runs 1   # smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

PLAN = {
    "*.embed_tokens.weight": 0,
    "lm_head.weight": 0,
    "*.self_attn.[qkv]_proj.weight": 0,
    "*.mlp.gate_proj.weight": 0,
    "*.mlp.up_proj.weight": 0,
    "*.self_attn.o_proj.weight": 1,
    "*.mlp.down_proj.weight": 1,
    "*norm.weight": None,
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


# --- worker ------------------------------------------------------------------------------------


def worker(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)
    if args.mode == "whole":
        from safetensors.torch import load_file

        before, t0 = proc_io(), time.perf_counter()
        out = load_file(args.location, backend="pread")
    elif args.mode == "alone":
        from safetensors.torch import load_for_rank

        before, t0 = proc_io(), time.perf_counter()
        out = load_for_rank(args.location, PLAN, rank=args.rank, world_size=args.world_size)
    else:
        from datetime import timedelta

        import torch.distributed as dist

        from safetensors.torch import load_for_rank

        dist.init_process_group(
            "gloo",
            init_method=f"tcp://127.0.0.1:{args.port}",
            rank=args.rank,
            world_size=args.world_size,
            timeout=timedelta(seconds=600),
        )
        dist.barrier()
        before, t0 = proc_io(), time.perf_counter()
        out = load_for_rank(args.location, PLAN, mode=args.mode)
    elapsed = time.perf_counter() - t0
    after = proc_io()
    if args.mode in ("read", "broadcast"):
        dist.barrier()
        dist.destroy_process_group()
    tensor_bytes = sum(t.nelement() * t.element_size() for t in out.values())
    print(
        json.dumps(
            {
                "seconds": elapsed,
                "read_bytes": after["read_bytes"] - before["read_bytes"],
                "rchar": after["rchar"] - before["rchar"],
                "tensor_bytes": tensor_bytes,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


# --- driver ------------------------------------------------------------------------------------


def make_checkpoint(folder: Path, size_gb: float) -> dict:
    """A llama-like bf16 state dict of about ``size_gb`` GB, saved with save_sharded."""
    import torch

    from safetensors.torch import save_sharded

    hidden, inter, vocab = 2048, 5632, 32000
    per_layer = (4 * hidden * hidden + 3 * hidden * inter + 2 * hidden) * 2
    fixed = (2 * vocab * hidden + hidden) * 2
    layers = max(1, round((size_gb * 1e9 - fixed) / per_layer))
    g = torch.Generator().manual_seed(0)

    def w(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g, dtype=torch.float32).to(torch.bfloat16)

    state = {"model.embed_tokens.weight": w(vocab, hidden)}
    for i in range(layers):
        p = f"model.layers.{i}."
        for name in ("q", "k", "v", "o"):
            state[p + f"self_attn.{name}_proj.weight"] = w(hidden, hidden)
        state[p + "mlp.gate_proj.weight"] = w(inter, hidden)
        state[p + "mlp.up_proj.weight"] = w(inter, hidden)
        state[p + "mlp.down_proj.weight"] = w(hidden, inter)
        state[p + "input_layernorm.weight"] = w(hidden)
        state[p + "post_attention_layernorm.weight"] = w(hidden)
    state["model.norm.weight"] = w(hidden)
    state["lm_head.weight"] = w(vocab, hidden)
    index = save_sharded(state, folder, max_shard_size="500MB")
    files = sorted(set(index["weight_map"].values())) if "weight_map" in index else ["model.safetensors"]
    return {
        "layers": layers,
        "tensors": len(state),
        "tensor_bytes": sum(t.nbytes for t in state.values()),
        "file_bytes": sum((folder / f).stat().st_size for f in files),
        "shards": len(files),
    }


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def warm(folder: Path) -> None:
    for f in sorted(folder.iterdir()):
        with open(f, "rb") as fh:
            while fh.read(16 << 20):
                pass


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(python: str, location: Path, mode: str, world_size: int, ranks: list) -> list:
    """Runs one load on the processes of ``ranks`` at once (every rank of a group, one rank
    alone, or the single whole-checkpoint process); returns each process's report."""
    port = free_port()
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [
                python,
                __file__,
                "--worker",
                "--mode",
                mode,
                "--location",
                str(location),
                "--rank",
                str(r),
                "--world-size",
                str(world_size),
                "--port",
                str(port),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for r in ranks
    ]
    reports = []
    try:
        for r, p in enumerate(procs):
            out, err = p.communicate(timeout=900)
            if p.returncode != 0:
                raise RuntimeError(f"{mode} rank {r} failed ({p.returncode}):\n{err}")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    return reports


def mb(n: float) -> str:
    return f"{n / 1e6:,.0f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--mode", help=argparse.SUPPRESS)
    ap.add_argument("--location", help=argparse.SUPPRESS)
    ap.add_argument("--rank", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--world-size", type=int, default=2, help="ranks (default 2)")
    ap.add_argument("--size-gb", type=float, default=1.5, help="checkpoint size (default 1.5 GB)")
    ap.add_argument("--runs", type=int, default=3, help="runs per mode and cache state (default 3)")
    ap.add_argument("--dir", default="/tmp/st-bench-ranks", help="where the checkpoint goes (deleted after)")
    ap.add_argument("--keep", action="store_true", help="keep the checkpoint")
    ap.add_argument("--no-cold", action="store_true", help="skip the cold runs (they need root)")
    ap.add_argument("--out", help="also write the Markdown report here")
    args = ap.parse_args()
    if args.worker:
        worker(args)
        return

    folder = Path(args.dir) / "ckpt"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    try:
        t0 = time.perf_counter()
        info = make_checkpoint(folder, args.size_gb)
        print(f"checkpoint: {info} ({time.perf_counter() - t0:.1f} s to write)", file=sys.stderr)
        caches = ["warm"] if args.no_cold else ["cold", "warm"]
        modes = ["alone", "read", "broadcast", "whole"]
        results: dict = {(m, c): [] for m in modes for c in caches}
        for run in range(args.runs):
            order = modes[run % len(modes) :] + modes[: run % len(modes)]
            for cache in caches:
                for mode in order:
                    # "alone": each rank by itself, as on its own machine, its page cache
                    # prepared before it; the other modes start every process at once.
                    everyone = [0] if mode == "whole" else list(range(args.world_size))
                    groups = [[r] for r in everyone] if mode == "alone" else [everyone]
                    reports = []
                    for ranks in groups:
                        if cache == "cold":
                            drop_caches()
                        else:
                            warm(folder)
                        reports += launch(sys.executable, folder, mode, args.world_size, ranks)
                    results[(mode, cache)].append(reports)
                    print(f"run {run} {cache} {mode}: {reports}", file=sys.stderr)
        report = render(args, info, results, modes, caches)
        print(report)
        if args.out:
            Path(args.out).write_text(report)
    finally:
        if not args.keep:
            shutil.rmtree(Path(args.dir), ignore_errors=True)


def render(args: argparse.Namespace, info: dict, results: dict, modes: list, caches: list) -> str:
    import torch

    import safetensors

    ws = args.world_size
    lines = [
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC; load average at end: "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}",
        f"- machine: {os.cpu_count()} logical cores; Python {sys.version.split()[0]}, torch {torch.__version__}, "
        f"safetensors from `{Path(safetensors.__file__).parent}`",
        f"- checkpoint: llama-like, hidden 2048, {info['layers']} layers, {info['tensors']} bf16 tensors, "
        f"{mb(info['file_bytes'])} MB in {info['shards']} shards (`save_sharded`, 500MB)",
        f"- {ws} ranks, gloo on 127.0.0.1; medians of {args.runs} runs, each a fresh set of processes; cold = "
        "page cache dropped before the run, warm = files read once before it",
        "",
        "| mode | cache | time s (slowest rank; alone: that rank) | rank | read from storage MB (read_bytes) | "
        "read()/pread() MB (rchar) | tensor bytes MB | share of checkpoint | peak RSS MiB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for mode in modes:
        for cache in caches:
            runs = results[(mode, cache)]
            for rank in range(len(runs[0])):
                if mode == "alone":
                    t = statistics.median(reports[rank]["seconds"] for reports in runs)
                else:
                    t = statistics.median(max(r["seconds"] for r in reports) for reports in runs)

                def med(key: str, rank: int = rank) -> float:
                    return statistics.median(reports[rank][key] for reports in runs)

                label = {
                    "alone": "read, each rank alone",
                    "read": "read, ranks together",
                    "broadcast": "broadcast",
                    "whole": "`load_file` (whole, 1 process)",
                }[mode]
                share = med("read_bytes") / info["file_bytes"] if cache == "cold" else None
                lines.append(
                    f"| {label} | {cache} | {t:.2f} | {rank} | {mb(med('read_bytes'))} | {mb(med('rchar'))} | "
                    f"{mb(med('tensor_bytes'))} | {f'{share:.0%}' if share is not None else 'n/a'} | "
                    f"{med('peak_rss_mib'):,.0f} |"
                )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
