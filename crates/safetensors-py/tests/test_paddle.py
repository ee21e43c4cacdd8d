"""safetensors.paddle: round trips for every Paddle dtype safetensors has, devices, errors."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require
from frameworks import (
    SHAPES,
    check_round_trip,
    random_array,
)

paddle = require("paddle")

import safetensors.paddle as st_paddle  # noqa: E402
from safetensors import SafetensorError, safe_open, serialize  # noqa: E402

# header dtype -> (paddle dtype, numpy type of the same bits)
DTYPES = {
    "BOOL": (paddle.bool, np.bool_),
    "U8": (paddle.uint8, np.uint8),
    "I8": (paddle.int8, np.int8),
    "I16": (paddle.int16, np.int16),
    "F16": (paddle.float16, np.float16),
    "BF16": (paddle.bfloat16, np.uint16),
    "I32": (paddle.int32, np.int32),
    "F32": (paddle.float32, np.float32),
    "C64": (paddle.complex64, np.complex64),
    "I64": (paddle.int64, np.int64),
    "F64": (paddle.float64, np.float64),
    "F8_E4M3": (paddle.float8_e4m3fn, np.uint8),
    "F8_E5M2": (paddle.float8_e5m2, np.uint8),
}


def make(header, shape):
    pdtype, bits = DTYPES[header]
    if bits in (np.uint16,) or (bits == np.uint8 and header != "U8"):
        # random finite bit patterns: small exponents only
        arr = (random_array(np.uint8, shape) & 0x3F).astype(bits)
        t = paddle.to_tensor(arr, place=paddle.CPUPlace())
        return t.view(pdtype)
    return paddle.to_tensor(random_array(bits, shape), place=paddle.CPUPlace())


def paddle_bytes(t) -> bytes:
    if t.dtype == paddle.bfloat16:
        t = t.view(paddle.uint16)
    elif t.dtype in (paddle.float8_e4m3fn, paddle.float8_e5m2):
        t = t.view(paddle.uint8)
    return t.cpu().numpy().tobytes()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("header", list(DTYPES))
def test_round_trip_every_dtype(header, shape, tmp_path):
    check_round_trip(st_paddle, "paddle", make(header, shape), header, shape, paddle_bytes, tmp_path, device="cpu")


def test_values_slices_and_device(tmp_path):
    t = paddle.arange(24, dtype="float32").reshape([2, 3, 4])
    p = tmp_path / "p.safetensors"
    st_paddle.save_file({"t": t}, p)
    out = st_paddle.load_file(p, device="cpu")["t"]
    assert out.place.is_cpu_place()
    np.testing.assert_array_equal(out.numpy(), t.numpy())
    with safe_open(p, "paddle") as f:
        np.testing.assert_array_equal(f.get_slice("t")[:, 1:, ::2].numpy(), t.numpy()[:, 1:, ::2])
    with pytest.raises(ValueError, match="unsupported paddle device"):
        st_paddle.load_file(p, device="tpu")


@pytest.mark.parametrize("header", ["BF16", "F8_E4M3", "BOOL", "C64"])
def test_stepped_slices_every_kind(header, tmp_path):
    t = make(header, (4, 6))
    p = tmp_path / "s.safetensors"
    st_paddle.save_file({"t": t}, p)
    bits = np.frombuffer(paddle_bytes(t), dtype=DTYPES[header][1]).reshape(4, 6)
    with safe_open(p, "paddle") as f:
        got = f.get_slice("t")[1::2, ::4]
        assert got.dtype == t.dtype and tuple(got.shape) == (2, 2)
        assert paddle_bytes(got) == bits[1::2, ::4].tobytes()


def test_unsupported_dtypes_are_clear():
    with pytest.raises(SafetensorError, match="cannot be loaded as a paddle"):
        st_paddle.load(serialize({"x": {"dtype": "U32", "shape": [1], "data": b"\0\0\0\0"}}))
    with pytest.raises(ValueError, match="paddle.Tensor"):
        st_paddle.save({"x": np.zeros(2)})


@pytest.mark.skipif(
    not paddle.device.is_compiled_with_cuda() or paddle.device.cuda.device_count() == 0, reason="needs a CUDA device"
)
def test_load_to_gpu(tmp_path):
    p = tmp_path / "g.safetensors"
    st_paddle.save_file({"t": paddle.ones([3])}, p)
    out = st_paddle.load_file(p, device="gpu:0")["t"]
    assert out.place.is_gpu_place()


# --- drop-in behaviours shared with every framework module ------------------------------
