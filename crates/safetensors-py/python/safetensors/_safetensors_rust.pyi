"""Type stubs for the Rust extension module ``safetensors._safetensors_rust``.

Checked against the built module by ``mypy.stubtest`` (``make lint``): names, parameters,
defaults and kinds must match the runtime.
"""

import os
from builtins import ellipsis  # typeshed's name for type(...), which types.EllipsisType (3.10+) is
from typing import Any, Dict, List, Literal, Mapping, Optional, Tuple, Union, final

__all__ = [
    "safe_open",
    "PySafeSlice",
    "TensorMeta",
    "PrefetchLoader",
    "TensorStream",
    "_PrefetchSource",
    "_StagingRing",
    "TensorSpec",
    "_safe_open_handle",
    "_safe_open_bytes",
    "serialize",
    "serialize_file",
    "_serialize_sharded",
    "_Writer",
    "_open_writer",
    "_open_sharded_writer",
    "_inspect",
    "_filesystem_backend",
    "_rank_bytes",
    "_rank_part",
    "deserialize",
    "SafetensorError",
    "SafetensorIndexError",
    "SafetensorValueError",
    "SafetensorKeyError",
    "SafetensorTypeError",
    "SafetensorRuntimeError",
    "SafetensorOSError",
    "SafetensorFileNotFoundError",
    "SafetensorIsADirectoryError",
    "SafetensorNotADirectoryError",
    "SafetensorPermissionError",
    "__version__",
]

__version__: str

class SafetensorError(Exception):
    """Any problem with safetensors data: invalid file, missing tensor, bad slice, bad dtype."""

# Where the reference raises a builtin exception and ours a SafetensorError (or the other way
# round), the error is an instance of a class deriving from both.
class SafetensorIndexError(SafetensorError, IndexError): ...
class SafetensorValueError(SafetensorError, ValueError): ...
class SafetensorKeyError(SafetensorError, KeyError): ...
class SafetensorTypeError(SafetensorError, TypeError): ...
class SafetensorRuntimeError(SafetensorError, RuntimeError): ...
class SafetensorOSError(SafetensorError, OSError): ...
class SafetensorFileNotFoundError(SafetensorError, FileNotFoundError): ...
class SafetensorIsADirectoryError(SafetensorError, IsADirectoryError): ...
class SafetensorNotADirectoryError(SafetensorError, NotADirectoryError): ...
class SafetensorPermissionError(SafetensorError, PermissionError): ...

@final
class TensorSpec:
    """A tensor to serialize: dtype, header shape, address and length of its bytes.

    The memory must stay alive and unchanged until ``serialize``/``serialize_file`` returns.
    An unknown ``dtype`` raises ``SafetensorError`` here, at construction.
    """

    def __new__(cls, *, dtype: str, shape: List[int], data_ptr: int, data_len: int) -> "TensorSpec": ...
    @property
    def dtype(self) -> str: ...
    @property
    def shape(self) -> List[int]: ...
    @property
    def data_ptr(self) -> int: ...
    @property
    def data_len(self) -> int: ...

@final
class _Writer:
    """Private: the core's streaming writer behind ``open_writer``/``open_sharded_writer``."""

    def write(self, name: str, dtype: str, shape: List[int], data_ptr: int, data_len: int) -> None: ...
    def missing(self) -> List[str]: ...
    def finish(self) -> Optional[str]:
        """Renames the file (or shards, then the index) into place; the index JSON when sharded."""
    def abort(self) -> None: ...
    @property
    def closed(self) -> bool: ...

def _open_writer(
    filename: Union[str, os.PathLike[str]],
    specs: List[Tuple[str, str, List[int]]],
    metadata: Optional[Dict[str, str]] = None,
    checksum: Optional[str] = None,
) -> _Writer: ...
def _open_sharded_writer(
    folder: Union[str, os.PathLike[str]],
    specs: List[Tuple[str, str, List[int]]],
    max_shard_size: str,
    metadata: Optional[Dict[str, str]] = None,
    checksum: Optional[str] = None,
) -> _Writer: ...

# One of "pt" ("torch", "pytorch"), "np" ("numpy"), "tf" ("tensorflow"), "flax" ("jax"),
# "paddle" ("paddlepaddle"), "mlx"; anything else raises ValueError.
_Framework = str
_Device = Union[str, int, Any]

_BasicIndex = Union[int, slice, ellipsis, None, List[Any], Any]

@final
class PySafeSlice:
    """A lazy view of one tensor: index it to read only the selected part.

    ``slice[index]`` is numpy's ``arr[index]`` for every basic index (ints, slices with any
    step, ``...``, ``None``, tuples of these, and the empty list ``[]``). Lists, index arrays
    and tensors, bools and masks index as the framework indexes the full tensor (torch with
    ``framework="pt"``, numpy with ``"np"``), reading only the part they select. Where the
    framework raises, it raises ``SafetensorError`` that is also the framework's exception
    (``IndexError`` for a position out of range, ``ValueError`` for a zero step). A slice
    stays readable after the ``safe_open`` it came from is closed.
    """

    def get_shape(self) -> List[int]: ...
    def get_dtype(self) -> str: ...
    def __len__(self) -> int: ...
    def __getitem__(self, key: Union[_BasicIndex, Tuple[_BasicIndex, ...]], /) -> Any: ...

_PlanValue = Union[None, _BasicIndex, Tuple[_BasicIndex, ...]]

@final
class TensorMeta:
    """A tensor's header entry, as written in the file (``safe_open.get_tensor_meta``)."""

    @property
    def dtype(self) -> str:
        """The header's dtype name, e.g. ``"F32"``."""
    @property
    def shape(self) -> List[int]: ...
    @property
    def data_offsets(self) -> Tuple[int, int]:
        """``(start, end)`` of the tensor's bytes within the data section (of its shard)."""

@final
class PrefetchLoader:
    """The tensors of one plan loading in the background (``safe_open.prefetch``).

    Each tensor is handed out once, by ``take(name)`` or by iterating ``(name, tensor)``
    pairs in the order they become ready (tensors taken are skipped); ``dict(loader)`` loads
    them all. Memory of tensors not taken is held until they are taken or the loader closes;
    ``close()`` (also on leaving a ``with`` block) stops the reads and releases it. A loader
    keeps its files open: it works after its handle is closed.
    """

    def names(self) -> List[str]:
        """The names this loader hands out, in file order."""
    def take(self, name: str) -> Any:
        """``name``'s tensor, waiting for its bytes (a tensor not started yet is read next)."""
    def close(self) -> None: ...
    def __len__(self) -> int: ...
    def __iter__(self) -> "TensorStream": ...
    def __enter__(self) -> "PrefetchLoader": ...
    def __exit__(self, _exc_type: Any = None, _exc_value: Any = None, _traceback: Any = None) -> bool: ...

@final
class TensorStream:
    """Iterator over a ``PrefetchLoader``: ``(name, tensor)`` pairs in readiness order."""

    def __iter__(self) -> "TensorStream": ...
    def __next__(self) -> Tuple[str, Any]: ...

@final
class _PrefetchSource:
    """Private: what the CUDA prefetch driver (``_prefetch.py``) reads through."""

    def _staging_ring(
        self,
        slots: List[int],
        slot_bytes: int,
        copier: Any,
        *,
        threads: Optional[int] = None,
        block_size: Optional[int] = None,
        sequential: bool = True,
    ) -> "_StagingRing": ...
    def _fill(self, index: int, address: int, nbytes: int) -> None: ...

@final
class _StagingRing:
    """Private: the core's staging ring (``_staging.py``), its sink a ``DeviceCopier``."""

    def add(self, name: str, first: int, nbytes: int, dst: Any) -> None:
        """Packs bytes ``first..first + nbytes`` of tensor ``name`` for the start of ``dst``;
        each buffer it fills is read and its copies enqueued at once."""

    def flush(self) -> None:
        """Reads the partly filled buffer and enqueues its copies."""

    @property
    def flushes(self) -> int:
        """Buffers filled and their copies enqueued so far."""

@final
class safe_open:
    """Opens a safetensors file lazily (reads the header only). Usable as a context manager.

    ``filename`` may also be a folder (holding one ``*.safetensors.index.json``, or one
    ``.safetensors`` file) or an index JSON: a sharded checkpoint, whose shards are opened
    when first read. A ``str`` starting with ``http://`` or ``https://`` is the URL of a
    file or of an index JSON (shards resolved next to it), read with HTTP Range requests:
    opening fetches the header only, ``get_tensor``/``get_slice`` only the bytes needed,
    ``get_tensors`` several ranges at once; ``headers`` (e.g. ``{"Authorization": "Bearer
    ..."}``) go with every request.

    With ``framework="pt"`` and a CUDA ``device``, ``get_tensors`` streams every tensor
    through a small ring of pinned host buffers with asynchronous copies (host memory stays
    bounded whatever the model's size); ``get_tensor`` copies its one tensor to the device.

    ``verify=True`` (or, when ``verify`` is None, the environment variable
    ``SAFETENSORS_VERIFY=1``) checks each tensor against the digest its file records
    (``save_file(..., checksum=...)``) the first time it is read, whole even for a slice or
    a part, and raises ``SafetensorError`` naming the tensor on a mismatch; tensors without
    a recorded digest load as before.

    ``backend``: ``"mmap"`` maps the file privately (zero-copy views), ``"pread"`` reads
    each tensor with positioned reads, ``"auto"`` picks ``"pread"`` on network, cluster and
    FUSE filesystems (NFS, SMB, 9p, Ceph, Lustre, GPFS, FUSE, ...) and ``"mmap"`` elsewhere,
    by ``statfs`` (``SAFETENSORS_AUTO_BACKEND=pread|mmap`` overrides it); ``.backend`` and
    ``repr`` say which was used.

    Leaving the ``with`` block closes it: the descriptor and mapping are released (tensors
    handed out stay valid) and any later call raises ``SafetensorError``. A missing file
    raises ``FileNotFoundError`` (``errno`` and ``filename`` set).
    """

    def __new__(
        cls,
        filename: Union[str, os.PathLike[str]],
        framework: _Framework,
        device: Optional[_Device] = None,
        *,
        backend: str = "mmap",  # "mmap", "pread" or "auto"; anything else raises SafetensorValueError
        headers: Optional[Dict[str, str]] = None,  # sent with every HTTP request (URLs)
        verify: Optional[bool] = None,  # check recorded digests; None: SAFETENSORS_VERIFY
    ) -> "safe_open": ...
    def _prepare_for_parts(self) -> None:
        """Readies the files opened so far for reading parts of tensors (private: load_for_rank)."""
    def _load_all(
        self,
        names: List[str],
        strategy: str = "auto",
        *,
        threads: Optional[int] = None,
        block_size: Optional[int] = None,
    ) -> Dict[str, Any]:
        """Private: the tensors ``names`` as a dict, read as ``strategy`` says (whole loads)."""

    def _plan(self, names: List[str], strategy: str = "auto") -> str:
        """Private: how a whole load of ``names`` would read now ("views", "prefetch", "read")."""

    def _read_into(
        self,
        items: List[Tuple[str, int, int, int]],
        *,
        threads: Optional[int] = None,
        block_size: Optional[int] = None,
        sequential: bool = True,
    ) -> None:
        """Private: fills caller memory, items ``(name, start, address, nbytes)``; ``sequential``:
        hint the kernel that the files are read sequentially."""

    def _staging_ring(
        self,
        slots: List[int],
        slot_bytes: int,
        copier: Any,
        *,
        threads: Optional[int] = None,
        block_size: Optional[int] = None,
        sequential: bool = True,
    ) -> _StagingRing:
        """Private: the staging ring over this handle's files, its host buffers the
        ``slot_bytes`` bytes at each address of ``slots``, its copies handed to ``copier``."""

    def _layout(self, names: List[str]) -> List[Tuple[str, List[int], int]]:
        """Private: ``(dtype, shape, nbytes)`` of each tensor of ``names``."""

    @property
    def backend(self) -> Literal["mmap", "pread"]:
        """How local files are read: what was asked, or what ``backend="auto"`` picked
        (pread on network, cluster and FUSE filesystems, mmap elsewhere). URLs, buffers and
        file objects are never mapped: ``"pread"``."""
    @property
    def filesystem(self) -> Optional[str]:
        """The filesystem ``backend="auto"`` saw (``"ext4"``, ``"nfs"``, ``"fuse"``, ... or its
        ``statfs`` magic number in hex); None for another backend."""
    def keys(self) -> List[str]: ...
    def offset_keys(self) -> List[str]: ...
    def metadata(self) -> Optional[Dict[str, str]]: ...
    def get_tensor(self, name: str) -> Any: ...
    def get_tensors(self) -> Dict[str, Any]: ...
    def get_slice(self, name: str) -> PySafeSlice: ...
    def get_tensor_meta(self, name: str) -> TensorMeta:
        """The header entry of tensor ``name`` (dtype, shape, data offsets), reading no data."""
    def prefetch(
        self,
        plan: Optional[Mapping[str, _PlanValue]] = None,
        *,
        device: Optional[_Device] = None,
        threads: int = 8,
        memory_budget: Optional[int] = None,
    ) -> PrefetchLoader:
        """Starts loading ``plan``'s tensors in the background (see ``PrefetchLoader``).

        ``plan``: a dict of tensor name -> None (the whole tensor) or any index ``get_slice``
        takes (ints, slices with any step, ``...``, ``None``, tuples of these); None: every
        tensor whole. ``device``: the handle's by default; any device of the framework (torch
        onto CUDA streams through the pinned staging ring). ``threads``: reader threads.
        ``memory_budget``: bytes read ahead of ``take`` at most (None: 1 GiB); the reader
        waits for takes beyond it. Plan errors raise before anything is read.
        """
    def __enter__(self) -> "safe_open": ...
    def __exit__(self, _exc_type: Any = None, _exc_value: Any = None, _traceback: Any = None) -> Literal[False]: ...
    def __len__(self) -> int: ...
    def __contains__(self, name: str, /) -> bool: ...

def _safe_open_handle(fileobj: Any, framework: _Framework, device: Optional[_Device] = None) -> safe_open:
    """``safe_open`` over a file object (binary, or text mode: read through its buffer)."""

def _safe_open_bytes(data: Any, framework: _Framework, device: Optional[_Device] = None) -> safe_open: ...
def serialize(
    tensor_dict: Mapping[str, Union[TensorSpec, Mapping[str, Any]]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> bytes: ...
def serialize_file(
    tensor_dict: Mapping[str, Union[TensorSpec, Mapping[str, Any]]],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None: ...
def _serialize_sharded(
    tensor_dict: Mapping[str, Union[TensorSpec, Mapping[str, Any]]],
    folder: Union[str, os.PathLike[str]],
    max_shard_size: str,
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> str:
    """Writes shards of at most ``max_shard_size`` bytes and the index (last); the index JSON."""

def _inspect(location: Union[str, os.PathLike[str]], headers: Optional[Dict[str, str]] = None) -> str:
    """The JSON report of a file, folder, index JSON or URL, from the headers alone."""

def _filesystem_backend(f_type: int) -> Tuple[str, Literal["mmap", "pread"]]:
    """Private: the name of the filesystem whose ``statfs`` ``f_type`` is ``f_type`` and the
    backend ``"auto"`` picks on it (the core's table; ``SAFETENSORS_AUTO_BACKEND`` aside)."""

def _rank_part(shape: List[int], dim: int, world_size: int, rank: int) -> Tuple[int, int, int]:
    """``(dim, start, stop)``: part ``rank`` of ``world_size`` of a tensor of ``shape`` split
    along ``dim``, by ``torch.chunk``'s rule (``dim`` made non-negative)."""

def _rank_bytes(
    dtype: str, shape: List[int], dim: int, world_size: int, rank: int
) -> Tuple[int, int, int, List[int], Optional[Tuple[int, int]]]:
    """``(dim, start, stop, part shape, run)``: the part in the header's positions, whole bytes
    for sub-byte dtypes; ``run`` is ``(first byte, byte count)`` when the part is one run."""

def deserialize(bytes: Any) -> List[Tuple[str, Dict[str, Any]]]: ...
