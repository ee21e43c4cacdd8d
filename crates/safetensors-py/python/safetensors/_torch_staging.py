"""The device side of the staging ring (``_staging``) for torch: ``TorchCudaCopier`` (pinned
host tensors, one ``torch.cuda.Stream`` and an event per buffer) for GPUs, and ``CpuCopier``,
which copies on the CPU at the latest moment the protocol allows and checks that no buffer
is refilled before its copies are done, so that the ring's ordering is testable without a
GPU.

Every whole load onto CUDA with torch gets its copier from ``device_copier`` (``load_file``,
``safe_open(..., device="cuda:N").get_tensors()``, ``load_model``/``load_into`` into CUDA
tensors, ``load_for_rank``): tests replace it with a function returning a ``CpuCopier``.
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch

from . import _common
from ._staging import DeviceCopier
from ._torch_common import _TYPES, _storage_shape


def device_copier(device: torch.device) -> DeviceCopier:
    """The copier of every CUDA whole load onto ``device``."""
    return TorchCudaCopier(device)


class _TorchTensors:
    """Destinations as flat uint8 torch tensors, viewed as the header's dtype and shape."""

    device: Any

    def empty(self, dtype: str, shape: List[int], nbytes: int) -> Any:
        if dtype not in _TYPES:
            raise _common.unsupported("torch", dtype)
        _storage_shape(dtype, shape)  # refuses an odd F4 last dimension before anything is read
        return torch.empty(nbytes, dtype=torch.uint8, device=self.device)

    def finish(self, dst: Any, dtype: str, shape: List[int]) -> Any:
        return dst.view(_TYPES[dtype]).view(_storage_shape(dtype, shape))


class TorchCudaCopier(_TorchTensors):
    """Pinned host tensors, copies on one side stream, an event per buffer."""

    def __init__(self, device: Any) -> None:
        self.device = torch.device(device)
        self.stream = torch.cuda.Stream(self.device)  # type: ignore[no-untyped-call]
        self.hosts: List[Any] = []
        self.events: Dict[int, Any] = {}
        self.started = False

    def host_buffer(self, nbytes: int) -> int:
        t = torch.empty(nbytes, dtype=torch.uint8, pin_memory=True)
        self.hosts.append(t)
        return int(t.data_ptr())

    def copy_async(self, dst: Any, dst_offset: int, slot: int, src_offset: int, nbytes: int) -> None:
        if not self.started:
            # The destinations were allocated on the current stream: order the side stream
            # after it, so no copy lands in memory still used by earlier work.
            self.stream.wait_stream(torch.cuda.current_stream(self.device))
            self.started = True
        with torch.cuda.stream(self.stream):
            src = self.hosts[slot][src_offset : src_offset + nbytes]
            dst[dst_offset : dst_offset + nbytes].copy_(src, non_blocking=True)

    def record(self, slot: int) -> None:
        event = torch.cuda.Event()  # type: ignore[no-untyped-call]
        event.record(self.stream)
        self.events[slot] = event

    def wait(self, slot: int) -> None:
        event = self.events.pop(slot, None)
        if event is not None:
            event.synchronize()

    def synchronize(self) -> None:
        self.stream.synchronize()
        # The user's work runs on the current stream: make it see the copies.
        torch.cuda.current_stream(self.device).wait_stream(self.stream)


class CpuCopier(_TorchTensors):
    """A device copier for tests: host memory stands for the device.

    Each copy runs at ``wait`` (or ``synchronize``), the latest moment the protocol allows,
    from the buffer's bytes at that moment; it also keeps the bytes the buffer held when the
    copy was enqueued, and raises ``AssertionError`` when they differ (the buffer was refilled
    before its copy completed). ``log`` records every call in order; ``host_bytes`` is the
    host memory the buffers take.
    """

    def __init__(self) -> None:
        self.device = torch.device("cpu")
        self.hosts: List[Any] = []
        self.pending: Dict[int, List[Tuple[Any, int, int, int, Any]]] = {}
        self.recorded: Dict[int, int] = {}
        self.log: List[Tuple[Any, ...]] = []
        self.host_bytes = 0

    def host_buffer(self, nbytes: int) -> int:
        t = torch.empty(nbytes, dtype=torch.uint8)
        self.hosts.append(t)
        self.host_bytes += nbytes
        self.log.append(("host_buffer", len(self.hosts) - 1, nbytes))
        return int(t.data_ptr())

    def copy_async(self, dst: Any, dst_offset: int, slot: int, src_offset: int, nbytes: int) -> None:
        src = self.hosts[slot][src_offset : src_offset + nbytes]
        self.pending.setdefault(slot, []).append((dst, dst_offset, src_offset, nbytes, src.clone()))
        self.log.append(("copy", slot, src_offset, nbytes))

    def record(self, slot: int) -> None:
        self.recorded[slot] = len(self.pending.get(slot, []))
        self.log.append(("record", slot))

    def _complete(self, slot: int) -> None:
        for dst, dst_offset, src_offset, nbytes, enqueued in self.pending.pop(slot, []):
            now = self.hosts[slot][src_offset : src_offset + nbytes]
            if not bool((now == enqueued).all()):
                raise AssertionError(f"host buffer {slot} was refilled before its copy completed")
            dst[dst_offset : dst_offset + nbytes].copy_(now)
        self.recorded.pop(slot, None)

    def wait(self, slot: int) -> None:
        self.log.append(("wait", slot))
        if slot in self.pending and slot not in self.recorded:
            raise AssertionError(f"wait on host buffer {slot} before its copies were recorded")
        self._complete(slot)

    def synchronize(self) -> None:
        self.log.append(("synchronize",))
        for slot in list(self.pending):
            self._complete(slot)
