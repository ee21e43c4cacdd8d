"""Behaviours code written for the reference `safetensors` 0.8 package relies on, each test
named after one. This file covers the package itself (numpy only); what each framework
module must do too (missing file, `backend=`, values that are not tensors) is checked by
the helpers in frameworks.py from each framework's own test file, and torch's save checks
and `load_model` are in test_torch.py."""

from __future__ import annotations

import gc
import io
import os
from pathlib import Path

import numpy as np
import pytest
from frameworks import check_missing_file_error

import safetensors
from safetensors import SafetensorError, TensorSpec, safe_open, serialize
from safetensors.numpy import save_file


@pytest.fixture
def small(tmp_path) -> Path:
    p = tmp_path / "small.safetensors"
    save_file(
        {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, dtype=np.int64)}, p, metadata={"k": "v"}
    )
    return p


# --- closed handles ----------------------------------------------------------------------


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def _mapped(p: Path) -> bool:
    with open("/proc/self/maps") as maps:
        return str(p) in maps.read()


def _open_as(p: Path, how: str):
    if how == "bytes":
        return safetensors._safe_open_bytes(p.read_bytes(), "np")
    if how == "handle":
        return safetensors._safe_open_handle(io.BytesIO(p.read_bytes()), "np")
    return safe_open(p, "np", backend=how)


@pytest.mark.parametrize("how", ["mmap", "pread", "bytes", "handle"])
def test_closed_handle_refuses_every_use(small, how):
    with _open_as(small, how) as f:
        sl = f.get_slice("a")
    uses = [
        f.keys,
        f.offset_keys,
        f.metadata,
        f.get_tensors,
        lambda: f.get_tensor("a"),
        lambda: f.get_slice("a"),
        lambda: len(f),
        lambda: "a" in f,
    ]
    for use in uses:
        with pytest.raises(SafetensorError, match="closed"):
            use()
    assert "closed" in repr(f)
    # A slice keeps what it reads, as the reference's does (issue 20; test_dropin2.py).
    assert sl.get_shape() == [2, 3]
    np.testing.assert_array_equal(sl[0], [0, 1, 2])


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_closed_handle_releases_descriptor_and_mapping(small):
    gc.collect()
    before = _fds()
    with safe_open(small, "np") as f:
        assert _fds() > before and _mapped(small)
        f.keys()
    assert _fds() == before
    assert not _mapped(small)


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="needs /proc")
def test_tensors_handed_out_stay_valid_after_close(small):
    with safe_open(small, "np") as f:
        a = f.get_tensor("a")
        row = f.get_slice("a")[1]
    assert not a.flags["OWNDATA"]  # a view of the mapping...
    np.testing.assert_array_equal(a, np.arange(6, dtype=np.float32).reshape(2, 3))
    np.testing.assert_array_equal(row, [3, 4, 5])
    assert _mapped(small)  # ...which they keep alive
    del a, row
    gc.collect()
    assert not _mapped(small)


# --- missing file ------------------------------------------------------------------------


@pytest.mark.parametrize("as_path", [False, True])
def test_missing_file_is_file_not_found_error_with_errno_and_filename(tmp_path, as_path):
    given = tmp_path / "nope.safetensors"
    given = given if as_path else str(given)
    with pytest.raises(FileNotFoundError) as excinfo:
        safe_open(given, "np")
    check_missing_file_error(excinfo.value, given)


# --- text-mode file objects --------------------------------------------------------------


def test_text_mode_file_object_is_read_through_its_binary_buffer(small):
    with open(small, "r") as fh:  # noqa: UP015 - text mode is the point
        with safetensors._safe_open_handle(fh, "np") as f:
            assert f.keys() == ["a", "b"]
            assert f.metadata() == {"k": "v"}
            np.testing.assert_array_equal(np.asarray(f.get_tensor("a")), np.arange(6).reshape(2, 3))
            np.testing.assert_array_equal(np.asarray(f.get_slice("a")[::-1, 1]), [4, 1])


# --- TensorSpec and serialize ------------------------------------------------------------


def test_tensorspec_with_unknown_dtype_is_refused_when_constructed():
    with pytest.raises(SafetensorError, match="nonsense"):
        TensorSpec(dtype="nonsense", shape=[1], data_ptr=0, data_len=0)


def test_serialize_refuses_dicts_that_are_neither_tensorspec_nor_the_older_form():
    a = np.zeros(2, dtype=np.float32)
    entry = {"dtype": "F32", "shape": [2], "data_ptr": a.ctypes.data, "data_len": a.nbytes}
    with pytest.raises(TypeError, match="TensorSpec"):
        serialize({"a": entry})
    # The older {"dtype", "shape", "data"} form still works.
    assert serialize({"a": {"dtype": "F32", "shape": [2], "data": a.tobytes()}})
