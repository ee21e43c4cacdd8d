"""Save and load TensorFlow tensors in the safetensors format (host memory)."""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

import numpy as np
import tensorflow as tf

from . import _common
from . import numpy as _np

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import deserialize, safe_open, serialize, serialize_file  # noqa: F401,E402

__all__ = ["save", "save_file", "load", "load_file"]


def _to_numpy(tensors: Dict[str, tf.Tensor]) -> Dict[str, np.ndarray]:
    _common.check_dict(tensors, "tf.Tensor")
    out = {}
    for name, t in tensors.items():
        if isinstance(t, tf.Variable):
            t = t.value()
        if not tf.is_tensor(t):
            raise ValueError(f"Key {name!r} does not map to a tf.Tensor (got {type(t).__name__})")
        out[name] = t.numpy()
    return out


def save(tensors: Dict[str, tf.Tensor], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Saves a dict of tensors to bytes in the safetensors format."""
    return _np.save(_to_numpy(tensors), metadata=metadata)


def save_file(
    tensors: Dict[str, tf.Tensor], filename: Union[str, os.PathLike], metadata: Optional[Dict[str, str]] = None
) -> None:
    """Saves a dict of tensors to a safetensors file."""
    _np.save_file(_to_numpy(tensors), filename, metadata=metadata)


def load(data: bytes) -> Dict[str, tf.Tensor]:
    """Loads a safetensors file held in memory into tensors."""
    return _common.load_bytes(data, "tensorflow")


def load_file(filename: Union[str, os.PathLike]) -> Dict[str, tf.Tensor]:
    """Loads a safetensors file into tensors."""
    return _common.load_path(filename, "tensorflow")


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("tensorflow", device)


# Header dtypes numpy can hold (through ml_dtypes) but TensorFlow cannot.
_UNSUPPORTED = {"F8_E8M0"}


def _st_empty(dtype: str, shape: list):
    if dtype in _UNSUPPORTED or dtype not in _np._TYPES:
        raise _common.unsupported("tensorflow", dtype)
    return _np._st_empty(dtype, shape)


def _st_finish(arr: np.ndarray, dtype: str, shape: list, device: Any, steps) -> tf.Tensor:
    arr = _np._st_finish(arr, dtype, shape, device, steps)
    return tf.convert_to_tensor(arr)


def _st_view(buf: Any, dtype: str, shape: list, offset: int, nbytes: int, device: Any, index):
    # One copy, from the mapped bytes into the TensorFlow tensor.
    if dtype in _UNSUPPORTED or dtype not in _np._TYPES:
        return None
    arr = _np._st_view(buf, dtype, shape, offset, nbytes, device, index)
    return None if arr is None else tf.convert_to_tensor(_common.c_contiguous(arr))
