"""Save and load PyTorch tensors and models in the safetensors format.

Besides ``save``/``save_file``/``load``/``load_file`` this module has ``save_model`` and
``load_model`` (which handle tensors that share memory, such as tied embeddings) and the
helpers other libraries import from it (``storage_ptr``, ``storage_size``,
``_find_shared_tensors``, ``_remove_duplicate_names``, ...).
"""

from __future__ import annotations

import os
from collections import defaultdict
from typing import Any, Dict, List, Optional, Set, Tuple, Union

import torch

from . import _common, _staging, _torch_staging, _writer

# Re-exported: code written for the reference imports these from the framework modules.
from ._safetensors_rust import (  # noqa: F401,E402
    SafetensorError,
    SafetensorKeyError,
    SafetensorRuntimeError,
    SafetensorTypeError,
    TensorSpec,
    _rank_part,
    deserialize,
    safe_open,
    serialize,
    serialize_file,
)
from ._torch_common import _F4, _NAMES, _SIZE, _TYPES, _st_device, _storage_shape  # noqa: F401 (vLLM imports _TYPES)
from ._torch_ranks import load_for_rank  # noqa: F401 (public: in __all__)

__all__ = [
    "save",
    "save_file",
    "save_sharded",
    "open_writer",
    "open_sharded_writer",
    "load",
    "load_file",
    "load_for_rank",
    "save_model",
    "load_model",
    "load_into",
]

# --- private helpers that public projects import from the reference ---------------------------


def _getdtype(dtype_str: str) -> torch.dtype:
    """The torch dtype of a header dtype ("F32" -> torch.float32); KeyError for one torch lacks
    (PyTorch's distributed checkpoint reader and diffusers call it)."""
    return _TYPES[dtype_str]


def _to_ndarray(tensor: torch.Tensor) -> Tuple[Any, torch.Tensor]:
    """The tensor's bytes as a flat numpy ``uint8`` array (row-major, little-endian), and the
    contiguous CPU tensor that holds them (keep it alive while the array is used): diffusers
    calls ``_to_ndarray(t)[0].tobytes()``. A "meta" tensor has no bytes: NotImplementedError."""
    import numpy as np

    if tensor.device.type == "meta":
        raise NotImplementedError("Cannot copy out of meta tensor; no data!")
    t = tensor.detach().to("cpu").contiguous()
    if t.nelement() == 0:
        return np.empty(0, dtype=np.uint8), t
    return t.reshape(-1).view(torch.uint8).numpy(), t


def _tobytes(tensor: torch.Tensor, name: str) -> bytes:
    """The bytes safetensors stores for ``tensor`` (``name`` names it in errors): what earlier
    releases' helper returned, still imported by some training frameworks."""
    if not tensor.is_contiguous():
        raise ValueError(
            f"You are trying to save a non contiguous tensor: `{name}` which is not allowed. Call `.contiguous()` "
            "on your tensor to pack it before saving."
        )
    data: bytes = _to_ndarray(tensor)[0].tobytes()
    return data


# --- storage helpers (imported by other libraries) -----------------------------------------


def storage_ptr(tensor: torch.Tensor) -> int:
    """The address of the tensor's storage (0 for storage-less tensors, e.g. on "meta")."""
    try:
        return tensor.untyped_storage().data_ptr()
    except Exception:
        try:  # older torch
            return int(tensor.storage().data_ptr())  # type: ignore[no-untyped-call]
        except NotImplementedError:
            return 0


def storage_size(tensor: torch.Tensor) -> int:
    """The size in bytes of the tensor's storage."""
    try:
        return tensor.untyped_storage().nbytes()
    except AttributeError:  # older torch
        try:
            return int(tensor.storage().size()) * tensor.element_size()  # type: ignore[no-untyped-call]
        except NotImplementedError:
            return tensor.nelement() * tensor.element_size()


def _end_ptr(tensor: torch.Tensor) -> int:
    """The address one past the tensor's last byte (its start when it is empty)."""
    if tensor.nelement() == 0:
        return tensor.data_ptr()
    last = sum((size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride()))
    return tensor.data_ptr() + (last + 1) * tensor.element_size()


def _is_complete(tensor: torch.Tensor) -> bool:
    """Whether the tensor starts at its storage's start and covers all of it (an empty tensor
    stores nothing, so it never holds more memory than it shows)."""
    if tensor.nelement() == 0:
        return True
    return tensor.data_ptr() == storage_ptr(tensor) and (
        tensor.nelement() * tensor.element_size() == storage_size(tensor)
    )


def _find_shared_tensors(state_dict: Dict[str, torch.Tensor]) -> List[Set[str]]:
    """Groups of names whose tensors share memory (overlapping bytes of one storage).

    Every tensor is in exactly one group; a group of one shares nothing. Tensors of one
    storage whose bytes do not overlap (e.g. disjoint views) are in separate groups. Tensors
    on the "meta" device have no memory and are left out entirely.
    """
    by_storage: Dict[Tuple[Any, int, int], List[str]] = defaultdict(list)
    groups: List[Set[str]] = []
    for name, t in state_dict.items():
        if not isinstance(t, torch.Tensor):
            continue
        if t.device.type == "meta":
            continue
        ptr = storage_ptr(t)
        if ptr == 0 or t.nelement() == 0:
            groups.append({name})
            continue
        by_storage[(t.device, ptr, storage_size(t))].append(name)
    for names in by_storage.values():
        spans = sorted((state_dict[n].data_ptr(), _end_ptr(state_dict[n]), n) for n in names)
        current: Set[str] = set()
        current_end = -1
        for start, end, n in spans:
            if current and start < current_end:
                current.add(n)
                current_end = max(current_end, end)
            else:
                if current:
                    groups.append(current)
                current, current_end = {n}, end
        if current:
            groups.append(current)
    return groups


def _remove_duplicate_names(
    state_dict: Dict[str, torch.Tensor],
    *,
    preferred_names: Optional[List[str]] = None,
    discard_names: Optional[List[str]] = None,
) -> Dict[str, List[str]]:
    """For each group of tensors sharing memory: the name to keep -> sorted names to drop.

    The kept name is the first in sorted order among the group's complete tensors (those
    covering their whole storage), preferring names not in ``discard_names`` and then names
    in ``preferred_names``. A group with no complete tensor is refused with RuntimeError,
    a group of one included (a lone view over part of a larger storage): saving it would store
    more memory than the tensor holds.
    """
    preferred = set(preferred_names or [])
    discard = set(discard_names or [])
    to_remove: Dict[str, List[str]] = defaultdict(list)
    for shared in _find_shared_tensors(state_dict):
        complete = {n for n in shared if _is_complete(state_dict[n])}
        if not complete:
            raise RuntimeError(
                f"Error while trying to find names to remove to save state dict, but found no suitable name to keep "
                f"for saving amongst: {sorted(shared)}. None is covering the entire storage. Refusing to save/load "
                "the model since you could be storing much more memory than needed. Please refer to "
                "https://huggingface.co/docs/safetensors/torch_shared_tensors for more information. Or open an issue."
            )
        keep = sorted(complete)[0]
        kept_not_discarded = complete - discard
        if kept_not_discarded:
            keep = sorted(kept_not_discarded)[0]
        kept_preferred = complete & preferred
        if kept_preferred:
            keep = sorted(kept_preferred)[0]
        for name in sorted(shared):
            if name != keep:
                to_remove[keep].append(name)
    return to_remove


# --- save -----------------------------------------------------------------------------------


def _header(t: torch.Tensor, name: str) -> Tuple[str, List[int]]:
    try:
        dtype = _NAMES[t.dtype]
    except KeyError:
        # A KeyError, as the reference raises it (its table lookup), and a SafetensorError.
        raise SafetensorKeyError(f"tensor {name!r} has dtype {t.dtype}, which safetensors cannot store") from None
    shape = list(t.shape)
    if t.dtype == _F4 and _F4 is not None:
        if not shape:
            raise SafetensorError(f"tensor {name!r}: a scalar float4_e2m1fn_x2 cannot be stored")
        shape[-1] *= 2  # two 4-bit values a byte: the header counts elements
    return dtype, shape


def _check_savable(tensors: Any) -> None:
    """The whole-dict checks, before anything is converted or written: a dict, no sparse
    layouts, only tensors, none on "meta" (no data), no memory shared between entries."""
    _common.check_dict(tensors, "torch.Tensor")
    sparse = [k for k, v in tensors.items() if isinstance(v, torch.Tensor) and v.layout != torch.strided]
    if sparse:
        raise ValueError(
            f"You are trying to save sparse tensors: `{sparse}`, which this library does not support. "
            "You can make it a dense tensor before saving with `.to_dense()` but be aware this might make a "
            "much larger file than needed."
        )
    for k, v in tensors.items():
        if not isinstance(v, torch.Tensor):
            raise _common.not_a_tensor(k, v, "torch.Tensor")
    for v in tensors.values():
        if v.device.type == "meta":
            # What torch itself raises when asked to copy a meta tensor's (absent) data.
            raise NotImplementedError("Cannot copy out of meta tensor; no data!")
    shared = [sorted(s) for s in _find_shared_tensors(tensors) if len(s) > 1]
    if shared:
        raise RuntimeError(
            f"Some tensors share memory, this will lead to duplicate memory on disk and potential differences "
            f"when loading them again: {shared}.\nA potential way to correctly save your model is to use "
            "`save_model`.\nMore information at https://huggingface.co/docs/safetensors/torch_shared_tensors"
        )


def _convert(name: str, t: torch.Tensor) -> _common.Converted:
    """A tensor's header dtype and shape, and its own CPU memory (a CPU copy for tensors on
    other devices)."""
    if not t.is_contiguous():
        raise ValueError(
            f"You are trying to save a non contiguous tensor: `{name}` which is not allowed. It either means you "
            "are trying to save tensors which are reference of each other in which case it's recommended to save "
            "only the full tensors, and reslice at load time, or simply call `.contiguous()` on your tensor to "
            "pack it before saving."
        )
    dtype, shape = _header(t, name)
    if t.device.type != "cpu":
        t = t.to("cpu")
    t = t.detach()
    return dtype, shape, t.data_ptr(), t.nelement() * t.element_size(), t


def save(
    tensors: Dict[str, torch.Tensor], metadata: Optional[Dict[str, str]] = None, *, checksum: Optional[str] = None
) -> bytes:
    """Saves a dict of tensors to bytes in the safetensors format."""
    _check_savable(tensors)
    return _common.save(tensors, metadata, "torch.Tensor", _convert, checksum)


def save_file(
    tensors: Dict[str, torch.Tensor],
    filename: Union[str, os.PathLike[str]],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a dict of tensors to a safetensors file (written to a temporary file, then renamed)."""
    _check_savable(tensors)
    _common.save_file(tensors, filename, metadata, "torch.Tensor", _convert, checksum)


def save_model(
    model: torch.nn.Module,
    filename: str,
    metadata: Optional[Dict[str, str]] = None,
    force_contiguous: bool = True,
    *,
    checksum: Optional[str] = None,
) -> None:
    """Saves a model's state dict, keeping one name per group of tensors that share memory.

    Each dropped name is recorded in the metadata (dropped name -> kept name).
    """
    state_dict = model.state_dict()
    to_removes = _remove_duplicate_names(state_dict)
    metadata = dict(metadata) if metadata is not None else None
    for kept_name, dropped in to_removes.items():
        for name in dropped:
            if metadata is None:
                metadata = {}
            metadata.setdefault(name, kept_name)
            del state_dict[name]
    if force_contiguous:
        state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    try:
        save_file(state_dict, filename, metadata=metadata, checksum=checksum)
    except ValueError as e:
        raise ValueError(
            f"{e}\nOr use save_model(..., force_contiguous=True), read the docs for potential caveats."
        ) from e


def save_sharded(
    state_dict: Dict[str, torch.Tensor],
    folder: Union[str, os.PathLike[str]],
    *,
    max_shard_size: Union[int, str] = "5GB",
    metadata: Optional[Dict[str, str]] = None,
    checksum: Optional[str] = None,
) -> Dict[str, Any]:
    """Saves a state dict as a sharded checkpoint in ``folder``, the layout transformers
    writes: ``model-00001-of-0000N.safetensors`` files of at most ``max_shard_size`` tensor
    bytes (an int, or a str such as "5GB" or "500MiB"), then ``model.safetensors.index.json``
    (``metadata.total_size`` and ``weight_map``), written last; a single ``model.safetensors``
    when everything fits in one shard. Each file is written to a temporary file then renamed.

    Tensors sharing memory are saved once, as ``save_model`` does (each dropped name is
    recorded in every shard's metadata: dropped name -> kept name); ``"format": "pt"`` is
    added to the metadata unless given. Returns the index as a dict.
    """
    state_dict = dict(state_dict)
    meta = dict(metadata) if metadata is not None else {}
    meta.setdefault("format", "pt")
    for kept_name, dropped in _remove_duplicate_names(state_dict).items():
        for name in dropped:
            meta.setdefault(name, kept_name)
            del state_dict[name]
    state_dict = {k: v.contiguous() for k, v in state_dict.items()}
    _check_savable(state_dict)
    return _common.save_sharded(state_dict, folder, max_shard_size, meta, "torch.Tensor", _convert, checksum)


# --- streaming save -------------------------------------------------------------------------


def _spec_header(name: str, dtype: Any, shape: List[int]) -> Tuple[str, List[int]]:
    """The header dtype and shape of a spec: what ``save_file`` writes for such a tensor."""
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"spec of {name!r}: the dtype must be a torch.dtype or a header dtype name such as 'F32', got {dtype!r}"
        )
    return _header(torch.empty(shape, dtype=dtype, device="meta"), name)


def _check_writable(name: str, t: Any) -> None:
    """What ``save_file`` refuses of a single tensor before converting it."""
    if not isinstance(t, torch.Tensor):
        raise _common.not_a_tensor(name, t, "torch.Tensor")
    if t.layout != torch.strided:
        raise ValueError(f"You are trying to save a sparse tensor: `{name}`; make it dense with `.to_dense()` first.")
    if t.device.type == "meta":
        raise NotImplementedError("Cannot copy out of meta tensor; no data!")


def open_writer(
    filename: Union[str, os.PathLike[str]],
    specs: Dict[str, Any],
    metadata: Optional[Dict[str, str]] = None,
    *,
    checksum: Optional[str] = None,
) -> _writer.StreamingWriter:
    """Opens a safetensors file to be written tensor by tensor, for tensors too many to hold
    in memory at once (converting, merging, quantizing a large model).

    ``specs`` maps every tensor's name to ``(dtype, shape)`` (a ``torch.dtype`` and its
    shape; or a header dtype name such as ``"BF16"`` with the header's shape; or a tensor,
    "meta" ones included, whose dtype and shape are taken). The file is laid out at once as
    ``save_file`` lays it out, so the bytes are ``save_file``'s for the same tensors and
    ``metadata``, with ``checksum`` too (``"sha256"`` or ``"xxh3-64"``: each tensor is hashed
    as it is written, and the file is ``save_file(..., checksum=...)``'s). Use it as a context
    manager::

        with open_writer("model.safetensors", {"a": (torch.float32, (2, 3))}) as w:
            w.write("a", torch.zeros(2, 3))

    ``write(name, tensor)`` takes each tensor once, in any order (CPU or any device). Leaving
    the block normally renames the file into place, an error if a tensor was never written;
    an exception removes the temporary file. An existing file is never touched until then.
    """
    return _writer.open_writer(filename, specs, metadata, checksum, _spec_header, _convert, _check_writable)


def open_sharded_writer(
    folder: Union[str, os.PathLike[str]],
    specs: Dict[str, Any],
    *,
    max_shard_size: Union[int, str] = "5GB",
    metadata: Optional[Dict[str, str]] = None,
    checksum: Optional[str] = None,
) -> _writer.ShardedWriter:
    """``open_writer`` for a sharded checkpoint in ``folder``: the shards and index
    ``save_sharded`` writes for the same tensors in the same order (``"format": "pt"`` is added
    to the metadata unless given), byte for byte. Shards are renamed into place only once every
    tensor is written, then the index is written last; the writer's ``index`` is then the
    index as a dict.
    """
    meta = dict(metadata) if metadata is not None else {}
    meta.setdefault("format", "pt")
    return _writer.open_sharded_writer(
        folder, specs, max_shard_size, meta, checksum, _spec_header, _convert, _check_writable
    )


# --- load -----------------------------------------------------------------------------------


def load(data: bytes) -> Dict[str, torch.Tensor]:
    """Loads a safetensors file held in memory into CPU tensors."""
    return _common.load_bytes(data, "pt")


def load_file(
    filename: Union[str, os.PathLike[str]],
    device: Union[str, int, torch.device, None] = "cpu",
    *,
    backend: str = "mmap",
    headers: Optional[Dict[str, str]] = None,
    verify: Optional[bool] = None,
) -> Dict[str, torch.Tensor]:
    """Loads a safetensors file (or a sharded checkpoint: a folder or an index JSON) into
    tensors on ``device``.

    On the CPU, with the mmap backend (the default), every tensor is a zero-copy view of one
    private (copy-on-write) memory map of the file: writing to a tensor never changes the
    file; a file mostly not in the page cache is first read ahead whole, in large requests.
    ``backend="pread"`` reads every tensor into its own memory, with several threads in
    large blocks; ``backend="auto"`` picks pread on network, cluster and FUSE filesystems (NFS,
    SMB, Lustre, FUSE, ...) and mmap elsewhere. On a CUDA device the bytes stream through a
    small ring of pinned host buffers with asynchronous copies (host memory stays bounded
    whatever the model's size); on other devices each tensor is copied there from the CPU.

    ``filename`` may be the ``http(s)://`` URL of a file or of an index JSON: tensors are
    fetched with Range requests, several at once, ``headers`` sent with each request.
    """
    dev = _st_device(device)
    if dev.type == "cuda":
        with safe_open(filename, framework="pt", device="cpu", backend=backend, headers=headers, verify=verify) as f:
            return _prefetch_all(f, f.offset_keys(), dev)
    return _common.load_file(filename, "pt", device, backend, headers, verify)


def _prefetch_all(f: Any, names: List[str], device: torch.device) -> Dict[str, torch.Tensor]:
    """Every tensor of ``names`` onto ``device`` with one prefetch plan (``safe_open.prefetch``,
    the engine of every planned load: onto CUDA, the pinned staging ring), in that order."""
    if not names:
        return {}
    with f.prefetch(dict.fromkeys(names), device=device) as loader:
        out = dict(loader)
    return {name: out[name] for name in names}


def _staged_load(
    filename: Union[str, os.PathLike[str]],
    device: torch.device,
    copier: "_staging.DeviceCopier",
    backend: str = "mmap",
    slot_bytes: Optional[int] = None,
    slots: Optional[int] = None,
    threads: Optional[int] = None,
    block_size: Optional[int] = None,
    headers: Optional[Dict[str, str]] = None,
) -> Dict[str, torch.Tensor]:
    """``load_file`` through the staging ring onto ``copier``'s device (see ``_staging``)."""
    with safe_open(filename, framework="pt", device="cpu", backend=backend, headers=headers) as f:
        names = f.offset_keys()
        return _staging.load(f, names, copier, slot_bytes, slots, threads=threads, block_size=block_size)


def _torch_error(model: torch.nn.Module, missing: List[str], unexpected: List[str]) -> RuntimeError:
    """The RuntimeError of ``load_state_dict(strict=True)``, in torch's own words."""
    msgs = []
    if missing:
        msgs.append("Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
    if unexpected:
        msgs.append("Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
    return RuntimeError(
        "Error(s) in loading state_dict for {}:\n\t{}".format(model.__class__.__name__, "\n\t".join(msgs))
    )


def load_model(
    model: torch.nn.Module,
    filename: Union[str, os.PathLike[str]],
    strict: bool = True,
    device: Union[str, int, torch.device, None] = "cpu",
    *,
    backend: str = "mmap",
) -> Tuple[Set[str], List[str]]:
    """Loads a file written by ``save_model`` (or ``save_file``), or a sharded checkpoint (a
    folder or an index JSON), into ``model``.

    Returns ``(missing, unexpected)``, as the reference does: the set of names of the model
    not found in the file, and the list of names in the file the model cannot take. Of a
    group of tied names (sharing memory) only the name kept is reported missing: the others
    are restored through that sharing when it is loaded, and dropped from the file by
    ``save_model`` in any case.
    Where the model ties tensors (they share memory) but the file stores them separately,
    only the kept name is loaded and the file's other names are unexpected: loading both
    would silently keep whichever came last. With ``strict=True`` any missing or unexpected
    name raises RuntimeError (torch's own message).

    Parameters and buffers that are contiguous tensors of the file's dtype and shape, in
    modules that load their state the default way (no ``_load_from_state_dict`` override, no
    load hooks), are filled in place: on the CPU their bytes are read by several threads
    straight into the parameter's memory, with no intermediate tensor; on a CUDA device they
    stream through the pinned staging ring into the parameter's memory. Everything else is loaded
    through ``model.load_state_dict`` as before (``device`` only matters for those).
    """
    with safe_open(filename, framework="pt", device=device, backend=backend) as f:
        file_names = f.offset_keys()
        model_state_dict = model.state_dict()
        to_removes = _remove_duplicate_names(model_state_dict, preferred_names=file_names)
        in_file = set(file_names)
        tied_in_file = [name for dropped in to_removes.values() for name in dropped if name in in_file]
        tied = set(tied_in_file)
        wanted = [name for name in file_names if name not in tied]
        direct = _read_in_place(f, wanted, _in_place_targets(model))
        rest = {name: f.get_tensor(name) for name in wanted if name not in direct}
    missing_keys, unexpected_keys = model.load_state_dict(rest, strict=False)
    missing = set(missing_keys) - direct
    for dropped in to_removes.values():
        missing.difference_update(dropped)
    unexpected = sorted(set(unexpected_keys) | set(tied_in_file))
    if strict and (missing or unexpected):
        raise _torch_error(model, sorted(missing), unexpected)
    return missing, unexpected


def load_into(
    state_dict: Dict[str, torch.Tensor],
    filename: Union[str, os.PathLike[str]],
    *,
    strict: bool = True,
    backend: str = "mmap",
) -> Tuple[List[str], List[str]]:
    """Fills the existing tensors of ``state_dict`` with the values stored under the same
    names in a safetensors file or a sharded checkpoint (a folder or an index JSON), in place
    (e.g. a model's preallocated parameters, as accelerate and transformers hold them).

    Contiguous tensors of the file's dtype and shape get the file's bytes read straight into
    their memory by several threads (CPU) or through the pinned staging ring (CUDA); other
    tensors (another device, dtype or layout)
    are copied into with ``Tensor.copy_``, which converts the dtype. A shape that differs
    raises RuntimeError before anything is read. Returns ``(missing, unexpected)``: names of
    ``state_dict`` not in the file, names in the file not in ``state_dict``; with
    ``strict=True`` (the default) either raises RuntimeError, before anything is read.
    """
    with safe_open(filename, framework="pt", backend=backend) as f:
        file_names = f.offset_keys()
        in_file = set(file_names)
        missing = sorted(name for name in state_dict if name not in in_file)
        unexpected = sorted(name for name in file_names if name not in state_dict)
        if strict and (missing or unexpected):
            msgs = []
            if missing:
                msgs.append("Missing key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in missing)))
            if unexpected:
                msgs.append("Unexpected key(s) in state_dict: {}. ".format(", ".join(f'"{k}"' for k in unexpected)))
            raise RuntimeError("Error(s) in loading state_dict:\n\t{}".format("\n\t".join(msgs)))
        wanted = [name for name in file_names if name in state_dict]
        for name, (dtype, shape, _) in zip(wanted, f._layout(wanted)):
            if list(state_dict[name].shape) != _storage_shape(dtype, shape):
                raise RuntimeError(
                    f"size mismatch for {name}: copying a param with shape {torch.Size(shape)} from checkpoint, "
                    f"the shape in current model is {state_dict[name].shape}."
                )
        direct = _read_in_place(f, wanted, state_dict)
        with torch.no_grad():
            for name in wanted:
                if name not in direct:
                    state_dict[name].copy_(f.get_tensor(name))
    return missing, unexpected


def _in_place_targets(model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """The state-dict names of the parameters and persistent buffers that ``load_state_dict``
    would fill with a plain copy: those of modules loading the default way. None at all when
    any module has load_state_dict hooks (they may rename or transform entries)."""
    base = torch.nn.Module._load_from_state_dict
    modules = list(model.named_modules(remove_duplicate=False))
    for _, module in modules:
        if getattr(module, "_load_state_dict_pre_hooks", None) or getattr(module, "_load_state_dict_post_hooks", None):
            return {}
    targets: Dict[str, torch.Tensor] = {}
    for prefix, module in modules:
        if type(module)._load_from_state_dict is not base:
            continue
        dot = prefix + "." if prefix else ""
        for name, param in module._parameters.items():
            if param is not None:
                targets[dot + name] = param
        for name, buf in module._buffers.items():
            if buf is not None and name not in module._non_persistent_buffers_set:
                targets[dot + name] = buf
    return targets


def _read_in_place(f: Any, names: List[str], targets: Dict[str, torch.Tensor]) -> Set[str]:
    """Fills each target of ``names`` that is a contiguous tensor of the file's dtype and
    shape straight from the file: on the CPU with the parallel reader into its memory, on a
    CUDA device through the pinned staging ring into its memory. Returns the names filled."""
    candidates = [name for name in names if name in targets]
    items = []
    on_cuda: Dict[torch.device, List[Tuple[str, torch.Tensor]]] = defaultdict(list)
    done: Set[str] = set()
    for name, (dtype, shape, nbytes) in zip(candidates, f._layout(candidates)):
        t = targets[name]
        if not (
            t.layout == torch.strided
            and t.dtype == _TYPES.get(dtype)
            and dtype != "F4"
            and list(t.shape) == shape
            and t.is_contiguous()
            and t.nelement() * t.element_size() == nbytes
        ):
            continue
        if t.device.type == "cpu":
            items.append((name, 0, t.data_ptr(), nbytes))
        elif t.device.type == "cuda":
            on_cuda[t.device].append((name, t.detach().reshape(-1).view(torch.uint8)))
        else:
            continue
        done.add(name)
    if items:
        f._read_into(items)
    with torch.no_grad():
        for device, pairs in on_cuda.items():
            copier = _torch_staging.device_copier(device)
            _staging.fill(f, [n for n, _ in pairs], [d for _, d in pairs], copier)
    return done


# --- hooks called by the Rust loader -------------------------------------------------------


def _st_load_all(f: Any, names: List[str], device: torch.device) -> Optional[Dict[str, torch.Tensor]]:
    """``safe_open(..., device=...).get_tensors()`` onto a CUDA device: every tensor through
    the pinned staging ring (read in file order, returned in the order of ``names``); None on
    other devices (the loader then moves tensors there one at a time).

    ``get_tensor`` of one tensor does not come here: one tensor gains nothing from the ring
    (its bytes are a view of the mapping, or one read into host memory, copied in one go),
    and pinning the ring's buffers would cost more than the copy of most tensors."""
    if device.type != "cuda":
        return None
    return _prefetch_all(f, names, device)


def _st_empty(dtype: str, shape: List[int]) -> Tuple[torch.Tensor, int, int]:
    try:
        tdtype = _TYPES[dtype]
    except KeyError:
        raise _common.unsupported("torch", dtype) from None
    t = torch.empty(_storage_shape(dtype, shape), dtype=tdtype)
    nbytes = t.nelement() * t.element_size()
    return t, t.data_ptr(), nbytes


def _st_finish(t: torch.Tensor, dtype: str, shape: List[int], device: torch.device) -> torch.Tensor:
    if device.type != "cpu":
        t = t.to(device)
    return t


def _st_view(
    buf: Any, dtype: str, shape: List[int], offset: int, nbytes: int, device: torch.device
) -> Optional[torch.Tensor]:
    """A tensor over ``buf[offset:offset + nbytes]`` without a copy (its own storage of exactly
    those bytes, as ``torch.frombuffer`` makes), moved to ``device``; None when no view can be
    made (the loader then copies)."""
    tdtype = _TYPES.get(dtype)
    if tdtype is None or dtype == "F4":
        return None  # unsupported: the copy path reports it; F4: packed pairs, copied
    size = tdtype.itemsize
    if nbytes == 0 or offset % size or nbytes % size:
        return None  # frombuffer refuses empty buffers; unaligned data is copied to aligned memory
    t = torch.frombuffer(buf, dtype=tdtype, count=nbytes // size, offset=offset).view(shape)
    if device.type != "cpu":
        t = t.to(device)
    return t
