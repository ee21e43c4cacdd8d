"""``safetensors.numpy.open_writer`` / ``open_sharded_writer``: specs first, arrays one at a
time; the bytes are ``save_file``'s / ``save_sharded``'s whatever order the arrays come in,
and a writer that does not finish leaves nothing behind."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import ml_dtypes
import numpy as np
import pytest

from safetensors import SafetensorError
from safetensors.numpy import load_file, open_sharded_writer, open_writer, save_file, save_sharded


def arrays() -> dict:
    """Several dtypes (bool, bfloat16, float8, complex, big-endian, a scalar, an empty one), in
    an order that is not the file's."""
    rng = np.random.default_rng(7)
    return {
        "mlp.up": rng.standard_normal((3, 5)).astype(ml_dtypes.bfloat16),
        "embed": rng.standard_normal((4, 3)).astype(np.float32),
        "mask": np.array([True, False, True, True, False]),
        "scale": np.float64(2.5),
        "empty": np.zeros((0, 4), dtype=np.float16),
        "ids": np.array([3, -1], dtype=">i8"),  # big-endian: written little-endian
        "f8": rng.standard_normal(6).astype(ml_dtypes.float8_e4m3fn),
        "cplx": (rng.standard_normal(2) + 1j).astype(np.complex64),
        "a.bias": rng.standard_normal(3).astype(np.float32),
    }


def specs_of(t: dict) -> dict:
    return {k: (np.asarray(v).dtype, np.shape(v)) for k, v in t.items()}


def listing(folder: Path) -> list:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("checksum", [None, "sha256", "xxh3-64"])
@pytest.mark.parametrize("metadata", [None, {"z": "1", "format": "np", "a": "2"}])
def test_bytes_are_save_files_in_any_order(tmp_path: Path, metadata, checksum) -> None:
    t = arrays()
    save_file(t, tmp_path / "whole.safetensors", metadata=metadata, checksum=checksum)
    want = (tmp_path / "whole.safetensors").read_bytes()
    names = list(t)
    for order in (names, names[::-1], names[1::2] + names[::2]):
        path = tmp_path / "streamed.safetensors"
        with open_writer(path, specs_of(t), metadata=metadata, checksum=checksum) as w:
            for name in order:
                w.write(name, t[name])
        assert path.read_bytes() == want, order
    assert listing(tmp_path) == ["streamed.safetensors", "whole.safetensors"]


def test_header_dtype_names_and_array_specs(tmp_path: Path) -> None:
    """A spec may be a header dtype name with the header's shape, or an array itself."""
    t = {"a": np.ones((2, 2), dtype=np.float32), "b": np.arange(3, dtype=np.uint8)}
    save_file(t, tmp_path / "whole.safetensors")
    with open_writer(tmp_path / "w.safetensors", {"a": ("F32", [2, 2]), "b": t["b"]}) as w:
        w.write("b", t["b"])
        w.write("a", t["a"])
    assert (tmp_path / "w.safetensors").read_bytes() == (tmp_path / "whole.safetensors").read_bytes()


def sha256_metadata(t: dict, metadata: dict | None) -> dict:
    """What a sha256 checksum adds to the metadata, computed here independently: each tensor's
    digest of its little-endian bytes, in file order (dtype alignment, then name)."""
    out = dict(metadata or {})
    for name, _ in _file_order(t):
        arr = np.asarray(t[name])
        le = arr.astype(arr.dtype.newbyteorder("<")) if arr.dtype.byteorder == ">" else arr
        out[f"__checksum__:{name}"] = "sha256:" + hashlib.sha256(np.ascontiguousarray(le).tobytes()).hexdigest()
    return out


def _file_order(t: dict) -> list:
    """Names in file order, read back from a plain save."""
    from safetensors.numpy import save

    data = save(t)
    n = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + n])
    return sorted(((k, v) for k, v in header.items()), key=lambda kv: kv[1]["data_offsets"][0])


@pytest.mark.parametrize("metadata", [None, {"format": "np"}])
def test_a_sha256_checksum_records_each_arrays_digest(tmp_path: Path, metadata) -> None:
    t = arrays()
    save_file(t, tmp_path / "whole.safetensors", metadata=sha256_metadata(t, metadata))
    path = tmp_path / "streamed.safetensors"
    with open_writer(path, specs_of(t), metadata=metadata, checksum="sha256") as w:
        for name in reversed(list(t)):
            w.write(name, t[name])
    assert path.read_bytes() == (tmp_path / "whole.safetensors").read_bytes()


def test_an_unknown_checksum_is_refused_before_any_file(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="md5"):
        open_writer(tmp_path / "y.safetensors", specs_of(arrays()), checksum="md5")
    assert listing(tmp_path) == []


def test_an_exception_inside_the_block_leaves_the_old_file(tmp_path: Path) -> None:
    t = arrays()
    path = tmp_path / "m.safetensors"
    path.write_bytes(b"old contents")
    with pytest.raises(RuntimeError, match="producer failed"):
        with open_writer(path, specs_of(t)) as w:
            w.write("embed", t["embed"])
            assert len(listing(tmp_path)) == 2  # the old file and the temporary one
            raise RuntimeError("producer failed")
    assert path.read_bytes() == b"old contents"
    assert listing(tmp_path) == ["m.safetensors"]
    assert w.closed


def test_a_missing_array_at_exit_raises_and_leaves_nothing(tmp_path: Path) -> None:
    t = arrays()
    path = tmp_path / "m.safetensors"
    with pytest.raises(SafetensorError, match=r'2 of the 9 planned tensors were never written: "ids", "mask"'):
        with open_writer(path, specs_of(t)) as w:
            for name in t:
                if name not in ("mask", "ids"):
                    w.write(name, t[name])
            assert w.missing == ["ids", "mask"]
    assert listing(tmp_path) == []
    with pytest.raises(SafetensorError, match="closed"):
        w.write("mask", t["mask"])


def test_refused_writes_name_the_array(tmp_path: Path) -> None:
    t = arrays()
    w = open_writer(tmp_path / "m.safetensors", specs_of(t))
    with pytest.raises(ValueError, match=r'tensor "embed" was planned as F32 \[4, 3\] but is F64 \[4, 3\]') as e:
        w.write("embed", t["embed"].astype(np.float64))
    assert isinstance(e.value, SafetensorError)
    with pytest.raises(ValueError, match=r"planned as F32 \[4, 3\] but is F32 \[3, 4\]"):
        w.write("embed", t["embed"].reshape(3, 4))
    with pytest.raises(ValueError, match='"nope" is not one of the 9 planned tensors'):
        w.write("nope", t["embed"])
    w.write("embed", t["embed"].T.copy().T)  # a Fortran-ordered array is written in C order
    with pytest.raises(ValueError, match='"embed" was already written'):
        w.write("embed", t["embed"])
    with pytest.raises(ValueError, match="does not map to a numpy array"):
        w.write("mask", [True, False])
    assert "embed" not in w.missing and len(w.missing) == 8
    w.abort()
    assert listing(tmp_path) == []


def test_bad_specs_are_refused_before_any_file(tmp_path: Path) -> None:
    for specs, error, match in [
        ({"a": (np.float32,)}, ValueError, "must be \\(dtype, shape\\)"),
        ({"a": (np.float32, (2, -1))}, ValueError, "negative"),
        ({"a": (np.float32, "xy")}, ValueError, "sequence of ints"),
        ({"a": (object, (2,))}, SafetensorError, "cannot store"),
        ({"a": ("F4", (3,))}, SafetensorError, "whole number of bytes"),
        ({1: (np.float32, (2,))}, TypeError, "names must be str"),
        ([("a", np.float32, (2,))], ValueError, "must map"),
    ]:
        with pytest.raises(error, match=match):
            open_writer(tmp_path / "m.safetensors", specs)
    assert listing(tmp_path) == []


@pytest.mark.parametrize("checksum", [None, "xxh3-64"])
def test_sharded_writer_writes_what_save_sharded_writes(tmp_path: Path, checksum) -> None:
    t = arrays()
    meta = {"format": "np"}
    for limit in (40, "64B", 10**6):
        whole, streamed = tmp_path / f"whole{limit}", tmp_path / f"streamed{limit}"
        index = save_sharded(t, whole, max_shard_size=limit, metadata=meta, checksum=checksum)
        streamed.mkdir()
        (streamed / "model.safetensors").write_bytes(b"stale")  # what an earlier save left
        with open_sharded_writer(streamed, specs_of(t), max_shard_size=limit, metadata=meta, checksum=checksum) as w:
            for name in reversed(list(t)):
                w.write(name, t[name])
        assert w.index == index
        assert listing(streamed) == listing(whole)
        for name in listing(whole):
            assert (streamed / name).read_bytes() == (whole / name).read_bytes(), (limit, name)
    assert len(listing(tmp_path / "whole40")) > 2  # several shards and the index


def test_sharded_writer_renames_nothing_until_everything_is_written(tmp_path: Path) -> None:
    t = arrays()
    (tmp_path / "model.safetensors").write_bytes(b"old")
    with pytest.raises(ValueError, match='1 of the 9 planned tensors was never written: "scale"'):
        with open_sharded_writer(tmp_path, specs_of(t), max_shard_size=40) as w:
            for name in t:
                if name != "scale":
                    w.write(name, t[name])
    assert listing(tmp_path) == ["model.safetensors"]
    assert (tmp_path / "model.safetensors").read_bytes() == b"old"
    assert w.index is None

    with pytest.raises(KeyError):
        with open_sharded_writer(tmp_path, specs_of(t), max_shard_size=40) as w:
            w.write("embed", t["embed"])
            raise KeyError("interrupted")
    assert listing(tmp_path) == ["model.safetensors"]


KILLED_WRITER = r"""
import sys
import numpy as np
from safetensors.numpy import open_writer

specs = {f"t{i}": (np.float32, (1000,)) for i in range(4)}
w = open_writer(sys.argv[1], specs)
w.write("t2", np.full(1000, 2, dtype=np.float32))
w.write("t0", np.zeros(1000, dtype=np.float32))
print("half written", flush=True)
sys.stdin.readline()  # killed here
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="needs SIGKILL and /proc")
def test_a_writer_killed_mid_way_leaves_the_old_file_and_the_next_save_cleans_up(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_file({"old": np.ones(3, dtype=np.float32)}, path)
    old = path.read_bytes()
    with subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    ) as proc:
        assert proc.stdout is not None and proc.stdout.readline() == "half written\n"
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert path.read_bytes() == old
    leftover = [n for n in listing(tmp_path) if n != "m.safetensors"]
    assert leftover == [f".m.safetensors.{proc.pid}.0.tmp"]
    t = {f"t{i}": np.full(1000, i, dtype=np.float32) for i in range(4)}
    with open_writer(path, specs_of(t)) as w:
        for name, value in t.items():
            w.write(name, value)
    assert listing(tmp_path) == ["m.safetensors"]  # the dead writer's temporary file is gone
    assert load_file(path)["t3"][0] == 3
