"""Sharded checkpoints: ``safe_open`` and every ``load_file`` over a folder or an index JSON
(the layout transformers writes), lazily opened shards, merged metadata, and the errors for
an index that disagrees with its shards."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from conftest import require

from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file

SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"


def tensors():
    return {
        "b": np.arange(6, dtype=np.float32).reshape(2, 3),
        "c": np.array([1, 2, 3], dtype=np.int64),
        "a": np.arange(12, dtype=np.float16).reshape(3, 4),
    }


def write_folder(folder: Path, index_name: str = "model.safetensors.index.json") -> Path:
    """Shard 1 holds b and c (c first: larger alignment), shard 2 holds a: shard order is
    not name order."""
    t = tensors()
    save_file({"b": t["b"], "c": t["c"]}, folder / SHARD1, metadata={"format": "np"})
    save_file({"a": t["a"]}, folder / SHARD2, metadata={"format": "pt", "shard": "2"})
    total = sum(v.nbytes for v in t.values())
    index = {
        "metadata": {"total_size": total, "note": "hi"},
        "weight_map": {"a": SHARD2, "b": SHARD1, "c": SHARD1},
    }
    path = folder / index_name
    path.write_text(json.dumps(index, indent=2, sort_keys=True) + "\n")
    return path


@pytest.mark.parametrize("backend", ["mmap", "pread"])
@pytest.mark.parametrize("how", ["folder", "index", "str"])
def test_safe_open_reads_every_shard(tmp_path, how, backend):
    index = write_folder(tmp_path)
    location = {"folder": tmp_path, "index": index, "str": str(tmp_path)}[how]
    expected = tensors()
    with safe_open(location, framework="np", backend=backend) as f:
        assert f.keys() == ["a", "b", "c"]
        assert f.offset_keys() == ["c", "b", "a"]
        assert len(f) == 3 and "a" in f and "z" not in f
        for name, value in expected.items():
            got = f.get_tensor(name)
            assert got.dtype == value.dtype
            np.testing.assert_array_equal(got, value)
        np.testing.assert_array_equal(f.get_slice("a")[1:, ::2], expected["a"][1:, ::2])
        assert f.get_slice("b").get_shape() == [2, 3]
        # The index's metadata (stringified), then the shards' keys not seen yet.
        assert f.metadata() == {"total_size": "72", "note": "hi", "format": "np", "shard": "2"}
        tensors_all = f.get_tensors()
        assert list(tensors_all) == ["a", "b", "c"]
        with pytest.raises(SafetensorError, match="does not contain tensor z"):
            f.get_tensor("z")
    with pytest.raises(SafetensorError, match="closed"):
        f.keys()


def test_mmap_gives_views_of_each_shards_one_mapping(tmp_path):
    write_folder(tmp_path)
    for backend, shared in [("mmap", True), ("pread", False)]:
        with safe_open(tmp_path, framework="np", backend=backend) as f:
            for name in ("a", "b"):  # one tensor of each shard
                first, second = f.get_tensor(name), f.get_tensor(name)
                first[0, 0] = 99
                assert (second[0, 0] == 99) == shared, (backend, name)
    # The mapping is private: the files are unchanged.
    with safe_open(tmp_path, framework="np") as f:
        assert f.get_tensor("a")[0, 0] == 0 and f.get_tensor("b")[0, 0] == 0


def test_any_index_name_and_a_folder_with_one_file(tmp_path):
    write_folder(tmp_path, "custom.safetensors.index.json")
    with safe_open(tmp_path, framework="np") as f:
        assert f.keys() == ["a", "b", "c"]
    single = tmp_path / "single"
    single.mkdir()
    save_file({"x": np.ones(3, dtype=np.float32)}, single / "weights.safetensors", metadata={"k": "v"})
    with safe_open(single, framework="np") as f:
        assert f.keys() == ["x"]
        assert f.metadata() == {"k": "v"}
    assert list(load_file(single)) == ["x"]


@pytest.mark.parametrize("backend", ["mmap", "pread"])
def test_load_file_of_every_framework_takes_a_folder(tmp_path, backend):
    index = write_folder(tmp_path)
    loaded = load_file(index, backend=backend)
    assert list(loaded) == ["c", "b", "a"]
    for name, value in tensors().items():
        np.testing.assert_array_equal(loaded[name], value)
    torch = require("torch")
    import safetensors.torch

    pt = safetensors.torch.load_file(tmp_path, backend=backend)
    assert torch.equal(pt["a"], torch.from_numpy(tensors()["a"]))
    assert pt["c"].dtype == torch.int64


def test_a_missing_shard_is_named_with_a_tensor(tmp_path):
    write_folder(tmp_path)
    (tmp_path / SHARD2).unlink()
    with pytest.raises(FileNotFoundError, match=f"maps tensor `a` to {SHARD2}.*does not exist"):
        safe_open(tmp_path, framework="np")


def test_a_missing_location_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="No such file or directory"):
        safe_open(tmp_path / "nope.safetensors.index.json", framework="np")


def test_a_shard_that_disagrees_with_the_index_is_refused_when_read(tmp_path):
    write_folder(tmp_path)
    # Shard 2 now holds `d` instead of `a`.
    save_file({"d": np.zeros(2, dtype=np.float32)}, tmp_path / SHARD2)
    with safe_open(tmp_path, framework="np") as f:
        np.testing.assert_array_equal(f.get_tensor("c"), tensors()["c"])  # shard 1 is fine
        with pytest.raises(SafetensorError) as err:
            f.get_tensor("a")
        text = str(err.value)
        assert f"{SHARD2} disagrees with the index" in text
        assert f"tensor `d` in {SHARD2} is not in the index's weight_map" in text
        assert f"the index maps tensor `a` to {SHARD2} which does not hold it" in text
        with pytest.raises(SafetensorError, match="disagrees"):
            f.get_slice("a")
        with pytest.raises(SafetensorError, match="disagrees"):
            f.offset_keys()


def test_a_bad_index_is_refused(tmp_path):
    index = tmp_path / "model.safetensors.index.json"
    index.write_text('{"weight_map": {"a": "../escape.safetensors"}}')
    with pytest.raises(SafetensorError, match="must be a relative path"):
        safe_open(tmp_path, framework="np")
    index.write_text("not json")
    with pytest.raises(SafetensorError, match="not a valid safetensors index"):
        safe_open(index, framework="np")


def test_an_empty_folder_is_an_os_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds neither model.safetensors.index.json"):
        safe_open(tmp_path, framework="np")


# --- save_sharded ---------------------------------------------------------------------------


def test_numpy_save_sharded_round_trips(tmp_path):
    import safetensors.numpy

    arrays = {f"layer{i}.weight": np.full((4, 4), i, dtype=np.float32) for i in range(5)}  # 64 bytes each
    index = safetensors.numpy.save_sharded(arrays, tmp_path, max_shard_size=130, metadata={"k": "v"})
    files = sorted(p.name for p in tmp_path.iterdir())
    shards = [f"model-0000{i}-of-00003.safetensors" for i in (1, 2, 3)]
    assert files == [*shards, "model.safetensors.index.json"]
    assert index == json.loads((tmp_path / "model.safetensors.index.json").read_text())
    assert index["metadata"] == {"total_size": 320}
    assert index["weight_map"]["layer0.weight"] == shards[0]
    assert index["weight_map"]["layer4.weight"] == shards[2]
    loaded = load_file(tmp_path)
    assert list(loaded) == list(arrays)
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
    with safe_open(tmp_path, framework="np") as f:
        assert f.metadata() == {"total_size": "320", "k": "v"}


def test_save_sharded_writes_one_file_when_everything_fits(tmp_path):
    import safetensors.numpy

    index = safetensors.numpy.save_sharded({"x": np.ones(3, dtype=np.int8)}, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.safetensors"]
    assert index == {"metadata": {"total_size": 3}, "weight_map": {"x": "model.safetensors"}}
    assert list(load_file(tmp_path)) == ["x"]


@pytest.mark.parametrize("size, shards", [("1KB", 1), ("100B", 4), (100, 4), ("0.1KB", 4), ("1KiB", 1)])
def test_max_shard_size_units(tmp_path, size, shards):
    import safetensors.numpy

    arrays = {f"t{i}": np.zeros(25, dtype=np.float32) for i in range(4)}  # 100 bytes each
    index = safetensors.numpy.save_sharded(arrays, tmp_path, max_shard_size=size)
    assert len(set(index["weight_map"].values())) == shards


@pytest.mark.parametrize("size", ["5XB", "0", 0, "", 1.5, True])
def test_bad_max_shard_size(tmp_path, size):
    import safetensors.numpy

    with pytest.raises(ValueError, match="max_shard_size"):
        safetensors.numpy.save_sharded({"x": np.ones(1)}, tmp_path, max_shard_size=size)
    assert list(tmp_path.iterdir()) == []


def test_torch_save_sharded_handles_shared_tensors(tmp_path):
    torch = require("torch")
    import safetensors.torch

    emb = torch.arange(32, dtype=torch.float32).reshape(8, 4)
    state = {"embed.weight": emb, "lm_head.weight": emb, "bias": torch.ones(8, dtype=torch.bfloat16)}
    index = safetensors.torch.save_sharded(state, tmp_path, max_shard_size=100)
    assert set(index["weight_map"]) == {"embed.weight", "bias"}
    assert index["metadata"]["total_size"] == 128 + 16
    with safe_open(tmp_path, framework="pt") as f:
        meta = f.metadata()
        assert meta["format"] == "pt"
        assert meta["lm_head.weight"] == "embed.weight"
        assert torch.equal(f.get_tensor("embed.weight"), emb)
        assert f.get_tensor("bias").dtype == torch.bfloat16
    loaded = safetensors.torch.load_file(tmp_path)
    assert torch.equal(loaded["embed.weight"], emb)


# --- inspect --------------------------------------------------------------------------------

CLI = Path(__file__).resolve().parents[3] / "target" / "debug" / "safetensors"


def cli_inspect(location) -> dict:
    import subprocess

    if not CLI.exists():
        pytest.skip("the CLI is not built (cargo build -p safetensors-cli)")
    out = subprocess.run([str(CLI), "inspect", "--json", str(location)], capture_output=True, check=True)
    return json.loads(out.stdout)


def test_inspect_equals_the_cli_for_a_file_a_folder_and_an_index(tmp_path):
    import safetensors

    index = write_folder(tmp_path)
    single = tmp_path / SHARD1
    for location in [str(single), str(tmp_path), str(index)]:
        report = safetensors.inspect(location)
        assert report == cli_inspect(location), location
    report = safetensors.inspect(tmp_path)
    assert report["sharded"] is True
    assert report["index"] == {"metadata": {"total_size": 72, "note": "hi"}, "weight_map_len": 3}
    assert [t["name"] for t in report["tensors"]] == ["c", "b", "a"]
    a = report["tensors"][2]
    assert a == {
        "name": "a",
        "file": SHARD2,
        "dtype": "F16",
        "shape": [3, 4],
        "parameters": 12,
        "bytes": 24,
        "data_offsets": [0, 24],
    }
    assert report["files"][0]["metadata"] == {"format": "np"}
    assert report["totals"]["parameters"] == 6 + 3 + 12
    assert report["totals"]["by_dtype"]["I64"] == {"tensors": 1, "parameters": 3, "bytes": 24}
    assert report["warnings"] == []


def test_inspect_reports_disagreements_and_refuses_missing_files(tmp_path):
    import safetensors

    write_folder(tmp_path)
    save_file({"d": np.zeros(2, dtype=np.float32)}, tmp_path / SHARD2)
    report = safetensors.inspect(tmp_path)
    assert report == cli_inspect(tmp_path)
    assert f"tensor `d` in {SHARD2} is not in the index's weight_map" in report["warnings"]
    with pytest.raises(FileNotFoundError):
        safetensors.inspect(tmp_path / "missing.safetensors")
    (tmp_path / SHARD2).unlink()
    with pytest.raises(FileNotFoundError, match=SHARD2):
        safetensors.inspect(tmp_path)


# --- transformers interoperability ------------------------------------------------------------
#
# Each check runs in a fresh interpreter: transformers' lazy imports abort the process when
# the other frameworks' native libraries (tensorflow, paddle...) are already loaded by earlier
# tests in this one.

TINY_GPT2 = """
import json, sys
from pathlib import Path
import torch, transformers
import safetensors.torch
from safetensors import safe_open

folder = Path(sys.argv[1])
torch.manual_seed(0)
config = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=64, n_positions=16)
model = transformers.GPT2LMHeadModel(config).eval()
ids = torch.tensor([[1, 2, 3, 4]])
"""

LOAD_SAVE_SHARDED = (
    TINY_GPT2
    + """
model.config.save_pretrained(folder)
index = safetensors.torch.save_sharded(model.state_dict(), folder, max_shard_size="20KB")
assert len(set(index["weight_map"].values())) > 2, index
assert (folder / "model.safetensors.index.json").exists()
loaded = transformers.GPT2LMHeadModel.from_pretrained(folder).eval()
with torch.no_grad():
    assert torch.equal(loaded(ids).logits, model(ids).logits)
for name, value in model.state_dict().items():
    assert torch.equal(loaded.state_dict()[name], value), name
print("ok")
"""
)

READ_SAVE_PRETRAINED = (
    TINY_GPT2
    + """
model.save_pretrained(folder, max_shard_size="20KB")
index = json.loads((folder / "model.safetensors.index.json").read_text())
assert len(set(index["weight_map"].values())) > 2, index
state = model.state_dict()
with safe_open(folder, framework="pt") as f:
    assert f.keys() == sorted(index["weight_map"])
    for name in f.keys():
        assert torch.equal(f.get_tensor(name), state[name]), name
    assert f.metadata()["format"] == "pt"
loaded = safetensors.torch.load_file(folder)
assert set(loaded) == set(index["weight_map"])
print("ok")
"""
)


def run_isolated(code: str, folder: Path) -> None:
    import importlib.util
    import os
    import subprocess
    import sys

    for module in ("torch", "transformers"):
        if importlib.util.find_spec(module) is None:
            require(module)  # fails under SAFETENSORS_REQUIRE_FRAMEWORKS, else skips
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    out = subprocess.run([sys.executable, "-c", code, str(folder)], capture_output=True, text=True, env=env)
    assert out.returncode == 0 and out.stdout.strip().endswith("ok"), out.stderr[-3000:]


def test_transformers_loads_a_folder_written_by_save_sharded(tmp_path):
    run_isolated(LOAD_SAVE_SHARDED, tmp_path)


def test_safe_open_reads_a_folder_written_by_save_pretrained(tmp_path):
    run_isolated(READ_SAVE_PRETRAINED, tmp_path)


def test_save_sharded_replaces_an_earlier_save_of_another_shape(tmp_path):
    import safetensors.numpy

    arrays = {f"t{i}": np.full(25, i, dtype=np.float32) for i in range(4)}  # 100 bytes each
    (tmp_path / "config.json").write_text("{}")
    safetensors.numpy.save_sharded(arrays, tmp_path, max_shard_size=100)
    safetensors.numpy.save_sharded(arrays, tmp_path, max_shard_size=200)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
    ]
    safetensors.numpy.save_sharded(arrays, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "model.safetensors"]
    safetensors.numpy.save_sharded(arrays, tmp_path, max_shard_size=300)
    assert "model.safetensors" not in {p.name for p in tmp_path.iterdir()}
    loaded = load_file(tmp_path)
    for name, value in arrays.items():
        np.testing.assert_array_equal(loaded[name], value)
