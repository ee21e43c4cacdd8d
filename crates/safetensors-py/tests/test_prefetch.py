"""``safe_open.prefetch`` / ``PrefetchLoader`` / ``get_tensor_meta`` (issue 19): the reference's
0.9 loading API, and what we do beyond it (any device, any basic index, shards and URLs, a
memory budget).

Every tensor a loader hands out is compared byte for byte with ``get_slice(name)[index]`` of
the same handle. CUDA loads run through the pinned staging ring with the ring's CPU copier in
place of the CUDA one (``safetensors._torch_staging.device_copier``), as in
``test_cuda_ring.py``; the tests marked ``cuda`` run the same loads on a real GPU.
"""

from __future__ import annotations

import gc
import io
import json
import struct
import threading
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from conftest import require

torch = require("torch")

import safetensors  # noqa: E402
from safetensors import PrefetchLoader, SafetensorError, TensorMeta, _staging, _torch_staging, safe_open  # noqa: E402
from safetensors import torch as st  # noqa: E402

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def make(dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    size = torch.empty((), dtype=dtype).element_size()
    return torch.randint(0, 256, (n * size,), generator=g, dtype=torch.uint8).view(dtype).reshape(shape)


def state():
    return {
        "embed.weight": make(torch.bfloat16, (97, 33), 1),
        "layers.0.attn.q": make(torch.float32, (64, 48), 2),
        "layers.0.attn.o": make(torch.float32, (48, 64), 3),
        "layers.0.norm": make(torch.float16, (48,), 4),
        "layers.1.mlp.up": make(torch.float32, (96, 40), 5),
        "layers.1.mlp.down": make(torch.int64, (40, 96), 6),
        "scale": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros((0, 3), dtype=torch.int32),
        "cube": make(torch.uint8, (4, 10, 30), 7),
    }


def raw(t):
    t = t.detach().cpu().contiguous() if isinstance(t, torch.Tensor) else np.ascontiguousarray(t)
    if isinstance(t, torch.Tensor):
        return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.nelement() else b""
    return t.tobytes()


@pytest.fixture(params=["file", "sharded", "index"])
def location(request, tmp_path):
    tensors = state()
    if request.param == "file":
        path = tmp_path / "model.safetensors"
        st.save_file(tensors, path)
        return path
    folder = tmp_path / "ckpt"
    index = st.save_sharded(tensors, folder, max_shard_size=8000)
    assert len(set(index["weight_map"].values())) > 2
    return folder if request.param == "sharded" else folder / "model.safetensors.index.json"


@pytest.fixture
def ring(monkeypatch):
    """The CPU copier in place of the CUDA one, a ring of 2 x 1000 bytes; the copiers made."""
    made = []

    def copier(device):
        assert device == torch.device("cuda:0"), device
        made.append(_torch_staging.CpuCopier())
        return made[-1]

    monkeypatch.setattr(_torch_staging, "device_copier", copier)
    monkeypatch.setattr(_staging, "DEFAULT_SLOT_BYTES", 1000)
    monkeypatch.setattr(_staging, "DEFAULT_SLOTS", 2)
    return made


# Plans: the reference's kind (None, first-dimension step-1 slices) and ours (any basic index).
REFERENCE_PLAN = {
    "embed.weight": slice(10, 60),
    "layers.0.attn.q": None,
    "layers.0.norm": None,
    "layers.1.mlp.up": slice(-32, None),
    "scale": None,
    "empty": slice(0, 0),
}
ANY_PLAN = {
    "embed.weight": (slice(None), slice(3, 20)),  # columns: one run a row
    "layers.0.attn.o": (slice(None, None, -3), 5),  # backwards, one element a row
    "layers.1.mlp.down": (Ellipsis, slice(1, None, 7)),  # strided last dimension
    "cube": (1, slice(2, 8), slice(None, None, 2)),
    "layers.0.norm": 7,  # one element: a 0-d result
    "scale": (),
    "layers.1.mlp.up": slice(5, 200),  # clamped like get_slice
}


def check(f, plan, got):
    """``got`` (name -> tensor) is exactly what ``get_slice`` gives for each planned index."""
    assert set(got) == set(plan if plan is not None else f.keys())
    for name, tensor in got.items():
        index = (plan or {}).get(name)
        want = f.get_tensor(name) if index is None else f.get_slice(name)[index]
        assert tuple(tensor.shape) == tuple(want.shape), name
        assert tensor.dtype == want.dtype, name
        assert raw(tensor) == raw(want), name


def reference_09_client(f, plan, device):
    """Code written against the reference 0.9 API, unchanged: what a serving stack does."""
    meta = {name: f.get_tensor_meta(name) for name in f.keys()}
    for m in meta.values():
        assert isinstance(m.dtype, str) and isinstance(m.shape, list) and isinstance(m.data_offsets, tuple)
    out = {}
    with f.prefetch(plan, device=device, threads=4) as loader:
        names = loader.names()
        assert len(loader) == len(names)
        first = names[-1]
        out[first] = loader.take(first)  # out of order: waits for it
        for name, tensor in loader:  # the rest, in readiness order
            out[name] = tensor
    return names, out


@pytest.mark.parametrize("plan", [None, REFERENCE_PLAN], ids=["all", "reference-plan"])
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_code_written_for_the_reference_runs_unchanged(location, ring, plan, device):
    with safe_open(location, "pt") as f:
        names, out = reference_09_client(f, plan, device)
        check(f, plan, out)
        by_offset = f.offset_keys()
        assert names == [n for n in by_offset if plan is None or n in plan]  # file order
    assert len(ring) == (1 if device == "cuda:0" else 0)


@pytest.mark.parametrize("backend", ["mmap", "pread"])
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_any_basic_index_equals_get_slice(location, ring, backend, device):
    with safe_open(location, "pt", backend=backend) as f:
        with f.prefetch(ANY_PLAN, device=device) as loader:
            got = dict(loader)
        check(f, ANY_PLAN, got)
    if device == "cuda:0":
        copier = ring[0]
        assert copier.host_bytes <= 2 * 1000
        assert copier.log[-1] == ("synchronize",)


def test_other_frameworks_prefetch_into_their_own_arrays(location):
    plan = {k: v for k, v in ANY_PLAN.items() if k != "embed.weight"}  # numpy: no bfloat16 needed
    with safe_open(location, "np") as f:
        with f.prefetch(plan) as loader:
            got = dict(loader)
        assert all(isinstance(v, np.ndarray) for v in got.values())
        check(f, plan, got)


def test_the_handles_device_is_the_default(location, ring):
    with safe_open(location, "pt", device="cuda:0") as f:
        with f.prefetch({"layers.0.norm": None}) as loader:
            t = loader.take("layers.0.norm")
        assert len(ring) == 1
    with safe_open(location, "pt") as f:
        with f.prefetch({"layers.0.norm": None}, device=0) as loader:  # an int: that CUDA device
            loader.take("layers.0.norm")
        assert len(ring) == 2
        assert raw(t) == raw(f.get_tensor("layers.0.norm"))


def test_tensor_meta(location):
    with safe_open(location, "pt") as f:
        for name in f.keys():
            m = f.get_tensor_meta(name)
            assert isinstance(m, TensorMeta)
            s = f.get_slice(name)
            assert (m.dtype, m.shape) == (s.get_dtype(), s.get_shape())
            start, end = m.data_offsets
            assert end - start == f.get_tensor(name).nbytes
        m = f.get_tensor_meta("embed.weight")
        assert repr(m) == f'TensorMeta {{ dtype: "BF16", shape: [97, 33], data_offsets: {m.data_offsets} }}'
        with pytest.raises(SafetensorError, match="does not contain tensor nope"):
            f.get_tensor_meta("nope")
    with pytest.raises(SafetensorError, match="closed"):
        f.get_tensor_meta("scale")
    with pytest.raises(TypeError):
        TensorMeta()


def test_exported_where_the_reference_exports_them():
    assert safetensors.PrefetchLoader is PrefetchLoader
    assert safetensors.TensorMeta is TensorMeta
    assert safetensors._safetensors_rust.TensorStream is not None
    with pytest.raises(TypeError):
        PrefetchLoader()


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_iteration_is_in_readiness_order_and_skips_taken_tensors(location, ring, device):
    with safe_open(location, "pt") as f:
        loader = f.prefetch(device=device)
        taken = loader.take("cube")
        stream = iter(loader)
        assert type(stream).__name__ == "TensorStream"
        seen = [name for name, _ in stream]
        assert sorted(seen) == sorted(set(f.keys()) - {"cube"})
        assert list(loader) == []  # everything handed out
        assert raw(taken) == raw(f.get_tensor("cube"))
        loader.close()


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_take_errors(location, ring, device):
    with safe_open(location, "pt") as f:
        loader = f.prefetch({"scale": None, "cube": 1}, device=device)
        loader.take("scale")
        with pytest.raises(SafetensorError, match="already taken"):
            loader.take("scale")
        with pytest.raises(SafetensorError, match="not in this loader's plan"):
            loader.take("layers.0.norm")
        loader.close()
        loader.close()  # idempotent
        with pytest.raises(SafetensorError, match="closed"):
            loader.take("cube")
        with pytest.raises(SafetensorError, match="closed"):
            next(iter(loader))


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_a_loader_outlives_its_handle_and_a_closed_handle_refuses_to_start_one(location, ring, device):
    with safe_open(location, "pt") as f:
        loader = f.prefetch({"cube": (slice(None), 3)}, device=device)
        want = f.get_slice("cube")[:, 3]
    with pytest.raises(SafetensorError, match="closed"):
        f.prefetch()
    assert raw(loader.take("cube")) == raw(want)  # its files stay open, as a get_slice's do
    loader.close()


def raw_file(tmp_path, entries):
    """A file written by hand: ``entries`` name -> (dtype, shape, nbytes)."""
    header, at = {}, 0
    for name, (dtype, shape, n) in entries.items():
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [at, at + n]}
        at += n
    h = json.dumps(header).encode()
    path = tmp_path / "raw.safetensors"
    path.write_bytes(struct.pack("<Q", len(h)) + h + bytes(range(256)) * (at // 256 + 1))
    path.write_bytes(path.read_bytes()[: 8 + len(h) + at])
    return path


class Counting(io.RawIOBase):
    """A file object that counts the bytes read through it, optionally slowly."""

    def __init__(self, path, delay=0.0):
        self.f = open(path, "rb")
        self.bytes_read = 0
        self.reads = 0
        self.delay = delay

    def seek(self, pos, whence=0):
        return self.f.seek(pos, whence)

    def tell(self):
        return self.f.tell()

    def read(self, n=-1):
        time.sleep(self.delay)
        data = self.f.read(n)
        self.bytes_read += len(data)
        self.reads += 1
        return data

    def close(self):
        self.f.close()


def test_plan_errors_are_raised_before_anything_is_read(tmp_path):
    path = raw_file(tmp_path, {"w": ("F32", [4, 4], 64), "s": ("F32", [], 4), "f6": ("F6_E2M3", [4, 4], 12)})
    src = Counting(path)
    f = safetensors._safe_open_handle(src, "pt")
    after_header = src.bytes_read
    cases = [
        ({"f6": None}, SafetensorError, "F6_E2M3"),
        (None, SafetensorError, "F6_E2M3"),  # every tensor: the F6 one too
        ({"s": slice(0, 1)}, SafetensorError, "cannot slice rows of the 0-d tensor s"),
        ({"nope": None}, SafetensorError, "does not contain tensor nope"),
        ({}, SafetensorError, "selects no tensors"),
        ({1: None}, SafetensorError, "keys must be tensor names"),
        ({"w": [0, 1]}, SafetensorError, "plan values must be None"),
        ({"w": (5,)}, IndexError, "out of range"),
        ({"w": slice(None, None, 0)}, ValueError, "step"),
        ([("w", None)], TypeError, "dict"),
    ]
    for plan, kind, match in cases:
        with pytest.raises(kind, match=match):
            f.prefetch(plan)
    with pytest.raises(SafetensorError, match="invalid"):
        f.prefetch({"w": None}, device="bogus")
    with pytest.raises(OverflowError):
        f.prefetch({"w": None}, threads=-1)
    with pytest.raises(ValueError, match="memory_budget"):
        f.prefetch({"w": None}, memory_budget=0)
    assert src.bytes_read == after_header
    # Once valid, a file object works too (its reads take the interpreter briefly).
    with f.prefetch({"w": (slice(None), 1)}) as loader:
        assert raw(loader.take("w")) == raw(f.get_slice("w")[:, 1])


def big_file(tmp_path, count=16, rows=256, cols=1024):
    """``count`` F32 tensors of rows x cols (1 MiB each by default)."""
    tensors = {f"t{i:02d}": torch.full((rows, cols), float(i)) for i in range(count)}
    path = tmp_path / "big.safetensors"
    st.save_file(tensors, path)
    return path, tensors


def settled(read, target, timeout=10.0):
    """Waits until ``read()`` reaches ``target`` (or the timeout), then a little longer; the
    final value."""
    deadline = time.monotonic() + timeout
    while read() < target and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.1)
    return read()


def test_the_budget_bounds_what_is_read_ahead_of_take(tmp_path):
    path, tensors = big_file(tmp_path)  # 16 tensors of 1 MiB
    src = Counting(path)
    f = safetensors._safe_open_handle(src, "pt")
    start = src.bytes_read
    loader = f.prefetch(memory_budget=3 << 20)
    # Three tensors fit the budget: the reader reads them, then waits for a take.
    assert settled(lambda: src.bytes_read - start, 3 << 20) == 3 << 20
    assert torch.equal(loader.take("t00"), tensors["t00"])
    assert settled(lambda: src.bytes_read - start, 4 << 20) == 4 << 20  # one more
    got = dict(loader)
    assert len(got) == 15 and all(torch.equal(v, tensors[k]) for k, v in got.items())
    assert src.bytes_read - start == 16 << 20  # each byte once


def test_peak_memory_stays_within_the_budget(tmp_path):
    """A plan of 32 MiB with a budget of 4 MiB: numpy's allocations (traced by tracemalloc)
    never exceed the budget plus the tensor the consumer holds, and scratch."""
    arrays = {f"t{i:02d}": np.full((256, 1024), i, dtype=np.float32) for i in range(32)}
    from safetensors.numpy import save_file

    path = tmp_path / "big.safetensors"
    save_file(arrays, str(path))
    del arrays
    budget = 4 << 20
    with safe_open(path, "np", backend="pread") as f:
        tracemalloc.start()
        try:
            seen = 0
            with f.prefetch(memory_budget=budget) as loader:
                for name, arr in loader:
                    assert arr[0, 0] == int(name[1:])
                    seen += arr.nbytes
                    del arr  # the consumer moves on: the tensor is gone
                    time.sleep(0.005)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert seen == 32 << 20
    assert peak <= budget + (1 << 20) + (256 << 10), peak


def test_a_tensor_larger_than_the_budget_still_loads(tmp_path):
    path, tensors = big_file(tmp_path, count=3)
    with safe_open(path, "pt") as f, f.prefetch(memory_budget=1000) as loader:
        got = dict(loader)
    assert all(torch.equal(got[k], tensors[k]) for k in tensors)


def test_close_mid_load_stops_the_reader(tmp_path):
    """A slow file object (20 ms a read, one read a tensor here): close() returns promptly,
    the load stops part way, and no read happens afterwards."""
    path, _ = big_file(tmp_path, count=64, rows=64, cols=256)  # 64 KiB tensors
    src = Counting(path, delay=0.02)
    f = safetensors._safe_open_handle(src, "pt")
    before = src.reads
    loader = f.prefetch(threads=2)
    assert settled(lambda: src.reads - before, 3) >= 3  # it is reading
    began = time.monotonic()
    loader.close()
    assert time.monotonic() - began < 1.0
    reads = src.reads
    time.sleep(0.2)
    assert src.reads == reads
    assert reads - before < 64  # it did not read everything
    with pytest.raises(SafetensorError, match="closed"):
        loader.take("t63")


def test_close_mid_load_stops_the_ring_thread(tmp_path, ring):
    path, _ = big_file(tmp_path, count=8, rows=64, cols=256)
    with safe_open(path, "pt") as f:
        loader = f.prefetch(device="cuda:0", memory_budget=1 << 20)
        threads = [t for t in threading.enumerate() if t.name == "safetensors-prefetch-ring"]
        assert threads
        loader.close()
        assert not any(t.is_alive() for t in threads)
        assert ring[0].log[-1] == ("synchronize",)  # nothing left in flight


def test_several_loaders_run_from_one_handle_which_keeps_working(location, ring):
    with safe_open(location, "pt") as f:
        a = f.prefetch({"cube": None, "scale": None})
        b = f.prefetch({"cube": 2}, device="cuda:0")
        assert f.keys() and f.get_slice("cube").get_shape() == [4, 10, 30]
        assert raw(b.take("cube")) == raw(f.get_slice("cube")[2])
        assert raw(a.take("cube")) == raw(f.get_tensor("cube"))
        a.close()
        b.close()
        assert raw(f.get_tensor("scale")) == raw(torch.tensor(2.5, dtype=torch.float64))


def test_takes_from_several_threads(tmp_path):
    path, tensors = big_file(tmp_path, count=16, rows=16, cols=64)
    with safe_open(path, "pt") as f, f.prefetch(memory_budget=4096 * 3) as loader:
        got = {}

        def worker(names):
            for n in names:
                got[n] = loader.take(n)

        names = list(tensors)
        pool = [threading.Thread(target=worker, args=(names[i::4],)) for i in range(4)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
    assert all(torch.equal(got[k], tensors[k]) for k in tensors)


@needs_cuda
@pytest.mark.cuda
@pytest.mark.parametrize("plan", [None, REFERENCE_PLAN, ANY_PLAN], ids=["all", "reference", "any"])
def test_cuda_prefetch_equals_get_slice(location, plan):
    with safe_open(location, "pt") as f:
        with f.prefetch(plan, device="cuda:0") as loader:
            got = dict(loader)
        assert all(t.device.type == "cuda" for t in got.values())
        check(f, plan, got)


@needs_cuda
@pytest.mark.cuda
def test_cuda_reference_client_and_close_mid_load(location):
    with safe_open(location, "pt", device="cuda:0") as f:
        _, out = reference_09_client(f, REFERENCE_PLAN, None)
        check(f, REFERENCE_PLAN, out)
        loader = f.prefetch(memory_budget=1)
        loader.close()
        assert not any(t.name == "safetensors-prefetch-ring" and t.is_alive() for t in threading.enumerate())


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    from nginx_server import start

    root = tmp_path_factory.mktemp("served")
    st.save_file(state(), root / "model.safetensors")
    st.save_sharded(state(), root / "sharded", max_shard_size=8000)
    server = start(root)
    if server is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    with server:
        yield server


@pytest.mark.parametrize("what", ["model.safetensors", "sharded/model.safetensors.index.json"])
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_urls_prefetch_with_range_requests(served, ring, what, device):
    url = served.url(what)
    with safe_open(url, "pt") as f:
        for plan in (REFERENCE_PLAN, ANY_PLAN):
            with f.prefetch(plan, device=device) as loader:
                got = dict(loader)
            check(f, plan, got)
        # A first-dimension slice is one Range request of exactly its bytes (through the
        # ring: one a ring buffer of 1000 bytes).
        mark = served.mark()
        with f.prefetch({"embed.weight": slice(10, 60)}, device=device) as loader:
            rows = loader.take("embed.weight")
        log = served.since(mark)
        nbytes = 50 * 33 * 2
        assert rows.nelement() * rows.element_size() == nbytes
        assert [e.status for e in log] == [206] * (1 if device == "cpu" else -(-nbytes // 1000))
        assert sum(e.body_bytes for e in log) == nbytes


def test_a_url_plan_reads_only_its_part(served):
    """Strided rows over HTTP: coalesced Range requests, never the whole tensor per row."""
    with safe_open(served.url("model.safetensors"), "pt") as f:
        mark = served.mark()
        with f.prefetch({"layers.1.mlp.down": (slice(None, None, 4), slice(0, 8))}) as loader:
            part = loader.take("layers.1.mlp.down")
        log = served.since(mark)
        assert raw(part) == raw(f.get_slice("layers.1.mlp.down")[::4, :8])
        whole = 40 * 96 * 8
        assert 0 < sum(e.body_bytes for e in log) <= whole
        assert len(log) <= 2


def test_the_ring_keeps_device_and_host_memory_within_the_budget(tmp_path, monkeypatch):
    """Through the ring (CPU copier): the ring's buffers and the device tensors allocated and
    not yet taken never exceed the budget (plus the one tensor being taken)."""
    path, tensors = big_file(tmp_path, count=12, rows=64, cols=256)  # 64 KiB tensors
    budget = 200 << 10
    outstanding = {"now": 0, "peak": 0}

    class Counted(_torch_staging.CpuCopier):
        def empty(self, dtype, shape, nbytes):
            outstanding["now"] += nbytes
            outstanding["peak"] = max(outstanding["peak"], outstanding["now"])
            return super().empty(dtype, shape, nbytes)

        def finish(self, dst, dtype, shape):
            outstanding["now"] -= dst.nbytes
            return super().finish(dst, dtype, shape)

    made = []
    monkeypatch.setattr(_torch_staging, "device_copier", lambda device: made.append(Counted()) or made[-1])
    with safe_open(path, "pt") as f, f.prefetch(device="cuda:0", memory_budget=budget) as loader:
        time.sleep(0.2)  # the thread runs ahead as far as the budget lets it
        assert outstanding["peak"] <= budget
        got = {}
        for name, t in loader:
            got[name] = t
            time.sleep(0.002)
    assert outstanding["peak"] <= budget + (64 << 10)
    assert made[0].host_bytes <= budget
    assert all(torch.equal(got[k], tensors[k]) for k in tensors)


def prefetch_threads() -> int:
    """Threads of this process running a loader: the ring's Python thread, and the core's
    reader thread (named ``safetensors-prefetch``: ``/proc/self/task/*/comm``, Linux)."""
    ring_threads = sum(t.name == "safetensors-prefetch-ring" for t in threading.enumerate())
    native = 0
    for comm in Path("/proc/self/task").glob("*/comm"):
        try:
            native += comm.read_text().startswith("safetensors-pre")
        except OSError:  # a thread that just ended
            pass
    return ring_threads + native


def wait_threads(n: int) -> int:
    """``prefetch_threads()`` once it is ``n`` (a new thread names itself when it starts),
    or after 5 s."""
    deadline = time.monotonic() + 5
    while prefetch_threads() != n and time.monotonic() < deadline:
        time.sleep(0.01)
    return prefetch_threads()


needs_proc = pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc")


@needs_proc
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_a_loader_dropped_without_close_stops_its_thread(tmp_path, ring, device):
    path, _ = big_file(tmp_path, count=8, rows=64, cols=256)
    gc.collect()  # loaders of earlier tests, not collected yet, end their threads now
    before = prefetch_threads()
    with safe_open(path, "pt") as f:
        loader = f.prefetch(device=device, memory_budget=64 << 10)
        loader.take("t00")
        assert wait_threads(before + 1) == before + 1
        del loader
        gc.collect()
        assert wait_threads(before) == before, "the loader's thread outlived it"


@needs_proc
@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_close_joins_the_loaders_thread(tmp_path, ring, device):
    path, _ = big_file(tmp_path, count=8, rows=64, cols=256)
    gc.collect()  # loaders of earlier tests, not collected yet, end their threads now
    before = prefetch_threads()
    with safe_open(path, "pt") as f:
        loader = f.prefetch(device=device, memory_budget=64 << 10)
        assert wait_threads(before + 1) == before + 1
        loader.close()
        assert prefetch_threads() == before  # joined: gone at once


@pytest.mark.parametrize("device", ["cpu", "cuda:0"])
def test_handles_over_bytes_and_file_objects_prefetch_too(tmp_path, ring, device):
    location = tmp_path / "model.safetensors"
    st.save_file(state(), location)
    data = location.read_bytes()
    with safe_open(location, "pt") as ref:
        want = {name: ref.get_slice(name)[index] for name, index in ANY_PLAN.items()}
    with open(location, "rb") as fh:
        for f in (safetensors._safe_open_bytes(data, "pt"), safetensors._safe_open_handle(fh, "pt")):
            with f.prefetch(ANY_PLAN, device=device) as loader:
                got = dict(loader)
            assert {k: raw(v) for k, v in got.items()} == {k: raw(v) for k, v in want.items()}


def storage_reads() -> int:
    """``read_bytes`` of /proc/self/io: bytes this process made the kernel fetch from storage."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("read_bytes:"):
            return int(line.split()[1])
    raise AssertionError("no read_bytes in /proc/self/io")


def evict(path) -> None:
    import os

    with open(path, "rb") as fh:
        os.posix_fadvise(fh.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)


@pytest.mark.skipif(
    not Path("/proc/self/io").exists() or not hasattr(__import__("os"), "posix_fadvise"), reason="needs Linux"
)
def test_a_plan_of_parts_reads_no_more_than_its_parts_from_storage(tmp_path):
    """Readahead off for a plan of parts: a rank's rows of a tensor cost their own bytes from
    storage, not the kernel's readahead window past them (the next rank's rows). The same
    rows through a handle with the readahead on (``get_slice``) read more wherever the
    readahead window is large (``read_ahead_kb``; 8 MiB here: twice the rows)."""
    import os

    path = tmp_path / "m.safetensors"
    w = torch.randn(2048, 8192)  # 64 MiB, rows of 32 KiB
    st.save_file({"w": w}, path)
    with open(path, "rb+") as fh:
        os.fsync(fh.fileno())
    evict(path)
    before = storage_reads()
    path.read_bytes()
    if storage_reads() - before < w.nbytes // 2:
        pytest.skip("this file system's reads are not counted as storage reads (tmpfs?)")
    rows = slice(512, 1024)  # 16 MiB in the middle: no header read nearby
    evict(path)
    with safe_open(path, "pt", backend="pread") as f:
        before = storage_reads()
        with f.prefetch({"w": rows}) as loader:
            part = loader.take("w")
        read = storage_reads() - before
    assert torch.equal(part, w[rows])
    assert part.nbytes <= read <= part.nbytes + (64 << 10), read


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine without CUDA")
def test_cuda_without_a_gpu_is_an_error_at_prefetch(location):
    with safe_open(location, "pt") as f:
        with pytest.raises(SafetensorError, match="cannot prefetch onto cuda:0") as e:
            f.prefetch(device="cuda:0")
        assert isinstance(e.value, RuntimeError)  # what torch raised, too
