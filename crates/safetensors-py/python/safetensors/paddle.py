"""Save and load PaddlePaddle tensors in the safetensors format."""

from __future__ import annotations

import os
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import paddle

from . import _common
from . import numpy as _np

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import (  # noqa: F401,E402
    SafetensorError,
    TensorSpec,
    deserialize,
    safe_open,
    serialize,
    serialize_file,
)

__all__ = ["save", "save_file", "load", "load_file"]

# Header dtype -> (paddle dtype, numpy type holding the same bits). No unsigned types wider
# than 8 bits: paddle reads a numpy uint16 array as bfloat16 and has no uint32/uint64 tensors.
_PAIRS: Dict[str, Any] = {}
for _name, _bits in {
    "BOOL": np.bool_,
    "U8": np.uint8,
    "I8": np.int8,
    "I16": np.int16,
    "F16": np.float16,
    "BF16": np.uint16,
    "I32": np.int32,
    "F32": np.float32,
    "C64": np.complex64,
    "I64": np.int64,
    "F64": np.float64,
    "F8_E4M3": np.uint8,
    "F8_E5M2": np.uint8,
}.items():
    _dt = getattr(paddle, _common.DTYPE_NAMES[_name], None)
    if _dt is not None:
        _PAIRS[_name] = (_dt, np.dtype(_bits))
_NAMES = {v[0]: k for k, v in _PAIRS.items()}
# Header dtype -> paddle dtype, as the reference's private table (imported by other code).
_TYPES: Dict[str, Any] = {name: pair[0] for name, pair in _PAIRS.items()}
# paddle dtype -> the numpy type holding its bits (public in the reference).
NPDTYPES: Dict[Any, Any] = {pdtype: bits.type for pdtype, bits in _PAIRS.values()}
# paddle dtype -> bytes per element.
_SIZE: Dict[Any, int] = {pdtype: bits.itemsize for pdtype, bits in _PAIRS.values()}


def _getdtype(dtype_str: str) -> Any:
    """The paddle dtype of a header dtype ("F32" -> paddle.float32); KeyError for one paddle
    lacks."""
    return _TYPES[dtype_str]


# Types numpy cannot hold as such: moved as raw bits and reinterpreted by paddle.
_VIEWED = {"BF16", "F8_E4M3", "F8_E5M2"}


def _convert(name: str, t: Any) -> _common.Converted:
    """A tensor's header dtype, shape and the bytes of its host (numpy) copy."""
    if not isinstance(t, paddle.Tensor):
        raise _common.not_a_tensor(name, t, "paddle.Tensor")
    try:
        dtype = _NAMES[t.dtype]
    except KeyError:
        raise SafetensorError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store") from None
    if dtype in _VIEWED:
        t = t.view(paddle.uint16 if dtype == "BF16" else paddle.uint8)
    return _common.numpy_converted(dtype, _common.c_contiguous(t.cpu().numpy()))


def save(
    tensors: Dict[str, "paddle.Tensor"], metadata: Optional[Dict[str, str]] = None, *, checksum: Optional[str] = None
) -> bytes:
    """Saves a dict of tensors to bytes in the safetensors format."""
    return _common.save(tensors, metadata, "paddle.Tensor", _convert, checksum)


def save_file(
    tensors: Dict[str, "paddle.Tensor"],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a dict of tensors to a safetensors file."""
    _common.save_file(tensors, filename, metadata, "paddle.Tensor", _convert, checksum)


def load(data: bytes, device: str = "cpu") -> Dict[str, "paddle.Tensor"]:
    """Loads a safetensors file held in memory into tensors on ``device``."""
    return _common.load_bytes(data, "paddle", device)


def load_file(
    filename: Union[str, os.PathLike[str]],
    device: Any = "cpu",
    *,
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, "paddle.Tensor"]:
    """Loads a safetensors file into tensors on ``device`` (one tensor at a time; ``backend``
    as for ``safe_open``). A URL is read with HTTP Range requests, ``headers`` sent with each."""
    return _common.load_file(filename, "paddle", device, backend, headers, verify)


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_device(device: Any) -> Any:
    if device is None or device == "cpu":
        return paddle.CPUPlace()
    if isinstance(device, int):
        return paddle.CUDAPlace(device)
    if isinstance(device, str):
        kind, _, index = device.partition(":")
        if kind in ("cuda", "gpu"):
            return paddle.CUDAPlace(int(index or 0))
        raise ValueError(f"unsupported paddle device {device!r}: use 'cpu', 'gpu:N' or 'cuda:N'")
    return device  # already a paddle Place


def _st_empty(dtype: str, shape: List[int]) -> Tuple[Any, int, int]:
    try:
        pdtype, bits = _PAIRS[dtype]
    except KeyError:
        raise _common.unsupported("paddle", dtype) from None
    nbytes = int(np.prod(shape, dtype=np.int64)) * np.dtype(bits).itemsize
    t = paddle.empty(shape, dtype=pdtype)
    if t.place.is_cpu_place() and nbytes:
        # The tensor itself: the file bytes are copied straight into it.
        return t, t.data_ptr(), nbytes
    # Default device is not the CPU (or nothing to copy): stage in a numpy array.
    arr = np.empty(shape, dtype=bits)
    return arr, arr.__array_interface__["data"][0], arr.nbytes


def _st_finish(t: Any, dtype: str, shape: List[int], device: Any) -> "paddle.Tensor":
    if isinstance(t, np.ndarray):
        out = paddle.to_tensor(t, place=device)
        return out.view(_PAIRS[dtype][0]) if dtype in _VIEWED else out
    tensor: "paddle.Tensor" = t if device.is_cpu_place() else t.to(device)
    return tensor


def _st_view(
    buf: Any, dtype: str, shape: List[int], offset: int, nbytes: int, device: Any
) -> Optional["paddle.Tensor"]:
    # One copy, from the mapped bytes into the paddle tensor.
    try:
        _, bits = _PAIRS[dtype]
    except KeyError:
        return None
    arr = _np._view(buf, bits, shape, offset, nbytes)
    return None if arr is None else _st_finish(arr, dtype, shape, device)
