"""``get_slice(name)[index]`` for the entries the Rust planner does not take itself.

The extension applies Python ints, slices, ``...``, ``None`` and ``[]`` itself (numpy's rules,
the same as torch's for these). Any other entry comes here: numpy and torch integer scalars,
lists, index arrays and tensors (advanced indexing), bools and boolean masks. With
``framework="pt"`` the result is what ``full_tensor[index]`` gives in torch, with ``"np"``
what numpy gives (the two differ, e.g. where ints and arrays are separated by a slice).

How: the index is split into a read and a final step. The read is a basic index (slices
only) that covers every element the index selects: an int ``i`` reads ``i:i+1``, an index
array the span from its smallest to its largest position (or, when those positions are
sparse, each run of consecutive positions, joined), a mask the box around its true elements.
It goes through the Rust planner, so only those bytes are read. The final step indexes that
part with the same index, shifted into it, with the framework's own indexing: so the shape,
the order and the placement of the advanced dimensions are the framework's by construction.
"""

from __future__ import annotations

import operator
from typing import Any, List, Sequence, Tuple

import numpy as np

from ._safetensors_rust import (
    SafetensorError,
    SafetensorIndexError,
    SafetensorRuntimeError,
    SafetensorTypeError,
    SafetensorValueError,
)

# The framework's exception -> the SafetensorError that is also that exception.
_DUAL = [
    (IndexError, SafetensorIndexError),
    (ValueError, SafetensorValueError),
    (TypeError, SafetensorTypeError),
    (RuntimeError, SafetensorRuntimeError),
]

# Frameworks whose tensors this module indexes (the others take basic indices only).
_ADVANCED = ("pt", "np")


class _Int:
    """An integer position (consumes one dimension)."""

    def __init__(self, value: int) -> None:
        self.value = value


class _Array:
    """An integer index array (consumes one dimension)."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value


class _Mask:
    """A boolean mask (consumes as many dimensions as it has)."""

    def __init__(self, value: np.ndarray) -> None:
        self.value = value


class _BoolScalar:
    """``True``/``False``: a new dimension of length 1 or 0 (consumes none)."""

    def __init__(self, value: bool) -> None:
        self.value = value


def _is_torch_tensor(obj: Any) -> bool:
    return type(obj).__module__.startswith("torch") and hasattr(obj, "numpy")


def _classify(obj: Any, framework: str, name: str) -> Any:
    """One entry of the index as itself (slice, ``...``, ``None``) or one of the classes above."""
    if obj is None or obj is Ellipsis or isinstance(obj, slice):
        return obj
    if isinstance(obj, (bool, np.bool_)):
        return _BoolScalar(bool(obj))
    if isinstance(obj, int):
        return _Int(int(obj))
    if _is_torch_tensor(obj):
        t = obj.detach().cpu()
        if t.dtype.is_floating_point or t.dtype.is_complex:
            raise SafetensorIndexError(
                f"Invalid slice of tensor {name}: tensors used as indices must be long, int, byte or bool tensors "
                f"(got {t.dtype})"
            )
        import torch

        # torch reads a uint8 index tensor as a mask, as it reads a bool one.
        arr = t.numpy().astype(bool) if t.dtype in (torch.bool, torch.uint8) else t.numpy()
    elif isinstance(obj, (np.ndarray, np.generic, list, tuple)):
        try:
            arr = np.asarray(obj)
        except ValueError as e:  # ragged nested lists
            raise SafetensorIndexError(f"Invalid slice of tensor {name}: {obj!r} is not a valid index ({e})") from e
        if arr.size == 0 and arr.dtype.kind == "f":  # [] or [[]]: no positions
            arr = arr.astype(np.int64)
    elif hasattr(obj, "__index__"):
        return _Int(operator.index(obj))
    elif isinstance(obj, float):
        raise SafetensorIndexError(
            f"Invalid slice of tensor {name}: only integers, slices (`:`), ellipsis (`...`), None and integer or "
            f"boolean arrays are valid indices (got float)"
        )
    else:
        raise SafetensorTypeError(
            f"Invalid slice of tensor {name}: only integers, slices (`:`), ellipsis (`...`), None and integer or "
            f"boolean arrays are valid indices (got {type(obj).__name__})"
        )
    if arr.dtype == np.bool_:
        return _BoolScalar(bool(arr)) if arr.ndim == 0 else _Mask(arr)
    if arr.dtype.kind not in "iu":
        raise SafetensorIndexError(
            f"Invalid slice of tensor {name}: arrays used as indices must be of integer or boolean type "
            f"(got {arr.dtype})"
        )
    if arr.ndim == 0:
        return _Int(int(arr))
    return _Array(arr.astype(np.int64))


def _runs(positions: np.ndarray) -> List[Tuple[int, int]]:
    """Sorted unique positions as runs ``(start, stop)`` of consecutive ones."""
    breaks = np.flatnonzero(np.diff(positions) != 1) + 1
    starts = np.concatenate(([0], breaks))
    stops = np.concatenate((breaks, [len(positions)]))
    return [(int(positions[a]), int(positions[b - 1]) + 1) for a, b in zip(starts, stops)]


def _out_of_range(name: str, value: int, dim: int, size: int) -> SafetensorIndexError:
    return SafetensorIndexError(
        f"Invalid slice of tensor {name}: index {value} is out of range for dimension {dim} of size {size}"
    )


def getitem(sl: Any, key: Any, framework: str, name: str) -> Any:
    """``sl[key]`` with the framework's rules (see the module docs). ``sl`` is the extension's
    ``PySafeSlice`` of tensor ``name``; ``framework`` its short name ("pt", "np", ...)."""
    raw: Sequence[Any] = key if isinstance(key, tuple) else (key,)
    entries = [_classify(e, framework, name) for e in raw]
    if framework == "pt" and sum(e is Ellipsis for e in entries) > 1:
        # torch reads every `...` after the first as nothing (numpy refuses a second one).
        first = next(i for i, e in enumerate(entries) if e is Ellipsis)
        entries = [e for i, e in enumerate(entries) if e is not Ellipsis or i == first]
    if not any(isinstance(e, (_Array, _Mask, _BoolScalar)) for e in entries):
        # Integer scalars of numpy or torch: plain ints, then the planner.
        basic = tuple(e.value if isinstance(e, _Int) else e for e in entries)
        return sl[basic if isinstance(key, tuple) else basic[0]]
    if framework not in _ADVANCED:
        raise SafetensorIndexError(
            f"Invalid slice of tensor {name}: index arrays, lists and booleans are supported with "
            f"framework='pt' and 'np'; with {framework!r} use ints, slices, ... and None"
        )

    shape: List[int] = sl.get_shape()
    rank = len(shape)
    consumed = sum(
        e.value.ndim if isinstance(e, _Mask) else 1 for e in entries if isinstance(e, (_Int, _Array, _Mask, slice))
    )
    ellipses = sum(e is Ellipsis for e in entries)
    if ellipses > 1:
        raise SafetensorIndexError(f"Invalid slice of tensor {name}: an index can only have a single ellipsis ('...')")
    if consumed > rank:
        raise SafetensorIndexError(
            f"Invalid slice of tensor {name}: too many indices for tensor of dimension {rank} ({consumed} given)"
        )

    read: List[slice] = []  # one entry per dimension of the tensor
    final: List[Any] = []  # the index, shifted into the part read
    gather: List[Tuple[int, np.ndarray]] = []  # (dimension, sorted positions) read run by run
    arrays = sum(isinstance(e, (_Array, _Mask)) for e in entries)
    for e in entries:
        dim = len(read)
        if e is Ellipsis:
            read.extend([slice(None)] * (rank - consumed))
            final.append(Ellipsis)
        elif e is None:
            final.append(None)
        elif isinstance(e, _BoolScalar):
            final.append(e.value)
        elif isinstance(e, slice):
            read.append(e)
            final.append(slice(None))
        elif isinstance(e, _Int):
            size = shape[dim]
            at = e.value + size if e.value < 0 else e.value
            if not 0 <= at < size:
                raise _out_of_range(name, e.value, dim, size)
            read.append(slice(at, at + 1))
            final.append(0)
        elif isinstance(e, _Array):
            size = shape[dim]
            arr = np.where(e.value < 0, e.value + size, e.value)
            bad = (arr < 0) | (arr >= size)
            if bad.any():
                raise _out_of_range(name, int(e.value[bad][0]), dim, size)
            if arr.size == 0:
                read.append(slice(0, 0))
                final.append(arr)
                continue
            positions = np.unique(arr)
            lo, hi = int(positions[0]), int(positions[-1]) + 1
            if arrays == 1 and hi - lo > 2 * len(positions):
                # Sparse positions: read only their runs, joined along this dimension.
                gather.append((dim, positions))
                read.append(slice(None))
                final.append(np.searchsorted(positions, arr))
            else:
                read.append(slice(lo, hi))
                final.append(arr - lo)
        else:  # _Mask
            mask = e.value
            if list(mask.shape) != shape[dim : dim + mask.ndim]:
                raise SafetensorIndexError(
                    f"Invalid slice of tensor {name}: the shape of the mask {list(mask.shape)} at index {dim} "
                    f"does not match the shape of the indexed tensor {shape} at index {dim}"
                )
            hits = np.nonzero(mask)
            if hits[0].size == 0:
                box = tuple(slice(0, 0) for _ in hits)
            else:
                box = tuple(slice(int(h.min()), int(h.max()) + 1) for h in hits)
            read.extend(box)
            final.append(mask[box])
    read.extend([slice(None)] * (rank - len(read)))

    if gather:
        dim, positions = gather[0]
        pieces = []
        for start, stop in _runs(positions):
            part = list(read)
            part[dim] = slice(start, stop)
            pieces.append(sl[tuple(part)])
        if framework == "pt":
            import torch

            part_read = torch.cat(pieces, dim=dim) if len(pieces) > 1 else pieces[0]
        else:
            part_read = np.concatenate(pieces, axis=dim) if len(pieces) > 1 else pieces[0]
    else:
        part_read = sl[tuple(read)]

    if framework == "pt":
        import torch

        final = [torch.from_numpy(np.ascontiguousarray(f)) if isinstance(f, np.ndarray) else f for f in final]
    try:
        return part_read[tuple(final)]
    except SafetensorError:
        raise
    except (IndexError, ValueError, TypeError, RuntimeError) as e:
        # What the framework refuses (e.g. index arrays that do not broadcast together): the
        # framework's exception, and a SafetensorError naming the tensor.
        for base, dual in _DUAL:
            if isinstance(e, base):
                raise dual(f"Invalid slice of tensor {name}: {e}") from e
        raise
