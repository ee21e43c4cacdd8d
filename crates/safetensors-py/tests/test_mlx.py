"""safetensors.mlx: round trips for every MLX dtype safetensors has."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require
from frameworks import (
    SHAPES,
    check_round_trip,
    random_array,
)

mx = require("mlx.core")

import safetensors.mlx as st_mlx  # noqa: E402
from safetensors import SafetensorError, safe_open, serialize  # noqa: E402

# header dtype -> (mlx dtype, numpy type of the same bits)
DTYPES = {
    "BOOL": (mx.bool_, np.bool_),
    "U8": (mx.uint8, np.uint8),
    "I8": (mx.int8, np.int8),
    "U16": (mx.uint16, np.uint16),
    "I16": (mx.int16, np.int16),
    "F16": (mx.float16, np.float16),
    "BF16": (mx.bfloat16, np.uint16),
    "U32": (mx.uint32, np.uint32),
    "I32": (mx.int32, np.int32),
    "F32": (mx.float32, np.float32),
    "C64": (mx.complex64, np.complex64),
    "U64": (mx.uint64, np.uint64),
    "I64": (mx.int64, np.int64),
    "F64": (mx.float64, np.float64),
}


def make(header, shape):
    mdtype, bits = DTYPES[header]
    if header == "BF16":
        return mx.array((random_array(np.uint16, shape) & 0x3FFF).astype(np.uint16)).view(mx.bfloat16)
    return mx.array(random_array(bits, shape), dtype=mdtype)


def mlx_bytes(a) -> bytes:
    if a.dtype == mx.bfloat16:
        a = a.view(mx.uint16)
    return np.array(a).tobytes()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("header", list(DTYPES))
def test_round_trip_every_dtype(header, shape, tmp_path):
    check_round_trip(st_mlx, "mlx", make(header, shape), header, shape, mlx_bytes, tmp_path)


def test_values_and_slices(tmp_path):
    a = mx.arange(30, dtype=mx.float32).reshape(5, 6)
    p = tmp_path / "m.safetensors"
    st_mlx.save_file({"a": a}, p)
    out = st_mlx.load_file(p)["a"]
    assert isinstance(out, mx.array)
    np.testing.assert_array_equal(np.array(out), np.array(a))
    with safe_open(p, "mlx") as f:
        np.testing.assert_array_equal(np.array(f.get_slice("a")[1::2, :-1]), np.array(a)[1::2, :-1])


def test_unsupported_dtype_is_clear():
    with pytest.raises(SafetensorError, match="cannot be loaded as a mlx"):
        st_mlx.load(serialize({"x": {"dtype": "F8_E4M3", "shape": [1], "data": b"\0"}}))
    with pytest.raises(ValueError, match="mlx array"):
        st_mlx.save({"x": np.zeros(1)})


# --- drop-in behaviours shared with every framework module ------------------------------
