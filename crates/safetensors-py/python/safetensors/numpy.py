"""Save and load numpy arrays in the safetensors format.

bfloat16 and the float8 types need ``ml_dtypes`` (used when installed).
"""

from __future__ import annotations

import os
import sys
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np

from . import _common, _writer

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import (  # noqa: F401,E402
    SafetensorError,
    TensorSpec,
    deserialize,
    safe_open,
    serialize,
    serialize_file,
)

__all__ = ["save", "save_file", "save_sharded", "open_writer", "open_sharded_writer", "load", "load_file"]

# Header dtype -> numpy dtype (little-endian): numpy's own types at import; the ml_dtypes
# ones (bfloat16, float8) the first time a file or an array needs one, since importing
# ml_dtypes takes about half a second (more than opening most files). No sub-byte types
# (numpy stores one element a byte).
_TYPES: Dict[str, Any] = {}
# Header dtype -> the ml_dtypes attribute that holds it, for those numpy lacks.
_ML_TYPES: Dict[str, str] = {}
for _name, _attr in _common.DTYPE_NAMES.items():
    if _name in ("F4", "F6_E2M3", "F6_E3M2"):
        continue
    try:
        _TYPES[_name] = np.dtype(_attr).newbyteorder("<")
    except TypeError:
        _ML_TYPES[_name] = _attr

_NAMES: Dict[Any, str] = {v: k for k, v in _TYPES.items()}
_ml_loaded = False


def _load_ml_dtypes() -> bool:
    """Adds the ml_dtypes types to the tables (once); False when ml_dtypes is not installed."""
    global _ml_loaded
    if not _ml_loaded:
        try:
            import ml_dtypes
        except ImportError:  # pragma: no cover - exercised only without ml_dtypes
            return False
        for name, attr in _ML_TYPES.items():
            if hasattr(ml_dtypes, attr):
                _TYPES[name] = np.dtype(getattr(ml_dtypes, attr))
                _NAMES[_TYPES[name]] = name
        _ml_loaded = True
    return True


def _lookup(dtype: str) -> Optional[np.dtype]:
    """The numpy dtype for a header dtype, or None where numpy (with ml_dtypes) has none."""
    found = _TYPES.get(dtype)
    if found is None and dtype in _ML_TYPES and _load_ml_dtypes():
        found = _TYPES.get(dtype)
    return found


def _getdtype(dtype_str: str) -> np.dtype:
    """The numpy dtype of a header dtype ("F32" -> float32); KeyError for one numpy lacks."""
    found = _lookup(dtype_str)
    if found is None:
        raise KeyError(dtype_str)
    return found


def _is_little_endian(tensor: np.ndarray) -> bool:
    """Whether the array's bytes are little-endian (or byte order does not apply)."""
    order = tensor.dtype.byteorder
    return order == "<" or order == "|" or (order == "=" and sys.byteorder == "little")


def _np_dtype(dtype: str) -> np.dtype:
    found = _lookup(dtype)
    if found is not None:
        return found
    if dtype in _ML_TYPES and not _load_ml_dtypes():
        raise SafetensorError(f"dtype {dtype} needs the ml_dtypes package to load with numpy: pip install ml_dtypes")
    raise _common.unsupported("numpy", dtype)


def _header_dtype(arr: np.ndarray, name: str) -> str:
    dt = arr.dtype.newbyteorder("<") if arr.dtype.byteorder == ">" else arr.dtype
    if dt not in _NAMES and getattr(dt.type, "__module__", "").startswith("ml_dtypes"):
        _load_ml_dtypes()  # an ml_dtypes array: its module is imported already
    try:
        return _NAMES[dt]
    except KeyError:
        _load_ml_dtypes()  # the message lists every type that can be stored
        raise SafetensorError(
            f"array {name!r} has dtype {arr.dtype}, which safetensors cannot store "
            f"(supported: {', '.join(sorted(str(t) for t in _TYPES.values()))})"
        ) from None


def _to_le_contiguous(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.byteorder == ">":
        arr = arr.astype(arr.dtype.newbyteorder("<"))
    out: np.ndarray = _common.c_contiguous(arr)
    return out


def _convert(name: str, arr: Any) -> _common.Converted:
    """An array's header dtype, shape and own memory (little-endian, C order)."""
    if isinstance(arr, np.generic):  # a numpy scalar: a 0-d array of its type
        arr = np.asarray(arr)
    if not isinstance(arr, np.ndarray):
        raise _common.not_a_tensor(name, arr, "numpy array")
    dtype = _header_dtype(arr, name)
    return _common.numpy_converted(dtype, _to_le_contiguous(arr))


def save(
    tensor_dict: Dict[str, np.ndarray], metadata: Optional[Dict[str, str]] = None, *, checksum: Optional[str] = None
) -> bytes:
    """Saves a dict of arrays to bytes in the safetensors format."""
    return _common.save(tensor_dict, metadata, "np.ndarray", _convert, checksum)


def save_file(
    tensor_dict: Dict[str, np.ndarray],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a dict of arrays to a safetensors file."""
    _common.save_file(tensor_dict, filename, metadata, "np.ndarray", _convert, checksum)


def save_sharded(
    tensor_dict: Dict[str, np.ndarray],
    folder: Union[str, os.PathLike[str]],
    *,
    max_shard_size: Union[int, str] = "5GB",
    metadata: Optional[Dict[str, str]] = None,
    checksum: Optional[str] = None,
) -> Dict[str, Any]:
    """Saves a dict of arrays as a sharded checkpoint in ``folder`` (shards of at most
    ``max_shard_size`` bytes, then ``model.safetensors.index.json``; one ``model.safetensors``
    when everything fits), as ``safetensors.torch.save_sharded``. Returns the index as a dict.
    """
    return _common.save_sharded(tensor_dict, folder, max_shard_size, metadata, "np.ndarray", _convert, checksum)


def load(data: bytes) -> Dict[str, np.ndarray]:
    """Loads a safetensors file held in memory into numpy arrays."""
    return _common.load_bytes(data, "numpy")


def load_file(
    filename: Union[str, os.PathLike[str]],
    *,
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, np.ndarray]:
    """Loads a safetensors file into numpy arrays (``backend`` as for ``safe_open``).

    A URL is read with HTTP Range requests, ``headers`` sent with each.
    """
    return _common.load_file(filename, "numpy", backend=backend, headers=headers, verify=verify)


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> str:
    return _common.check_cpu_device("numpy", device)


def _st_empty(dtype: str, shape: List[int]) -> Tuple[np.ndarray, int, int]:
    arr = np.empty(shape, dtype=_np_dtype(dtype))
    return arr, arr.__array_interface__["data"][0], arr.nbytes


def _view(buf: Any, npdtype: np.dtype, shape: List[int], offset: int, nbytes: int) -> Optional[np.ndarray]:
    """The array of ``npdtype`` and ``shape`` over ``buf[offset:offset + nbytes]``, without a
    copy; None when it has no elements or ``offset`` is not a multiple of the element size
    (the loader then copies instead)."""
    size = npdtype.itemsize
    if nbytes == 0 or offset % size or nbytes % size:
        return None
    return np.frombuffer(buf, dtype=npdtype, count=nbytes // size, offset=offset).reshape(shape)


def _st_view(buf: Any, dtype: str, shape: List[int], offset: int, nbytes: int, device: Any) -> Optional[np.ndarray]:
    npdtype = _lookup(dtype)
    if npdtype is None:
        return None  # the copy path reports the unsupported dtype
    return _view(buf, npdtype, shape, offset, nbytes)


def _st_finish(arr: np.ndarray, dtype: str, shape: List[int], device: Any) -> np.ndarray:
    return arr


def _spec_header(name: str, dtype: Any, shape: List[int]) -> Tuple[str, List[int]]:
    """The header dtype and shape of a spec: what ``save_file`` writes for such an array."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        raise TypeError(
            f"spec of {name!r}: the dtype must be a numpy dtype or a header dtype name such as 'F32', got {dtype!r}"
        ) from None
    return _header_dtype(np.empty(0, dtype=dt), name), shape


def open_writer(
    filename: Union[str, os.PathLike[str]],
    specs: Dict[str, Any],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> _writer.StreamingWriter:
    """Opens a safetensors file to be written array by array, as ``safetensors.torch.open_writer``:
    ``specs`` maps each name to ``(dtype, shape)`` (a numpy dtype, or a header dtype name such
    as ``"F32"``), the bytes are ``save_file``'s (``checksum`` included), ``write(name, array)``
    takes each array once in any order, and leaving the ``with`` block renames the file into
    place (an exception removes it; a missing array is an error).
    """
    return _writer.open_writer(filename, specs, metadata, checksum, _spec_header, _convert)


def open_sharded_writer(
    folder: Union[str, os.PathLike[str]],
    specs: Dict[str, Any],
    *,
    max_shard_size: Union[int, str] = "5GB",
    metadata: Optional[Dict[str, str]] = None,
    checksum: Optional[str] = None,
) -> _writer.ShardedWriter:
    """``open_writer`` for a sharded checkpoint in ``folder``: what ``save_sharded`` writes for
    the same arrays in the same order, byte for byte, the index last."""
    return _writer.open_sharded_writer(folder, specs, max_shard_size, metadata, checksum, _spec_header, _convert)
