"""``safetensors.torch.load_for_rank``: every rank's tensors equal ``torch.chunk`` of the full
tensors (uneven splits, empty parts, dims 0/1/-1, replicated and unmatched tensors, bf16 /
f32 / int dtypes), from a single file and a sharded folder, in both modes, with 2 and 3
processes on gloo over 127.0.0.1; ``mode="read"`` reads only the rank's own bytes (measured
with the kernel's count of bytes read); bad arguments are refused clearly.

The distributed runs start real processes (``rank_worker.py``) with bounded timeouts: a rank
that hangs fails the test instead of blocking CI.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import require

torch = require("torch")

from safetensors.torch import load_file, load_for_rank, save_file, save_sharded  # noqa: E402

WORKER = Path(__file__).with_name("rank_worker.py")
# Seconds: the process group's timeout inside the workers, and the wall-clock limit of a run.
GROUP_TIMEOUT = 60
RUN_TIMEOUT = 180

# Pattern -> split dimension. First match wins: "emb.weight" is split on dim 0 by the first
# entry although "*.weight" would split it on dim 1; "norm.weight" is replicated explicitly;
# "*.bias" splits dim -1; tensors no pattern matches ("step", "table") are replicated.
PLAN = {
    "emb.weight": 0,
    "norm.weight": None,
    "*.weight": 1,
    "*.bias": -1,
    "few": 0,
    "empty": 0,
    "cube": -1,
}


def tensors() -> dict:
    g = torch.Generator().manual_seed(0)
    return {
        "emb.weight": torch.randn(11, 6, generator=g).to(torch.bfloat16),  # dim 0, uneven
        "norm.weight": torch.randn(7, generator=g),  # replicated by the plan
        "proj.weight": torch.randn(5, 13, generator=g),  # dim 1, uneven
        "proj.bias": torch.arange(10, dtype=torch.int32).reshape(2, 5),  # dim -1
        "few": torch.arange(8, dtype=torch.int64).reshape(2, 4),  # 2 rows: rank 2 of 3 gets none
        "empty": torch.zeros(0, 3, dtype=torch.float32),  # every rank gets an empty part
        "cube": torch.randint(0, 255, (3, 4, 7), generator=g, dtype=torch.uint8),  # dim -1 of 3-D
        "step": torch.tensor(42, dtype=torch.int64),  # scalar, matches nothing: replicated
        "table": torch.randn(4, 4, generator=g).to(torch.bfloat16),  # matches nothing
    }


def expected_part(name: str, full: torch.Tensor, world_size: int, rank: int) -> torch.Tensor:
    """``torch.chunk``'s part for ``rank``; an empty part (split dim 0) past its last chunk."""
    dim = None
    for pattern, d in PLAN.items():
        import fnmatch

        if fnmatch.fnmatchcase(name, pattern):
            dim = d
            break
    if dim is None:
        return full
    chunks = torch.chunk(full, world_size, dim)
    if rank < len(chunks):
        return chunks[rank]
    return full.narrow(dim, full.shape[dim], 0)


def assert_parts(got: dict, world_size: int, rank: int, what: str) -> None:
    full = tensors()
    assert list(got) == sorted(got, key=list(full).index) or set(got) == set(full), what
    assert set(got) == set(full), what
    for name, value in full.items():
        want = expected_part(name, value, world_size, rank)
        g = got[name]
        assert g.dtype == want.dtype, (what, name)
        assert tuple(g.shape) == tuple(want.shape), (what, name, tuple(g.shape), tuple(want.shape))
        assert torch.equal(g, want), (what, name)


def write_checkpoints(tmp: Path) -> dict:
    single = tmp / "single.safetensors"
    save_file(tensors(), single)
    folder = tmp / "sharded"
    index = save_sharded(tensors(), folder, max_shard_size=200)
    assert len(set(index["weight_map"].values())) >= 3  # really sharded
    return {"file": str(single), "folder": str(folder)}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def run_ranks(tmp: Path, world_size: int, loads: list) -> None:
    """Runs ``rank_worker.py`` on ``world_size`` processes (gloo, 127.0.0.1) and waits at most
    RUN_TIMEOUT seconds for all of them; a failing or hanging rank fails the test."""
    spec = tmp / "spec.json"
    spec.write_text(
        json.dumps({"port": free_port(), "world_size": world_size, "timeout": GROUP_TIMEOUT, "loads": loads})
    )
    env = dict(os.environ, GLOO_SOCKET_IFNAME="lo", OMP_NUM_THREADS="1")
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(spec), str(r)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=env,
        )
        for r in range(world_size)
    ]
    outputs = []
    try:
        for p in procs:
            out, _ = p.communicate(timeout=RUN_TIMEOUT)
            outputs.append(out)
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for r, (p, out) in enumerate(zip(procs, outputs)):
        assert p.returncode == 0, f"rank {r} exited with {p.returncode}:\n{out}"


@pytest.mark.parametrize("world_size", [2, 3])
def test_every_rank_gets_its_chunk(tmp_path, world_size):
    where = write_checkpoints(tmp_path)
    loads = []
    for mode in ("read", "broadcast"):
        for layout, location in where.items():
            entry = {
                "location": location,
                "plan": PLAN,
                "mode": mode,
                "out": str(tmp_path / f"{mode}-{layout}-{{rank}}.safetensors"),
            }
            if mode == "broadcast":
                # Only rank 0 reads: the other ranks get a location that does not exist.
                entry["others_location"] = str(tmp_path / "not-there")
            loads.append(entry)
    run_ranks(tmp_path, world_size, loads)
    for load in loads:
        for r in range(world_size):
            out = Path(load["out"].format(rank=r))
            err = Path(str(out) + ".err")
            what = f"{load['mode']} {Path(load['location']).name} rank {r}/{world_size}"
            assert not err.exists(), f"{what}: {err.read_text()}"
            assert_parts(load_file(out), world_size, r, what)


def test_broadcast_errors_reach_every_rank(tmp_path):
    """Rank 0 cannot open the checkpoint, or the plan does not fit it: every rank raises
    (rank 0's error, named on the others) instead of waiting for data."""
    where = write_checkpoints(tmp_path)
    loads = [
        {"location": str(tmp_path / "missing"), "plan": PLAN, "mode": "broadcast", "out": str(tmp_path / "a-{rank}")},
        {"location": where["folder"], "plan": {"step": 0}, "mode": "broadcast", "out": str(tmp_path / "b-{rank}")},
        # The group still works after those: a good load goes through.
        {"location": where["file"], "plan": PLAN, "mode": "broadcast", "out": str(tmp_path / "c-{rank}")},
    ]
    run_ranks(tmp_path, 2, loads)
    for r in range(2):
        a = json.loads(Path(tmp_path / f"a-{r}.err").read_text())
        b = json.loads(Path(tmp_path / f"b-{r}.err").read_text())
        assert "missing" in a["message"]
        assert "'step'" in b["message"] and "scalar" in b["message"]
        if r == 0:
            assert a["type"].startswith("FileNotFound") and b["type"] == "ValueError"
        else:
            assert a["type"] == b["type"] == "RuntimeError"
            assert "rank 0 could not load" in a["message"]
        assert_parts(load_file(tmp_path / f"c-{r}"), 2, r, f"after errors, rank {r}")


# --- mode="read" in one process: rank and world_size given, no process group ---------------


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("layout", ["file", "folder"])
def test_read_mode_without_a_group(tmp_path, world_size, layout):
    location = write_checkpoints(tmp_path)[layout]
    for r in range(world_size):
        got = load_for_rank(location, PLAN, rank=r, world_size=world_size)
        assert list(got) == list(load_file(location))  # file order, like load_file
        assert_parts(got, world_size, r, f"{layout} rank {r}/{world_size}")


def test_f4_splits_whole_bytes(tmp_path):
    """torch holds F4 two values a byte (float4_e2m1fn_x2): the parts are torch.chunk of that
    tensor, also along the last dimension."""
    f4 = getattr(torch, "float4_e2m1fn_x2", None)
    if f4 is None:
        pytest.skip("this torch has no float4_e2m1fn_x2")
    full = torch.arange(30, dtype=torch.uint8).reshape(3, 10).view(f4)
    path = tmp_path / "f4.safetensors"
    save_file({"w": full, "v": full.clone()}, path)
    for r in range(3):
        got = load_for_rank(path, {"w": -1, "v": 0}, rank=r, world_size=3)
        for name, dim in (("w", 1), ("v", 0)):
            want = torch.chunk(full, 3, dim)[r]
            assert got[name].dtype == f4 and got[name].shape == want.shape
            assert torch.equal(got[name].view(torch.uint8), want.view(torch.uint8))


def read_bytes_of_this_process() -> int:
    """``rchar`` of /proc/self/io: bytes this process asked read()/pread() for."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("rchar:"):
            return int(line.split()[1])
    raise AssertionError("no rchar in /proc/self/io")


@pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")
@pytest.mark.parametrize(
    "dim, cols, world_size",
    [
        (0, 8192, 4),  # one run per rank
        (1, 8192, 4),  # 32 KiB rows: 8 KiB runs
        (1, 4096, 8),  # 16 KiB rows: 2 KiB runs, 14 KiB apart (whole pages between: no covering read)
    ],
)
def test_read_mode_reads_only_the_ranks_bytes(tmp_path, dim, cols, world_size):
    """A rank's reads (counted by the kernel) are its own part plus the headers: never the
    whole of a split tensor."""
    full = {"w": torch.randn(2 * 1024 * 1024 // 4 // cols, cols), "r": torch.randn(16)}  # w: 2 MiB
    folder = tmp_path / "ckpt"
    save_sharded(full, folder, max_shard_size=1 << 20)
    overhead = sum(p.stat().st_size for p in folder.iterdir()) - sum(t.nbytes for t in full.values())
    for r in range(world_size):
        before = read_bytes_of_this_process()
        got = load_for_rank(folder, {"w": dim}, rank=r, world_size=world_size)
        read = read_bytes_of_this_process() - before
        part = full["w"].nbytes // world_size
        assert torch.equal(got["w"], torch.chunk(full["w"], world_size, dim)[r])
        # Own part + the replicated tensor + headers and index (+ a little for Python's own reads).
        assert part <= read <= part + full["r"].nbytes + overhead + 16384, (r, read, part)


def test_prepare_for_parts_on_every_kind_of_handle(tmp_path):
    """``safe_open._prepare_for_parts()`` (the core's read advice for parts, whose effect the
    byte counts above measure) takes a single file, a folder before and after its shards are
    opened, and refuses a closed handle like any other call."""
    from safetensors import SafetensorError, safe_open

    where = write_checkpoints(tmp_path)
    with safe_open(where["file"], framework="pt", backend="pread") as f:
        f._prepare_for_parts()
        assert f.get_tensor("emb.weight").shape[0] > 0
    with safe_open(where["folder"], framework="pt", backend="pread") as f:
        f._prepare_for_parts()
        f.get_tensor("emb.weight")
        f._prepare_for_parts()
        full = load_file(where["file"])
        for name in f.keys():
            assert torch.equal(f.get_tensor(name), full[name])
    with pytest.raises(SafetensorError):
        f._prepare_for_parts()


def test_read_mode_short_rows_are_read_in_one_span(tmp_path):
    """Parts whose runs are shorter than a page, with every page holding some: the result is
    still exactly the part (the covering span is read once, then gathered)."""
    full = torch.randn(300, 100)  # 400-byte rows: 2 ranks get 200-byte runs
    path = tmp_path / "m.safetensors"
    save_file({"w": full}, path)
    for r in range(2):
        got = load_for_rank(path, {"w": 1}, rank=r, world_size=2)
        assert torch.equal(got["w"], torch.chunk(full, 2, 1)[r])


# --- refused arguments -----------------------------------------------------------------------


@pytest.fixture
def small(tmp_path):
    path = tmp_path / "m.safetensors"
    save_file({"w": torch.zeros(4, 6), "s": torch.tensor(1.0)}, path)
    return path


@pytest.mark.parametrize(
    "plan, error, message",
    [
        ([("w", 0)], TypeError, "plan must be a dict"),
        ({0: 0}, TypeError, "plan keys must be str"),
        ({"w": 1.0}, TypeError, "must be an int dimension or None"),
        ({"w": True}, TypeError, "must be an int dimension or None"),
        ({"w": 2}, ValueError, "dimension 2 is out of range for a tensor of 2 dimensions"),
        ({"w": -3}, ValueError, "expected to be in range of [-2, 1]"),
        ({"*": 0}, ValueError, "cannot split tensor 's'"),
    ],
)
def test_bad_plans_are_refused(small, plan, error, message):
    with pytest.raises(error, match=None) as e:
        load_for_rank(small, plan, rank=0, world_size=2)
    assert message in str(e.value)


def test_bad_arguments_are_refused(small):
    with pytest.raises(ValueError, match="mode must be 'read' or 'broadcast'"):
        load_for_rank(small, {}, rank=0, world_size=2, mode="scatter")
    with pytest.raises(ValueError, match="rank must be in"):
        load_for_rank(small, {}, rank=2, world_size=2)
    with pytest.raises(ValueError, match="rank must be in"):
        load_for_rank(small, {}, rank=0, world_size=0)
    with pytest.raises(TypeError, match="rank must be an int"):
        load_for_rank(small, {}, rank="0", world_size=2)
    with pytest.raises(FileNotFoundError):
        load_for_rank(small.parent / "nope.safetensors", {}, rank=0, world_size=2)


def test_without_a_process_group_rank_and_world_size_are_needed(small):
    assert not torch.distributed.is_initialized()
    with pytest.raises(RuntimeError, match="torch.distributed is not initialized.*pass rank= and world_size="):
        load_for_rank(small, {})
    with pytest.raises(RuntimeError, match="torch.distributed is not initialized"):
        load_for_rank(small, {}, rank=0)
    with pytest.raises(RuntimeError, match="mode='broadcast' sends the parts with torch.distributed"):
        load_for_rank(small, {}, rank=0, world_size=1, mode="broadcast")
