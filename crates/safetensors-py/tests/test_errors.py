"""Bad input gets a clear error of the right class, and a failed save never touches an
existing target file. (Invalid conformance vectors are in test_vectors.py; torch's shared and
non-contiguous tensors in test_torch.py.)"""

from __future__ import annotations

import os

import numpy as np
import pytest

import safetensors
from safetensors import SafetensorError, TensorSpec, safe_open, serialize, serialize_file
from safetensors.numpy import load, load_file, save, save_file


@pytest.fixture
def good(tmp_path):
    p = tmp_path / "good.safetensors"
    save_file({"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.zeros(4, dtype=np.int64)}, p)
    return p


def test_missing_file(tmp_path):
    missing = tmp_path / "nope.safetensors"
    for backend in ("mmap", "pread"):
        with pytest.raises(FileNotFoundError, match="nope.safetensors"):
            safe_open(missing, "np", backend=backend)
    with pytest.raises(FileNotFoundError):
        load_file(str(missing))


def test_directory_is_not_a_file(tmp_path):
    with pytest.raises(OSError):
        safe_open(tmp_path, "np")


def test_missing_tensor(good):
    with safe_open(good, "np") as f:
        with pytest.raises(SafetensorError, match="does not contain tensor c.*keys()"):
            f.get_tensor("c")
        with pytest.raises(SafetensorError, match="does not contain tensor c"):
            f.get_slice("c")


def test_unknown_framework_and_backend(good):
    # A SafetensorError, as the reference raises, that is also the ValueError ours raised.
    with pytest.raises(SafetensorError, match='framework "jnp" is invalid: use one of') as info:
        safe_open(good, "jnp")
    assert isinstance(info.value, ValueError)
    with pytest.raises(SafetensorError, match='backend "uring" is invalid') as info:
        safe_open(good, "np", backend="uring")
    assert isinstance(info.value, ValueError)
    with pytest.raises(ValueError, match="framework"):
        safetensors._safe_open_bytes(good.read_bytes(), "onnx")
    with pytest.raises(ValueError, match="framework"):
        with open(good, "rb") as fh:
            safetensors._safe_open_handle(fh, "onnx")
    # The framework is checked before the file is touched.
    with pytest.raises(ValueError, match="framework"):
        safe_open(good.parent / "missing.safetensors", "onnx")


def test_bad_slice(good):
    with safe_open(good, "np") as f:
        s = f.get_slice("a")
        with pytest.raises(SafetensorError, match="index 2 is out of range for dimension 0 of size 2"):
            s[2]
        with pytest.raises(SafetensorError, match="3 indices given for a tensor of rank 2"):
            s[0, 0, 0]
        with pytest.raises(SafetensorError, match="step cannot be zero"):
            s[::0]


def test_truncated_after_open_is_an_error_not_a_crash(good, tmp_path):
    for backend in ("mmap", "pread"):
        p = tmp_path / f"trunc_{backend}.safetensors"
        p.write_bytes(good.read_bytes())
        f = safe_open(p, "np", backend=backend)
        with open(p, "r+b") as fh:
            fh.truncate(os.path.getsize(p) - 16)
        with pytest.raises((SafetensorError, OSError)):
            f.get_tensor("a")
            f.get_tensor("b")


def test_handle_truncated_stream(good):
    import io

    data = good.read_bytes()
    with pytest.raises(SafetensorError):
        safetensors._safe_open_handle(io.BytesIO(data[:-3]), "np")


def test_bytes_input_errors():
    with pytest.raises(SafetensorError, match="too small|8 bytes"):
        load(b"")
    with pytest.raises(TypeError):
        load("not bytes")


def old_file(tmp_path):
    p = tmp_path / "target.safetensors"
    p.write_bytes(b"previous contents")
    return p


def test_failed_saves_leave_target_untouched(tmp_path):
    p = old_file(tmp_path)
    a = np.zeros(3, dtype=np.float32)
    failures = [
        lambda: save_file({"o": np.array([object()])}, p),
        lambda: save_file({"a": a}, p, metadata={"k": 1}),
        lambda: save_file({"a": a}, p, metadata="format"),
        lambda: save_file({1: a}, p),
        lambda: serialize_file({"a": TensorSpec(dtype="F32", shape=[4], data_ptr=a.ctypes.data, data_len=12)}, p),
        lambda: serialize_file({"a": TensorSpec(dtype="Q8", shape=[3], data_ptr=a.ctypes.data, data_len=12)}, p),
        lambda: serialize_file({"a": {"dtype": "F32", "shape": [3]}}, p),
        lambda: serialize_file({"a": {"dtype": "F32", "shape": [3], "data": 12}}, p),
        lambda: serialize_file({"a": {"dtype": "F32", "shape": [-3], "data": a.tobytes()}}, p),
        lambda: serialize_file({"a": 5}, p),
        lambda: serialize_file({"__metadata__": {"dtype": "F32", "shape": [3], "data": a.tobytes()}}, p),
        lambda: serialize_file({"x": {"dtype": "F4", "shape": [3], "data": b"\0\0"}}, p),
    ]
    for fail in failures:
        with pytest.raises((SafetensorError, TypeError, ValueError)) as e:
            fail()
        assert str(e.value)
        assert p.read_bytes() == b"previous contents"
    assert sorted(os.listdir(tmp_path)) == ["target.safetensors"]  # no temp file left behind


def test_save_into_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError):
        save_file({"a": np.zeros(1)}, tmp_path / "no" / "such" / "dir.safetensors")


def test_successful_save_replaces_target(tmp_path):
    p = old_file(tmp_path)
    save_file({"a": np.ones(2, np.float32)}, p)
    np.testing.assert_array_equal(load_file(p)["a"], np.ones(2))
    assert sorted(os.listdir(tmp_path)) == ["target.safetensors"]


def test_dtype_errors_name_the_tensor():
    with pytest.raises(SafetensorError, match="'c'.*complex128"):
        save({"c": np.zeros(1, np.complex128)})
    with pytest.raises(SafetensorError, match="tensor a: dtype F32 with shape \\[2\\] takes 8 bytes, but 3"):
        serialize({"a": {"dtype": "F32", "shape": [2], "data": b"abc"}})
