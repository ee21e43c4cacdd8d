"""Pieces shared by the framework modules: argument checks and the save/load plumbing.

Framework modules only translate their tensors to ``TensorSpec`` (dtype, shape, address,
length) and provide the ``_st_empty``/``_st_finish`` hooks the Rust loader calls; all format
logic lives in the Rust core.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Optional, Union

from ._safetensors_rust import SafetensorError, _safe_open_bytes, safe_open, serialize, serialize_file

# Header dtype -> the name torch, numpy (with ml_dtypes) and paddle give the element type: the
# one table of dtype names in Python (the Rust one is ``safetensors::Dtype::framework_name``).
# Torch packs F4 two to a byte under another name (see ``safetensors.torch``).
DTYPE_NAMES: Dict[str, str] = {
    "BOOL": "bool",
    "U8": "uint8",
    "I8": "int8",
    "U16": "uint16",
    "I16": "int16",
    "F16": "float16",
    "BF16": "bfloat16",
    "U32": "uint32",
    "I32": "int32",
    "F32": "float32",
    "C64": "complex64",
    "U64": "uint64",
    "I64": "int64",
    "F64": "float64",
    "F8_E5M2": "float8_e5m2",
    "F8_E4M3": "float8_e4m3fn",
    "F8_E4M3FNUZ": "float8_e4m3fnuz",
    "F8_E5M2FNUZ": "float8_e5m2fnuz",
    "F8_E8M0": "float8_e8m0fnu",
    "F4": "float4_e2m1fn",
    "F6_E2M3": "float6_e2m3fn",
    "F6_E3M2": "float6_e3m2fn",
}


def check_cpu_device(framework: str, device: Any) -> str:
    """The device check of frameworks that load to host memory only."""
    if device is None or device == "cpu":
        return "cpu"
    raise ValueError(f"safetensors.{framework} loads tensors to host memory only: device must be 'cpu', got {device!r}")


def save_specs(specs: Dict[str, Any], metadata: Optional[Dict[str, str]]) -> bytes:
    """``serialize`` with a check that metadata is a dict of str."""
    return serialize(specs, metadata=metadata)


def save_specs_file(
    specs: Dict[str, Any], filename: Union[str, os.PathLike], metadata: Optional[Dict[str, str]]
) -> None:
    """``serialize_file`` (temp file then rename, GIL released while writing)."""
    serialize_file(specs, filename, metadata=metadata)


def load_bytes(data: bytes, framework: str, device: Any = "cpu") -> Dict[str, Any]:
    """Every tensor of an in-memory safetensors file, keyed by name."""
    f = _safe_open_bytes(data, framework, device)
    return {k: f.get_tensor(k) for k in f.offset_keys()}


def load_path(filename: Union[str, os.PathLike], framework: str, device: Any = "cpu") -> Dict[str, Any]:
    """Every tensor of a safetensors file, keyed by name.

    The file is mapped privately (copy-on-write): torch and numpy tensors are views of the
    mapping (no copy, pages read on first touch), other frameworks copy once from it.
    """
    result = {}
    with safe_open(filename, framework=framework, device=device) as f:
        for k in f.offset_keys():
            result[k] = f.get_tensor(k)
    return result


def check_dict(tensors: Any, kind: str) -> None:
    """Save functions take a dict of name -> tensor."""
    if not isinstance(tensors, dict):
        raise TypeError(f"expected a dict of name -> {kind}, got {type(tensors).__name__}")
    for k in tensors:
        if not isinstance(k, str):
            raise TypeError(f"tensor names must be str, got {type(k).__name__} ({k!r})")


def unsupported(framework: str, dtype: str) -> SafetensorError:
    """The error for a header dtype a framework cannot hold."""
    return SafetensorError(
        f"dtype {dtype} cannot be loaded as a {framework} tensor: {framework} has no such type "
        "(load it with another framework, e.g. framework='pt', or read its raw bytes with deserialize())"
    )


def steps_index(steps):
    """A tuple of step ints as an index that takes every step-th element per dimension."""
    return tuple(slice(None, None, s) for s in steps)


def c_contiguous(arr):
    """The numpy array itself when C-contiguous, else a C-ordered copy (keeps 0-d arrays 0-d,
    unlike ``np.ascontiguousarray``)."""
    return arr if arr.flags["C_CONTIGUOUS"] else arr.copy(order="C")
