"""A sharded ~2 GB bf16 checkpoint (TinyLlama-1.1B shapes, 4 shards) loaded with
``safetensors.torch.load_file`` from the local folder and over HTTP from nginx on 127.0.0.1.

For each way of loading: wall time (best and median of ``--runs`` runs, each in a fresh
process so nothing is cached in Python), and for HTTP the number of requests, connections
and bytes moved, from nginx's access log. Every loaded tensor is checked byte-equal to the
local file once. Generated files live under ``--dir`` (default a fresh folder in /tmp) and
are deleted at the end.

    make bench-sharded                      # or: .venv/bin/python bench/sharded/bench_sharded.py
    BENCH_ARGS="--layers 4 --runs 2" make bench-sharded   # a small, quick run
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "crates" / "safetensors-py" / "tests"))

from nginx_server import start  # noqa: E402

# TinyLlama-1.1B: hidden 2048, MLP 5632, 32 heads / 4 KV heads, vocab 32000, 22 layers.
HIDDEN, MLP, KV, VOCAB = 2048, 5632, 256, 32000


def shapes(layers: int) -> dict:
    out = {"model.embed_tokens.weight": (VOCAB, HIDDEN), "lm_head.weight": (VOCAB, HIDDEN)}
    out["model.norm.weight"] = (HIDDEN,)
    for i in range(layers):
        p = f"model.layers.{i}."
        out[p + "self_attn.q_proj.weight"] = (HIDDEN, HIDDEN)
        out[p + "self_attn.k_proj.weight"] = (KV, HIDDEN)
        out[p + "self_attn.v_proj.weight"] = (KV, HIDDEN)
        out[p + "self_attn.o_proj.weight"] = (HIDDEN, HIDDEN)
        out[p + "mlp.gate_proj.weight"] = (MLP, HIDDEN)
        out[p + "mlp.up_proj.weight"] = (MLP, HIDDEN)
        out[p + "mlp.down_proj.weight"] = (HIDDEN, MLP)
        out[p + "input_layernorm.weight"] = (HIDDEN,)
        out[p + "post_attention_layernorm.weight"] = (HIDDEN,)
    return out


def make_checkpoint(folder: Path, layers: int, shards: int) -> int:
    import torch

    from safetensors.torch import save_sharded

    gen = torch.Generator().manual_seed(0)
    state = {
        name: torch.randn(shape, generator=gen, dtype=torch.float32).to(torch.bfloat16)
        for name, shape in shapes(layers).items()
    }
    total = sum(t.numel() * t.element_size() for t in state.values())
    save_sharded(state, str(folder), max_shard_size=total // shards + (64 << 20))
    return total


WORKER = r"""
import sys, time, torch
from safetensors.torch import load_file
location, backend = sys.argv[1], sys.argv[2]
kwargs = {} if location.startswith("http") else {"backend": backend}
t0 = time.perf_counter()
tensors = load_file(location, **kwargs)
if backend == "mmap" and not location.startswith("http"):
    # Views of the mapping: touch every page so the bytes are really read.
    s = 0
    for t in tensors.values():
        s += int(t.reshape(-1).view(torch.uint8)[::4096].sum()) if t.numel() else 0
took = time.perf_counter() - t0
print(took)
"""

CHECK = r"""
import sys, torch
from safetensors import safe_open
# Tensor by tensor, so that only one tensor of each side is in memory at a time.
with safe_open(sys.argv[1], "pt") as a, safe_open(sys.argv[2], "pt", backend="pread") as b:
    assert a.offset_keys() == b.offset_keys(), "different tensors"
    for k in b.keys():
        assert torch.equal(a.get_tensor(k).view(torch.uint8), b.get_tensor(k).view(torch.uint8)), k
    print(len(b.keys()))
"""


def run_worker(python: str, location: str, backend: str) -> float:
    out = subprocess.run([python, "-c", WORKER, location, backend], check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--layers", type=int, default=22)
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    python = sys.executable
    base = Path(tempfile.mkdtemp(prefix="st-bench-sharded-", dir=args.dir))
    try:
        folder = base / "model"
        t0 = time.perf_counter()
        total = make_checkpoint(folder, args.layers, args.shards)
        files = sorted(p.name for p in folder.iterdir())
        on_disk = sum((folder / f).stat().st_size for f in files)
        made = time.perf_counter() - t0
        print(
            f"checkpoint: {len(files) - 1} shards + index, {on_disk / 1e9:.2f} GB on disk, "
            f"{total / 1e9:.2f} GB of tensors (made in {made:.0f} s)"
        )
        server = start(base)
        if server is None:
            sys.exit("nginx is not installed (apt-get install nginx)")
        with server:
            url = server.url("model/model.safetensors.index.json")
            count = subprocess.run([python, "-c", CHECK, url, str(folder)], check=True, capture_output=True, text=True)
            print(f"check: {count.stdout.strip()} tensors over HTTP byte-equal to the local folder")
            results = {}
            for label, location, backend in [
                ("local folder, mmap (every page touched)", str(folder), "mmap"),
                ("local folder, pread", str(folder), "pread"),
                ("HTTP, nginx on 127.0.0.1", url, "http"),
            ]:
                times, logs = [], []
                for _ in range(args.runs):
                    mark = server.mark()
                    times.append(run_worker(python, location, backend))
                    logs.append(server.since(mark))
                results[label] = (times, logs)
            print()
            print("| load_file of | best | median | GB/s (best) | requests | connections | bytes moved |")
            print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
            for label, (times, logs) in results.items():
                best, median = min(times), statistics.median(times)
                if logs and logs[0]:
                    log = logs[0]
                    requests = str(len(log))
                    connections = str(len({e.connection for e in log}))
                    moved = f"{sum(e.body_bytes for e in log) / 1e9:.3f} GB"
                else:
                    requests = connections = "-"
                    moved = f"{on_disk / 1e9:.3f} GB (disk)"
                rate = total / best / 1e9
                print(
                    f"| {label} | {best:.2f} s | {median:.2f} s | {rate:.2f} | {requests} | {connections} | {moved} |"
                )
            log = results["HTTP, nginx on 127.0.0.1"][1][0]
            statuses = sorted({e.status for e in log})
            headers = sum(1 for e in log if e.range.startswith("bytes=0-7"))
            print(f"\nHTTP run 1: statuses {statuses}; {headers} shard headers fetched")
            print(json.dumps({"cpus": os.cpu_count(), "runs": args.runs}))
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
