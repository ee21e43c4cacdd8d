"""The save/load skeleton every framework module shares.

A framework module only says how one of its tensors becomes bytes (``Convert``: name and
value -> header dtype, header shape, address, length, and the object that keeps those bytes
alive) and provides the ``_st_empty``/``_st_finish``/``_st_view`` hooks the Rust loader
calls to build its tensors. Argument checks, saving, and loading (by path, from bytes, with
a device and a backend) live here, once; all format logic lives in the Rust core.
"""

from __future__ import annotations

import json
import os
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

from ._safetensors_rust import (
    SafetensorError,
    TensorSpec,
    _safe_open_bytes,
    _serialize_sharded,
    safe_open,
    serialize,
    serialize_file,
)

PathLike = Union[str, os.PathLike[str]]
# name, value -> (header dtype, header shape, address, length in bytes, owner of the bytes)
Converted = Tuple[str, List[int], int, int, Any]
Convert = Callable[[str, Any], Converted]


class NotATensorError(ValueError, AttributeError):
    """A dict value that is not a tensor of the framework: a ValueError, as ours and the
    reference's torch module raise, and an AttributeError, as the reference's numpy module
    raises (it reads the value's ``dtype``)."""


class TensorNameError(ValueError, TypeError):
    """A tensor name that is not a ``str``: a TypeError, as the reference raises, and the
    ValueError ours raised before."""


class FileNotFound(FileNotFoundError):
    """A missing file: ``errno``, ``strerror`` and ``filename`` set, and the text exactly
    ``No such file or directory: <filename as given>``."""

    def __str__(self) -> str:
        return f"{self.strerror}: {self.filename}"


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


def check_dict(tensors: Any, kind: str) -> None:
    """Save functions take a dict of str name -> tensor."""
    if not isinstance(tensors, dict):
        raise ValueError(f"Expected a dict of [str, {kind}] but received {type(tensors).__name__}")
    for k in tensors:
        if not isinstance(k, str):
            raise TensorNameError(f"tensor names must be str, got {type(k).__name__} ({k!r})")


def not_a_tensor(name: str, value: Any, kind: str) -> ValueError:
    """The error for a dict value that is not a tensor of the framework."""
    return NotATensorError(f"Key {name!r} does not map to a {kind}: got {type(value).__name__} ({value!r:.80})")


def _specs(tensors: Any, kind: str, convert: Convert) -> Tuple[Dict[str, TensorSpec], List[Any]]:
    """TensorSpecs over each tensor's bytes, plus the objects that keep those bytes alive."""
    check_dict(tensors, kind)
    specs: Dict[str, TensorSpec] = {}
    keep: List[Any] = []
    for name, value in tensors.items():
        dtype, shape, ptr, nbytes, owner = convert(name, value)
        keep.append(owner)
        specs[name] = TensorSpec(dtype=dtype, shape=shape, data_ptr=ptr if nbytes else 0, data_len=nbytes)
    return specs, keep


def save(
    tensors: Any, metadata: Optional[Dict[str, str]], kind: str, convert: Convert, checksum: Optional[str] = None
) -> bytes:
    """The safetensors bytes of a dict of tensors (see ``save_file`` for ``checksum``)."""
    specs, keep = _specs(tensors, kind, convert)
    out = serialize(specs, metadata=metadata, checksum=checksum)
    del keep  # the bytes were read: the owners may go
    return out


def save_file(
    tensors: Any,
    filename: PathLike,
    metadata: Optional[Dict[str, str]],
    kind: str,
    convert: Convert,
    checksum: Optional[str] = None,
) -> None:
    """Writes a dict of tensors to ``filename`` (temporary file then rename, GIL released).

    ``checksum`` (``"sha256"`` or ``"xxh3-64"``) records each tensor's digest in the
    ``__metadata__`` as ``"__checksum__:NAME": "ALGORITHM:HEX"``, for ``safetensors verify``
    and ``load_file(..., verify=True)``; the file stays readable by every reader.
    """
    specs, keep = _specs(tensors, kind, convert)
    serialize_file(specs, filename, metadata=metadata, checksum=checksum)
    del keep


def save_sharded(
    tensors: Any,
    folder: PathLike,
    max_shard_size: Union[int, str],
    metadata: Optional[Dict[str, str]],
    kind: str,
    convert: Convert,
    checksum: Optional[str] = None,
) -> Dict[str, Any]:
    """Writes a dict of tensors as a sharded checkpoint in ``folder`` (the layout transformers
    writes: ``model-0000i-of-0000n.safetensors`` then ``model.safetensors.index.json``, or one
    ``model.safetensors``) and returns the index as a dict."""
    if isinstance(max_shard_size, bool) or not isinstance(max_shard_size, (int, str)):
        raise ValueError(f"max_shard_size must be an int or a str such as '5GB', got {max_shard_size!r}")
    specs, keep = _specs(tensors, kind, convert)
    text = _serialize_sharded(specs, folder, str(max_shard_size), metadata=metadata, checksum=checksum)
    del keep
    index: Dict[str, Any] = json.loads(text)
    return index


def load_bytes(data: bytes, framework: str, device: Any = "cpu") -> Dict[str, Any]:
    """Every tensor of an in-memory safetensors file, keyed by name (file order)."""
    f = _safe_open_bytes(data, framework, device)
    return {k: f.get_tensor(k) for k in f.offset_keys()}


# How whole loads read (``load_file``, ``load_model``): "auto" (the default), "mmap" or "read";
# the environment variable SAFETENSORS_LOAD_STRATEGY sets it for benchmarks and tests.
LOAD_STRATEGY = os.environ.get("SAFETENSORS_LOAD_STRATEGY", "auto")


def load_file(
    filename: PathLike,
    framework: str,
    device: Any = "cpu",
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, Any]:
    """Every tensor of a safetensors file, keyed by name (file order), or of a sharded
    checkpoint (a folder or an index JSON; shard by shard, each in file order).

    With the mmap backend the file is mapped once, privately (copy-on-write): torch and numpy
    tensors are views of the mapping (no copy), other frameworks copy once from it; a file
    less than 90% in the page cache is first read ahead whole (``POSIX_FADV_WILLNEED``). With
    the pread backend every tensor is read into its own memory by several threads in large
    blocks. ``backend="auto"`` is pread on network, cluster and FUSE filesystems and mmap
    elsewhere (see ``safe_open``).

    An ``http(s)://`` URL of a file or index JSON is fetched with Range requests, several at
    once, straight into the tensors (``headers`` sent with each request).

    ``verify=True`` (or ``SAFETENSORS_VERIFY=1`` when ``verify`` is None) checks each tensor
    against the digest its file records, if any (see ``save_file``'s ``checksum``), raising
    ``SafetensorError`` naming the tensor on a mismatch.
    """
    with safe_open(filename, framework=framework, device=device, backend=backend, headers=headers, verify=verify) as f:
        return dict(f._load_all(f.offset_keys(), LOAD_STRATEGY))


def unsupported(framework: str, dtype: str) -> SafetensorError:
    """The error for a header dtype a framework cannot hold."""
    return SafetensorError(
        f"dtype {dtype} cannot be loaded as a {framework} tensor: {framework} has no such type "
        "(load it with another framework, e.g. framework='pt', or read its raw bytes with deserialize())"
    )


def c_contiguous(arr: Any) -> Any:
    """The numpy array itself when C-contiguous, else a C-ordered copy (keeps 0-d arrays 0-d,
    unlike ``np.ascontiguousarray``)."""
    return arr if arr.flags["C_CONTIGUOUS"] else arr.copy(order="C")


def numpy_converted(dtype: str, arr: Any) -> Converted:
    """The ``Converted`` of a C-contiguous little-endian numpy array holding the bytes."""
    return dtype, list(arr.shape), arr.__array_interface__["data"][0], arr.nbytes, arr
