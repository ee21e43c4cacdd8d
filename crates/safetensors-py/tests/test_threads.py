"""One open handle read from many threads at once: every result is right, for every
source (mmap, pread, in-memory bytes, Python file object) and for slices."""

from __future__ import annotations

import io
import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import safetensors
from safetensors import safe_open
from safetensors.numpy import load_file, save_file

N_TENSORS = 24
THREADS = 8


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    rng = np.random.default_rng(1)
    tensors = {f"layer.{i}": rng.standard_normal((64, 33 + i)).astype(np.float32) for i in range(N_TENSORS)}
    p = tmp_path_factory.mktemp("threads") / "m.safetensors"
    save_file(tensors, p)
    return p, tensors


def sources(path):
    yield "mmap", safe_open(path, "np", backend="mmap")
    yield "pread", safe_open(path, "np", backend="pread")
    yield "bytes", safetensors._safe_open_bytes(path.read_bytes(), "np")
    fh = open(path, "rb")
    yield "handle", safetensors._safe_open_handle(fh, "np")
    fh.close()
    yield "bytesio", safetensors._safe_open_handle(io.BytesIO(path.read_bytes()), "np")


def test_concurrent_get_tensor_and_slices(model):
    path, tensors = model
    names = list(tensors) * 4
    for kind, f in sources(path):
        start = threading.Barrier(THREADS)

        def work(i, f=f, start=start):
            if i < THREADS:
                start.wait()
            name = names[i]
            whole = f.get_tensor(name)
            part = f.get_slice(name)[i % 64 :, ::3]
            return name, i, whole, part

        with ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(work, range(len(names))))
        for name, i, whole, part in results:
            np.testing.assert_array_equal(whole, tensors[name], err_msg=f"{kind} {name}")
            np.testing.assert_array_equal(part, tensors[name][i % 64 :, ::3], err_msg=f"{kind} {name}")


def test_concurrent_saves_and_loads(tmp_path, model):
    _, tensors = model

    def work(i):
        p = tmp_path / f"out{i % 3}.safetensors"  # several threads replace the same file
        save_file(tensors, p)
        return load_file(p)

    with ThreadPoolExecutor(THREADS) as pool:
        for out in pool.map(work, range(12)):
            for k, v in tensors.items():
                np.testing.assert_array_equal(out[k], v)


@pytest.mark.parametrize("backend", ["mmap", "pread"])
def test_closing_while_other_threads_read(model, backend):
    """Leaving the `with` block while other threads read: each read either completes with
    the right values or raises the closed-file SafetensorError; nothing crashes."""
    path, tensors = model
    names = sorted(tensors)
    outcomes = {"ok": 0, "closed": 0}
    lock = threading.Lock()
    started = threading.Barrier(THREADS + 1)

    def reader(f, k):
        started.wait()
        for i in range(200):
            name = names[(k + i) % len(names)]
            try:
                got = f.get_slice(name)[::-1, 1::3] if i % 2 else f.get_tensor(name)
            except safetensors.SafetensorError as e:
                assert "closed" in str(e)
                with lock:
                    outcomes["closed"] += 1
                return
            want = tensors[name][::-1, 1::3] if i % 2 else tensors[name]
            np.testing.assert_array_equal(got, want)
            with lock:
                outcomes["ok"] += 1

    with ThreadPoolExecutor(THREADS) as pool:
        with safe_open(path, "np", backend=backend) as f:
            futures = [pool.submit(reader, f, k) for k in range(THREADS)]
            started.wait()
        for fut in futures:
            fut.result()
    assert outcomes["ok"] + outcomes["closed"] > 0
