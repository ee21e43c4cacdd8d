"""Save/load speed of safetensors against the framework's own format, in one run.

    .venv/bin/python crates/safetensors-py/benches/bench_load_save.py [--mib 256] [--repeat 3]

Prints the best-of-N time of each and the ratio (framework time / safetensors time: > 1 means
safetensors is faster). Each load reads from the page cache (files are read once first), so
this measures the library, not the disk. Not a test: nothing here asserts.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time


def best(fn, repeat):
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def warm(path):
    with open(path, "rb") as f:
        while f.read(1 << 24):
            pass


def report(name, ours, theirs, label):
    print(f"{name:<28} safetensors {ours * 1e3:8.1f} ms   {label} {theirs * 1e3:8.1f} ms   ratio {theirs / ours:5.2f}x")


def bench_torch(tmp, mib, repeat):
    import torch

    from safetensors.torch import load_file, save_file

    n = mib * (1 << 20) // 4 // 4096
    tensors = {f"layer.{i}.weight": torch.randn(n // 16, 4096) for i in range(16)}
    st, pt = os.path.join(tmp, "m.safetensors"), os.path.join(tmp, "m.pt")
    report(
        "torch save",
        best(lambda: save_file(tensors, st), repeat),
        best(lambda: torch.save(tensors, pt), repeat),
        "torch.save",
    )
    warm(st)
    warm(pt)
    report(
        "torch load (cpu)",
        best(lambda: load_file(st), repeat),
        best(lambda: torch.load(pt, map_location="cpu", weights_only=True), repeat),
        "torch.load",
    )


def bench_numpy(tmp, mib, repeat):
    import numpy as np

    from safetensors.numpy import load_file, save_file

    n = mib * (1 << 20) // 4 // 4096
    arrays = {f"a{i}": np.random.default_rng(i).standard_normal((n // 16, 4096), dtype=np.float32) for i in range(16)}
    st, npz = os.path.join(tmp, "m.safetensors"), os.path.join(tmp, "m.npz")
    report(
        "numpy save",
        best(lambda: save_file(arrays, st), repeat),
        best(lambda: np.savez(npz, **arrays), repeat),
        "np.savez",
    )
    warm(st)
    warm(npz)

    def np_load():
        with np.load(npz) as z:
            return {k: z[k] for k in z.files}

    report("numpy load", best(lambda: load_file(st), repeat), best(np_load, repeat), "np.load(npz)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mib", type=int, default=256)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print(f"{args.mib} MiB of float32, best of {args.repeat}")
        bench_numpy(tmp, args.mib, args.repeat)
        try:
            bench_torch(tmp, args.mib, args.repeat)
        except ImportError:
            print("torch not installed: skipped")


if __name__ == "__main__":
    main()
