"""Type stubs for the safetensors package (the Rust extension's public surface)."""

import os
from builtins import ellipsis  # typeshed's name for type(...), which types.EllipsisType (3.10+) is
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

__version__: str

class SafetensorError(Exception):
    """Any problem with safetensors data: invalid file, missing tensor, bad slice, bad dtype."""

class TensorSpec:
    """A tensor to serialize: dtype, header shape, address and length of its bytes.

    The memory must stay alive and unchanged until ``serialize``/``serialize_file`` returns.
    An unknown ``dtype`` raises ``SafetensorError`` here, at construction.
    """

    def __init__(self, *, dtype: str, shape: List[int], data_ptr: int, data_len: int) -> None: ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> List[int]: ...
    @property
    def data_ptr(self) -> int: ...
    @property
    def data_len(self) -> int: ...

_Framework = Literal["pt", "torch", "np", "numpy", "tf", "tensorflow", "flax", "jax", "paddle", "mlx"]

_BasicIndex = Union[int, slice, ellipsis, None, List[Any]]

class PySafeSlice:
    """A lazy view of one tensor: index it to read only the selected part.

    ``slice[index]`` is numpy's ``arr[index]`` for every basic index (ints, slices with any
    step, ``...``, ``None``, tuples of these, and the empty list ``[]``); where numpy raises,
    it raises ``SafetensorError``, as it does once the ``safe_open`` it came from is closed.
    """

    def get_shape(self) -> List[int]: ...
    def get_dtype(self) -> str: ...
    def __len__(self) -> int: ...
    def __getitem__(self, index: Union[_BasicIndex, Tuple[_BasicIndex, ...]]) -> Any: ...

class safe_open:
    """Opens a safetensors file lazily (reads the header only). Usable as a context manager.

    Leaving the ``with`` block closes it: the descriptor and mapping are released (tensors
    handed out stay valid) and any later call raises ``SafetensorError``. A missing file
    raises ``FileNotFoundError`` (``errno`` and ``filename`` set).
    """

    def __init__(
        self,
        filename: Union[str, os.PathLike],
        framework: _Framework,
        device: Union[str, int, Any] = "cpu",
        *,
        backend: Literal["mmap", "pread"] = "mmap",
    ) -> None: ...
    def keys(self) -> List[str]: ...
    def offset_keys(self) -> List[str]: ...
    def metadata(self) -> Optional[Dict[str, str]]: ...
    def get_tensor(self, name: str) -> Any: ...
    def get_tensors(self) -> Dict[str, Any]: ...
    def get_slice(self, name: str) -> PySafeSlice: ...
    def __enter__(self) -> "safe_open": ...
    def __exit__(self, exc_type: Any = None, exc_value: Any = None, traceback: Any = None) -> bool: ...
    def __len__(self) -> int: ...
    def __contains__(self, name: str) -> bool: ...

def _safe_open_handle(fileobj: Any, framework: _Framework, device: Union[str, int, Any] = "cpu") -> safe_open:
    """``safe_open`` over a file object (binary, or text mode: read through its buffer)."""
def _safe_open_bytes(data: bytes, framework: _Framework, device: Union[str, int, Any] = "cpu") -> safe_open: ...
def serialize(
    tensor_dict: Dict[str, Union[TensorSpec, Dict[str, Any]]], metadata: Optional[Dict[str, str]] = None
) -> bytes: ...
def serialize_file(
    tensor_dict: Dict[str, Union[TensorSpec, Dict[str, Any]]],
    filename: Union[str, os.PathLike],
    metadata: Optional[Dict[str, str]] = None,
) -> None: ...
def deserialize(bytes: bytes) -> List[Tuple[str, Dict[str, Any]]]: ...
