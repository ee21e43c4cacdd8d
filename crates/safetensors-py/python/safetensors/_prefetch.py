"""``safe_open.prefetch`` onto CUDA with torch: the plan streams through the pinned staging
ring (``_staging``) into device tensors, on one background thread, within the memory budget.

The Rust ``PrefetchLoader`` (``src/prefetch.rs``) checks the plan and hands it here as a
layout, one ``(name, dtype, shape, nbytes, first)`` per tensor in file order (``first``: where
the tensor's one run of bytes starts within the tensor, None when it is several runs), with
a ``_PrefetchSource`` to read through. ``RingLoader`` then:

- walks the tensors in file order (one a ``take`` waits for goes first), allocating each
  device tensor (``copier.empty``) while the device bytes handed to it and not yet taken
  stay within the budget (one tensor at least); the ring's host buffers are at most the
  budget too (``slots`` buffers of ``min(DEFAULT_SLOT_BYTES, budget // slots)``);
- packs each one-run tensor into the ring (the core's, ``_PrefetchSource._staging_ring``:
  read in parallel into a pinned buffer, copied asynchronously); a tensor of several runs (a
  strided index) is read whole into a host tensor by the core's slice reader, then copied;
- marks a tensor ready once every copy into it is done: the ring waits on a buffer before
  refilling it; while a consumer waits, every copy is completed after the next buffer
  fills (the ring keeps packing whole buffers); with nothing to start (budget, end of plan)
  it flushes its partial buffer and completes everything.

Host memory is bounded by the budget, device memory ahead of ``take`` too. ``close`` stops
the thread after the ring fill in progress, waits for the copies in flight, and releases
every tensor not taken. The device side is ``_torch_staging.device_copier``, which tests
replace with the CPU copier.
"""

from __future__ import annotations

import threading
from collections import deque
from typing import Any, Deque, Dict, List, Optional, Sequence, Tuple

import torch

from . import _staging, _torch_staging
from ._safetensors_rust import SafetensorError, SafetensorRuntimeError

# (name, dtype, shape, nbytes, first byte of the one run or None)
Layout = Tuple[str, str, List[int], int, Optional[int]]

_WAITING, _STARTED, _READY, _TAKEN = range(4)


class _Tracking:
    """The copier, counting the bytes of each destination still to copy: ``done`` is called
    with every destination whose bytes have all been copied (completed at ``wait`` or
    ``synchronize``). A destination is registered with ``expect`` before its first piece."""

    def __init__(self, copier: Any, done: Any) -> None:
        self.copier, self.done = copier, done
        self.left: Dict[int, int] = {}  # id(destination) -> bytes not copied yet
        self.by_slot: Dict[int, List[Tuple[Any, int]]] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self.copier, name)

    def expect(self, dst: Any, nbytes: int) -> None:
        self.left[id(dst)] = nbytes

    def copy_async(self, dst: Any, dst_offset: int, slot: int, src_offset: int, nbytes: int) -> None:
        self.copier.copy_async(dst, dst_offset, slot, src_offset, nbytes)
        self.by_slot.setdefault(slot, []).append((dst, nbytes))

    def _completed(self, copies: List[Tuple[Any, int]]) -> None:
        finished = []
        for dst, nbytes in copies:
            left = self.left[id(dst)] - nbytes
            if left:
                self.left[id(dst)] = left
            else:
                del self.left[id(dst)]
                finished.append(dst)
        self.done(finished)

    def wait(self, slot: int) -> None:
        self.copier.wait(slot)
        self._completed(self.by_slot.pop(slot, []))

    def synchronize(self) -> None:
        self.copier.synchronize()
        for slot in list(self.by_slot):
            self._completed(self.by_slot.pop(slot))


class RingLoader:
    """The background load of one plan onto a CUDA device (see the module docs)."""

    def __init__(
        self,
        source: Any,
        layout: Sequence[Layout],
        device: torch.device,
        threads: int,
        budget: int,
        sequential: bool = True,
        slots: Optional[int] = None,
    ) -> None:
        self.source, self.layout, self.budget = source, list(layout), budget
        self.sequential = sequential
        self.threads = max(1, threads)
        try:
            self.copier = _torch_staging.device_copier(device)
        except RuntimeError as e:  # no driver, no such device: before anything is read
            raise SafetensorRuntimeError(f"cannot prefetch onto {device}: {e}") from e
        slots = _staging.DEFAULT_SLOTS if slots is None else slots
        self.slot_bytes = max(1, min(_staging.DEFAULT_SLOT_BYTES, budget // slots))
        # Only as many buffers as the plan's one-run tensors fill (pinning memory costs time).
        staged = sum(nbytes for _, _, _, nbytes, first in self.layout if first is not None)
        self.slots = max(1, min(slots, -(-staged // self.slot_bytes)))
        self.cond = threading.Condition()
        self.state = [_WAITING] * len(self.layout)
        self.tensors: Dict[int, Any] = {}  # started: the device tensor, handed out when ready
        self.ready: Deque[int] = deque()
        self.urgent: Deque[int] = deque()
        self.held = 0  # device bytes started and not taken
        self.cursor = 0
        self.closed = False
        self.hurry = False  # a consumer waits: complete the copies after the next fill
        self.error: Optional[BaseException] = None
        self.dst_index: Dict[int, int] = {}  # id(destination) -> tensor
        self.thread = threading.Thread(target=self._run, name="safetensors-prefetch-ring", daemon=True)
        self.thread.start()

    # The consumer's side.

    def take(self, i: int) -> Any:
        with self.cond:
            while True:
                self._check()
                state = self.state[i]
                if state == _TAKEN:
                    raise SafetensorError(
                        f"tensor {self.layout[i][0]} was already taken: a loader hands each tensor out once"
                    )
                if state == _READY:
                    return self._hand_out(i)
                if state == _WAITING and i not in self.urgent:
                    self.urgent.append(i)
                self._hurry()

    def next(self) -> Optional[Tuple[int, Any]]:
        with self.cond:
            while True:
                self._check()
                while self.ready:
                    i = self.ready.popleft()
                    if self.state[i] == _READY:
                        return i, self._hand_out(i)
                if all(s == _TAKEN for s in self.state):
                    return None
                self._hurry()

    def close(self) -> None:
        with self.cond:
            self.closed = True
            self.cond.notify_all()
        if self.thread is not threading.current_thread():
            self.thread.join()
        with self.cond:
            self.tensors.clear()
            self.ready.clear()
            self.held = 0

    def _hurry(self) -> None:
        """Waits (under the lock) after asking the thread to complete what is in flight."""
        self.hurry = True
        self.cond.notify_all()
        self.cond.wait()

    def _check(self) -> None:
        if self.error is not None:
            raise self.error
        if self.closed:
            raise SafetensorError("the prefetch loader is closed")

    def _hand_out(self, i: int) -> Any:
        name, dtype, shape, nbytes, _ = self.layout[i]
        self.state[i] = _TAKEN
        self.held -= nbytes
        self.cond.notify_all()
        return self.copier.finish(self.tensors.pop(i), dtype, shape)

    # The background thread.

    def _done(self, dsts: List[Any]) -> None:
        with self.cond:
            for dst in dsts:
                i = self.dst_index.pop(id(dst), None)
                if i is not None:
                    self._mark_ready(i)

    def _mark_ready(self, i: int) -> None:
        self.state[i] = _READY
        self.ready.append(i)
        self.cond.notify_all()

    def _next_start(self) -> Optional[int]:
        """The next tensor to start (under the lock): one a take waits for, else the next in
        file order if the budget allows it."""
        while self.urgent:
            i = self.urgent.popleft()
            if self.state[i] == _WAITING:
                return i
        while self.cursor < len(self.state) and self.state[self.cursor] != _WAITING:
            self.cursor += 1
        if self.cursor == len(self.state):
            return None
        nbytes = self.layout[self.cursor][3]
        if self.held and self.held + nbytes > self.budget:
            return None
        return self.cursor

    def _run(self) -> None:
        tracking = _Tracking(self.copier, self._done)
        addrs = [self.copier.host_buffer(self.slot_bytes) for _ in range(self.slots)]
        ring = self.source._staging_ring(
            addrs, self.slot_bytes, tracking, threads=self.threads, sequential=self.sequential
        )
        mark: Optional[int] = None  # flushes when a consumer started waiting
        try:
            while True:
                with self.cond:
                    if self.hurry and mark is None:
                        mark = ring.flushes
                    i = None if self.closed else self._next_start()
                    if i is None and not self.closed and not self.dst_index:
                        self.cond.wait()  # nothing to start, nothing in flight
                        continue
                    if self.closed:
                        return
                    if i is not None:
                        self.state[i] = _STARTED
                        self.held += self.layout[i][3]
                if i is None:
                    # Nothing may start (budget, end of plan): finish what is in flight.
                    ring.flush()
                    tracking.synchronize()
                    mark = None
                    with self.cond:
                        self.hurry = False
                    continue
                self._start(i, ring, tracking)
                if mark is not None and ring.flushes > mark:
                    # A consumer waits: once a buffer was filled since, complete every copy
                    # enqueued (the ring keeps packing; a partial buffer waits to fill).
                    tracking.synchronize()
                    mark = None
                    with self.cond:
                        self.hurry = False
        except BaseException as e:  # handed to the consumer, raised by take and next
            with self.cond:
                self.error = e
                self.cond.notify_all()
        finally:
            self.copier.synchronize()  # no copy may still land in memory released later

    def _start(self, i: int, ring: Any, tracking: _Tracking) -> None:
        name, dtype, shape, nbytes, first = self.layout[i]
        dst = self.copier.empty(dtype, shape, nbytes)
        with self.cond:
            self.tensors[i] = dst
        if nbytes == 0:
            with self.cond:
                self._mark_ready(i)
            return
        if first is not None:
            with self.cond:
                self.dst_index[id(dst)] = i
            tracking.expect(dst, nbytes)
            ring.add(name, first, nbytes, dst)
            return
        # Several runs: the core's slice reader gathers them into host memory, then one copy.
        host = torch.empty(nbytes, dtype=torch.uint8)
        self.source._fill(i, host.data_ptr(), nbytes)
        dst.copy_(host)
        with self.cond:
            self._mark_ready(i)


def ring_loader(
    source: Any, layout: Sequence[Layout], device: torch.device, threads: int, budget: int, sequential: bool
) -> RingLoader:
    """The driver of a ``PrefetchLoader`` onto ``device`` (CUDA): see the module docs.
    ``sequential``: the plan is whole tensors (the kernel's readahead helps); False for parts
    (a rank's: readahead would fetch the other ranks' bytes)."""
    return RingLoader(source, layout, device, threads, budget, sequential)
