"""Save and load numpy arrays in the safetensors format.

bfloat16 and the float8 types need ``ml_dtypes`` (used when installed).
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from . import _common

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import SafetensorError, TensorSpec, deserialize, safe_open, serialize, serialize_file  # noqa: F401,E402

try:  # bfloat16 / float8 dtypes for numpy
    import ml_dtypes as _ml
except ImportError:  # pragma: no cover - exercised only without ml_dtypes
    _ml = None  # type: ignore[assignment]  # checked with `_ml is None` below

__all__ = ["save", "save_file", "load", "load_file"]

# Header dtype -> numpy dtype (little-endian). Numpy's own types, then the ml_dtypes ones
# (bfloat16, float8) when installed; no sub-byte types (numpy stores one element a byte).
_TYPES: Dict[str, Any] = {}
for _name, _attr in _common.DTYPE_NAMES.items():
    if _name in ("F4", "F6_E2M3", "F6_E3M2"):
        continue
    try:
        _TYPES[_name] = np.dtype(_attr).newbyteorder("<")
    except TypeError:
        if _ml is not None and hasattr(_ml, _attr):
            _TYPES[_name] = np.dtype(getattr(_ml, _attr))

_NAMES: Dict[Any, str] = {v: k for k, v in _TYPES.items()}


def _np_dtype(dtype: str) -> np.dtype:
    try:
        return _TYPES[dtype]
    except KeyError:
        pass
    if _ml is None and (dtype == "BF16" or dtype.startswith("F8_")):
        raise SafetensorError(f"dtype {dtype} needs the ml_dtypes package to load with numpy: pip install ml_dtypes")
    raise _common.unsupported("numpy", dtype)


def _header_dtype(arr: np.ndarray, name: str) -> str:
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    try:
        return _NAMES[dt]
    except KeyError:
        raise SafetensorError(
            f"array {name!r} has dtype {arr.dtype}, which safetensors cannot store "
            f"(supported: {', '.join(sorted(str(t) for t in _TYPES.values()))})"
        ) from None


def _to_le_contiguous(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    return _common.c_contiguous(arr)


def _specs(tensor_dict: Dict[str, np.ndarray]) -> Tuple[Dict[str, TensorSpec], list]:
    """TensorSpecs over each array's own memory, plus the arrays that keep it alive."""
    _common.check_dict(tensor_dict, "numpy array")
    specs, keep = {}, []
    for name, arr in tensor_dict.items():
        if not isinstance(arr, np.ndarray):
            arr = np.asarray(arr)
        dtype = _header_dtype(arr, name)
        arr = _to_le_contiguous(arr)
        keep.append(arr)
        specs[name] = TensorSpec(
            dtype=dtype, shape=list(arr.shape), data_ptr=arr.__array_interface__["data"][0], data_len=arr.nbytes
        )
    return specs, keep


def save(tensor_dict: Dict[str, np.ndarray], metadata: Optional[Dict[str, str]] = None) -> bytes:
    """Saves a dict of arrays to bytes in the safetensors format."""
    specs, keep = _specs(tensor_dict)
    out = _common.save_specs(specs, metadata)
    del keep
    return out


def save_file(
    tensor_dict: Dict[str, np.ndarray], filename: Union[str, os.PathLike], metadata: Optional[Dict[str, str]] = None
) -> None:
    """Saves a dict of arrays to a safetensors file."""
    specs, keep = _specs(tensor_dict)
    _common.save_specs_file(specs, filename, metadata)
    del keep


def load(data: bytes) -> Dict[str, np.ndarray]:
    """Loads a safetensors file held in memory into numpy arrays."""
    return _common.load_bytes(data, "numpy")


def load_file(filename: Union[str, os.PathLike]) -> Dict[str, np.ndarray]:
    """Loads a safetensors file into numpy arrays."""
    return _common.load_path(filename, "numpy")


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("numpy", device)


def _st_empty(dtype: str, shape: list):
    arr = np.empty(shape, dtype=_np_dtype(dtype))
    return arr, arr.__array_interface__["data"][0], arr.nbytes


def _view(buf: Any, npdtype: np.dtype, shape: list, offset: int, nbytes: int, index) -> Optional[np.ndarray]:
    """The array of ``npdtype`` and ``shape`` over ``buf[offset:offset + nbytes]``, without a
    copy, indexed by ``index`` (a view too); None when it has no elements or ``offset`` is not
    a multiple of the element size (the loader then copies instead)."""
    size = npdtype.itemsize
    if nbytes == 0 or offset % size or nbytes % size:
        return None
    arr = np.frombuffer(buf, dtype=npdtype, count=nbytes // size, offset=offset).reshape(shape)
    # The trailing ``...`` keeps a fully int-indexed result a 0-d array view, not a scalar.
    return arr if index is None else arr[tuple(index) + (Ellipsis,)]


def _st_view(buf: Any, dtype: str, shape: list, offset: int, nbytes: int, device: Any, index):
    npdtype = _TYPES.get(dtype)
    if npdtype is None:
        return None  # the copy path reports the unsupported dtype
    return _view(buf, npdtype, shape, offset, nbytes, index)


def _st_finish(arr: np.ndarray, dtype: str, shape: list, device: Any, steps):
    if steps is not None:
        arr = _common.c_contiguous(arr[_common.steps_index(steps)])
    return arr
