"""Per-tensor checksums: ``save_file(..., checksum=...)`` in every framework module, and
``verify=True`` / ``SAFETENSORS_VERIFY`` when loading (a flipped byte is caught, naming the
tensor, whatever the read path)."""

from __future__ import annotations

import hashlib
import importlib
import json
import struct

import numpy as np
import pytest
from conftest import require

import safetensors.numpy as stnp
from safetensors import SafetensorError, deserialize, safe_open

ALGORITHMS = ["sha256", "xxh3-64"]


def header_of(data: bytes) -> dict:
    (n,) = struct.unpack("<Q", data[:8])
    return json.loads(data[8 : 8 + n])


def sample() -> dict:
    rng = np.random.default_rng(0)
    return {
        "w": rng.standard_normal((64, 32)).astype(np.float32),
        "b": np.arange(7, dtype=np.int16),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 3), dtype=np.float16),
    }


def flip_last_byte(path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0x40
    path.write_bytes(bytes(data))


def last_tensor(path) -> str:
    """The tensor whose bytes end the file."""
    header = header_of(path.read_bytes())
    header.pop("__metadata__", None)
    return max(header, key=lambda k: header[k]["data_offsets"][1])


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_digests_recorded_for_every_tensor(tmp_path, algorithm):
    p = tmp_path / "m.safetensors"
    stnp.save_file(sample(), p, metadata={"format": "np"}, checksum=algorithm)
    data = p.read_bytes()
    meta = header_of(data)["__metadata__"]
    assert meta["format"] == "np"
    names = {name for name, _ in deserialize(data)}
    assert {k for k in meta if k.startswith("__checksum__:")} == {f"__checksum__:{n}" for n in names}
    for name, entry in deserialize(data):
        value = meta[f"__checksum__:{name}"]
        assert value.startswith(algorithm + ":")
        if algorithm == "sha256":
            assert value == "sha256:" + hashlib.sha256(bytes(entry["data"])).hexdigest()
    # save() gives the same bytes; the tensors and the rest of the header are a plain save's.
    assert stnp.save(sample(), metadata={"format": "np"}, checksum=algorithm) == data
    plain = stnp.save(sample(), metadata={"format": "np"})
    assert [(n, bytes(e["data"])) for n, e in deserialize(plain)] == [
        (n, bytes(e["data"])) for n, e in deserialize(data)
    ]
    # Any reader sees ordinary string metadata; verify=True loads it.
    with safe_open(p, "np", verify=True) as f:
        assert f.metadata()["format"] == "np"
        for name, arr in sample().items():
            np.testing.assert_array_equal(f.get_tensor(name), arr)


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="md5"):
        stnp.save_file(sample(), tmp_path / "x.safetensors", checksum="md5")
    with pytest.raises(SafetensorError, match="__checksum__:"):
        stnp.save_file(sample(), tmp_path / "x.safetensors", metadata={"__checksum__:w": "x"}, checksum="sha256")
    assert not (tmp_path / "x.safetensors").exists()


def load_paths(p, name):
    """Every way a tensor's bytes can be read, each a function of the open handle or path."""
    return {
        "get_tensor": lambda: safe_open(p, "np", verify=True).get_tensor(name),
        "get_slice": lambda: safe_open(p, "np", verify=True).get_slice(name)[:1],
        "get_tensors": lambda: safe_open(p, "np", verify=True).get_tensors(),
        "load_file": lambda: stnp.load_file(p, verify=True),
        "load_file_pread": lambda: stnp.load_file(p, backend="pread", verify=True),
        "prefetch": lambda: list(safe_open(p, "np", verify=True).prefetch()),
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_a_flipped_byte_is_caught_on_every_read_path(tmp_path, algorithm):
    p = tmp_path / "m.safetensors"
    stnp.save_file(sample(), p, checksum=algorithm)
    flip_last_byte(p)
    name = last_tensor(p)
    for how, read in load_paths(p, name).items():
        with pytest.raises(SafetensorError, match=f'tensor "{name}": {algorithm} checksum mismatch'):
            read()
            pytest.fail(f"{how} read a damaged tensor")
    # Without verify, the bytes load as they are (the reference's behaviour).
    assert stnp.load_file(p)[name] is not None
    # The other tensors still verify one by one.
    with safe_open(p, "np", verify=True) as f:
        for other in f.keys():
            if other != name:
                f.get_tensor(other)


def test_environment_variable_turns_it_on_and_verify_false_off(tmp_path, monkeypatch):
    p = tmp_path / "m.safetensors"
    stnp.save_file(sample(), p, checksum="xxh3-64")
    flip_last_byte(p)
    monkeypatch.setenv("SAFETENSORS_VERIFY", "1")
    with pytest.raises(SafetensorError, match="checksum mismatch"):
        stnp.load_file(p)
    stnp.load_file(p, verify=False)
    monkeypatch.setenv("SAFETENSORS_VERIFY", "0")
    stnp.load_file(p)


def test_files_without_digests_load_as_before(tmp_path):
    p = tmp_path / "m.safetensors"
    stnp.save_file(sample(), p)
    out = stnp.load_file(p, verify=True)
    for name, arr in sample().items():
        np.testing.assert_array_equal(out[name], arr)


def test_sharded_checkpoints_record_and_check_per_shard(tmp_path):
    tensors = {f"layer{i}": np.full((256,), i, dtype=np.float32) for i in range(4)}
    index = stnp.save_sharded(tensors, tmp_path, max_shard_size=2048, checksum="sha256")
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) == 2
    for shard in shards:
        meta = header_of((tmp_path / shard).read_bytes())["__metadata__"]
        own = {n for n, s in index["weight_map"].items() if s == shard}
        assert {k for k in meta if k.startswith("__checksum__:")} == {f"__checksum__:{n}" for n in own}
    assert stnp.load_file(tmp_path, verify=True).keys() == tensors.keys()
    flip_last_byte(tmp_path / shards[1])
    with pytest.raises(SafetensorError, match=rf"checksum mismatch.*\(shard {shards[1]}\)"):
        stnp.load_file(tmp_path, verify=True)


# paddle before tensorflow: the other order crashes some builds of the two in one process.
@pytest.mark.parametrize("module_name", ["torch", "paddle", "tensorflow", "flax", "mlx"])
def test_every_framework_module_takes_checksum(tmp_path, module_name):
    framework = {"torch": "torch", "tensorflow": "tensorflow", "paddle": "paddle", "flax": "jax", "mlx": "mlx.core"}
    lib = require(framework[module_name])
    mod = importlib.import_module(f"safetensors.{module_name}")
    if module_name == "flax":
        tensors = {"w": lib.numpy.ones((3, 4)), "i": lib.numpy.arange(5)}
    elif module_name == "mlx":
        tensors = {"w": lib.ones((3, 4)), "i": lib.arange(5)}
    elif module_name == "tensorflow":
        tensors = {"w": lib.ones((3, 4)), "i": lib.range(5)}
    else:
        tensors = {"w": lib.ones((3, 4)), "i": lib.arange(5)}
    p = tmp_path / "m.safetensors"
    mod.save_file(tensors, p, checksum="sha256")
    data = p.read_bytes()
    meta = header_of(data)["__metadata__"]
    assert sorted(meta) == ["__checksum__:i", "__checksum__:w"]
    assert mod.save(tensors, checksum="sha256") == data
    assert sorted(mod.load_file(p, verify=True)) == ["i", "w"]
    flip_last_byte(p)
    with pytest.raises(SafetensorError, match="checksum mismatch"):
        mod.load_file(p, verify=True)


def test_torch_save_model_and_save_sharded(tmp_path):
    torch = require("torch")
    import safetensors.torch as stt

    model = torch.nn.Linear(4, 3)
    p = tmp_path / "model.safetensors"
    stt.save_model(model, p, checksum="xxh3-64")
    meta = header_of(p.read_bytes())["__metadata__"]
    assert sorted(k for k in meta if k.startswith("__checksum__:")) == ["__checksum__:bias", "__checksum__:weight"]
    stt.load_model(torch.nn.Linear(4, 3), p)
    stt.save_sharded(model.state_dict(), tmp_path / "sharded", max_shard_size=32, checksum="sha256")
    out = stt.load_file(tmp_path / "sharded", verify=True)
    torch.testing.assert_close(out["weight"], model.weight.detach())
