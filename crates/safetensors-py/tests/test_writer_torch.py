"""``safetensors.torch.open_writer`` / ``open_sharded_writer``: tensors produced one at a time
give ``save_file``'s / ``save_sharded``'s bytes, in any order, and a writer interrupted or
missing a tensor leaves nothing behind and an existing file as it was."""

from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

import pytest
from conftest import require

torch = require("torch")

from safetensors import SafetensorError  # noqa: E402
from safetensors.torch import (  # noqa: E402
    load_file,
    open_sharded_writer,
    open_writer,
    save,
    save_file,
    save_sharded,
)


def tensors() -> dict:
    """Several dtypes (bool, bfloat16, float8, complex, float4 packed two a byte, a scalar, an
    empty one), in an order that is not the file's."""
    g = torch.Generator().manual_seed(3)
    t = {
        "mlp.up": torch.randn(3, 5, generator=g).to(torch.bfloat16),
        "embed": torch.randn(4, 3, generator=g),
        "mask": torch.tensor([True, False, True]),
        "scale": torch.tensor(2.5, dtype=torch.float64),
        "empty": torch.zeros(0, 4, dtype=torch.float16),
        "ids": torch.tensor([3, -1], dtype=torch.int64),
        "f8": torch.randn(6, generator=g).to(torch.float8_e4m3fn),
        "cplx": torch.randn(2, dtype=torch.complex64, generator=g),
        "a.bias": torch.randn(3, generator=g),
    }
    if hasattr(torch, "float4_e2m1fn_x2"):
        t["packed"] = torch.arange(6, dtype=torch.uint8).view(torch.float4_e2m1fn_x2).reshape(2, 3)
    return t


def specs_of(t: dict) -> dict:
    return {k: (v.dtype, tuple(v.shape)) for k, v in t.items()}


def listing(folder: Path) -> list:
    return sorted(os.listdir(folder))


@pytest.mark.parametrize("checksum", [None, "sha256", "xxh3-64"])
@pytest.mark.parametrize("metadata", [None, {"format": "pt", "z": "1", "a": "2"}])
def test_bytes_are_save_files_in_any_order(tmp_path: Path, metadata, checksum) -> None:
    t = tensors()
    save_file(t, tmp_path / "whole.safetensors", metadata=metadata, checksum=checksum)
    want = (tmp_path / "whole.safetensors").read_bytes()
    names = list(t)
    for order in (names, names[::-1], names[1::2] + names[::2]):
        path = tmp_path / "streamed.safetensors"
        with open_writer(path, specs_of(t), metadata=metadata, checksum=checksum) as w:
            for name in order:
                w.write(name, t[name].clone())  # produced just before it is written
        assert path.read_bytes() == want, order
    assert listing(tmp_path) == ["streamed.safetensors", "whole.safetensors"]


def test_meta_tensors_and_header_names_as_specs(tmp_path: Path) -> None:
    """A model's "meta" state dict gives the specs; a header dtype name takes the header's shape."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.Linear(3, 2))
    state = model.state_dict()
    specs = {k: v.to("meta") for k, v in state.items()}
    specs["0.bias"] = ("F32", [3])
    with open_writer(tmp_path / "w.safetensors", specs) as w:
        for name, value in state.items():
            w.write(name, value)
    assert (tmp_path / "w.safetensors").read_bytes() == save(dict(state))


@pytest.mark.parametrize("metadata", [None, {"format": "pt"}])
def test_a_sha256_checksum_records_each_tensors_digest(tmp_path: Path, metadata) -> None:
    t = tensors()
    plain = save(t)
    n = int.from_bytes(plain[:8], "little")
    header = json.loads(plain[8 : 8 + n])
    data = plain[8 + n :]
    # What the checksum adds, computed here: each tensor's sha256, in file order.
    meta = dict(metadata or {})
    for name, entry in sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0]):
        begin, end = entry["data_offsets"]
        meta[f"__checksum__:{name}"] = "sha256:" + hashlib.sha256(data[begin:end]).hexdigest()
    path = tmp_path / "streamed.safetensors"
    with open_writer(path, specs_of(t), metadata=metadata, checksum="sha256") as w:
        for name in reversed(list(t)):
            w.write(name, t[name])
    assert path.read_bytes() == save(t, metadata=meta)


def test_an_exception_inside_the_block_leaves_the_old_file(tmp_path: Path) -> None:
    t = tensors()
    path = tmp_path / "m.safetensors"
    save_file({"old": torch.ones(2)}, path)
    old = path.read_bytes()
    with pytest.raises(RuntimeError, match="out of memory, say"):
        with open_writer(path, specs_of(t)) as w:
            w.write("embed", t["embed"])
            w.write("mask", t["mask"])
            raise RuntimeError("out of memory, say")
    assert path.read_bytes() == old
    assert listing(tmp_path) == ["m.safetensors"]
    assert load_file(path)["old"].tolist() == [1.0, 1.0]


def test_a_missing_tensor_at_exit_raises_and_leaves_nothing(tmp_path: Path) -> None:
    t = tensors()
    path = tmp_path / "m.safetensors"
    with pytest.raises(SafetensorError, match=r'1 of the \d+ planned tensors was never written: "f8"'):
        with open_writer(path, specs_of(t)) as w:
            for name in t:
                if name != "f8":
                    w.write(name, t[name])
    assert listing(tmp_path) == []


def test_refused_writes_name_the_tensor(tmp_path: Path) -> None:
    t = tensors()
    with open_writer(tmp_path / "m.safetensors", specs_of(t)) as w:
        with pytest.raises(ValueError, match=r'tensor "embed" was planned as F32 \[4, 3\] but is F16 \[4, 3\]'):
            w.write("embed", t["embed"].half())
        with pytest.raises(ValueError, match=r'"mlp.up" was planned as BF16 \[3, 5\] but is BF16 \[5, 3\]'):
            w.write("mlp.up", t["mlp.up"].reshape(5, 3))
        with pytest.raises(ValueError, match="non contiguous tensor: `mlp.up`"):
            w.write("mlp.up", t["mlp.up"].reshape(5, 3).T)
        with pytest.raises(ValueError, match='"other" is not one of the'):
            w.write("other", t["embed"])
        with pytest.raises(ValueError, match="does not map to a torch.Tensor"):
            w.write("embed", t["embed"].numpy())
        with pytest.raises(NotImplementedError, match="meta tensor"):
            w.write("embed", t["embed"].to("meta"))
        for name, value in t.items():
            w.write(name, value)
        with pytest.raises(ValueError, match='"embed" was already written'):
            w.write("embed", t["embed"])
        w.close()  # closing inside the block: leaving it then does nothing more
    assert load_file(tmp_path / "m.safetensors")["embed"].equal(t["embed"])


def test_writes_from_several_threads(tmp_path: Path) -> None:
    """Tensors produced and written by several threads at once land where planned."""
    specs = {f"layer.{i}": (torch.float32, (256, 64)) for i in range(16)}
    path = tmp_path / "m.safetensors"
    with open_writer(path, specs) as w:

        def produce(first: int) -> None:
            for i in range(first, 16, 4):
                w.write(f"layer.{i}", torch.full((256, 64), float(i)))

        threads = [threading.Thread(target=produce, args=(k,)) for k in range(4)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
    back = load_file(path)
    assert all(back[f"layer.{i}"].eq(float(i)).all() for i in range(16))


@pytest.mark.parametrize("checksum", [None, "sha256"])
def test_sharded_writer_writes_what_save_sharded_writes(tmp_path: Path, checksum) -> None:
    t = tensors()
    for limit in (40, "100B", "5GB"):
        whole, streamed = tmp_path / f"whole{limit}", tmp_path / f"streamed{limit}"
        index = save_sharded(t, whole, max_shard_size=limit, checksum=checksum)
        with open_sharded_writer(streamed, specs_of(t), max_shard_size=limit, checksum=checksum) as w:
            for name in reversed(list(t)):
                w.write(name, t[name])
        assert w.index == index
        assert listing(streamed) == listing(whole)
        for name in listing(whole):
            assert (streamed / name).read_bytes() == (whole / name).read_bytes(), (limit, name)
    assert "model.safetensors.index.json" in listing(tmp_path / "whole40")
    assert listing(tmp_path / "whole5GB") == ["model.safetensors"]


def test_sharded_writer_interrupted_leaves_the_old_checkpoint(tmp_path: Path) -> None:
    t = tensors()
    save_sharded(t, tmp_path, max_shard_size=40)
    before = {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)}
    other = {k: torch.zeros_like(v) for k, v in t.items()}
    with pytest.raises(RuntimeError, match="interrupted"):
        with open_sharded_writer(tmp_path, specs_of(other), max_shard_size=40) as w:
            for name in list(other)[:5]:
                w.write(name, other[name])
            raise RuntimeError("interrupted")
    assert {name: (tmp_path / name).read_bytes() for name in listing(tmp_path)} == before
