"""Whole loads onto CUDA through the public API stream through the pinned staging ring
(issue 10): ``safe_open(..., device="cuda:0").get_tensors()``, ``load_file(..., device=
"cuda:0")`` and ``load_for_rank(..., device="cuda:0")``, from one file and a sharded folder.

Without a GPU the tests substitute the ring's CPU copier for the CUDA one
(``safetensors._torch_staging.device_copier``, where every CUDA whole load gets its copier) and
shrink the ring (``_staging.DEFAULT_SLOT_BYTES``/``DEFAULT_SLOTS``): smaller than the
largest tensor, fewer buffers than tensors. The CPU copier completes each copy as late as the
protocol allows and fails when a buffer is refilled too early. Every byte is compared with
``safe_open(...).get_tensor`` of the same file (or ``torch.chunk`` of it for a rank's part).
The tests marked ``cuda`` run the same loads on a real GPU (skipped without one).
"""

from __future__ import annotations

import pytest
from conftest import require

torch = require("torch")

from safetensors import SafetensorError, _staging, _torch_staging, safe_open  # noqa: E402
from safetensors import torch as st  # noqa: E402

SLOT_BYTES = 1000
SLOTS = 2
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def make(dtype, shape, seed):
    g = torch.Generator().manual_seed(seed)
    n = 1
    for s in shape:
        n *= s
    raw = torch.randint(0, 256, (n * torch.empty((), dtype=dtype).element_size(),), generator=g, dtype=torch.uint8)
    return raw.view(dtype).reshape(shape)


def state():
    return {
        "embed.weight": make(torch.bfloat16, (97, 33), 1),  # 6402 bytes: over 6 buffers' worth
        "layers.0.w": make(torch.float32, (65, 17), 2),
        "layers.0.b": make(torch.float16, (17,), 3),
        "layers.1.w": make(torch.float32, (17, 65), 4),
        "scale": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros((0, 3), dtype=torch.int32),
        "ids": torch.arange(31, dtype=torch.int64),
        "f8": make(torch.float8_e4m3fn, (9, 7), 5),
        "cube": make(torch.uint8, (1, 40, 30), 6),
    }


def raw(t):
    t = t.detach().cpu().contiguous()
    return t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.nelement() else b""


@pytest.fixture(params=["file", "sharded"])
def location(request, tmp_path):
    tensors = state()
    if request.param == "file":
        path = tmp_path / "model.safetensors"
        st.save_file(tensors, path)
        return path
    folder = tmp_path / "ckpt"
    index = st.save_sharded(tensors, folder, max_shard_size=3000)
    assert len(set(index["weight_map"].values())) > 2
    return folder


def reference(location):
    """name -> bytes, dtype, shape, as ``safe_open(...).get_tensor`` reads them on the CPU."""
    with safe_open(location, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}


@pytest.fixture
def ring(monkeypatch):
    """The CPU copier in place of the CUDA one, a ring of 2 x 1000 bytes; the copiers made."""
    made = []

    def copier(device):
        assert device == torch.device("cuda:0"), device
        made.append(_torch_staging.CpuCopier())
        return made[-1]

    monkeypatch.setattr(_torch_staging, "device_copier", copier)
    monkeypatch.setattr(_staging, "DEFAULT_SLOT_BYTES", SLOT_BYTES)
    monkeypatch.setattr(_staging, "DEFAULT_SLOTS", SLOTS)
    return made


def check_ring(copier, staged_bytes):
    """The ring moved exactly ``staged_bytes``, through at most its buffers, reusing them, and
    waited for each buffer's copies before refilling it."""
    log = copier.log
    assert sum(e[3] for e in log if e[0] == "copy") == staged_bytes
    assert copier.host_bytes <= SLOT_BYTES * SLOTS
    fills = [e[1] for e in log if e[0] == "wait"]
    assert len(fills) == -(-staged_bytes // SLOT_BYTES)
    assert len(fills) > SLOTS  # the buffers really were refilled
    assert fills == [i % SLOTS for i in range(len(fills))]
    assert log[-1] == ("synchronize",)


@pytest.mark.parametrize("backend", ["mmap", "pread"])
def test_get_tensors_on_cuda_streams_through_the_ring(location, ring, backend):
    expected = reference(location)
    with safe_open(location, "pt", device="cuda:0", backend=backend) as f:
        out = f.get_tensors()
        assert list(out) == f.keys()  # sorted, as get_tensors always returns them
    assert len(ring) == 1
    assert set(out) == set(expected)
    for k, v in out.items():
        assert v.dtype == expected[k].dtype and v.shape == expected[k].shape, k
        assert raw(v) == raw(expected[k]), k
    check_ring(ring[0], sum(t.nbytes for t in expected.values()))


def test_load_file_on_cuda_streams_through_the_ring(location, ring):
    expected = reference(location)
    out = st.load_file(location, device="cuda:0")
    assert len(ring) == 1
    assert {k: raw(v) for k, v in out.items()} == {k: raw(v) for k, v in expected.items()}
    check_ring(ring[0], sum(t.nbytes for t in expected.values()))


def test_get_tensors_on_another_device_does_not_use_the_ring(location, ring):
    """The hook declines devices other than CUDA: tensors are moved there one at a time."""
    with safe_open(location, "pt", device="meta") as f:
        out = f.get_tensors()
    assert ring == []
    assert set(out) == set(reference(location)) and all(v.device.type == "meta" for v in out.values())


def test_get_tensors_on_cuda_of_a_closed_handle_is_refused(location, ring):
    f = safe_open(location, "pt", device="cuda:0")
    with f:
        pass
    with pytest.raises(Exception, match="File is closed"):
        f.get_tensors()
    assert ring == []


def test_get_tensors_on_cuda_from_bytes_and_a_file_object(tmp_path, ring):
    from safetensors import _safe_open_bytes, _safe_open_handle

    path = tmp_path / "m.safetensors"
    st.save_file(state(), path)
    expected = {k: raw(v) for k, v in reference(path).items()}
    with open(path, "rb") as fileobj:
        for f in (
            _safe_open_bytes(path.read_bytes(), "pt", device="cuda:0"),
            _safe_open_handle(fileobj, "pt", "cuda:0"),
        ):
            with f:
                assert {k: raw(v) for k, v in f.get_tensors().items()} == expected
    assert len(ring) == 2


def test_get_tensors_on_cuda_from_a_url(tmp_path, ring):
    """Range requests straight into the ring's buffers: the whole sharded checkpoint, each
    byte fetched once."""
    from nginx_server import start

    folder = tmp_path / "ckpt"
    st.save_sharded(state(), folder, max_shard_size=3000)
    server = start(tmp_path)
    if server is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    with server:
        expected = {k: raw(v) for k, v in reference(folder).items()}
        mark = server.mark()
        with safe_open(server.url("ckpt/model.safetensors.index.json"), "pt", device="cuda:0") as f:
            out = f.get_tensors()
        fetched = sum(e.body_bytes for e in server.since(mark))
    assert {k: raw(v) for k, v in out.items()} == expected
    check_ring(ring[0], sum(len(b) for b in expected.values()))
    headers = sum(p.stat().st_size for p in folder.iterdir()) - sum(len(b) for b in expected.values())
    assert sum(len(b) for b in expected.values()) <= fetched <= sum(len(b) for b in expected.values()) + headers


# Split along dim 0 (one run of bytes: the ring), past dim 0 (strided runs: read by the
# core's slice planner), along dim 1 of a tensor whose first dim is 1 (one run: the ring),
# and replicated (the ring).
PLAN = {"embed.weight": 0, "layers.0.w": 1, "layers.1.w": 0, "cube": 1, "f8": -1, "ids": 0, "empty": 0}


def expected_part(name, full, world_size, rank):
    dim = PLAN.get(name)
    if dim is None:
        return full
    chunks = torch.chunk(full, world_size, dim)
    return chunks[rank] if rank < len(chunks) else full.narrow(dim, full.shape[dim], 0)


def ring_bytes(parts):
    """The bytes the ring moves: every part that is one run of the file (nothing before the
    split dimension but dimensions of size 1)."""
    total = 0
    for name, part in parts.items():
        dim = PLAN.get(name)
        if dim is None or all(s == 1 for s in part.shape[: dim % max(part.dim(), 1)]):
            total += part.nbytes
    return total


@pytest.mark.parametrize("world_size", [2, 3])
def test_load_for_rank_on_cuda_streams_parts_through_the_ring(location, ring, world_size):
    full = reference(location)
    for rank in range(world_size):
        ring.clear()
        got = st.load_for_rank(location, PLAN, rank=rank, world_size=world_size, device="cuda:0")
        assert list(got) == list(st.load_file(location))  # file order
        want = {k: expected_part(k, v, world_size, rank) for k, v in full.items()}
        for k, v in want.items():
            assert got[k].dtype == v.dtype and got[k].shape == v.shape, (k, rank)
            assert raw(got[k]) == raw(v), (k, rank)
        assert len(ring) == 1
        copier = ring[0]
        staged = ring_bytes(want)
        assert sum(e[3] for e in copier.log if e[0] == "copy") == staged
        assert copier.host_bytes <= SLOT_BYTES * SLOTS
        assert staged > SLOT_BYTES * SLOTS  # more than the ring holds: it was reused


def test_load_for_rank_on_cuda_f4_parts(tmp_path, ring):
    f4 = getattr(torch, "float4_e2m1fn_x2", None)
    if f4 is None:
        pytest.skip("this torch has no float4_e2m1fn_x2")
    flat = torch.arange(24, dtype=torch.uint8).view(f4)  # 1-D: a split is one run
    grid = torch.arange(30, dtype=torch.uint8).reshape(3, 10).view(f4)  # split on -1: strided
    path = tmp_path / "f4.safetensors"
    st.save_file({"flat": flat, "grid": grid}, path)
    for r in range(3):
        got = st.load_for_rank(path, {"flat": 0, "grid": -1}, rank=r, world_size=3, device="cuda:0")
        for name, full, dim in (("flat", flat, 0), ("grid", grid, 1)):
            want = torch.chunk(full, 3, dim)[r]
            assert got[name].dtype == f4 and got[name].shape == want.shape
            assert raw(got[name]) == raw(want.contiguous())
        assert sum(e[3] for e in ring[-1].log if e[0] == "copy") == torch.chunk(flat, 3, 0)[r].nbytes


# --- the same on a real GPU ------------------------------------------------------------------


@pytest.fixture
def small_ring(monkeypatch):
    monkeypatch.setattr(_staging, "DEFAULT_SLOT_BYTES", SLOT_BYTES)
    monkeypatch.setattr(_staging, "DEFAULT_SLOTS", SLOTS)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("ring_size", ["default", "small"])
def test_cuda_get_tensors_and_load_file(location, request, ring_size):
    if ring_size == "small":
        request.getfixturevalue("small_ring")
    expected = {k: raw(v) for k, v in reference(location).items()}
    for backend in ("mmap", "pread"):
        with safe_open(location, "pt", device="cuda:0", backend=backend) as f:
            out = f.get_tensors()
        assert all(v.device == torch.device("cuda:0") for v in out.values())
        assert {k: raw(v) for k, v in out.items()} == expected
    out = st.load_file(location, device="cuda:0")
    assert all(v.device == torch.device("cuda:0") for v in out.values())
    assert {k: raw(v) for k, v in out.items()} == expected


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("world_size", [2, 3])
def test_cuda_load_for_rank(location, small_ring, world_size):
    full = reference(location)
    for rank in range(world_size):
        got = st.load_for_rank(location, PLAN, rank=rank, world_size=world_size, device="cuda:0")
        for k, v in full.items():
            want = expected_part(k, v, world_size, rank)
            assert got[k].device == torch.device("cuda:0"), k
            assert got[k].dtype == want.dtype and got[k].shape == want.shape, k
            assert raw(got[k]) == raw(want), (k, rank)


@pytest.mark.cuda
@needs_cuda
def test_cuda_ring_copies_are_visible_on_the_current_stream(location, small_ring):
    """The ring copies on its own stream; work the user queues on the current stream right
    after the load must see every byte (no explicit synchronize by the user)."""
    expected = reference(location)
    with safe_open(location, "pt", device="cuda:0") as f:
        out = f.get_tensors()
    sums = {k: v.reshape(-1).view(torch.uint8).to(torch.int64).sum() for k, v in out.items() if v.nelement()}
    for k, s in sums.items():
        assert int(s) == int(expected[k].reshape(-1).view(torch.uint8).to(torch.int64).sum()), k


# --- the core's ring, driven directly ---------------------------------------------------------


def test_a_range_outside_its_tensor_is_refused_naming_it_before_its_buffer_is_read(tmp_path):
    path = tmp_path / "model.safetensors"
    st.save_file(state(), path)
    copier = _torch_staging.CpuCopier()
    dsts = [torch.zeros(8, dtype=torch.uint8), torch.zeros(10, dtype=torch.uint8)]
    with safe_open(path, "pt") as f:
        ranges = [("ids", 0, 8, dsts[0]), ("layers.0.b", 30, 10, dsts[1])]
        with pytest.raises(SafetensorError, match=r"byte range 30\.\.40 is outside tensor layers\.0\.b, which has 34"):
            _staging.fill_ranges(f, ranges, copier, slot_bytes=1000, slots=2)
        with pytest.raises(SafetensorError, match="does not contain tensor nope"):
            _staging.fill_ranges(f, [("nope", 0, 1, dsts[0])], copier, slot_bytes=1000, slots=2)
    # The buffer holding the good range was never filled nor copied from.
    assert [e[0] for e in copier.log] == ["host_buffer", "host_buffer"]


def test_verify_checks_a_staged_tensor_before_any_of_its_bytes_are_copied(tmp_path):
    path = tmp_path / "model.safetensors"
    st.save_file(state(), path, checksum="xxh3-64")
    with safe_open(path, "pt") as f:  # the tensor whose bytes end the file
        last = max((k for k in f.keys() if f._layout([k])[0][2]), key=lambda k: f.get_tensor_meta(k).data_offsets)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))
    copier = _torch_staging.CpuCopier()
    with safe_open(path, "pt", verify=True) as f:
        names = f.offset_keys()
        dsts = [torch.zeros(nbytes, dtype=torch.uint8) for _, _, nbytes in f._layout(names)]
        with pytest.raises(SafetensorError, match=last):
            _staging.fill(f, names, dsts, copier, slot_bytes=1 << 20, slots=1)
    assert not [e for e in copier.log if e[0] == "copy"]
    with safe_open(path, "pt", verify=False) as f:  # without verify the same fill goes through
        _staging.fill(f, names, dsts, _torch_staging.CpuCopier(), slot_bytes=1 << 20, slots=1)
    assert raw(dsts[-1])[:-1] == raw(state()[last])[:-1]


def test_the_ring_counts_its_fills(tmp_path):
    path = tmp_path / "model.safetensors"
    st.save_file(state(), path)
    copier = _torch_staging.CpuCopier()
    with safe_open(path, "pt") as f:
        addrs = [copier.host_buffer(100) for _ in range(2)]
        ring = f._staging_ring(addrs, 100, copier, threads=2)
        dst = torch.zeros(250, dtype=torch.uint8)
        ring.add("embed.weight", 10, 250, dst)
        assert ring.flushes == 2  # two buffers filled: their copies are enqueued
        ring.flush()
        ring.flush()  # nothing packed: nothing happens
        assert ring.flushes == 3
        copier.synchronize()
        assert raw(dst) == raw(f.get_tensor("embed.weight"))[10:260]
        with pytest.raises(ValueError, match="null host buffer"):
            f._staging_ring([0], 100, copier)
        with pytest.raises(ValueError, match="at least one buffer"):
            f._staging_ring([], 100, copier)
