"""safetensors.flax: round trips for every JAX dtype safetensors has (64-bit types with
jax_enable_x64, as JAX itself requires)."""

from __future__ import annotations

import pytest
from conftest import numpy_dtypes, require
from frameworks import (
    SHAPES,
    check_round_trip,
    random_array,
)

jax = require("jax")
require("flax")

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import safetensors.flax as st_flax  # noqa: E402
from safetensors import SafetensorError, safe_open, serialize  # noqa: E402

DTYPES = numpy_dtypes()


@pytest.fixture(autouse=True, scope="module")
def x64():
    jax.config.update("jax_enable_x64", True)
    yield
    jax.config.update("jax_enable_x64", False)


def jax_bytes(a) -> bytes:
    return np.asarray(a).tobytes()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("header", list(DTYPES))
def test_round_trip_every_dtype(header, shape, tmp_path):
    a = jnp.asarray(random_array(DTYPES[header], shape))
    check_round_trip(st_flax, "flax", a, header, shape, jax_bytes, tmp_path)


def test_values_and_slices(tmp_path):
    tensors = {"embedding": jnp.zeros((16, 8)), "attention": jnp.arange(64, dtype=jnp.float32).reshape(8, 8)}
    p = tmp_path / "m.safetensors"
    st_flax.save_file(tensors, p)
    out = st_flax.load_file(p)
    for k, v in tensors.items():
        assert isinstance(out[k], jax.Array)
        np.testing.assert_array_equal(np.asarray(out[k]), np.asarray(v))
    with safe_open(p, "jax") as f:
        np.testing.assert_array_equal(
            np.asarray(f.get_slice("attention")[::3, -2:]), np.asarray(tensors["attention"])[::3, -2:]
        )


def test_unsupported_dtype_is_clear():
    with pytest.raises(SafetensorError, match="cannot be loaded as a jax"):
        st_flax.load(serialize({"x": {"dtype": "F4", "shape": [2], "data": b"\x11"}}))


# --- drop-in behaviours shared with every framework module ------------------------------
