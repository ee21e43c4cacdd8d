"""Loading onto an accelerator through a small ring of pinned host buffers.

A whole load to a GPU must not hold the whole model in host memory, and should keep the
disk and the host-to-device link busy at the same time. ``load`` walks the tensors in file
order and packs their bytes into ``slots`` host buffers of ``slot_bytes`` each (a large
tensor spans several fills): it fills one buffer with the parallel reader (interpreter
detached), enqueues its asynchronous copies to the device, and moves on to the next buffer
while those copies run. Before a buffer is filled again it waits for the copies that read
it. Host memory is therefore bounded by ``slots * slot_bytes`` whatever the model's size.
``fill_ranges`` stages byte ranges of tensors the same way (a rank's part of a split
tensor, for ``load_for_rank``).

The ring itself is the core's (``safetensors::reader::staging``, through the private
``safe_open._staging_ring``): it checks each range against the header, packs it, and runs
every fill (``wait``, the reads, ``copy_async`` of each piece, ``record``). This module only
allocates the buffers (``copier.host_buffer``), picks their number and size, and completes
the copies (``copier.synchronize``).

Every load onto CUDA with torch comes here: ``safe_open.prefetch`` (``_prefetch.py`` drives
a ring on a background thread), and through it ``load_file``, ``safe_open(...,
device="cuda:N").get_tensors()`` (the ``_st_load_all`` hook the Rust loader calls) and
``load_for_rank``; ``load_model``/``load_into`` into existing CUDA tensors call ``fill``.

The device side is one small interface, ``DeviceCopier``; this module knows no framework.
Torch's copiers (a CUDA one, and one on the CPU for tests) are in ``_torch_staging``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Protocol, Sequence, Tuple

# 4 buffers of 64 MiB: 256 MiB of pinned host memory at most, large enough for the reader
# to keep several threads busy on each fill.
DEFAULT_SLOT_BYTES = 64 << 20
DEFAULT_SLOTS = 4


class DeviceCopier(Protocol):
    """The device side of the ring. Slots are numbered in the order ``host_buffer`` made them."""

    def host_buffer(self, nbytes: int) -> int:
        """Allocates the next host buffer (pinned where that matters); returns its address."""

    def empty(self, dtype: str, shape: List[int], nbytes: int) -> Any:
        """The destination of one tensor: ``nbytes`` bytes of device memory."""

    def copy_async(self, dst: Any, dst_offset: int, slot: int, src_offset: int, nbytes: int) -> None:
        """Enqueues the copy of ``nbytes`` bytes of buffer ``slot`` (from ``src_offset``) to
        ``dst`` (from ``dst_offset``); it may still be running when this returns."""

    def record(self, slot: int) -> None:
        """Marks the end of the copies out of ``slot`` enqueued since its last fill."""

    def wait(self, slot: int) -> None:
        """Blocks until the copies ``record`` marked for ``slot`` are done (the buffer may
        then be refilled); returns at once for a buffer never filled."""

    def synchronize(self) -> None:
        """Blocks until every enqueued copy is done."""

    def finish(self, dst: Any, dtype: str, shape: List[int]) -> Any:
        """The user's tensor of ``dtype`` and ``shape`` over a filled destination."""


def load(
    f: Any,
    names: Sequence[str],
    copier: DeviceCopier,
    slot_bytes: Optional[int] = None,
    slots: Optional[int] = None,
    threads: Optional[int] = None,
    block_size: Optional[int] = None,
) -> Dict[str, Any]:
    """The tensors ``names`` of the open ``safe_open`` handle ``f``, staged through the ring
    onto ``copier``'s device (see the module docs); a dict in the order of ``names``. The
    ring is ``slots`` buffers of ``slot_bytes`` (None: ``DEFAULT_SLOTS`` and
    ``DEFAULT_SLOT_BYTES`` as they are at the call)."""
    layout = f._layout(list(names))
    dsts = [copier.empty(dtype, shape, nbytes) for dtype, shape, nbytes in layout]
    fill(f, names, dsts, copier, slot_bytes, slots, threads=threads, block_size=block_size)
    return {name: copier.finish(dst, dtype, shape) for name, (dtype, shape, _), dst in zip(names, layout, dsts)}


def fill(
    f: Any,
    names: Sequence[str],
    dsts: Sequence[Any],
    copier: DeviceCopier,
    slot_bytes: Optional[int] = None,
    slots: Optional[int] = None,
    threads: Optional[int] = None,
    block_size: Optional[int] = None,
) -> None:
    """Copies every byte of each tensor of ``names`` into the matching destination of
    ``dsts`` (``copier``'s device memory, the tensor's size in bytes: made by
    ``copier.empty``, or existing memory such as a parameter's) through the ring; returns
    once every copy is done."""
    layout = f._layout(list(names))
    ranges = [(name, 0, nbytes, dst) for name, (_, _, nbytes), dst in zip(names, layout, dsts)]
    fill_ranges(f, ranges, copier, slot_bytes, slots, threads=threads, block_size=block_size)


def fill_ranges(
    f: Any,
    ranges: Sequence[Tuple[str, int, int, Any]],
    copier: DeviceCopier,
    slot_bytes: Optional[int] = None,
    slots: Optional[int] = None,
    threads: Optional[int] = None,
    block_size: Optional[int] = None,
    sequential: bool = True,
) -> None:
    """``fill`` for byte ranges of tensors: each ``(name, first, nbytes, dst)`` copies bytes
    ``first..first + nbytes`` of tensor ``name`` to the start of ``dst`` (device memory of at
    least ``nbytes`` bytes), through the ring, in the order given (file order reads best);
    returns once every copy is done. A rank's contiguous part of a split tensor is one range.
    ``sequential=False`` keeps the kernel's readahead as the caller set it (a rank's parts:
    readahead would fetch the other ranks' bytes past each)."""
    slot_bytes = DEFAULT_SLOT_BYTES if slot_bytes is None else slot_bytes
    slots = DEFAULT_SLOTS if slots is None else slots
    if slot_bytes < 1 or slots < 1:
        raise ValueError(f"the staging ring needs at least one buffer of at least one byte, got {slots} x {slot_bytes}")
    # Only as many buffers as the data fills (a small model needs one).
    total = sum(nbytes for _, _, nbytes, _ in ranges)
    addrs = [copier.host_buffer(slot_bytes) for _ in range(max(1, min(slots, -(-total // slot_bytes))))]
    ring = f._staging_ring(addrs, slot_bytes, copier, threads=threads, block_size=block_size, sequential=sequential)
    for name, first, nbytes, dst in ranges:
        ring.add(name, first, nbytes, dst)
    ring.flush()
    copier.synchronize()
