"""safetensors.torch: save/load round trips for every torch dtype, save_model/load_model
with tied weights, the shared-storage helpers, errors, and the device path."""

from __future__ import annotations

import os
import warnings

import pytest
from conftest import header_of, require
from frameworks import (
    advanced_key,
    shapes_and_advanced_indices,
    shapes_and_indices,
)

torch = require("torch")

import numpy as np  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402

import safetensors  # noqa: E402
import safetensors.torch  # noqa: E402
from safetensors import SafetensorError, safe_open  # noqa: E402
from safetensors.torch import (  # noqa: E402
    _end_ptr,
    _find_shared_tensors,
    _is_complete,
    _remove_duplicate_names,
    load,
    load_file,
    load_model,
    save,
    save_file,
    save_model,
    storage_ptr,
    storage_size,
)

DTYPES = {
    "BOOL": torch.bool,
    "U8": torch.uint8,
    "I8": torch.int8,
    "U16": torch.uint16,
    "I16": torch.int16,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
    "U32": torch.uint32,
    "I32": torch.int32,
    "F32": torch.float32,
    "C64": torch.complex64,
    "U64": torch.uint64,
    "I64": torch.int64,
    "F64": torch.float64,
    "F8_E5M2": torch.float8_e5m2,
    "F8_E4M3": torch.float8_e4m3fn,
    "F8_E4M3FNUZ": torch.float8_e4m3fnuz,
    "F8_E5M2FNUZ": torch.float8_e5m2fnuz,
    "F8_E8M0": torch.float8_e8m0fnu,
    "F4": torch.float4_e2m1fn_x2,
}


def raw(t: torch.Tensor) -> bytes:
    """The tensor's bytes: exact bit comparison, NaNs included."""
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


def make(dtype: torch.dtype, shape, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.randint(0, 2, shape, generator=g).bool()
    size = torch.empty(0, dtype=dtype).element_size()
    n = 1
    for d in shape:
        n *= d
    bits = torch.randint(0, 256, (n * size,), dtype=torch.uint8, generator=g)
    return bits.view(dtype).reshape(shape)


SHAPES = [(3, 4), (), (0,), (2, 0, 3), (1, 1, 1, 2)]


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("header", list(DTYPES))
def test_round_trip_every_dtype(header, shape, tmp_path):
    dtype = DTYPES[header]
    if header == "F4" and (shape == () or shape[-1] == 0 and len(shape) == 1):
        shape = (2, 0) if shape else (1,)
    t = make(dtype, shape)
    p = tmp_path / "t.safetensors"
    save_file({"t": t}, p, metadata={"framework": "pt"})
    h, _ = header_of(p.read_bytes())
    assert h["t"]["dtype"] == header
    expect_shape = list(shape)
    if header == "F4":
        expect_shape[-1] *= 2
    assert h["t"]["shape"] == expect_shape
    for loaded in (load_file(p)["t"], load(p.read_bytes())["t"], load_file(p, device="cpu")["t"]):
        assert loaded.dtype == dtype and loaded.shape == t.shape
        assert raw(loaded) == raw(t)
    with safe_open(p, "pt") as f:
        assert f.metadata() == {"framework": "pt"}
    assert save({"t": t}, metadata={"framework": "pt"}) == p.read_bytes()


def test_values_and_order(tmp_path):
    tensors = {
        "b": torch.arange(10, dtype=torch.float32),
        "a": torch.ones(2, 2, dtype=torch.float64),
        "c": torch.zeros(3, dtype=torch.int8),
    }
    p = tmp_path / "m.safetensors"
    save_file(tensors, str(p))
    out = load_file(p)
    assert list(out) == ["a", "b", "c"]  # data order: F64, F32, I8
    for k in tensors:
        assert torch.equal(out[k], tensors[k])


def test_loaded_tensors_are_writable_and_independent(tmp_path):
    p = tmp_path / "w.safetensors"
    save_file({"x": torch.zeros(4)}, p)
    a = load_file(p)["x"]
    a += 1
    assert torch.equal(load_file(p)["x"], torch.zeros(4))


def test_get_slice_torch(tmp_path):
    t = torch.arange(60, dtype=torch.bfloat16).reshape(3, 4, 5)
    p = tmp_path / "s.safetensors"
    save_file({"t": t}, p)
    indices = [
        (slice(None), slice(None, 2)),
        (1,),
        (-1, slice(1, -1), 3),
        (Ellipsis, slice(None, None, 2)),
        (slice(0, 3, 2), 1),
    ]
    for backend in ("mmap", "pread"):
        with safe_open(p, framework="pt", device="cpu", backend=backend) as f:
            sl = f.get_slice("t")
            assert sl.get_shape() == [3, 4, 5] and sl.get_dtype() == "BF16"
            whole = f.get_tensor("t")
            for index in indices:
                got = sl[index]
                assert torch.equal(got, t[index])
                assert got.is_contiguous()
                if backend == "mmap" and t[index].is_contiguous():
                    # One contiguous run of the file: a view of the mapping, at the very
                    # address of the same elements in the whole tensor's view.
                    assert got.untyped_storage().nbytes() == t[index].nbytes
                    assert got.data_ptr() - whole.data_ptr() == t[index].data_ptr() - t.data_ptr()


def test_get_slice_f4(tmp_path):
    t = make(torch.float4_e2m1fn_x2, (4, 3))  # header shape [4, 6]
    p = tmp_path / "f4.safetensors"
    save_file({"t": t}, p)
    with safe_open(p, "pt") as f:
        sl = f.get_slice("t")
        assert sl.get_shape() == [4, 6]
        assert raw(sl[1:3]) == raw(t[1:3])
        assert raw(sl[:, 2:6]) == raw(t[:, 1:3])
        with pytest.raises(SafetensorError, match="byte"):
            sl[:, 1:4]
        assert raw(sl[::2]) == raw(t[::2])  # whole rows (3 bytes each) every other row
        assert raw(sl[::-1]) == raw(t.view(torch.uint8).flip(0))
        with pytest.raises(SafetensorError, match="byte"):
            sl[:, ::2]  # single 4-bit elements


def test_non_contiguous_refused_target_untouched(tmp_path):
    p = tmp_path / "nc.safetensors"
    p.write_bytes(b"old")
    with pytest.raises(ValueError, match="non contiguous"):
        save_file({"t": torch.zeros(4, 5).t()}, p)
    assert p.read_bytes() == b"old"


def test_shared_tensors_refused_target_untouched(tmp_path):
    p = tmp_path / "sh.safetensors"
    p.write_bytes(b"old")
    a = torch.zeros(4, 4)
    with pytest.raises(RuntimeError, match="save_model"):
        save_file({"a": a, "b": a}, p)
    with pytest.raises(RuntimeError, match="share memory"):
        save({"a": a, "b": a[:2]})
    assert p.read_bytes() == b"old"


def test_disjoint_views_of_one_storage_are_not_shared():
    base = torch.arange(8.0)
    sd = {"lo": base[:4], "hi": base[4:]}
    groups = _find_shared_tensors(sd)
    assert sorted(map(sorted, groups)) == [["hi"], ["lo"]]
    assert load(save(sd))["hi"].tolist() == [4.0, 5.0, 6.0, 7.0]


def test_other_bad_inputs():
    with pytest.raises(ValueError, match="torch.Tensor"):
        save({"a": [1, 2]})
    with pytest.raises(ValueError, match="dict.*received list"):
        save([torch.zeros(1)])
    with pytest.raises(TypeError, match="metadata values must be str"):
        save({"a": torch.zeros(1)}, metadata={"n": 1})
    with pytest.raises(SafetensorError, match="cannot be loaded as a torch"):
        from safetensors import serialize

        load(serialize({"x": {"dtype": "F6_E2M3", "shape": [4], "data": b"\0\0\0"}}))


def test_storage_helpers():
    base = torch.zeros(10, dtype=torch.float32)
    view = base[2:5]
    assert storage_ptr(view) == storage_ptr(base) == base.data_ptr()
    assert storage_size(view) == storage_size(base) == 40
    assert _end_ptr(base) == base.data_ptr() + 40
    assert _end_ptr(view) == base.data_ptr() + 20
    assert _is_complete(base) and not _is_complete(view)
    strided = torch.zeros(4, 6)[:, ::2]
    assert _end_ptr(strided) == strided.data_ptr() + ((3 * 6 + 2 * 2) + 1) * 4
    empty = torch.zeros(0)
    assert _end_ptr(empty) == empty.data_ptr()


def test_find_shared_and_remove_duplicate_names():
    a = torch.zeros(3, 3)
    sd = {"x": a, "y": a, "z": a[0], "w": torch.ones(2)}
    groups = _find_shared_tensors(sd)
    assert {"x", "y", "z"} in groups and {"w"} in groups
    assert dict(_remove_duplicate_names(sd)) == {"x": ["y", "z"]}
    assert dict(_remove_duplicate_names(sd, discard_names=["x"])) == {"y": ["x", "z"]}
    assert dict(_remove_duplicate_names(sd, preferred_names=["y"])) == {"y": ["x", "z"]}
    with pytest.raises(RuntimeError, match="entire storage"):
        _remove_duplicate_names({"p": a[0], "q": a[:2]})


class Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = torch.nn.Embedding(10, 4)
        self.lm_head = torch.nn.Linear(4, 10, bias=False)
        self.lm_head.weight = self.embed.weight  # tied
        self.norm = torch.nn.LayerNorm(4)


def test_save_model_load_model_tied(tmp_path):
    torch.manual_seed(0)
    model = Tied()
    p = tmp_path / "model.safetensors"
    with pytest.raises(RuntimeError, match="save_model"):
        save_file(model.state_dict(), p)
    save_model(model, p, metadata={"format": "pt"})
    with safe_open(p, "pt") as f:
        assert f.keys() == ["embed.weight", "norm.bias", "norm.weight"]
        assert f.metadata() == {"format": "pt", "lm_head.weight": "embed.weight"}
    fresh = Tied()
    missing, unexpected = load_model(fresh, p)
    assert missing == set() and unexpected == []  # a set and a list, as the reference returns
    assert torch.equal(fresh.embed.weight, model.embed.weight)
    assert fresh.lm_head.weight.data_ptr() == fresh.embed.weight.data_ptr()  # still tied
    assert torch.equal(fresh.norm.weight, model.norm.weight)


def test_load_model_strict_and_non_strict(tmp_path):
    model = Tied()
    p = tmp_path / "partial.safetensors"
    sd = model.state_dict()
    save_file({"embed.weight": sd["embed.weight"].clone(), "extra": torch.zeros(1)}, p)
    with pytest.raises(RuntimeError, match='Missing key.*"norm.bias", "norm.weight"(?s:.*)Unexpected key.*"extra"'):
        load_model(Tied(), p)
    missing, unexpected = load_model(Tied(), p, strict=False)
    assert missing == {"norm.bias", "norm.weight"} and unexpected == ["extra"]


def test_save_model_force_contiguous(tmp_path):
    class M(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.register_buffer("t", torch.arange(12.0).reshape(3, 4).t())

    p = tmp_path / "c.safetensors"
    with pytest.raises(ValueError, match="force_contiguous"):
        save_model(M(), p, force_contiguous=False)
    save_model(M(), p)
    m = M()
    m.t.zero_()
    load_model(m, p)
    assert torch.equal(m.t, torch.arange(12.0).reshape(3, 4).t())


def test_device_argument_forms(tmp_path):
    p = tmp_path / "d.safetensors"
    save_file({"x": torch.ones(2)}, p)
    for device in ("cpu", torch.device("cpu")):
        assert load_file(p, device=device)["x"].device.type == "cpu"
    with pytest.raises(RuntimeError):
        load_file(p, device="nonsense")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_load_file_to_cuda(tmp_path):
    tensors = {"a": torch.randn(64, 64), "b": torch.arange(10), "c": make(torch.float8_e4m3fn, (3, 3))}
    p = tmp_path / "g.safetensors"
    save_file(tensors, p)
    for device in ("cuda:0", 0, "cuda"):
        out = load_file(p, device=device)
        for k, t in tensors.items():
            assert out[k].device.type == "cuda"
            assert raw(out[k].cpu()) == raw(t)
    with safe_open(p, "pt", device="cuda:0") as f:
        assert f.get_slice("a")[:2].device.type == "cuda"
    # Saving tensors that live on the GPU copies them to host memory first.
    cuda_tensors = {k: v.to("cuda:0") for k, v in tensors.items()}
    assert save(cuda_tensors) == save(tensors)
    model = Tied().cuda()
    q = tmp_path / "m.safetensors"
    save_model(model, q)
    fresh = Tied().cuda()
    assert load_model(fresh, q, device="cuda:0") == (set(), [])
    assert torch.equal(fresh.embed.weight, model.embed.weight)


# --- zero-copy loading (mmap backend) -------------------------------------------------------


def _file_mappings(path) -> list:
    """(start, end, perms) of this process's mappings of ``path`` (Linux /proc/self/maps)."""
    real = os.path.realpath(path)
    out = []
    with open("/proc/self/maps", encoding="utf-8") as f:
        for line in f:
            parts = line.split(None, 5)
            if len(parts) == 6 and parts[5].strip() == real:
                lo, hi = (int(x, 16) for x in parts[0].split("-"))
                out.append((lo, hi, parts[1]))
    return out


needs_proc_maps = pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc/self/maps")


def _model_file(tmp_path):
    tensors = {
        "w": make(torch.float32, (64, 32), seed=1),
        "b": make(torch.bfloat16, (32,), seed=2),
        "i": torch.arange(12, dtype=torch.int64).reshape(3, 4),
        "s": torch.tensor(3.5, dtype=torch.float64),
        "f8": make(torch.float8_e4m3fn, (5, 3), seed=3),
    }
    p = tmp_path / "m.safetensors"
    save_file(tensors, p)
    return p, tensors


@needs_proc_maps
def test_load_file_views_private_mapping(tmp_path):
    p, tensors = _model_file(tmp_path)
    out = load_file(p)
    maps = _file_mappings(p)
    assert maps, "the file is not mapped"
    storages = set()
    for k, t in out.items():
        assert raw(t) == raw(tensors[k])
        ptr = t.data_ptr()
        owner = [perms for lo, hi, perms in maps if lo <= ptr and ptr + t.nbytes <= hi]
        # Inside a private (copy-on-write), writable mapping of the file: no copy was made.
        assert owner and owner[0].startswith("rw") and owner[0].endswith("p"), (k, owner, maps)
        # Each tensor has a storage of exactly its own bytes, like torch.frombuffer.
        assert t.untyped_storage().nbytes() == t.nbytes
        assert t.untyped_storage().data_ptr() == ptr
        storages.add(t.untyped_storage().data_ptr())
    assert len(storages) == len(out)
    assert _find_shared_tensors(out) == [{k} for k in out]


def test_pread_backend_copies(tmp_path):
    p, tensors = _model_file(tmp_path)
    with safe_open(p, "pt", backend="pread") as f:
        got = f.get_tensor("w")
    assert raw(got) == raw(tensors["w"])
    if os.path.exists("/proc/self/maps"):
        ptr = got.data_ptr()
        assert not any(lo <= ptr < hi for lo, hi, _ in _file_mappings(p))


def test_writes_to_loaded_tensors_never_reach_the_file(tmp_path):
    p, tensors = _model_file(tmp_path)
    before = p.read_bytes()
    out = load_file(p)
    out["w"].fill_(7.0)
    out["i"][1, 2] = -1
    with safe_open(p, "pt") as f:
        t = f.get_tensor("b")
        t.zero_()
        sl = f.get_slice("w")[2:4]
        sl.add_(1)
    assert p.read_bytes() == before
    # A new load sees the file, not the private writes of the old one.
    again = load_file(p)
    for k, t in tensors.items():
        assert raw(again[k]) == raw(t)
    assert torch.all(out["w"] == 7.0) and out["i"][1, 2] == -1


def test_views_outlive_the_handle(tmp_path):
    import gc

    p, tensors = _model_file(tmp_path)
    with safe_open(p, "pt") as f:
        got = {k: f.get_tensor(k) for k in f.keys()}
        part = f.get_slice("w")[::2, 1:5]
    del f
    gc.collect()
    for k, t in tensors.items():
        assert raw(got[k]) == raw(t)
    assert torch.equal(part, tensors["w"][::2, 1:5])
    loaded = load_file(p)
    gc.collect()
    ptrs = {k: t.data_ptr() for k, t in loaded.items()}
    gc.collect()
    for k, t in tensors.items():  # the load_file handle is gone: the mapping is not
        assert loaded[k].data_ptr() == ptrs[k] and raw(loaded[k]) == raw(t)


def test_resave_loaded_state_dict(tmp_path):
    p, tensors = _model_file(tmp_path)
    out = load_file(p)
    q = tmp_path / "again.safetensors"
    save_file(out, q)  # views of one mapping are not "shared tensors"
    assert q.read_bytes() == p.read_bytes()
    assert save(out) == p.read_bytes()


def test_unaligned_vector_loads_through_copy():
    from conftest import VECTORS, manifest

    entry = manifest()["valid"]["padded_unaligned"]
    p = VECTORS / "valid" / "padded_unaligned.safetensors"
    assert (8 + entry["header_len"]) % 4 != 0  # the F32 data really is misaligned
    data = p.read_bytes()
    _, body = header_of(data)
    want = torch.frombuffer(bytearray(body[:24]), dtype=torch.float32)
    for backend in ("mmap", "pread"):
        with safe_open(p, "pt", backend=backend) as f:
            t = f.get_tensor("t")
            assert torch.equal(t, want)
            assert t.data_ptr() % 4 == 0
            assert torch.equal(f.get_slice("t")[1:5:2], want[1:5:2])
    assert torch.equal(load_file(p)["t"], want)


def test_empty_and_f4_tensors_load_through_copy(tmp_path):
    tensors = {
        "e": torch.empty((0, 3), dtype=torch.float32),
        "f4": make(torch.float4_e2m1fn_x2, (2, 3)),
        "x": torch.arange(6, dtype=torch.int16),
    }
    p = tmp_path / "e.safetensors"
    save_file(tensors, p)
    out = load_file(p)
    assert out["e"].shape == (0, 3)
    assert raw(out["f4"]) == raw(tensors["f4"]) and out["f4"].dtype == torch.float4_e2m1fn_x2
    assert torch.equal(out["x"], tensors["x"])
    with safe_open(p, "pt") as f:
        assert f.get_slice("e")[:, 1:].shape == (0, 2)


def test_file_shrunk_after_open_is_refused(tmp_path):
    p, _ = _model_file(tmp_path)
    with safe_open(p, "pt") as f:
        os.truncate(p, 100)
        with pytest.raises(SafetensorError, match="changed|size|bytes"):
            f.get_tensor("w")
        with pytest.raises(SafetensorError, match="changed|size|bytes"):
            f.get_slice("w")[:1]


# --- drop-in behaviours (the reference package's, to the letter) -------------------------


def _huge(index) -> bool:
    """Whether a slice in ``index`` has a bound or step past 2**62, where torch truncates it
    (with a warning) and can give a negative size."""
    entries = index if isinstance(index, tuple) else (index,)
    parts = [p for e in entries if isinstance(e, slice) for p in (e.start, e.stop, e.step)]
    return any(isinstance(p, int) and abs(p) >= 2**62 for p in parts)


def _numpy_indexing(arr: np.ndarray, index):
    """numpy's result for a basic ``index`` read with torch's rule for a second ``...`` (it
    selects nothing), or None where numpy raises."""
    if isinstance(index, tuple) and sum(e is Ellipsis for e in index) > 1:
        first = next(i for i, e in enumerate(index) if e is Ellipsis)
        index = tuple(e for i, e in enumerate(index) if e is not Ellipsis or i == first)
    try:
        return torch.from_numpy(np.array(arr[index]))
    except (IndexError, ValueError, TypeError):
        return None


def _torch_indexing(arr: np.ndarray, index):
    """What torch gives for ``full[index]``, or None where it raises. A negative step, which
    torch refuses, gives numpy's result: ours reads it (a deliberate difference, README);
    so do huge slice bounds, which torch truncates."""
    if _huge(index) or (isinstance(index, tuple) and sum(e is Ellipsis for e in index) > 1):
        # torch's own results for several `...` are inconsistent (t[..., None, ...] adds the
        # new axis last, t[..., ..., 0] fails): ours reads every `...` after the first as
        # nothing, which is what torch gives for t[..., ...] (README).
        return _numpy_indexing(arr, index)
    full = torch.from_numpy(arr)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns when it truncates a huge slice bound
            return full[index]
    except ValueError as e:
        if "step must be greater than zero" not in str(e):
            return None
    except Exception:  # torch raises IndexError, TypeError, RuntimeError (overflow), ...
        return None
    return _numpy_indexing(arr, index)


def _check_torch_slice(tmp_path_factory, arr: np.ndarray, index) -> None:
    want = _torch_indexing(arr, index)
    p = tmp_path_factory.mktemp("prop") / "t.safetensors"
    save_file({"t": torch.from_numpy(arr)}, p)
    with safe_open(p, "pt") as f:
        if want is None:
            with pytest.raises(SafetensorError):
                f.get_slice("t")[index]
        else:
            try:
                got = f.get_slice("t")[index]
            except IndexError as e:
                # torch skips its bounds check when the result is empty; ours (as numpy)
                # refuses a position out of range whatever the result (README).
                assert want.numel() == 0 and "out of range" in str(e), (index, e)
                return
            assert tuple(got.shape) == tuple(want.shape), (index, tuple(got.shape), tuple(want.shape))
            assert torch.equal(got, want)


@settings(max_examples=100, deadline=None, database=None)
@given(case=shapes_and_indices())
def test_get_slice_is_torch_indexing_property(tmp_path_factory, case):
    shape, index = case
    arr = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    _check_torch_slice(tmp_path_factory, arr, index)


@settings(max_examples=300, deadline=None, database=None)
@given(case=shapes_and_advanced_indices())
def test_get_slice_is_torch_advanced_indexing_property(tmp_path_factory, case):
    """Lists, int tensors, numpy int arrays, bools and masks, mixed with basic entries: what
    torch gives for the full tensor, or an error where torch raises one."""
    shape, entries, kinds, bare = case
    # Negative steps, which torch refuses and ours reads (numpy's result), are covered above.
    # So are huge slice bounds, which torch truncates.
    assume(not any(isinstance(e, slice) and e.step is not None and e.step < 0 for e in entries))
    assume(not _huge(tuple(entries)) and sum(e is Ellipsis for e in entries) <= 1)
    arr = np.arange(int(np.prod(shape)), dtype=np.float32).reshape(shape)
    _check_torch_slice(tmp_path_factory, arr, advanced_key(entries, kinds, bare, torch.from_numpy))


def test_empty_list_selects_nothing_torch(tmp_path):
    p = tmp_path / "t.safetensors"
    save_file({"t": torch.ones(3, 2)}, p)
    with safe_open(p, "pt") as f:
        got = f.get_slice("t")[[]]
    assert got.shape == (0, 2) and got.dtype == torch.float32


def test_negative_steps_torch_bf16(tmp_path):
    t = torch.arange(60, dtype=torch.bfloat16).reshape(3, 4, 5)
    p = tmp_path / "t.safetensors"
    save_file({"t": t}, p)
    for backend in ("mmap", "pread"):
        with safe_open(p, "pt", backend=backend) as f:
            got = f.get_slice("t")[::-1, 1, ::-2]
        assert torch.equal(got, t.flip(0)[:, 1].flip(-1)[:, ::2])
        assert got.is_contiguous()


def test_text_mode_file_object_torch(tmp_path):
    p = tmp_path / "t.safetensors"
    save_file({"t": torch.arange(6.0)}, p)
    with open(p, "r") as fh:  # noqa: UP015 - text mode is the point
        with safetensors._safe_open_handle(fh, "pt") as f:
            assert torch.equal(f.get_tensor("t"), torch.arange(6.0))


def test_load_file_pread_with_a_device_torch(tmp_path):
    tensors = {"a": torch.arange(6.0).reshape(2, 3)}
    save_file(tensors, tmp_path / "b.safetensors")
    out = load_file(tmp_path / "b.safetensors", device="cpu", backend="pread")
    assert torch.equal(out["a"], tensors["a"])


def test_meta_tensor_save_raises_torchs_copy_error(tmp_path):
    meta = {"m": torch.empty(2, 3, device="meta")}
    for call in (lambda: save(meta), lambda: save_file(meta, tmp_path / "m.safetensors")):
        with pytest.raises(RuntimeError, match="Cannot copy out of meta tensor"):
            call()
    assert not (tmp_path / "m.safetensors").exists()


def test_find_shared_tensors_leaves_meta_tensors_out():
    w = torch.zeros(4)
    sd = {"m1": torch.empty(2, device="meta"), "m2": torch.empty(2, device="meta"), "w": w, "v": w}
    assert sorted(map(sorted, _find_shared_tensors(sd))) == [["v", "w"]]


def test_sparse_tensor_refused_naming_keys_and_to_dense():
    sparse = torch.eye(3).to_sparse()
    with pytest.raises(ValueError, match=r"(?s)\['s'\].*to_dense"):
        save({"s": sparse, "d": torch.zeros(1)})


def test_remove_duplicate_names_refuses_a_lone_partial_view():
    lone = torch.zeros(10)[:5]
    with pytest.raises(RuntimeError, match="no suitable name to keep"):
        _remove_duplicate_names({"part": lone})
    # Whole tensors and empty views are fine.
    assert _remove_duplicate_names({"whole": torch.zeros(3), "empty": torch.zeros(10)[:0]}) == {}


class _Tied(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Linear(2, 2)
        self.b = torch.nn.Linear(2, 2)
        self.b.weight = self.a.weight
        self.b.bias = self.a.bias


def test_load_model_tied_weights_stored_separately_are_unexpected(tmp_path):
    p = tmp_path / "untied.safetensors"
    stored = {
        "a.weight": torch.full((2, 2), 1.0),
        "a.bias": torch.full((2,), 2.0),
        "b.weight": torch.full((2, 2), 3.0),
        "b.bias": torch.full((2,), 4.0),
    }
    save_file(stored, p)
    with pytest.raises(RuntimeError) as excinfo:
        load_model(_Tied(), p)
    assert str(excinfo.value) == (
        'Error(s) in loading state_dict for _Tied:\n\tUnexpected key(s) in state_dict: "b.bias", "b.weight". '
    )
    model = _Tied()
    missing, unexpected = load_model(model, p, strict=False, backend="pread")
    assert missing == set() and unexpected == ["b.bias", "b.weight"]
    assert torch.equal(model.a.weight, stored["a.weight"]) and torch.equal(model.b.bias, stored["a.bias"])


def test_load_model_accepts_backend_and_device(tmp_path):
    model = _Tied()
    p = tmp_path / "m.safetensors"
    save_model(model, p)
    for backend in ("mmap", "pread"):
        fresh = _Tied()
        assert load_model(fresh, p, strict=True, device="cpu", backend=backend) == (set(), [])
        assert torch.equal(fresh.a.weight, model.a.weight)
    with pytest.raises(ValueError, match="backend"):
        load_model(_Tied(), p, backend="nonsense")
