"""Test helpers shared by the framework test files: random bit patterns per dtype, and a
round-trip check through every save/load entry point of a framework module."""

from __future__ import annotations

import numpy as np
from conftest import header_of

from safetensors import safe_open

SHAPES = [(3, 4), (), (0,), (2, 0, 3)]


def random_array(np_dtype, shape, seed=0) -> np.ndarray:
    """An array of random bits of `np_dtype` (booleans stay 0/1)."""
    rng = np.random.default_rng(seed)
    dtype = np.dtype(np_dtype)
    n = int(np.prod(shape, dtype=np.int64))
    if dtype == np.bool_:
        return rng.integers(0, 2, n).astype(np.bool_).reshape(shape)
    if dtype.kind == "f" or dtype.kind == "c" or dtype.kind == "V":
        # finite values so that frameworks which canonicalize NaNs still compare bit-exactly
        return rng.uniform(-4, 4, n).astype(dtype).reshape(shape)
    return rng.integers(0, 256, n * dtype.itemsize, dtype=np.uint8).view(dtype).reshape(shape)


def check_round_trip(module, framework: str, tensor, header: str, shape, to_bytes, tmp_path, **load_kw):
    """save_file/load_file/save/load/safe_open all keep dtype, shape, bytes and metadata."""
    p = tmp_path / "t.safetensors"
    module.save_file({"t": tensor}, p, metadata={"fw": framework})
    data = p.read_bytes()
    h, _ = header_of(data)
    assert h["t"]["dtype"] == header and h["t"]["shape"] == list(shape)
    assert h["__metadata__"] == {"fw": framework}
    assert module.save({"t": tensor}, metadata={"fw": framework}) == data
    want = to_bytes(tensor)
    loaded = [module.load_file(p, **load_kw)["t"], module.load(data)["t"]]
    with safe_open(p, framework) as f:
        assert f.metadata() == {"fw": framework}
        loaded.append(f.get_tensor("t"))
    for out in loaded:
        assert tuple(out.shape) == tuple(shape)
        assert out.dtype == tensor.dtype
        assert to_bytes(out) == want
