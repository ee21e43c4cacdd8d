"""Save and load TensorFlow tensors in the safetensors format (host memory)."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from . import _common
from . import numpy as _np

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import deserialize, safe_open, serialize, serialize_file  # noqa: F401,E402

__all__ = ["save", "save_file", "load", "load_file"]


def _convert(name: str, t: Any) -> _common.Converted:
    """A tensor's header dtype, shape and the bytes of its host (numpy) copy."""
    if isinstance(t, tf.Variable):
        t = t.value()
    if not tf.is_tensor(t):
        raise _common.not_a_tensor(name, t, "tf.Tensor")
    return _np._convert(name, t.numpy())


def save(
    tensors: Dict[str, tf.Tensor], metadata: Optional[Dict[str, str]] = None, *, checksum: Optional[str] = None
) -> bytes:
    """Saves a dict of tensors to bytes in the safetensors format."""
    return _common.save(tensors, metadata, "tf.Tensor", _convert, checksum)


def save_file(
    tensors: Dict[str, tf.Tensor],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a dict of tensors to a safetensors file."""
    _common.save_file(tensors, filename, metadata, "tf.Tensor", _convert, checksum)


def load(data: bytes) -> Dict[str, tf.Tensor]:
    """Loads a safetensors file held in memory into tensors."""
    return _common.load_bytes(data, "tensorflow")


def load_file(
    filename: Union[str, os.PathLike[str]],
    *,
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, tf.Tensor]:
    """Loads a safetensors file into tensors (``backend`` as for ``safe_open``).

    A URL is read with HTTP Range requests, ``headers`` sent with each.
    """
    return _common.load_file(filename, "tensorflow", backend=backend, headers=headers, verify=verify)


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("tensorflow", device)


# Header dtypes numpy can hold (through ml_dtypes) but TensorFlow cannot.
_UNSUPPORTED = {"F8_E8M0"}


def _st_empty(dtype: str, shape: List[int]) -> Tuple[np.ndarray, int, int]:
    if dtype in _UNSUPPORTED or _np._lookup(dtype) is None:
        raise _common.unsupported("tensorflow", dtype)
    return _np._st_empty(dtype, shape)


def _st_finish(arr: np.ndarray, dtype: str, shape: List[int], device: Any) -> tf.Tensor:
    return tf.convert_to_tensor(arr)


def _st_view(buf: Any, dtype: str, shape: List[int], offset: int, nbytes: int, device: Any) -> Optional[tf.Tensor]:
    # One copy, from the mapped bytes into the TensorFlow tensor.
    if dtype in _UNSUPPORTED or _np._lookup(dtype) is None:
        return None
    arr = _np._st_view(buf, dtype, shape, offset, nbytes, device)
    return None if arr is None else tf.convert_to_tensor(arr)
