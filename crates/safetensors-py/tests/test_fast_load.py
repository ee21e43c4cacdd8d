"""Whole loads through the parallel reader (issue 10): ``load_file``/``get_tensors`` with the
reader forced, ``load_model``/``load_into`` reading straight into existing tensors, and the
GPU staging ring driven by its CPU copier. Every byte is compared with ``safe_open``'s own
reading of the same tensor."""

from __future__ import annotations

import os

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from safetensors import _common, _staging, _torch_staging, safe_open  # noqa: E402
from safetensors import torch as st  # noqa: E402


def make(dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape)) if shape else 1
    raw = torch.randint(0, 256, (n * torch.empty((), dtype=dtype).element_size(),), generator=g, dtype=torch.uint8)
    return raw.view(dtype).reshape(shape)


def raw(t):
    return t.contiguous().view(-1).view(torch.uint8).numpy().tobytes() if t.nelement() else b""


def state():
    return {
        "embed.weight": make(torch.bfloat16, (97, 33), 1),
        "layers.0.w": make(torch.float32, (65, 17), 2),
        "layers.0.b": make(torch.float16, (17,), 3),
        "layers.1.w": make(torch.float32, (65, 17), 4),
        "scale": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros((0, 3), dtype=torch.int32),
        "ids": torch.arange(31, dtype=torch.int64),
        "f8": make(torch.float8_e4m3fn, (9, 7), 5),
    }


@pytest.fixture(params=["file", "sharded"])
def location(request, tmp_path):
    tensors = state()
    if request.param == "file":
        p = tmp_path / "model.safetensors"
        st.save_file(tensors, p)
        return p, tensors
    folder = tmp_path / "ckpt"
    index = st.save_sharded(tensors, folder, max_shard_size=3000)
    assert len(set(index["weight_map"].values())) > 2
    return folder, tensors


def reference_bytes(location):
    with safe_open(location, "pt", backend="pread") as f:
        return {k: raw(f.get_tensor(k)) for k in f.keys()}


@pytest.mark.parametrize("threads,block_size", [(1, 1 << 20), (3, 64), (8, 4096)])
def test_load_all_with_the_reader_matches_safe_open(location, threads, block_size):
    path, tensors = location
    expected = reference_bytes(path)
    with safe_open(path, "pt") as f:
        out = f._load_all(f.offset_keys(), "read", threads=threads, block_size=block_size)
        assert list(out) == f.offset_keys()
    assert {k: raw(v) for k, v in out.items()} == expected
    for k, v in out.items():
        assert v.dtype == tensors[k].dtype and v.shape == tensors[k].shape
    # Each tensor owns its memory: writable and independent of the others and of the file.
    out["layers.0.w"].fill_(0)
    assert raw(out["layers.1.w"]) == expected["layers.1.w"]
    assert reference_bytes(path) == expected


@pytest.mark.parametrize("strategy", ["read", "mmap", "auto"])
def test_load_file_every_strategy_gives_the_same_bytes(location, monkeypatch, strategy):
    path, _ = location
    monkeypatch.setattr(_common, "LOAD_STRATEGY", strategy)
    for backend in ("mmap", "pread"):
        out = st.load_file(path, backend=backend)
        assert {k: raw(v) for k, v in out.items()} == reference_bytes(path)


def test_numpy_load_file_with_the_reader(location, monkeypatch):
    from safetensors import numpy as snp

    path, _ = location
    monkeypatch.setattr(_common, "LOAD_STRATEGY", "read")
    out = snp.load_file(path)
    expected = reference_bytes(path)
    assert {k: v.tobytes() for k, v in out.items()} == expected
    out["ids"][0] = 5  # writable


def test_get_tensors_reads_a_pread_handle_with_the_reader(location):
    path, _ = location
    with safe_open(path, "pt", backend="pread") as f:
        out = f.get_tensors()
    assert list(out) == sorted(out)
    assert {k: raw(v) for k, v in out.items()} == reference_bytes(path)


def test_read_into_checks_ranges_before_reading(location):
    path, _ = location
    with safe_open(path, "pt") as f:
        dst = torch.zeros(10, dtype=torch.uint8)
        with pytest.raises(Exception, match="outside tensor layers.0.b"):
            f._read_into([("layers.0.b", 30, dst.data_ptr(), 10)])
        with pytest.raises(Exception, match="does not contain tensor nope"):
            f._read_into([("nope", 0, dst.data_ptr(), 1)])
        assert int(dst.sum()) == 0
        # A part of a tensor: bytes 4..14 of layers.0.b.
        f._read_into([("layers.0.b", 4, dst.data_ptr(), 10)])
    assert dst.numpy().tobytes() == reference_bytes(path)["layers.0.b"][4:14]


# --- load_model / load_into: straight into existing memory ----------------------------------


class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(97, 33, dtype=torch.bfloat16)
        self.lin = torch.nn.Linear(65, 17)
        self.norm = torch.nn.BatchNorm1d(17)  # overrides _load_from_state_dict: loaded by torch
        self.head = torch.nn.Linear(33, 97, bias=False, dtype=torch.bfloat16)
        self.head.weight = self.embed.weight  # tied
        self.register_buffer("steps", torch.zeros(4, dtype=torch.int64))


def random_net(seed):
    torch.manual_seed(seed)
    net = Net()
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            t.copy_(
                make(t.dtype, tuple(t.shape), seed + t.numel()) if t.dtype != torch.float32 else torch.randn(t.shape)
            )
    return net


@pytest.fixture(params=["file", "sharded"])
def saved_net(request, tmp_path):
    net = random_net(1)
    if request.param == "file":
        p = tmp_path / "net.safetensors"
        st.save_model(net, p)
    else:
        p = tmp_path / "net"
        st.save_sharded(net.state_dict(), p, max_shard_size=2000)
    return p, net


def test_load_model_reads_in_place_and_matches_safe_open(saved_net):
    path, net = saved_net
    fresh = random_net(2)
    ptrs = {k: v.data_ptr() for k, v in fresh.state_dict().items()}
    assert st.load_model(fresh, path) == (set(), [])
    # The very same memory was filled: no parameter was replaced.
    assert {k: v.data_ptr() for k, v in fresh.state_dict().items()} == ptrs
    expected = reference_bytes(path)
    got = fresh.state_dict()
    for k, b in expected.items():
        assert raw(got[k]) == b, k
    assert fresh.head.weight is fresh.embed.weight
    for k, v in net.state_dict().items():
        assert raw(got[k]) == raw(v), k


def test_load_model_keeps_its_errors(saved_net, tmp_path):
    path, net = saved_net

    class Bigger(Net):
        def __init__(self):
            super().__init__()
            self.extra = torch.nn.Linear(2, 2)

    with pytest.raises(RuntimeError, match='Missing key\\(s\\) in state_dict: "extra.bias", "extra.weight"'):
        st.load_model(Bigger(), path)
    missing, unexpected = st.load_model(Bigger(), path, strict=False)
    assert missing == {"extra.bias", "extra.weight"} and unexpected == []

    class Smaller(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(65, 17)

    small = Smaller()
    missing, unexpected = st.load_model(small, path, strict=False)
    assert missing == set() and "embed.weight" in unexpected
    assert raw(small.lin.weight) == raw(net.lin.weight)
    # A size mismatch still raises torch's error.
    wrong = Smaller()
    wrong.lin = torch.nn.Linear(64, 17)
    with pytest.raises(RuntimeError, match="size mismatch for lin.weight"):
        st.load_model(wrong, path, strict=False)


def test_load_model_leaves_modules_with_load_hooks_to_torch(saved_net):
    path, net = saved_net
    fresh = random_net(3)
    seen = []
    fresh.lin._register_load_state_dict_pre_hook(lambda *args, **kwargs: seen.append(args[1]))
    assert st.load_model(fresh, path) == (set(), [])
    assert seen == ["lin."]
    for k, v in net.state_dict().items():
        assert raw(fresh.state_dict()[k]) == raw(v), k


def test_load_into_fills_a_state_dict_in_place(location):
    path, tensors = location
    target = {k: torch.empty_like(v) for k, v in tensors.items()}
    target["layers.1.w"] = torch.empty(17, 65).t()  # not contiguous: copied into
    target["layers.0.w"] = torch.empty(65, 17, dtype=torch.float64)  # another dtype: converted
    ptrs = {k: v.data_ptr() for k, v in target.items()}
    assert st.load_into(target, path) == ([], [])
    assert {k: v.data_ptr() for k, v in target.items()} == ptrs
    expected = reference_bytes(path)
    for k in tensors:
        if k != "layers.0.w":
            assert raw(target[k]) == expected[k], k
    assert raw(target["layers.0.w"]) == raw(tensors["layers.0.w"].double())  # random bits: NaNs too


def test_load_into_strict_and_shape_errors_come_before_any_read(location):
    path, tensors = location
    target = {k: torch.zeros_like(v) for k, v in tensors.items() if k != "ids"}
    target["other"] = torch.zeros(3)
    with pytest.raises(
        RuntimeError, match='(?s)Missing key\\(s\\) in state_dict: "other".*Unexpected key\\(s\\) in state_dict: "ids"'
    ):
        st.load_into(target, path)
    assert all(int(v.float().abs().sum()) == 0 for v in target.values())
    assert st.load_into(target, path, strict=False) == (["other"], ["ids"])
    assert raw(target["embed.weight"]) == raw(tensors["embed.weight"])
    bad = {"embed.weight": torch.zeros(33, 97, dtype=torch.bfloat16)}
    with pytest.raises(RuntimeError, match="size mismatch for embed.weight"):
        st.load_into(bad, path, strict=False)


# --- the staging ring, on the CPU copier ----------------------------------------------------


@pytest.mark.parametrize("slot_bytes,slots", [(64, 1), (1000, 2), (4096, 3), (1 << 20, 4)])
def test_staged_load_matches_safe_open_and_bounds_host_memory(location, slot_bytes, slots):
    path, tensors = location
    copier = _torch_staging.CpuCopier()
    out = st._staged_load(
        path, torch.device("cpu"), copier, slot_bytes=slot_bytes, slots=slots, threads=3, block_size=100
    )
    assert {k: raw(v) for k, v in out.items()} == reference_bytes(path)
    for k, v in out.items():
        assert v.dtype == tensors[k].dtype and v.shape == tensors[k].shape
    assert copier.host_bytes <= slot_bytes * slots
    total = sum(v.nbytes for v in tensors.values())
    if total > slot_bytes * slots:
        assert copier.host_bytes == slot_bytes * slots  # the ring really was reused


def test_staging_ring_waits_before_each_refill_and_copies_in_file_order(location):
    path, tensors = location
    copier = _torch_staging.CpuCopier()
    slot_bytes, slots = 512, 3
    st._staged_load(path, torch.device("cpu"), copier, slot_bytes=slot_bytes, slots=slots)
    log = copier.log
    fills = [e for e in log if e[0] == "wait"]
    total = sum(v.nbytes for v in tensors.values())
    assert len(fills) == -(-total // slot_bytes)  # one wait (then fill) per buffer's worth
    # Buffers are used round-robin, and each refill comes after the copies of its last fill
    # were recorded: wait(s), copies from s, record(s), then the next buffer.
    assert [e[1] for e in fills] == [i % slots for i in range(len(fills))]
    state = {}
    for e in log:
        if e[0] == "wait":
            assert state.get(e[1]) in (None, "recorded")
            state[e[1]] = "filled"
        elif e[0] == "copy":
            assert state[e[1]] == "filled"
        elif e[0] == "record":
            state[e[1]] = "recorded"
    copied = sum(e[3] for e in log if e[0] == "copy")
    assert copied == total
    assert log[-1] == ("synchronize",)


class EagerRefill(_torch_staging.CpuCopier):
    """A copier whose wait does not wait: the ring's next fill overwrites bytes not yet copied."""

    def wait(self, slot):
        self.log.append(("wait", slot))


def test_cpu_copier_catches_a_buffer_refilled_before_its_copy(location):
    path, _ = location
    with pytest.raises(AssertionError, match="refilled before its copy completed"):
        st._staged_load(path, torch.device("cpu"), EagerRefill(), slot_bytes=256, slots=2)


def test_staging_rejects_an_empty_ring(location):
    path, _ = location
    with pytest.raises(ValueError, match="at least one buffer"):
        st._staged_load(path, torch.device("cpu"), _torch_staging.CpuCopier(), slot_bytes=0)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_load_through_the_ring_and_load_model(location):
    path, tensors = location
    out = st.load_file(path, device="cuda:0")
    assert {k: raw(v.cpu()) for k, v in out.items()} == reference_bytes(path)
    assert all(v.device.type == "cuda" for v in out.values())
    copier = _torch_staging.TorchCudaCopier("cuda:0")
    out = st._staged_load(path, torch.device("cuda:0"), copier, slot_bytes=256, slots=2)
    assert {k: raw(v.cpu()) for k, v in out.items()} == reference_bytes(path)


# --- the choice between views, prefetched views and the reader -------------------------------


def evict(path):
    """Drops the clean pages of ``path`` (and its shards) from the page cache, as a cold disk
    would have them; returns False where the platform cannot."""
    if not hasattr(os, "posix_fadvise"):
        return False
    files = [path] if path.is_file() else sorted(path.glob("*.safetensors"))
    for p in files:
        fd = os.open(p, os.O_RDONLY)
        try:
            os.fsync(fd)
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    return True


def test_the_plan_follows_the_page_cache_and_the_backend(location):
    path, _ = location
    with safe_open(path, "pt", backend="pread") as f:
        assert f._plan(f.keys()) == "read"
    with safe_open(path, "pt") as f:
        names = f.keys()
        assert f._plan(names, "read") == "read"
        assert f._plan(names, "mmap") == "views"
        st.load_file(path)  # every byte touched: cached
        assert f._plan(names) == "views"
        if evict(path):
            assert f._plan(names) == "prefetch"
            # Prefetched views: still views of the private mapping, every byte right.
            out = f._load_all(f.offset_keys())
            assert {k: raw(v) for k, v in out.items()} == reference_bytes(path)


def test_bytes_and_file_objects_take_their_own_paths_with_the_same_bytes(tmp_path):
    from safetensors import _safe_open_bytes, _safe_open_handle

    p = tmp_path / "m.safetensors"
    st.save_file(state(), p)
    expected = reference_bytes(p)
    data = p.read_bytes()
    with open(p, "rb") as fileobj:
        for f in (_safe_open_bytes(data, "pt"), _safe_open_handle(fileobj, "pt")):
            with f:
                assert f._plan(f.keys()) == "views"
                out = f._load_all(f.offset_keys(), "read", threads=4, block_size=64)
                assert {k: raw(v) for k, v in out.items()} == expected
                dst = torch.zeros(6, dtype=torch.uint8)
                f._read_into([("layers.0.b", 3, dst.data_ptr(), 6)])
                assert dst.numpy().tobytes() == expected["layers.0.b"][3:9]


def test_the_ring_fills_existing_tensors_in_place(location):
    path, tensors = location
    targets = {k: torch.zeros_like(v) for k, v in tensors.items()}
    ptrs = {k: v.data_ptr() for k, v in targets.items()}
    copier = _torch_staging.CpuCopier()
    with safe_open(path, "pt") as f:
        names = f.offset_keys()
        dsts = [targets[n].reshape(-1).view(torch.uint8) for n in names]
        _staging.fill(f, names, dsts, copier, slot_bytes=700, slots=2)
    assert {k: raw(v) for k, v in targets.items()} == reference_bytes(path)
    assert {k: v.data_ptr() for k, v in targets.items()} == ptrs
    assert copier.host_bytes <= 1400


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_model_and_load_into_on_cuda_fill_device_memory_in_place(saved_net, location):
    path, net = saved_net
    fresh = random_net(5).cuda()
    ptrs = {k: v.data_ptr() for k, v in fresh.state_dict().items()}
    assert st.load_model(fresh, path, device="cuda:0") == (set(), [])
    assert {k: v.data_ptr() for k, v in fresh.state_dict().items()} == ptrs
    for k, v in net.state_dict().items():
        assert raw(fresh.state_dict()[k].cpu()) == raw(v), k
    path, tensors = location
    target = {k: torch.zeros_like(v, device="cuda:0") for k, v in tensors.items()}
    assert st.load_into(target, path) == ([], [])
    assert {k: raw(v.cpu()) for k, v in target.items()} == reference_bytes(path)
