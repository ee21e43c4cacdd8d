"""The framework-independent API: serialize / serialize_file / deserialize / TensorSpec /
safe_open (numpy framework) / get_slice / _safe_open_handle / backends."""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from conftest import header_of
from hypothesis import given, settings
from hypothesis import strategies as st

import safetensors
from safetensors import SafetensorError, TensorSpec, deserialize, safe_open, serialize, serialize_file
from safetensors.numpy import save_file


def spec_of(arr: np.ndarray, dtype: str) -> TensorSpec:
    return TensorSpec(dtype=dtype, shape=list(arr.shape), data_ptr=arr.ctypes.data, data_len=arr.nbytes)


def test_version_and_exports():
    assert isinstance(safetensors.__version__, str) and safetensors.__version__.count(".") >= 2
    for name in ("safe_open", "serialize", "serialize_file", "deserialize", "TensorSpec", "SafetensorError"):
        assert hasattr(safetensors, name)
    assert issubclass(SafetensorError, Exception)
    assert callable(safetensors._safe_open_handle)


def test_serialize_tensorspec_matches_dict_form():
    a = np.arange(12, dtype=np.float32).reshape(3, 4)
    b = np.array([1, 2, 3], dtype=np.int64)
    via_spec = serialize({"a": spec_of(a, "F32"), "b": spec_of(b, "I64")}, metadata={"k": "v"})
    via_dict = serialize(
        {
            "a": {"dtype": "float32", "shape": [3, 4], "data": a.tobytes()},
            "b": {"dtype": "int64", "shape": [3], "data": b.tobytes()},
        },
        metadata={"k": "v"},
    )
    assert via_spec == via_dict
    header, data = header_of(via_spec)
    assert list(header) == ["__metadata__", "b", "a"]  # metadata first, then I64 before F32
    assert header["__metadata__"] == {"k": "v"}
    assert header["b"] == {"dtype": "I64", "shape": [3], "data_offsets": [0, 24]}
    assert data == b.tobytes() + a.tobytes()
    assert (len(via_spec) - len(data)) % 8 == 0  # 8 + N is a multiple of 8


def test_tensorspec_fields():
    a = np.zeros(3, dtype=np.float16)
    s = spec_of(a, "F16")
    assert (s.dtype, s.shape, s.data_ptr, s.data_len) == ("F16", [3], a.ctypes.data, 6)
    assert "TensorSpec" in repr(s)


def test_tensorspec_wrong_length_is_refused():
    a = np.zeros(3, dtype=np.float32)
    with pytest.raises(SafetensorError, match="takes 12 bytes, but 8"):
        serialize({"a": TensorSpec(dtype="F32", shape=[3], data_ptr=a.ctypes.data, data_len=8)})


def test_unknown_dtype_is_refused():
    with pytest.raises(SafetensorError, match="Unknown dtype"):
        serialize({"a": {"dtype": "float128", "shape": [1], "data": b"\0" * 16}})


def test_metadata_must_be_strings():
    with pytest.raises(TypeError, match="metadata values must be str"):
        serialize({}, metadata={"a": 1})


def test_metadata_keeps_insertion_order(tmp_path):
    meta = {"z": "1", "a": "2", "m": "3"}
    out = serialize({}, metadata=meta)
    header, _ = header_of(out)
    assert list(header["__metadata__"]) == ["z", "a", "m"]
    p = tmp_path / "m.safetensors"
    p.write_bytes(out)
    with safe_open(p, "np") as f:
        assert list(f.metadata().items()) == list(meta.items())


def test_deserialize_round_trip():
    a = np.arange(6, dtype=np.int16).reshape(2, 3)
    data = serialize({"a": spec_of(a, "I16"), "s": {"dtype": "F32", "shape": [], "data": np.float32(2.5).tobytes()}})
    out = deserialize(data)
    assert [name for name, _ in out] == ["s", "a"]  # data order: F32 before I16
    d = dict(out)
    assert d["a"]["dtype"] == "I16" and d["a"]["shape"] == [2, 3]
    assert bytes(d["a"]["data"]) == a.tobytes()
    assert d["s"]["shape"] == [] and np.frombuffer(d["s"]["data"], np.float32)[0] == 2.5
    # The output feeds back into serialize unchanged.
    assert serialize(dict(out)) == data


def test_serialize_file_and_safe_open(tmp_path):
    a = np.arange(20, dtype=np.float64).reshape(4, 5)
    p = tmp_path / "x.safetensors"
    serialize_file({"w": spec_of(a, "F64")}, str(p), metadata={"format": "np"})
    assert p.read_bytes() == serialize({"w": spec_of(a, "F64")}, metadata={"format": "np"})
    for backend in ("mmap", "pread"):
        with safe_open(p, framework="np", backend=backend) as f:
            assert f.keys() == ["w"] and f.offset_keys() == ["w"]
            assert f.metadata() == {"format": "np"}
            np.testing.assert_array_equal(f.get_tensor("w"), a)
            assert list(f.get_tensors()) == ["w"]
            assert "w" in f and len(f) == 1


def test_keys_sorted_offset_keys_data_order(tmp_path):
    tensors = {"b": np.zeros(2, np.float32), "a": np.zeros(2, np.float32), "c": np.zeros(2, np.float64)}
    p = tmp_path / "k.safetensors"
    save_file(tensors, p)
    with safe_open(str(p), "numpy") as f:
        assert f.keys() == ["a", "b", "c"]
        assert f.offset_keys() == ["c", "a", "b"]
        assert f.metadata() is None


def test_framework_aliases(tmp_path):
    p = tmp_path / "a.safetensors"
    save_file({"x": np.ones(3, np.float32)}, p)
    for fw in ("np", "numpy"):
        with safe_open(p, fw) as f:
            assert isinstance(f.get_tensor("x"), np.ndarray)


# --- slices -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def sliced_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("slices") / "s.safetensors"
    arr = np.arange(4 * 5 * 6, dtype=np.int32).reshape(4, 5, 6)
    save_file({"t": arr, "s": np.array(7, dtype=np.int64)}, p)
    return p, arr


INDICES = [
    0,
    -1,
    slice(None),
    slice(1, 3),
    slice(-3, -1),
    slice(None, 100),
    slice(-100, 2),
    slice(3, 1),
    (Ellipsis,),
    (Ellipsis, 2),
    (1, Ellipsis, slice(2, 4)),
    (slice(None), 2),
    (slice(1, 3), slice(0, 5), slice(2, 3)),
    (2, 3, 4),
    (-1, -2, -3),
    (slice(None, None, 2),),
    (slice(1, None, 3), Ellipsis, slice(None, None, 4)),
    (slice(None), slice(None, None, 2), 1),
]


@pytest.mark.parametrize("backend", ["mmap", "pread"])
@pytest.mark.parametrize("index", INDICES, ids=repr)
def test_get_slice_matches_numpy(sliced_file, backend, index):
    p, arr = sliced_file
    with safe_open(p, "np", backend=backend) as f:
        sl = f.get_slice("t")
        assert sl.get_shape() == [4, 5, 6]
        assert sl.get_dtype() == "I32"
        got = sl[index]
        want = arr[index]
        assert got.shape == want.shape
        np.testing.assert_array_equal(got, want)
        assert isinstance(got, np.ndarray)
        assert got.flags["C_CONTIGUOUS"]
        if backend == "mmap" and want.size and want.flags["C_CONTIGUOUS"]:
            # One contiguous run of the file: a view into the private file mapping.
            assert not got.flags["OWNDATA"]
        else:
            # Several runs (or none): copied into a new array.
            assert got.flags["OWNDATA"]


@settings(max_examples=200, deadline=None, database=None)
@given(data=st.data())
def test_get_slice_property(sliced_file, data):
    p, arr = sliced_file

    def one(size):
        return st.one_of(
            st.integers(-size, size - 1),
            st.builds(
                slice, st.none() | st.integers(-8, 8), st.none() | st.integers(-8, 8), st.none() | st.integers(1, 4)
            ),
        )

    n = data.draw(st.integers(0, 3))
    index = tuple(data.draw(one(arr.shape[i])) for i in range(n))
    with safe_open(p, "np") as f:
        np.testing.assert_array_equal(f.get_slice("t")[index], arr[index])


def test_scalar_slice(sliced_file):
    p, _ = sliced_file
    with safe_open(p, "np") as f:
        s = f.get_slice("s")
        assert s.get_shape() == []
        assert s[...] == 7 and s[()].shape == ()


@pytest.mark.parametrize(
    "index, message",
    [
        (4, "out of range"),
        (-5, "out of range"),
        ((0, 0, 0, 0), "4 indices given for a tensor of rank 3"),
        ((Ellipsis, Ellipsis), "single ellipsis"),
        (slice(None, None, 0), "step cannot be zero"),
        ("a", "valid indices .got str"),
        (1.0, "valid indices .got float"),
        ([0, 9], "index 9 is out of range for dimension 0"),
        ([True], "shape of the mask"),
    ],
)
def test_bad_slices(sliced_file, index, message):
    p, _ = sliced_file
    with safe_open(p, "np") as f:
        with pytest.raises(SafetensorError, match=message):
            f.get_slice("t")[index]


# --- other sources ----------------------------------------------------------------------


def test_safe_open_handle_file_object(sliced_file):
    p, arr = sliced_file
    with open(p, "rb") as fh:
        with safetensors._safe_open_handle(fh, "np") as f:
            assert f.keys() == ["s", "t"]
            np.testing.assert_array_equal(f.get_tensor("t"), arr)
            np.testing.assert_array_equal(f.get_slice("t")[1:3, ::2], arr[1:3, ::2])


def test_safe_open_handle_bytesio_and_fsspec(sliced_file):
    fsspec = pytest.importorskip("fsspec")
    p, arr = sliced_file
    with safetensors._safe_open_handle(io.BytesIO(p.read_bytes()), "np") as f:
        np.testing.assert_array_equal(f.get_tensor("t"), arr)
    fs = fsspec.filesystem("memory")
    fs.pipe("/st/model.safetensors", p.read_bytes())
    with fs.open("/st/model.safetensors", "rb") as fh:
        f = safetensors._safe_open_handle(fh, framework="np")
        np.testing.assert_array_equal(f.get_slice("t")[-1], arr[-1])
        assert f.get_tensor("s") == 7
    with fsspec.open(f"file://{p}", "rb") as fh:
        f = safetensors._safe_open_handle(fh, "np")
        np.testing.assert_array_equal(f.get_tensor("t"), arr)


def test_safe_open_handle_rejects_bad_data():
    with pytest.raises(SafetensorError):
        safetensors._safe_open_handle(io.BytesIO(b"\x10" + b"\0" * 7 + b"{}"), "np")
    with pytest.raises(SafetensorError, match="binary mode"):
        safetensors._safe_open_handle(io.StringIO("x" * 32), "np")


def test_safe_open_handle_text_mode_file_object(sliced_file):
    p, arr = sliced_file
    with open(p, "r") as fh:  # noqa: UP015 - text mode is the point
        with safetensors._safe_open_handle(fh, "np") as f:
            np.testing.assert_array_equal(f.get_tensor("t"), arr)
            np.testing.assert_array_equal(f.get_slice("t")[::-1, 2], arr[::-1, 2])


def test_header_is_only_what_is_read(tmp_path):
    # A header claiming a huge length is rejected before any large allocation.
    p = tmp_path / "big.safetensors"
    p.write_bytes(struct.pack("<Q", 99_000_000) + b"{}")
    with pytest.raises(SafetensorError):
        safe_open(p, "np")


def test_unicode_and_escaped_names(tmp_path):
    names = {"名前": np.ones(2, np.float32), 'a"quote\\': np.zeros(1, np.int32), "layer.0/κ": np.ones(2, np.float32)}
    p = tmp_path / "u.safetensors"
    save_file(names, p)
    header, _ = header_of(p.read_bytes())
    assert set(header) == set(names)
    with safe_open(p, "np") as f:
        assert set(f.keys()) == set(names)
        for k, v in names.items():
            np.testing.assert_array_equal(f.get_tensor(k), v)
