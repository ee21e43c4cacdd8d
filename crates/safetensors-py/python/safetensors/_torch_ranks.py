"""Per-rank loading for tensor parallelism (``safetensors.torch.load_for_rank``): each rank
reads only its part of each split tensor (``mode="read"``), or rank 0 reads and the parts go
out over the process group (``mode="broadcast"``)."""

from __future__ import annotations

import fnmatch
import json
import math
import os
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

import torch

from . import _common
from ._safetensors_rust import _rank_bytes, _rank_part, safe_open
from ._torch_common import _TYPES, _st_device, _storage_shape

# name -> (header dtype, header shape, storage shape, split dim or None): what every rank needs
# to know about a tensor before its bytes arrive.
_Entry = Tuple[str, List[int], List[int], Optional[int]]


def _check_plan(plan: Any) -> List[Tuple[str, Optional[int]]]:
    if not isinstance(plan, Mapping):
        raise TypeError(
            f"plan must be a dict of tensor-name pattern -> dimension to split (or None), got {type(plan).__name__}"
        )
    items = list(plan.items())
    for pattern, dim in items:
        if not isinstance(pattern, str):
            raise TypeError(f"plan keys must be str glob patterns, got {type(pattern).__name__} ({pattern!r})")
        if dim is not None and (isinstance(dim, bool) or not isinstance(dim, int)):
            raise TypeError(
                f"plan[{pattern!r}] must be an int dimension or None (replicated), got {type(dim).__name__} ({dim!r})"
            )
    return items


def _plan_dim(items: List[Tuple[str, Optional[int]]], name: str) -> Tuple[Optional[str], Optional[int]]:
    """The first pattern matching ``name`` and its dimension; (None, None) when none does."""
    for pattern, dim in items:
        if fnmatch.fnmatchcase(name, pattern):
            return pattern, dim
    return None, None


def _part(entry: _Entry, name: str, pattern: Optional[str], world_size: int, rank: int) -> Tuple[int, int, int]:
    """(dim, start, stop) of ``rank``'s part of a split tensor, by torch.chunk's rule, over
    the tensor's torch shape; a clear error naming the tensor and the pattern."""
    _, _, storage, dim = entry
    assert dim is not None
    try:
        return _rank_part(storage, dim, world_size, rank)
    except ValueError as e:
        raise ValueError(
            f"cannot split tensor {name!r} (shape {storage}) as plan[{pattern!r}] = {dim} asks: {e}"
        ) from None


def _entries(f: Any, items: List[Tuple[str, Optional[int]]], world_size: int) -> Dict[str, _Entry]:
    """Every tensor of an open checkpoint (file order) with its split dimension; checks the
    whole plan against the headers (and every dtype against torch) before any data is read."""
    entries: Dict[str, _Entry] = {}
    for name in f.offset_keys():
        sl = f.get_slice(name)
        dtype, shape = sl.get_dtype(), sl.get_shape()
        if dtype not in _TYPES:
            raise _common.unsupported("torch", dtype)
        pattern, dim = _plan_dim(items, name)
        entry = (dtype, shape, _storage_shape(dtype, shape), dim)
        if dim is not None:
            for r in range(world_size):
                _part(entry, name, pattern, world_size, r)
        entries[name] = entry
    return entries


def _group_info(group: Any, rank: Optional[int], world_size: Optional[int], need_group: bool) -> Tuple[int, int]:
    """This process's rank and the world size: as given, else the process group's."""
    import torch.distributed as dist

    initialized = dist.is_available() and dist.is_initialized()
    if need_group or rank is None or world_size is None:
        if not initialized:
            why = (
                "mode='broadcast' sends the parts with torch.distributed"
                if need_group
                else ("rank and world_size default to those of the process group")
            )
            raise RuntimeError(
                f"load_for_rank: {why}, but torch.distributed is not initialized: call "
                "torch.distributed.init_process_group(...) first"
                + ("" if need_group else ", or pass rank= and world_size=")
            )
        group_rank, group_size = dist.get_rank(group), dist.get_world_size(group)
        if group_rank < 0:
            raise ValueError("load_for_rank: this process is not a member of the given group")
        if need_group and (rank not in (None, group_rank) or world_size not in (None, group_size)):
            raise ValueError(
                f"load_for_rank: rank={rank}, world_size={world_size} disagree with the process group "
                f"(rank {group_rank} of {group_size}); mode='broadcast' uses the group's"
            )
        rank = group_rank if rank is None else rank
        world_size = group_size if world_size is None else world_size
    for what, value in (("rank", rank), ("world_size", world_size)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"load_for_rank: {what} must be an int, got {type(value).__name__} ({value!r})")
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"load_for_rank: rank must be in [0, world_size), got rank={rank}, world_size={world_size}")
    return rank, world_size


def _load_read(
    location: Any, items: List[Tuple[str, Optional[int]]], rank: int, world_size: int, device: Any
) -> Dict[str, torch.Tensor]:
    """Each rank reads its own part of each split tensor and the whole of each replicated
    tensor, as one prefetch plan (``safe_open.prefetch``, the engine of every planned load):
    the core plans each part's byte runs (only those are read) and reads them with the
    parallel reader, into host tensors or, onto CUDA, through the pinned staging ring (a part
    of several runs, split past its first non-unit dimension, is gathered in host memory,
    then copied)."""
    with safe_open(location, framework="pt", device="cpu", backend="pread") as f:
        _no_readahead(f)  # before the shards' headers are read: their reads set readahead off
        entries = _entries(f, items, world_size)  # opens every shard, checks the whole plan
        plan: Dict[str, Any] = {}
        for name, entry in entries.items():
            dtype, shape, _, dim = entry
            if dim is None:
                plan[name] = None
                continue
            # The core plans the part in whole bytes (two F4 values a byte, as torch packs them).
            d, start, stop, _, _ = _rank_bytes(dtype, shape, dim, world_size, rank)
            plan[name] = (slice(None),) * d + (slice(start, stop),)
        if not plan:
            return {}
        with f.prefetch(plan, device=_st_device(device)) as loader:
            got = dict(loader)
    return {name: got[name] for name in entries}


def _no_readahead(f: Any) -> None:
    """Makes the kernel fetch exactly the pages a read asks for, on every file of ``f``: the
    core's ``reader::whole::for_parts`` (its readahead would otherwise also fetch past the end
    of each part, and the other ranks' bytes between a part's strided runs)."""
    f._prepare_for_parts()


def _comm_device(group: Any, device: torch.device) -> torch.device:
    """Where collective buffers live: the GPU for NCCL (the target one when it is a GPU),
    host memory for gloo and other CPU backends."""
    import torch.distributed as dist

    if str(dist.get_backend(group)) == "nccl":
        return device if device.type == "cuda" else torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _as_bytes(t: torch.Tensor) -> torch.Tensor:
    """A contiguous tensor's bytes as a flat uint8 tensor (no copy): collectives then move
    any dtype, bf16 and float8 included, whatever the backend supports."""
    return t.reshape(-1).view(torch.uint8)


def _from_bytes(buf: torch.Tensor, dtype: str, storage: List[int]) -> torch.Tensor:
    return buf.view(_TYPES[dtype]).view(storage)


def _load_broadcast(
    location: Any, items: List[Tuple[str, Optional[int]]], rank: int, world_size: int, device: Any, group: Any
) -> Dict[str, torch.Tensor]:
    """Rank 0 reads every tensor; split tensors go out with one scatter each (parts padded to
    the largest, since gloo scatters equal sizes), replicated ones with one broadcast each.
    Rank 0 first broadcasts the list of tensors (or the error that stopped it, so that every
    rank raises instead of waiting for data that will not come)."""
    import torch.distributed as dist

    target = _st_device(device)
    comm = _comm_device(group, target)
    src = 0 if group is None else dist.get_global_rank(group, 0)
    f: Any = None
    try:
        if rank == 0:
            try:
                f = safe_open(location, framework="pt", device="cpu")
                entries = _entries(f, items, world_size)
                message = json.dumps({"tensors": [[n, *e] for n, e in entries.items()]})
            except Exception as e:
                failure: Optional[BaseException] = e
                message = json.dumps({"error": f"{type(e).__name__}: {e}"})
            else:
                failure = None
            payload = torch.frombuffer(bytearray(message.encode()), dtype=torch.uint8).to(comm)
            size = torch.tensor([payload.numel()], dtype=torch.int64, device=comm)
            dist.broadcast(size, src, group=group)
            dist.broadcast(payload, src, group=group)
            if failure is not None:
                raise failure
        else:
            size = torch.zeros(1, dtype=torch.int64, device=comm)
            dist.broadcast(size, src, group=group)
            payload = torch.empty(int(size.item()), dtype=torch.uint8, device=comm)
            dist.broadcast(payload, src, group=group)
            decoded = json.loads(bytes(payload.cpu().numpy()).decode())
            if "error" in decoded:
                raise RuntimeError(f"load_for_rank: rank 0 could not load {location!r}: {decoded['error']}")
            entries = {n: (dt, sh, st, dim) for n, dt, sh, st, dim in decoded["tensors"]}

        out: Dict[str, torch.Tensor] = {}
        for name, entry in entries.items():
            dtype, _, storage, dim = entry
            if dim is None:
                nbytes = math.prod(storage) * _TYPES[dtype].itemsize
                if rank == 0:
                    buf = _as_bytes(f.get_tensor(name)).to(comm)
                else:
                    buf = torch.empty(nbytes, dtype=torch.uint8, device=comm)
                if nbytes:
                    dist.broadcast(buf, src, group=group)
                out[name] = _from_bytes(buf, dtype, storage).to(target)
                continue
            parts = [_part(entry, name, None, world_size, r) for r in range(world_size)]
            d = parts[0][0]
            row = math.prod(storage) // storage[d] * _TYPES[dtype].itemsize if storage[d] else 0
            widest = max(stop - start for _, start, stop in parts) * row
            _, start, stop = parts[rank]
            shape = list(storage)
            shape[d] = stop - start
            if widest == 0:
                out[name] = torch.empty(shape, dtype=_TYPES[dtype], device=target)
                continue
            recv = torch.empty(widest, dtype=torch.uint8, device=comm)
            scatter_list = None
            if rank == 0:
                whole = f.get_tensor(name)
                scatter_list = []
                for _, a, b in parts:
                    part = whole.narrow(d, a, b - a)
                    if part.is_contiguous() and (b - a) * row == widest:
                        scatter_list.append(_as_bytes(part).to(comm))  # a full-size block: sent as is
                        continue
                    # A smaller part (padded to the widest) or not contiguous (a split past dim
                    # 0): copied once into a buffer of the scatter's size.
                    buf = torch.empty(widest, dtype=torch.uint8, device=comm)
                    if b > a:
                        _from_bytes(buf[: (b - a) * row], dtype, list(part.shape)).copy_(part)
                    scatter_list.append(buf)
            dist.scatter(recv, scatter_list, src=src, group=group)
            out[name] = _from_bytes(recv[: (stop - start) * row], dtype, shape).to(target)
        return out
    finally:
        if f is not None:
            f.__exit__(None, None, None)


def load_for_rank(
    location: Union[str, os.PathLike[str]],
    plan: Mapping[str, Optional[int]],
    *,
    rank: Optional[int] = None,
    world_size: Optional[int] = None,
    device: Union[str, int, torch.device] = "cpu",
    group: Any = None,
    mode: str = "read",
) -> Dict[str, torch.Tensor]:
    """Loads this rank's part of every tensor of a checkpoint (a file, a sharded folder or its
    index JSON: anything ``safe_open`` takes), for tensor-parallel models.

    ``plan`` maps tensor-name glob patterns (``fnmatch``, case-sensitive: ``*`` matches dots
    too) to the dimension split across ranks, or to None for a tensor every rank gets whole
    (replicated). The first pattern that matches a name, in the plan's order, decides; a
    tensor no pattern matches is replicated. A split dimension may be negative (counted from
    the end, as in torch).

    Rank ``r`` of ``world_size`` gets ``torch.chunk(tensor, world_size, dim)[r]``, exactly
    ``torch.chunk``'s rule for uneven sizes; where that rule makes fewer chunks than ranks
    (6 rows over 4 ranks: chunks of 2, 2, 2), the ranks past the last chunk get an empty
    tensor (the split dimension 0). ``rank`` and ``world_size`` default to this process's in
    ``group`` (the default process group when None).

    ``mode="read"``: one prefetch plan (``safe_open.prefetch``, the parallel reader): each
    rank reads only the bytes of its own part of each split tensor
    (positioned reads of exactly the part's byte runs, the kernel's readahead off; where those runs are shorter than a
    4 KiB page and every page of the tensor holds some of them, the storage reads those pages
    anyway and the covering span is read in one call) and the whole of each replicated
    tensor. No collective is used: ``rank``/``world_size`` given, it needs no process group.
    Onto a CUDA device, each part that is one run of bytes (every replicated tensor, and a
    split whose dimensions before the split one are all 1, e.g. along dimension 0) streams
    through the pinned staging ring (host memory bounded by the ring); a part split further
    in is read into a host tensor of the part's size, then copied to the device.
    ``mode="broadcast"``: rank 0 alone reads the checkpoint (for storage that should be read
    once, or that only rank 0 sees) and sends each split tensor's parts with one
    ``scatter`` and each replicated tensor with one ``broadcast`` over ``group`` (gloo: host
    memory; NCCL: GPU memory); every rank of the group must call it.

    Returns a dict name -> tensor on ``device``, in file order. A plan that is not a dict, a
    dimension that is not an int or None, a dimension a tensor does not have, a scalar to
    split, or an unknown mode is refused before any tensor data is read.
    """
    if mode not in ("read", "broadcast"):
        raise ValueError(f"load_for_rank: mode must be 'read' or 'broadcast', got {mode!r}")
    items = _check_plan(plan)
    rank, world_size = _group_info(group, rank, world_size, need_group=mode == "broadcast")
    if mode == "read":
        return _load_read(location, items, rank, world_size, device)
    return _load_broadcast(location, items, rank, world_size, device, group)
