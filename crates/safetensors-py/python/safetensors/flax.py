"""Save and load JAX/Flax arrays in the safetensors format.

64-bit dtypes follow JAX's own rules: they load as 64-bit arrays when ``jax_enable_x64`` is
on, and are narrowed by JAX (with its warning) otherwise.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

import jax.numpy as jnp
import numpy as np
from jax import Array

from . import _common
from . import numpy as _np

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import deserialize, safe_open, serialize, serialize_file  # noqa: F401,E402

__all__ = ["save", "save_file", "load", "load_file"]


def _to_numpy(tensors: Dict[str, Array]) -> Dict[str, np.ndarray]:
    _common.check_dict(tensors, "jax Array")
    return {name: np.asarray(t) for name, t in tensors.items()}


def save(tensors: Dict[str, Array], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Saves a dict of arrays to bytes in the safetensors format."""
    return _np.save(_to_numpy(tensors), metadata=metadata)


def save_file(
    tensors: Dict[str, Array], filename: Union[str, os.PathLike], metadata: Optional[Dict[str, str]] = None
) -> None:
    """Saves a dict of arrays to a safetensors file."""
    _np.save_file(_to_numpy(tensors), filename, metadata=metadata)


def load(data: bytes) -> Dict[str, Array]:
    """Loads a safetensors file held in memory into arrays."""
    return _common.load_bytes(data, "flax")


def load_file(filename: Union[str, os.PathLike]) -> Dict[str, Array]:
    """Loads a safetensors file into arrays."""
    return _common.load_path(filename, "flax")


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("flax", device)


def _st_empty(dtype: str, shape: list):
    if dtype not in _np._TYPES:
        raise _common.unsupported("jax", dtype)
    return _np._st_empty(dtype, shape)


def _st_finish(arr: np.ndarray, dtype: str, shape: list, device: Any, steps) -> Array:
    arr = _np._st_finish(arr, dtype, shape, device, steps)
    return jnp.asarray(arr)


def _st_view(buf: Any, dtype: str, shape: list, offset: int, nbytes: int, device: Any, index):
    # One copy, from the mapped bytes into the JAX array.
    if dtype not in _np._TYPES:
        return None
    arr = _np._st_view(buf, dtype, shape, offset, nbytes, device, index)
    return None if arr is None else jnp.asarray(_common.c_contiguous(arr))
