"""What every framework module does the same way, one test per behaviour parametrized over
the frameworks instead of a copy in each framework's file: `load_file` of a missing file,
the `backend` keyword, and values that are not tensors refused by `save`/`save_file`.

The frameworks are imported in the order the rest of the suite imports them (paddle before
tensorflow: the other order crashes some builds of the two in one process)."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Dict, Tuple

import numpy as np
import pytest
from conftest import require
from frameworks import check_load_file_backend, check_load_file_missing_file, check_non_tensor_values_refused

Case = Tuple[Any, Dict[str, Any], Callable[[Any], np.ndarray]]


def _numpy() -> Case:
    return (
        importlib.import_module("safetensors.numpy"),
        {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, dtype=np.int64)},
        np.asarray,
    )


def _torch() -> Case:
    torch = require("torch")
    return (
        importlib.import_module("safetensors.torch"),
        {"a": torch.arange(6.0).reshape(2, 3), "b": torch.ones(4, dtype=torch.int64)},
        lambda t: t.numpy(),
    )


def _flax() -> Case:
    jnp = require("jax.numpy")
    return (
        importlib.import_module("safetensors.flax"),
        {"a": jnp.arange(6, dtype=jnp.float32).reshape(2, 3), "b": jnp.ones(4, dtype=jnp.int32)},
        np.asarray,
    )


def _mlx() -> Case:
    mx = require("mlx.core")
    return (
        importlib.import_module("safetensors.mlx"),
        {"a": mx.arange(6, dtype=mx.float32).reshape(2, 3), "b": mx.ones(4, dtype=mx.int64)},
        np.array,
    )


def _paddle() -> Case:
    paddle = require("paddle")
    return (
        importlib.import_module("safetensors.paddle"),
        {"a": paddle.arange(6, dtype="float32").reshape([2, 3]), "b": paddle.ones([4], dtype="int64")},
        lambda t: t.numpy(),
    )


def _tensorflow() -> Case:
    tf = require("tensorflow")
    return (
        importlib.import_module("safetensors.tensorflow"),
        {"a": tf.reshape(tf.range(6, dtype=tf.float32), (2, 3)), "b": tf.ones(4, dtype=tf.int64)},
        np.asarray,
    )


FRAMEWORKS = {
    "numpy": _numpy,
    "torch": _torch,
    "flax": _flax,
    "mlx": _mlx,
    "paddle": _paddle,
    "tensorflow": _tensorflow,
}


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_load_file_of_a_missing_file(framework, tmp_path):
    module, _, _ = FRAMEWORKS[framework]()
    check_load_file_missing_file(module, tmp_path)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_load_file_accepts_backend(framework, tmp_path):
    module, tensors, to_numpy = FRAMEWORKS[framework]()
    check_load_file_backend(module, tensors, to_numpy, tmp_path)


@pytest.mark.parametrize("framework", list(FRAMEWORKS))
def test_non_tensor_values_refused(framework, tmp_path):
    module, _, _ = FRAMEWORKS[framework]()
    check_non_tensor_values_refused(module, tmp_path)
