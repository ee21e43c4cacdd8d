"""Drop-in, round 2 (issue 20): what a differential run against the reference 0.8 package
found, one test per item, each written as code written for the reference would be.

The exception table at the end lists, for every entry point probed, the input, the type the
reference raises and the type ours raised before: ours must now be an instance of the
reference's type (a class deriving from both is how ours does it).
"""

from __future__ import annotations

import inspect
import io
import json
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import require

import safetensors
from safetensors import SafetensorError, safe_open

torch = require("torch")
import safetensors.numpy as st_np  # noqa: E402
import safetensors.torch as st_pt  # noqa: E402


@pytest.fixture
def model_file(tmp_path) -> Path:
    p = tmp_path / "model.safetensors"
    st_pt.save_file({"a": torch.arange(24, dtype=torch.float32).reshape(2, 3, 4), "b": torch.ones(5)}, p)
    return p


# --- 1. a slice outlives its handle ---------------------------------------------------------


@pytest.mark.parametrize("how", ["mmap", "pread", "bytes", "handle"])
def test_slices_collected_in_the_with_block_read_after_it(model_file, how):
    full = st_pt.load_file(model_file)
    if how == "bytes":
        opened = safetensors._safe_open_bytes(model_file.read_bytes(), "pt")
    elif how == "handle":
        opened = safetensors._safe_open_handle(io.BytesIO(model_file.read_bytes()), "pt")
    else:
        opened = safe_open(model_file, framework="pt", backend=how)
    with opened as f:
        slices = {name: f.get_slice(name) for name in f.keys()}
    with pytest.raises(SafetensorError, match="File is closed"):
        f.get_tensor("a")
    with pytest.raises(SafetensorError, match="File is closed"):
        f.keys()
    assert torch.equal(slices["a"][1, :2], full["a"][1, :2])
    assert torch.equal(slices["b"][:], full["b"])
    assert slices["a"].get_shape() == [2, 3, 4]


# --- 2. torch slices index like torch, numpy slices like numpy ------------------------------

ADVANCED = [
    [0],
    [1, 0, 1],
    (slice(None), [2, 0]),
    (Ellipsis, [0, 3]),
    ([0, 1], [1, 2]),
    (0, slice(None), [1, 2]),  # torch: (3, 2); numpy: (2, 3)
    ([0, 1], slice(None), [1, 2]),
    ([[0, 1], [1, 0]],),
    ([-1, 0], None, slice(1, 3), [3, -4]),
    True,
    False,
    (None, 1, True),
    ([True, False],),
    ([[True, False, True], [False, False, True]],),
    ([],),
    (0, slice(None), []),  # torch: (3, 0); numpy: (0, 3)
]


@pytest.mark.parametrize("index", ADVANCED, ids=repr)
@pytest.mark.parametrize("kind", ["list", "tensor", "ndarray"])
def test_torch_slice_returns_what_the_full_tensor_returns(model_file, index, kind):
    full = st_pt.load_file(model_file)["a"]

    def convert(entry):
        if isinstance(entry, list) and kind == "tensor":
            return torch.tensor(entry) if entry else torch.tensor([], dtype=torch.long)
        if isinstance(entry, list) and kind == "ndarray":
            return np.array(entry) if entry else np.array([], dtype=np.int64)
        return entry

    key = tuple(convert(e) for e in index) if isinstance(index, tuple) else convert(index)
    want = full[key]
    with safe_open(model_file, framework="pt") as f:
        got = f.get_slice("a")[key]
    assert isinstance(got, torch.Tensor)
    assert got.shape == want.shape
    assert torch.equal(got, want)


def test_one_element_index_tensor_is_an_index_array_not_an_int(model_file):
    with safe_open(model_file, framework="pt") as f:
        sl = f.get_slice("a")
        assert sl[torch.tensor([1])].shape == (1, 3, 4)
        assert sl[np.array([1])].shape == (1, 3, 4)
        assert sl[torch.tensor(1)].shape == (3, 4)  # a 0-d tensor is an int, as in torch
        assert sl[:, torch.tensor([2])].shape == (2, 1, 4)


@pytest.mark.parametrize("index", ADVANCED, ids=repr)
def test_numpy_slice_returns_what_the_full_array_returns(tmp_path, index):
    arr = np.arange(24, dtype=np.float32).reshape(2, 3, 4)
    p = tmp_path / "a.safetensors"
    st_np.save_file({"a": arr}, p)
    with safe_open(p, framework="np") as f:
        got = f.get_slice("a")[index]
    want = arr[index]
    assert got.shape == want.shape
    np.testing.assert_array_equal(got, want)


class _CountingReader(io.BytesIO):
    """A file object that counts the bytes read from it."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.bytes_read = 0

    def read(self, n=-1):  # type: ignore[override]
        out = super().read(n)
        self.bytes_read += len(out)
        return out


def test_index_arrays_read_only_the_rows_they_select(tmp_path):
    rows = torch.arange(1000 * 256, dtype=torch.float32).reshape(1000, 256)  # 1 KiB a row
    data = st_pt.save({"emb": rows})
    reader = _CountingReader(data)
    with safetensors._safe_open_handle(reader, "pt") as f:
        after_header = reader.bytes_read
        got = f.get_slice("emb")[torch.tensor([999, 3, 4, 500, 3])]
    assert torch.equal(got, rows[[999, 3, 4, 500, 3]])
    assert reader.bytes_read - after_header <= 4 * 1024  # the 4 distinct rows, not 997


# --- 3. the reference's exception types: see the table at the end -------------------------


# --- 4. arguments the reference takes ------------------------------------------------------


def test_load_file_device_none_loads_to_the_cpu(model_file):
    out = st_pt.load_file(model_file, device=None)
    assert out["a"].device.type == "cpu"
    assert torch.equal(out["a"], torch.arange(24, dtype=torch.float32).reshape(2, 3, 4))


def test_backend_is_keyword_only_where_the_reference_has_it_so(model_file):
    modules = [st_pt, st_np]
    for name in ("flax", "paddle", "mlx", "tensorflow"):
        try:
            modules.append(__import__(f"safetensors.{name}", fromlist=["load_file"]))
        except ImportError:
            pass
    for module in modules:
        params = inspect.signature(module.load_file).parameters
        assert params["backend"].kind is inspect.Parameter.KEYWORD_ONLY, module.__name__
        assert params["backend"].default == "mmap"
    params = inspect.signature(st_pt.load_model).parameters
    assert params["backend"].kind is inspect.Parameter.KEYWORD_ONLY
    assert [params[n].default for n in ("strict", "device")] == [True, "cpu"]
    assert inspect.signature(st_pt.load_file).parameters["device"].default == "cpu"
    with pytest.raises(TypeError):
        st_pt.load_file(model_file, "cpu", "pread")  # type: ignore[misc]


# --- 5. files the reference reads ----------------------------------------------------------


def _file_with_null_metadata(path: Path) -> Path:
    header = json.dumps({"__metadata__": None, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}).encode()
    header += b" " * (-len(header) % 8)
    path.write_bytes(struct.pack("<Q", len(header)) + header + struct.pack("<f", 1.5))
    return path


def test_null_metadata_loads_and_metadata_is_none(tmp_path):
    p = _file_with_null_metadata(tmp_path / "null.safetensors")
    with safe_open(p, framework="np") as f:
        assert f.metadata() is None
        assert f.get_tensor("x").tolist() == [1.5]
    assert st_np.load_file(p)["x"].tolist() == [1.5]
    assert st_np.load(p.read_bytes())["x"].tolist() == [1.5]


# --- 6. load_model's return value ----------------------------------------------------------


class _Tied(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.a = torch.nn.Linear(2, 2, bias=False)
        self.b = torch.nn.Linear(2, 2, bias=False)
        self.b.weight = self.a.weight
        self.c = torch.nn.Linear(2, 2)


def test_load_model_returns_missing_as_a_set_and_reports_one_name_per_tied_group(tmp_path):
    p = tmp_path / "m.safetensors"
    st_pt.save_model(_Tied(), p)
    missing, unexpected = st_pt.load_model(_Tied(), p)
    assert missing == set() and isinstance(missing, set)
    assert unexpected == []

    partial = tmp_path / "partial.safetensors"
    st_pt.save_file({"c.weight": torch.zeros(2, 2)}, partial)
    missing, unexpected = st_pt.load_model(_Tied(), partial, strict=False)
    assert missing == {"a.weight", "c.bias"}  # b.weight is a.weight: reported once, as "a.weight"
    assert unexpected == []
    with pytest.raises(RuntimeError, match='"a.weight", "c.bias"'):
        st_pt.load_model(_Tied(), partial)


# --- 7. names real code imports --------------------------------------------------------------


def test_names_public_projects_import():
    from safetensors.numpy import TensorSpec as np_spec
    from safetensors.torch import (
        _SIZE,
        _TYPES,
        TensorSpec,
        _find_shared_tensors,
        _getdtype,
        _is_complete,
        _remove_duplicate_names,
        _to_ndarray,
        _tobytes,
    )

    assert TensorSpec is np_spec is safetensors.TensorSpec
    assert _getdtype("BF16") is torch.bfloat16 and _TYPES["F8_E4M3"] is torch.float8_e4m3fn
    with pytest.raises(KeyError):
        _getdtype("NOPE")
    assert _SIZE[torch.float16] == 2 and _SIZE[torch.int64] == 8
    t = torch.arange(3, dtype=torch.float32)
    assert _to_ndarray(t)[0].tobytes() == t.numpy().tobytes()  # diffusers' remote_utils
    assert _to_ndarray(t.reshape(3, 1).t())[0].tobytes() == t.numpy().tobytes()
    assert _tobytes(t, "t") == t.numpy().tobytes()
    assert st_np._getdtype("F32") == np.float32
    shared = torch.zeros(4)
    sd = {"x": shared, "y": shared, "z": torch.ones(2)}
    assert sorted(sorted(g) for g in _find_shared_tensors(sd)) == [["x", "y"], ["z"]]
    assert _is_complete(shared) and not _is_complete(shared[1:])
    assert _remove_duplicate_names(sd) == {"x": ["y"]}


def test_torch_distributed_checkpoint_loads_through_its_hugging_face_reader(tmp_path):
    # torch.distributed.checkpoint's HuggingFaceStorageReader imports safetensors.torch._getdtype.
    import torch.distributed.checkpoint as dcp

    if not hasattr(dcp, "HuggingFaceStorageReader"):
        pytest.skip("this torch has no HuggingFaceStorageReader")
    stored = {"w": torch.arange(12, dtype=torch.float32).reshape(3, 4), "b": torch.ones(4, dtype=torch.bfloat16)}
    st_pt.save_file(stored, tmp_path / "model-00001-of-00001.safetensors", metadata={"format": "pt"})
    target = {"w": torch.zeros(3, 4), "b": torch.zeros(4, dtype=torch.bfloat16)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "torch.distributed is ... uninitialized": one process
        dcp.load(target, storage_reader=dcp.HuggingFaceStorageReader(path=str(tmp_path)), no_dist=True)
    assert all(torch.equal(target[k], stored[k]) for k in stored)


def test_paddle_names():
    paddle = require("paddle")
    import safetensors.paddle as paddle_mod

    assert paddle_mod.TensorSpec is safetensors.TensorSpec
    assert paddle_mod.NPDTYPES[paddle.float32] is np.float32
    assert paddle_mod._TYPES["F32"] == paddle.float32 and paddle_mod._getdtype("I64") == paddle.int64


@pytest.mark.parametrize("exc", [SafetensorError("boom"), safetensors.SafetensorIndexError("index 5 is out of range")])
def test_errors_pickle(exc):
    back = pickle.loads(pickle.dumps(exc))
    assert type(back) is type(exc) and str(back) == str(exc)


def test_raised_errors_pickle(model_file):
    with safe_open(model_file, framework="pt") as f:
        with pytest.raises(IndexError) as info:
            f.get_slice("a")[5]
    back = pickle.loads(pickle.dumps(info.value))
    assert isinstance(back, SafetensorError) and isinstance(back, IndexError)


# --- 8. messages carry what the reference's carry -----------------------------------------


def test_messages_name_the_tensor_the_index_the_dimension_and_the_size(model_file):
    with safe_open(model_file, framework="pt") as f:
        with pytest.raises(IndexError, match=r"tensor a.*index 5.*dimension 1.*size 3"):
            f.get_slice("a")[0, 5]
        with pytest.raises(IndexError, match=r"tensor a.*index -7.*dimension 0.*size 2"):
            f.get_slice("a")[[0, -7]]
    with pytest.raises(ValueError, match=r"'a'.*int"):  # the reference: "Key `a` is invalid, ... <class 'int'>"
        st_pt.save({"a": 1})
    with pytest.raises(ValueError, match=r"sparse tensors: `\['s'\]`"):
        st_pt.save({"s": torch.zeros(2, 2).to_sparse()})


# --- 3. the exception table --------------------------------------------------------------------


def _cases(p: Path, tmp: Path):
    """(what, call, the reference's type, the type ours raised before issue 20)."""
    f = safe_open(p, framework="pt")
    fn = safe_open(p, framework="np")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # quantized tensors are deprecated in recent torch
        quint8 = torch.quantize_per_tensor(torch.zeros(2), 0.1, 0, torch.quint8)
    return [
        ("pt slice: index out of range", lambda: f.get_slice("a")[5], IndexError, SafetensorError),
        ("pt slice: negative index out of range", lambda: f.get_slice("a")[-3], IndexError, SafetensorError),
        ("pt slice: list index out of range", lambda: f.get_slice("a")[[5]], IndexError, SafetensorError),
        ("pt slice: too many indices", lambda: f.get_slice("a")[0, 0, 0, 0], IndexError, SafetensorError),
        ("pt slice: too many indices for a vector", lambda: f.get_slice("b")[0, 0], IndexError, SafetensorError),
        ("pt slice: zero step", lambda: f.get_slice("a")[::0], ValueError, SafetensorError),
        ("pt slice: float", lambda: f.get_slice("a")[1.0], IndexError, SafetensorError),
        ("pt slice: float tensor", lambda: f.get_slice("a")[torch.tensor([1.0])], IndexError, SafetensorError),
        ("pt slice: str", lambda: f.get_slice("a")["x"], TypeError, SafetensorError),
        ("np slice: index out of range", lambda: fn.get_slice("a")[5], SafetensorError, SafetensorError),
        ("np slice: zero step", lambda: fn.get_slice("a")[::0], SafetensorError, SafetensorError),
        ("get_tensor: int name", lambda: f.get_tensor(1), TypeError, TypeError),
        ("get_slice: int name", lambda: f.get_slice(1), TypeError, TypeError),
        ("get_tensor: missing name", lambda: f.get_tensor("zz"), SafetensorError, SafetensorError),
        ("safe_open: unknown framework", lambda: safe_open(p, "xx"), SafetensorError, ValueError),
        ("safe_open: unknown backend", lambda: safe_open(p, "pt", backend="xx"), SafetensorError, ValueError),
        ("safe_open: invalid device", lambda: safe_open(p, "pt", device="nope"), SafetensorError, RuntimeError),
        ("safe_open: negative device", lambda: safe_open(p, "pt", device=-1), SafetensorError, RuntimeError),
        ("safe_open: float device", lambda: safe_open(p, "pt", device=1.5), SafetensorError, TypeError),
        ("safe_open: missing file", lambda: safe_open(tmp / "nope", "pt"), FileNotFoundError, FileNotFoundError),
        ("safe_open: int filename", lambda: safe_open(1, "pt"), TypeError, TypeError),
        ("safe_open: framework None", lambda: safe_open(p, None), TypeError, TypeError),
        ("torch.load_file: invalid device", lambda: st_pt.load_file(p, device="nope"), SafetensorError, RuntimeError),
        ("torch.load_file: missing file", lambda: st_pt.load_file(tmp / "nope"), FileNotFoundError, FileNotFoundError),
        ("save_file: to a directory", lambda: st_pt.save_file({"a": torch.zeros(1)}, tmp), SafetensorError, OSError),
        ("save_file: empty path", lambda: st_pt.save_file({"a": torch.zeros(1)}, ""), SafetensorError, OSError),
        (
            "save_file: missing folder",
            lambda: st_pt.save_file({"a": torch.zeros(1)}, tmp / "no" / "x"),
            SafetensorError,
            FileNotFoundError,
        ),
        (
            "torch.save: meta tensor",
            lambda: st_pt.save({"a": torch.zeros(1, device="meta")}),
            NotImplementedError,
            RuntimeError,
        ),
        (
            "torch.save: complex128",
            lambda: st_pt.save({"a": torch.zeros(1, dtype=torch.complex128)}),
            KeyError,
            SafetensorError,
        ),
        ("torch.save: quint8", lambda: st_pt.save({"a": quint8}), KeyError, SafetensorError),
        ("torch.save: not a tensor", lambda: st_pt.save({"a": 1}), ValueError, ValueError),
        ("torch.save: not a dict", lambda: st_pt.save([1]), ValueError, ValueError),
        ("torch.save: int name", lambda: st_pt.save({1: torch.zeros(1)}), TypeError, ValueError),
        ("torch.save: sparse", lambda: st_pt.save({"a": torch.zeros(2, 2).to_sparse()}), ValueError, ValueError),
        ("torch.save: not contiguous", lambda: st_pt.save({"a": torch.zeros(2, 2).t()}), ValueError, ValueError),
        (
            "torch.save: shared memory",
            lambda: st_pt.save({"a": (z := torch.zeros(2)), "b": z}),
            RuntimeError,
            RuntimeError,
        ),
        (
            "torch.save: metadata value",
            lambda: st_pt.save({"a": torch.zeros(1)}, metadata={"a": 1}),
            TypeError,
            TypeError,
        ),
        ("torch.save: metadata list", lambda: st_pt.save({"a": torch.zeros(1)}, metadata=[1]), TypeError, TypeError),
        ("torch.load: bad bytes", lambda: st_pt.load(b"xx"), SafetensorError, SafetensorError),
        ("torch.load: str", lambda: st_pt.load("xx"), TypeError, TypeError),
        ("numpy.save: int value", lambda: st_np.save({"a": 1}), AttributeError, ValueError),
        ("numpy.save: list value", lambda: st_np.save({"a": [1, 2]}), AttributeError, ValueError),
        (
            "numpy.save: complex128",
            lambda: st_np.save({"a": np.zeros(1, dtype=np.complex128)}),
            SafetensorError,
            SafetensorError,
        ),
        ("numpy.save: int name", lambda: st_np.save({1: np.zeros(1)}), TypeError, ValueError),
        ("numpy.load: bad bytes", lambda: st_np.load(b"\0" * 8), SafetensorError, SafetensorError),
        ("serialize: bad value", lambda: safetensors.serialize({"a": 1}), TypeError, TypeError),
        ("serialize: not a dict", lambda: safetensors.serialize(1), TypeError, TypeError),
        ("deserialize: bad bytes", lambda: safetensors.deserialize(b"xx"), SafetensorError, SafetensorError),
        ("deserialize: str", lambda: safetensors.deserialize("xx"), TypeError, TypeError),
        (
            "TensorSpec: unknown dtype",
            lambda: safetensors.TensorSpec(dtype="float99", shape=[1], data_ptr=0, data_len=0),
            SafetensorError,
            SafetensorError,
        ),
    ]


def test_exception_types_are_the_references_across_entry_points(model_file, tmp_path):
    wrong = []
    for what, call, reference, ours_before in _cases(model_file, tmp_path):
        try:
            call()
        except Exception as e:  # noqa: BLE001 - the type is what is checked
            if not (isinstance(e, reference) and isinstance(e, ours_before)):
                wrong.append(
                    f"{what}: {type(e).__mro__[:4]} is not a {reference.__name__} and a {ours_before.__name__}"
                )
        else:
            wrong.append(f"{what}: raised nothing, the reference raises {reference.__name__}")
    assert not wrong, "\n".join(wrong)
