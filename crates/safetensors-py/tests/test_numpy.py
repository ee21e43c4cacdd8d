"""safetensors.numpy: round trips for every numpy dtype (ml_dtypes for bfloat16/float8),
metadata, zero-sized and scalar arrays, non-contiguous and big-endian inputs."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from conftest import header_of, numpy_dtypes

from safetensors import SafetensorError, safe_open
from safetensors.numpy import load, load_file, save, save_file

DTYPES = numpy_dtypes()


def make(dtype, shape, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype(dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(np.bool_).reshape(shape)
    return rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).view(dtype).reshape(shape)


@pytest.mark.parametrize("shape", [(3, 4), (), (0,), (2, 0, 3)], ids=str)
@pytest.mark.parametrize("header", list(DTYPES))
def test_round_trip_every_dtype(header, shape, tmp_path):
    a = make(DTYPES[header], shape)
    p = tmp_path / "a.safetensors"
    save_file({"a": a}, p, metadata={"k": "v"})
    h, _ = header_of(p.read_bytes())
    assert h["a"]["dtype"] == header and h["a"]["shape"] == list(shape)
    assert h["__metadata__"] == {"k": "v"}
    for out in (load_file(p)["a"], load(p.read_bytes())["a"], load(save({"a": a}))["a"]):
        assert out.dtype == a.dtype and out.shape == a.shape
        assert out.tobytes() == a.tobytes()  # bit-exact, NaNs included
    with safe_open(p, "np") as f:
        assert f.metadata() == {"k": "v"}


def test_values(tmp_path):
    tensors = {
        "embedding": np.zeros((512, 1024)),
        "attention": np.arange(256 * 256, dtype=np.float32).reshape(256, 256),
    }
    p = tmp_path / "model.safetensors"
    save_file(tensors, p)
    out = load_file(p)
    for k, v in tensors.items():
        np.testing.assert_array_equal(out[k], v)
        assert out[k].flags.writeable


def test_non_contiguous_and_big_endian_are_stored_correctly():
    a = np.arange(12, dtype=np.int32).reshape(3, 4)
    out = load(save({"t": a.T, "s": a[:, ::2], "be": a.astype(">i4"), "f": np.asfortranarray(a)}))
    np.testing.assert_array_equal(out["t"], a.T)
    np.testing.assert_array_equal(out["s"], a[:, ::2])
    np.testing.assert_array_equal(out["be"], a)
    assert out["be"].dtype == np.dtype("<i4")
    np.testing.assert_array_equal(out["f"], a)


def test_unsupported_dtypes_refused(tmp_path):
    p = tmp_path / "x.safetensors"
    p.write_bytes(b"old")
    with pytest.raises(SafetensorError, match="cannot store"):
        save_file({"o": np.array(["a"], dtype=object)}, p)
    with pytest.raises(SafetensorError, match="cannot store"):
        save({"c": np.zeros(2, dtype=np.complex128)})
    assert p.read_bytes() == b"old"


def test_no_device_argument():
    import inspect

    params = inspect.signature(load_file).parameters
    assert list(params) == ["filename", "backend", "headers", "verify"]
    assert params["backend"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["headers"].kind is inspect.Parameter.KEYWORD_ONLY
    assert params["verify"].kind is inspect.Parameter.KEYWORD_ONLY
    with pytest.raises(ValueError, match="device must be 'cpu'"):
        from safetensors import _safe_open_bytes

        _safe_open_bytes(save({"a": np.zeros(1)}), "np", device="cuda:0")


# --- zero-copy loading (mmap backend) -------------------------------------------------------


def _arrays():
    rng = np.random.default_rng(5)
    return {
        "a": rng.standard_normal((16, 8)).astype(np.float32),
        "b": np.arange(10, dtype=np.int64),
        "h": rng.standard_normal(7).astype(ml_dtypes.bfloat16),
        "s": np.array(2.5),
    }


def test_load_file_returns_writable_views_of_a_private_mapping(tmp_path):
    arrays = _arrays()
    p = tmp_path / "v.safetensors"
    save_file(arrays, p)
    before = p.read_bytes()
    out = load_file(p)
    for k, a in arrays.items():
        got = out[k]
        assert got.dtype == a.dtype and got.shape == a.shape
        np.testing.assert_array_equal(got, a)
        assert not got.flags["OWNDATA"] and got.flags["WRITEABLE"]
    out["a"][:] = 0
    out["b"][3] = -5
    with safe_open(p, "np") as f:
        f.get_slice("a")[1:3, ::2][:] = 9
    assert p.read_bytes() == before
    np.testing.assert_array_equal(load_file(p)["a"], arrays["a"])


def test_views_outlive_the_handle_numpy(tmp_path):
    import gc

    arrays = _arrays()
    p = tmp_path / "v.safetensors"
    save_file(arrays, p)
    with safe_open(p, "np") as f:
        got = f.get_tensors()
        part = f.get_slice("a")[3, 1::3]
        row = f.get_slice("a")[3]
    del f
    gc.collect()
    for k, a in arrays.items():
        np.testing.assert_array_equal(got[k], a)
    np.testing.assert_array_equal(part, arrays["a"][3, 1::3])
    assert part.flags["OWNDATA"]  # several runs: copied
    np.testing.assert_array_equal(row, arrays["a"][3])
    assert not row.flags["OWNDATA"]  # one run: a view of the mapping, alive after close


def test_pread_backend_returns_owned_copies(tmp_path):
    arrays = _arrays()
    p = tmp_path / "v.safetensors"
    save_file(arrays, p)
    with safe_open(p, "np", backend="pread") as f:
        got = f.get_tensor("a")
        part = f.get_slice("a")[::2]
    assert got.flags["OWNDATA"] and part.flags["C_CONTIGUOUS"]
    np.testing.assert_array_equal(got, arrays["a"])
    np.testing.assert_array_equal(part, arrays["a"][::2])


def test_unaligned_vector_numpy():
    from conftest import VECTORS

    p = VECTORS / "valid" / "padded_unaligned.safetensors"
    _, body = header_of(p.read_bytes())
    want = np.frombuffer(body[:24], dtype="<f4")
    for backend in ("mmap", "pread"):
        with safe_open(p, "np", backend=backend) as f:
            got = f.get_tensor("t")
            np.testing.assert_array_equal(got, want)
            assert got.flags["ALIGNED"]
    np.testing.assert_array_equal(load_file(p)["t"], want)


# --- drop-in behaviours shared with every framework module ------------------------------


def test_ml_dtypes_is_imported_only_when_a_dtype_needs_it(tmp_path):
    # Importing ml_dtypes costs about half a second: opening a float32 file must not pay it,
    # and a bfloat16 file or array still works without the caller importing it first.
    import subprocess
    import sys

    save_file({"f": np.ones(2, np.float32)}, tmp_path / "f32.safetensors")
    save_file({"b": np.ones(2, ml_dtypes.bfloat16)}, tmp_path / "bf16.safetensors")
    code = f"""
import sys
import numpy as np
import safetensors.numpy as stn
from safetensors import safe_open
with safe_open({str(tmp_path / "f32.safetensors")!r}, "numpy") as f:
    assert f.get_tensor("f").tolist() == [1.0, 1.0]
stn.save({{"g": np.zeros(1, np.int8)}})
assert "ml_dtypes" not in sys.modules, "ml_dtypes imported for float32"
out = stn.load_file({str(tmp_path / "bf16.safetensors")!r})["b"]
assert str(out.dtype) == "bfloat16" and out.astype(np.float32).tolist() == [1.0, 1.0]
import ml_dtypes
assert stn.load(stn.save({{"c": np.ones(1, ml_dtypes.float8_e4m3fn)}}))["c"].dtype == ml_dtypes.float8_e4m3fn
"""
    subprocess.run([sys.executable, "-c", code], check=True)


def test_an_ml_dtypes_array_saves_in_a_fresh_process():
    # The caller imported ml_dtypes, safetensors.numpy has not needed it yet: saving finds it.
    import subprocess
    import sys

    code = """
import ml_dtypes, numpy as np
import safetensors.numpy as stn
data = stn.save({"b": np.arange(3, dtype=ml_dtypes.bfloat16)})
assert stn.load(data)["b"].tolist() == [0, 1, 2]
"""
    subprocess.run([sys.executable, "-c", code], check=True)
