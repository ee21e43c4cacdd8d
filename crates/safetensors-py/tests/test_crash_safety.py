"""Crash safety of save_file: a writer killed with SIGKILL at random moments never leaves
a partial target. The target is always byte for byte one complete version (the old one or
a new one); leftover temporary files are named `.<target>.<pid>.<n>.tmp` after the dead
writer, and the next save to the same target removes them."""

from __future__ import annotations

import os
import random
import re
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from safetensors.numpy import load_file, save_file

# SIGKILL is POSIX; telling a dead writer's temporary file from a live one's uses /proc
# (elsewhere the core waits an hour before removing one).
pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs SIGKILL and /proc")

KILLS = 30

WRITER = r"""
import sys
import numpy as np
from safetensors.numpy import save_file

def version(k):
    # Sizes differ per version so a mix of two would not even have the right length.
    n = 1_000_000 + 250_000 * k
    return {"a": np.full(n, k, dtype=np.float32), "b": np.full((7, 3), k, dtype=np.int64)}

target = sys.argv[1]
versions = [version(1), version(2), version(3)]
print("ready", flush=True)
i = 0
while True:
    save_file(versions[i % 3], target, metadata={"version": str(i % 3 + 1)})
    i += 1
"""


def version(k):
    n = 1_000_000 + 250_000 * k
    return {"a": np.full(n, k, dtype=np.float32), "b": np.full((7, 3), k, dtype=np.int64)}


def expected_bytes(tmp_path):
    """The exact bytes of every version a reader may find."""
    out = {}
    for k in (0, 1, 2, 3):
        p = tmp_path / f"v{k}.safetensors"
        save_file(version(k), p, metadata={"version": str(k)})
        out[p.read_bytes()] = k
        p.unlink()
    return out


TEMP = re.compile(r"^\.model\.safetensors\.(\d+)\.(\d+)\.tmp$")


def test_sigkill_mid_save_leaves_old_or_new_never_partial(tmp_path):
    versions = expected_bytes(tmp_path)
    target = tmp_path / "model.safetensors"
    save_file(version(0), target, metadata={"version": "0"})
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    seen = set()
    leftovers = 0
    killed = set()
    for i in range(KILLS):
        child = subprocess.Popen([sys.executable, "-c", WRITER, str(target)], stdout=subprocess.PIPE, text=True)
        try:
            assert child.stdout.readline().strip() == "ready"
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            child.stdout.close()
        killed.add(child.pid)
        data = target.read_bytes()
        assert data in versions, f"kill {i} (seed {seed}): the target is not one complete version ({len(data)} bytes)"
        k = versions[data]
        seen.add(k)
        loaded = load_file(target)
        assert (loaded["a"] == k).all() and (loaded["b"] == k).all()
        for name in os.listdir(tmp_path):
            if name == "model.safetensors":
                continue
            m = TEMP.match(name)
            assert m, f"unexpected file {name!r} after kill {i}"
            assert int(m.group(1)) in killed, f"{name} is not a killed writer's"
            leftovers += 1
    # Kills landed mid-save (leftovers) and the target moved on: old and new versions seen.
    assert leftovers > 0, f"seed {seed}: no kill landed mid-save"
    assert len(seen) >= 2, f"seed {seed}: only versions {seen} seen"
    # The next save to the target removes stale temporary files of dead writers.
    save_file(version(0), target, metadata={"version": "0"})
    assert sorted(os.listdir(tmp_path)) == ["model.safetensors"]
    assert versions[target.read_bytes()] == 0


def test_stale_temporaries_of_other_targets_and_live_writers_are_kept(tmp_path):
    target = tmp_path / "model.safetensors"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".model.safetensors.{dead_pid}.0.tmp"
    other = tmp_path / f".other.safetensors.{dead_pid}.0.tmp"
    live = tmp_path / f".model.safetensors.{os.getppid()}.3.tmp"  # the pytest runner's parent: alive
    unrelated = tmp_path / ".model.safetensors.backup"
    for p in (stale, other, live, unrelated):
        p.write_bytes(b"partial")
    save_file(version(1), target)
    assert not stale.exists()
    assert other.exists() and live.exists() and unrelated.exists()
