#!/usr/bin/env python3
"""Loading at the hardware's limit: ours vs the reference vs runai-model-streamer vs
fastsafetensors, from a warm and from a cold page cache, next to the disk's own speed.

The task is what ``model.load_state_dict`` does with a checkpoint: copy every tensor of a
sharded bf16 checkpoint into tensors allocated (and touched) beforehand. Each measurement is
a fresh process; implementations alternate, their order rotating per repetition; the report
gives medians. Before a cold run the driver drops the page cache (``sync``, then
``/proc/sys/vm/drop_caches``: needs root); before a warm run it reads the files once. The
disk limit is parallel ``O_DIRECT`` reads of the same files (no page cache), in the same run.

Peers are installed from PyPI with ``pip install --target .bench/load/<name> --no-deps``
(done on first run) and put only on their own workers' ``PYTHONPATH``; they reuse the torch
of ``--peer-python``. "ours" runs ``--python`` (the repo's ``.venv``) with no extra path.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PEERS = {
    "ref": "safetensors==0.8.0",
    "runai": "runai-model-streamer==0.17.0",
    "fastsafe": "fastsafetensors==0.5.0",
}
IMPLS = ["ours", "ours_load_file", "ref", "runai", "fastsafe"]
LABELS = {
    "ours": "ours: `load_into(state_dict, folder)`",
    "ours_load_file": "ours: `load_file(folder)` + `copy_`",
    "ref": "reference 0.8.0: `safe_open` per shard + `copy_`",
    "runai": "runai-model-streamer 0.17.0: `stream_files` + `copy_`",
    "fastsafe": "fastsafetensors 0.5.0 (`device='cpu', nogds=True`) + `copy_`",
    "disk": "disk limit: parallel `O_DIRECT` reads (8 threads, 16 MiB)",
    "disk_buffered": "disk, buffered: parallel `pread` after the drop (8 threads, 16 MiB)",
}


# --- the checkpoint ------------------------------------------------------------------------


def llama_like(layers: int, hidden: int, inter: int, vocab: int):
    """(name, shape) of a llama-like model, in the order transformers saves it."""
    yield "model.embed_tokens.weight", (vocab, hidden)
    for i in range(layers):
        p = f"model.layers.{i}."
        for proj in ("q_proj", "k_proj", "v_proj", "o_proj"):
            yield p + f"self_attn.{proj}.weight", (hidden, hidden)
        yield p + "mlp.gate_proj.weight", (inter, hidden)
        yield p + "mlp.up_proj.weight", (inter, hidden)
        yield p + "mlp.down_proj.weight", (hidden, inter)
        yield p + "input_layernorm.weight", (hidden,)
        yield p + "post_attention_layernorm.weight", (hidden,)
    yield "model.norm.weight", (hidden,)
    yield "lm_head.weight", (vocab, hidden)


def make_checkpoint(folder: Path, layers: int) -> None:
    import torch

    from safetensors.torch import save_sharded

    torch.manual_seed(0)
    tensors = {
        n: torch.empty(s, dtype=torch.bfloat16).uniform_(-1, 1) for n, s in llama_like(layers, 2048, 5632, 32000)
    }
    total = sum(t.nbytes for t in tensors.values())
    save_sharded(tensors, folder, max_shard_size=-(-total // 4) + (64 << 20))


def header(path: Path):
    with open(path, "rb") as f:
        n = int.from_bytes(f.read(8), "little")
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return h


# --- workers (fresh processes) -------------------------------------------------------------


def rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return 0


def worker(impl: str, folder: Path) -> None:
    import numpy as np
    import torch

    files = sorted(str(p) for p in folder.glob("*.safetensors"))
    prealloc = {}
    for f in files:
        for name, info in header(Path(f)).items():
            assert info["dtype"] == "BF16"
            prealloc[name] = torch.zeros(info["shape"], dtype=torch.bfloat16)  # touched: allocated for real
    if impl == "ours" or impl == "ours_load_file":
        import safetensors
        from safetensors.torch import load_file, load_into

        where = safetensors.__file__
    elif impl == "ref":
        import safetensors
        from safetensors import safe_open

        where = safetensors.__file__
    elif impl == "runai":
        import runai_model_streamer
        from runai_model_streamer import SafetensorsStreamer

        where = runai_model_streamer.__file__
    else:
        import fastsafetensors
        from fastsafetensors import fastsafe_open

        where = fastsafetensors.__file__
    base = rss_kb("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current RSS
    t0 = time.perf_counter()
    if impl == "ours":
        load_into(prealloc, folder)
    elif impl == "ours_load_file":
        for k, v in load_file(folder).items():
            prealloc[k].copy_(v)
    elif impl == "ref":
        for path in files:
            with safe_open(path, framework="pt") as f:
                for k in f.keys():
                    prealloc[k].copy_(f.get_tensor(k))
    elif impl == "runai":
        with SafetensorsStreamer() as streamer:
            streamer.stream_files(files)
            for k, t in streamer.get_tensors():
                prealloc[k].copy_(t)
    else:
        with fastsafe_open(filenames=files, nogds=True, device="cpu") as f:
            for k in f.keys():
                prealloc[k].copy_(f.get_tensor(k))
    seconds = time.perf_counter() - t0
    peak = rss_kb("VmHWM")
    fold = np.zeros((), dtype=np.uint64)
    for k in sorted(prealloc):
        fold ^= np.bitwise_xor.reduce(prealloc[k].view(-1).view(torch.uint8).numpy().view(np.uint64))
    nbytes = sum(t.nbytes for t in prealloc.values())
    print(
        json.dumps(
            {
                "seconds": seconds,
                "extra_peak_mb": (peak - base) / 1024,
                "checksum": int(fold),
                "bytes": nbytes,
                "module": where,
            }
        )
    )


def disk_worker(folder: Path, direct: bool = True, threads: int = 8, block: int = 16 << 20) -> None:
    """Reads every file by `threads` threads in `block`-sized reads: with O_DIRECT (bypassing
    the page cache), or buffered (through the page cache and the kernel's read-ahead)."""
    import mmap

    files = sorted(folder.glob("*.safetensors"))
    jobs = []
    for p in files:
        size = p.stat().st_size
        jobs += [(str(p), off) for off in range(0, size, block)]
    lock = threading.Lock()
    total = [0]
    flags = os.O_RDONLY | (os.O_DIRECT if direct else 0)
    fds = {str(p): os.open(p, flags) for p in files}

    def run():
        buf = mmap.mmap(-1, block)  # page aligned, as O_DIRECT wants
        n = 0
        while True:
            with lock:
                if not jobs:
                    break
                path, off = jobs.pop(0)
            n += os.preadv(fds[path], [buf], off)
        with lock:
            total[0] += n

    t0 = time.perf_counter()
    pool = [threading.Thread(target=run) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "seconds": seconds,
                "extra_peak_mb": threads * block / 2**20,
                "checksum": 0,
                "bytes": total[0],
                "module": "os.preadv",
            }
        )
    )


# --- the driver ----------------------------------------------------------------------------


def drop_caches() -> None:
    subprocess.run(["sync"], check=True)
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("3\n")


def warm_up(folder: Path) -> None:
    for p in sorted(folder.glob("*.safetensors")):
        with open(p, "rb", buffering=0) as f:
            while f.read(64 << 20):
                pass


def install_peers(peer_dir: Path, python: str) -> None:
    for name, spec in PEERS.items():
        target = peer_dir / name
        if not target.exists():
            subprocess.run(
                [python, "-m", "pip", "install", "--quiet", "--no-deps", "--target", str(target), spec], check=True
            )


def run_one(impl: str, folder: Path, args) -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)
    if impl in ("ours", "ours_load_file"):
        cmd = [args.python]
    else:
        cmd = [args.peer_python]
        if impl in PEERS:
            env["PYTHONPATH"] = str(args.peer_dir / impl)
    cmd += [__file__, "--worker", impl, "--folder", str(folder)]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise SystemExit(f"{impl} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--worker")
    ap.add_argument("--folder", type=Path, default=Path("/tmp/st-bench-load"))
    ap.add_argument("--layers", type=int, default=18, help="llama-like layers (18: 2.1 GB in bf16)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--impls", default=",".join(IMPLS + ["disk", "disk_buffered"]))
    ap.add_argument("--modes", default="warm,cold")
    ap.add_argument("--python", default=str(ROOT / ".venv/bin/python"))
    ap.add_argument("--peer-python", default="/work/fwvenv/bin/python", help="an interpreter with torch and numpy")
    ap.add_argument("--peer-dir", type=Path, default=ROOT / ".bench/load")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--keep", action="store_true", help="keep the generated checkpoint")
    args = ap.parse_args()
    if args.worker in ("disk", "disk_buffered"):
        return disk_worker(args.folder, direct=args.worker == "disk")
    if args.worker == "make":
        return make_checkpoint(args.folder, args.layers)
    if args.worker:
        return worker(args.worker, args.folder)

    install_peers(args.peer_dir, args.peer_python)
    folder = args.folder
    if not (folder / "model.safetensors.index.json").exists():
        make = [args.python, __file__, "--worker", "make", "--folder", str(folder), "--layers", str(args.layers)]
        subprocess.run(make, check=True)
    impls = args.impls.split(",")
    modes = args.modes.split(",")
    results = {(i, m): [] for i in impls for m in modes}
    loads = []
    try:
        for rep in range(args.runs):
            for mode in modes:
                order = impls[rep % len(impls) :] + impls[: rep % len(impls)]
                for impl in order:
                    if impl.startswith("disk") and mode == "warm":
                        continue
                    if mode == "cold":
                        drop_caches()
                    else:
                        warm_up(folder)
                    loads.append(os.getloadavg()[0])
                    if impl.startswith("disk"):
                        worker_cmd = [args.python, __file__, "--worker", impl, "--folder", str(folder)]
                        r = json.loads(subprocess.run(worker_cmd, capture_output=True, text=True, check=True).stdout)
                    else:
                        r = run_one(impl, folder, args)
                    results[(impl, mode)].append(r)
                    print(
                        f"{rep} {mode:4} {impl:15} {r['seconds'] * 1000:8.0f} ms  +{r['extra_peak_mb']:7.0f} MB",
                        file=sys.stderr,
                    )
    finally:
        if not args.keep:
            for p in folder.glob("*"):
                p.unlink()
            folder.rmdir()
    sums = {r["checksum"] for (i, _), rs in results.items() if not i.startswith("disk") for r in rs}
    report = render(results, impls, modes, loads, sums)
    print(report)
    if args.out:
        args.out.write_text(report)


def render(results, impls, modes, loads, sums) -> str:
    nbytes = max(r["bytes"] for rs in results.values() for r in rs)
    lines = [
        f"Checkpoint: {nbytes / 1e9:.2f} GB of bf16 tensors (llama-like) in 4 shards; task: copy every tensor into "
        "tensors allocated beforehand. Medians of the runs, fresh processes, alternating order. "
        f"Load average during the run: {min(loads):.1f} to {max(loads):.1f} (machine shared). "
        f"Checksums of the loaded tensors {'agree' if len(sums) == 1 else 'DISAGREE: ' + str(sums)}.",
        "",
        "| implementation | " + " | ".join(f"{m} (ms, GB/s)" for m in modes) + " | extra peak RSS (MB) |",
        "| --- | " + " | ".join("---:" for _ in modes) + " | ---: |",
    ]
    for impl in impls:
        cells = []
        peaks = []
        for m in modes:
            rs = results.get((impl, m)) or []
            if not rs:
                cells.append("")
                continue
            s = statistics.median(r["seconds"] for r in rs)
            peaks.append(statistics.median(r["extra_peak_mb"] for r in rs))
            cells.append(f"{s * 1000:.0f} ms ({nbytes / s / 1e9:.2f})")
        lines.append(f"| {LABELS[impl]} | " + " | ".join(cells) + f" | {max(peaks):.0f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
