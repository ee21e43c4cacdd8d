"""Readers during writes: many threads read through one open handle, and open the file
afresh, while another process replaces it with save_file over and over. Every read sees
one consistent version (old or new, never a mix), and nothing fails."""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest

from safetensors import safe_open
from safetensors.numpy import load, load_file, save_file

THREADS = 8
WRITES = 60

WRITER = r"""
import sys
import numpy as np
from safetensors.numpy import save_file

def version(k):
    # Each version differs in size and number of tensors; every element holds k.
    return {f"t{i}": np.full((64 + 16 * k, 33), k, dtype=np.float32) for i in range(4 + k % 3)}

target, writes = sys.argv[1], int(sys.argv[2])
print("ready", flush=True)
sys.stdin.readline()  # "go": every reader has read the first version once
for i in range(writes):
    k = i % 5 + 1
    save_file(version(k), target, metadata={"version": str(k)})
"""


def version(k):
    return {f"t{i}": np.full((64 + 16 * k, 33), k, dtype=np.float32) for i in range(4 + k % 3)}


def check_consistent(tensors, meta_version):
    """All tensors of one version, matching its metadata."""
    k = int(meta_version)
    assert sorted(tensors) == [f"t{i}" for i in range(4 + k % 3)]
    for name, t in tensors.items():
        assert t.shape == (64 + 16 * k, 33), name
        assert (t == k).all(), name


@pytest.mark.parametrize("backend", ["mmap", "pread"])
def test_readers_see_old_or_new_while_another_process_saves(tmp_path, backend):
    target = tmp_path / "m.safetensors"
    save_file(version(0), target, metadata={"version": "0"})
    handle = safe_open(target, "np", backend=backend)
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target), str(WRITES)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline().strip() == "ready"
    failures = []
    versions_seen = set()
    reads = [0]
    lock = threading.Lock()
    # The writes start once every reader has read once, and each reader reads again after
    # that, so a loaded machine (a fast writer, slow readers) still sees the file change.
    first_reads = threading.Semaphore(0)

    def reader(n):
        own = 0
        try:
            while writer.poll() is None or own < 2:
                # The handle opened before the writes keeps reading its own version.
                tensors = {k: handle.get_tensor(k) for k in handle.keys()}
                check_consistent(tensors, handle.metadata()["version"])
                assert handle.metadata()["version"] == "0"
                sl = handle.get_slice("t1")[3:7, ::2]
                assert sl.shape == (4, 17) and (sl == 0).all()
                # A fresh open sees one complete version, whichever it is.
                if n % 2:
                    with safe_open(target, "np", backend=backend) as f:
                        fresh = {k: f.get_tensor(k) for k in f.keys()}
                        v = f.metadata()["version"]
                else:
                    data = target.read_bytes()
                    fresh = load(data)
                    v = safe_open_bytes_version(data)
                check_consistent(fresh, v)
                with lock:
                    versions_seen.add(v)
                    reads[0] += 1
                own += 1
                if own == 1:
                    first_reads.release()
        except BaseException as e:  # noqa: BLE001 - reported below with the thread's number
            failures.append((n, repr(e)))
            first_reads.release()

    threads = [threading.Thread(target=reader, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    try:
        for _ in range(THREADS):
            assert first_reads.acquire(timeout=60), "a reader never finished its first read"
        writer.stdin.write("go\n")
        writer.stdin.close()
        writer.wait(timeout=120)
    finally:
        writer.kill()
        writer.wait()
        writer.stdout.close()
        for t in threads:
            t.join(timeout=60)
    handle.__exit__(None, None, None)
    assert writer.returncode == 0
    assert not failures, failures[:3]
    assert reads[0] > THREADS
    # The readers did see the file change under them.
    assert len(versions_seen) >= 2, versions_seen
    check_consistent(load_file(target), "5" if WRITES % 5 == 0 else str(WRITES % 5))


def safe_open_bytes_version(data: bytes) -> str:
    import json

    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n])["__metadata__"]["version"]
