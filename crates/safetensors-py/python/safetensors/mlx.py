"""Save and load MLX arrays in the safetensors format."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import mlx.core as mx
import numpy as np

from . import _common
from . import numpy as _np

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import SafetensorError, deserialize, safe_open, serialize, serialize_file  # noqa: F401,E402

__all__ = ["save", "save_file", "load", "load_file"]

# Header dtype -> mlx dtype (no float8 / float4 in mlx).
_TYPES = {
    "BOOL": mx.bool_,
    "U8": mx.uint8,
    "I8": mx.int8,
    "U16": mx.uint16,
    "I16": mx.int16,
    "F16": mx.float16,
    "BF16": mx.bfloat16,
    "U32": mx.uint32,
    "I32": mx.int32,
    "F32": mx.float32,
    "C64": mx.complex64,
    "U64": mx.uint64,
    "I64": mx.int64,
}
if hasattr(mx, "float64"):
    _TYPES["F64"] = mx.float64
_NAMES = {v: k for k, v in _TYPES.items()}


def _convert(name: str, t: Any) -> _common.Converted:
    """An array's header dtype, shape and the bytes of its host (numpy) copy."""
    if not isinstance(t, mx.array):
        raise _common.not_a_tensor(name, t, "mlx array")
    try:
        dtype = _NAMES[t.dtype]
    except KeyError:
        raise SafetensorError(f"array {name!r} has dtype {t.dtype}, which safetensors cannot store") from None
    # bfloat16 goes through its raw 16-bit words: numpy needs no bfloat16 type for that.
    arr = _common.c_contiguous(np.array(t.view(mx.uint16) if dtype == "BF16" else t))
    return _common.numpy_converted(dtype, arr)


def save(
    tensors: Dict[str, mx.array], metadata: Optional[Dict[str, str]] = None, *, checksum: Optional[str] = None
) -> bytes:
    """Saves a dict of arrays to bytes in the safetensors format."""
    return _common.save(tensors, metadata, "mlx array", _convert, checksum)


def save_file(
    tensors: Dict[str, mx.array],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a dict of arrays to a safetensors file."""
    _common.save_file(tensors, filename, metadata, "mlx array", _convert, checksum)


def load(data: bytes) -> Dict[str, mx.array]:
    """Loads a safetensors file held in memory into arrays."""
    return _common.load_bytes(data, "mlx")


def load_file(
    filename: Union[str, os.PathLike[str]],
    *,
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, mx.array]:
    """Loads a safetensors file into arrays (``backend`` as for ``safe_open``).

    A URL is read with HTTP Range requests, ``headers`` sent with each.
    """
    return _common.load_file(filename, "mlx", backend=backend, headers=headers, verify=verify)


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("mlx", device)


def _st_empty(dtype: str, shape: List[int]) -> Tuple[np.ndarray, int, int]:
    if dtype not in _TYPES:
        raise _common.unsupported("mlx", dtype)
    if dtype == "BF16":  # filled as raw 16-bit words, reinterpreted in _st_finish
        arr = np.empty(shape, dtype=np.uint16)
        return arr, arr.__array_interface__["data"][0], arr.nbytes
    return _np._st_empty(dtype, shape)


def _st_finish(arr: np.ndarray, dtype: str, shape: List[int], device: Any) -> mx.array:
    if dtype == "BF16":
        return mx.array(arr, dtype=mx.uint16).view(mx.bfloat16)
    # The explicit dtype keeps 64-bit arrays 64-bit (mlx narrows float64 by default).
    return mx.array(arr, dtype=_TYPES[dtype])


def _st_view(buf: Any, dtype: str, shape: List[int], offset: int, nbytes: int, device: Any) -> Optional[mx.array]:
    # One copy, from the mapped bytes into the MLX array.
    if dtype not in _TYPES:
        return None
    bits = np.dtype(np.uint16) if dtype == "BF16" else _np._lookup(dtype)
    if bits is None:
        return None
    arr = _np._view(buf, bits, shape, offset, nbytes)
    return None if arr is None else _st_finish(arr, dtype, shape, device)
