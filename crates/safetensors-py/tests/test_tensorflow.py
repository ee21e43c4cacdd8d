"""safetensors.tensorflow: round trips for every TensorFlow dtype safetensors has."""

from __future__ import annotations

import pytest
from conftest import numpy_dtypes, require
from frameworks import (
    SHAPES,
    check_round_trip,
    random_array,
)

tf = require("tensorflow")

import numpy as np  # noqa: E402

import safetensors.tensorflow as st_tf  # noqa: E402
from safetensors import SafetensorError, safe_open, serialize  # noqa: E402

# TensorFlow has no F8_E8M0.
DTYPES = {k: v for k, v in numpy_dtypes().items() if k != "F8_E8M0"}


def tf_bytes(t) -> bytes:
    return t.numpy().tobytes()


@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("header", list(DTYPES))
def test_round_trip_every_dtype(header, shape, tmp_path):
    t = tf.convert_to_tensor(random_array(DTYPES[header], shape))
    check_round_trip(st_tf, "tf", t, header, shape, tf_bytes, tmp_path)


def test_variables_and_values(tmp_path):
    v = tf.Variable(tf.reshape(tf.range(12, dtype=tf.float32), (3, 4)))
    p = tmp_path / "v.safetensors"
    st_tf.save_file({"v": v, "c": tf.constant([1, 2, 3], dtype=tf.int64)}, p)
    out = st_tf.load_file(p)
    assert isinstance(out["v"], tf.Tensor)
    np.testing.assert_array_equal(out["v"].numpy(), v.numpy())
    np.testing.assert_array_equal(out["c"].numpy(), [1, 2, 3])
    with safe_open(p, "tensorflow") as f:
        np.testing.assert_array_equal(f.get_slice("v")[1:, ::2].numpy(), v.numpy()[1:, ::2])


def test_unsupported_dtype_is_clear():
    data = serialize({"x": {"dtype": "F8_E8M0", "shape": [2], "data": b"\x7f\x80"}})
    with pytest.raises(SafetensorError, match="cannot be loaded as a tensorflow"):
        st_tf.load(data)
    with pytest.raises(ValueError, match="device must be 'cpu'"):
        from safetensors import _safe_open_bytes

        _safe_open_bytes(data, "tf", device="gpu")
    with pytest.raises(ValueError, match="tf.Tensor"):
        st_tf.save({"x": [1, 2]})


# --- drop-in behaviours shared with every framework module ------------------------------
