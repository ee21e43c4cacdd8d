"""Save and load JAX/Flax arrays in the safetensors format.

64-bit dtypes follow JAX's own rules: they load as 64-bit arrays when ``jax_enable_x64`` is
on, and are narrowed by JAX (with its warning) otherwise.
"""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import jax.numpy as jnp
import numpy as np
from jax import Array

from . import _common
from . import numpy as _np

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import deserialize, safe_open, serialize, serialize_file  # noqa: F401,E402

__all__ = ["save", "save_file", "load", "load_file"]


def _convert(name: str, t: Any) -> _common.Converted:
    """An array's header dtype, shape and the bytes of its host (numpy) copy."""
    if not isinstance(t, (Array, np.ndarray)):
        raise _common.not_a_tensor(name, t, "jax Array")
    return _np._convert(name, np.asarray(t))


def save(
    tensors: Dict[str, Array], metadata: Optional[Dict[str, str]] = None, *, checksum: Optional[str] = None
) -> bytes:
    """Saves a dict of arrays to bytes in the safetensors format."""
    return _common.save(tensors, metadata, "jax Array", _convert, checksum)


def save_file(
    tensors: Dict[str, Array],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a dict of arrays to a safetensors file."""
    _common.save_file(tensors, filename, metadata, "jax Array", _convert, checksum)


def load(data: bytes) -> Dict[str, Array]:
    """Loads a safetensors file held in memory into arrays."""
    return _common.load_bytes(data, "flax")


def load_file(
    filename: Union[str, os.PathLike[str]],
    *,
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, Array]:
    """Loads a safetensors file into arrays (``backend`` as for ``safe_open``).

    A URL is read with HTTP Range requests, ``headers`` sent with each.
    """
    return _common.load_file(filename, "flax", backend=backend, headers=headers, verify=verify)


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("flax", device)


def _st_empty(dtype: str, shape: List[int]) -> Tuple[np.ndarray, int, int]:
    if _np._lookup(dtype) is None:
        raise _common.unsupported("jax", dtype)
    return _np._st_empty(dtype, shape)


def _st_finish(arr: np.ndarray, dtype: str, shape: List[int], device: Any) -> Array:
    return jnp.asarray(arr)


def _st_view(buf: Any, dtype: str, shape: List[int], offset: int, nbytes: int, device: Any) -> Optional[Array]:
    # One copy, from the mapped bytes into the JAX array.
    if _np._lookup(dtype) is None:
        return None
    arr = _np._st_view(buf, dtype, shape, offset, nbytes, device)
    return None if arr is None else jnp.asarray(arr)
