"""``backend="auto"``: the core reads with pread on network, cluster and FUSE filesystems
and maps anywhere else; the handle says which (``backend``, ``filesystem``, ``repr``).

The choice for each filesystem type goes through the core's table (``_filesystem_backend``);
a real FUSE mount (``fuse_passthrough.py``: mfusepy + libfuse 3, as root or with
fusermount3) checks the whole way from ``statfs`` to the reads, and skips with its reason
where this machine cannot mount one.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from fuse_passthrough import FuseUnavailable, mounted

from safetensors import SafetensorError, safe_open
from safetensors._safetensors_rust import _filesystem_backend
from safetensors.numpy import load_file, save_file

# statfs(2) f_type -> (name, what auto picks): every kind the issue names, and local ones.
TYPES = {
    0x6969: ("nfs", "pread"),
    0x517B: ("smb", "pread"),
    0xFE534D42: ("smb2", "pread"),
    0xFF534D42: ("cifs", "pread"),
    0x65735546: ("fuse", "pread"),  # also sshfs, s3fs, GlusterFS and CephFS clients, virtiofs
    0x01021997: ("9p", "pread"),
    0x00C36400: ("ceph", "pread"),
    0x0BD00BD0: ("lustre", "pread"),
    0x47504653: ("gpfs", "pread"),
    0x5346414F: ("afs", "pread"),
    0x20030528: ("orangefs", "pread"),
    0x19830326: ("beegfs", "pread"),
    0x0000EF53: ("ext4", "mmap"),
    0x58465342: ("xfs", "mmap"),
    0x9123683E: ("btrfs", "mmap"),
    0x01021994: ("tmpfs", "mmap"),
    0x794C7630: ("overlay", "mmap"),
    0x2FC12FC1: ("0x2fc12fc1", "mmap"),  # not in the table: mapped, as before
}
REMOTE = {name for name, backend in TYPES.values() if backend == "pread"}

TENSORS = {"w": np.arange(24, dtype=np.float32).reshape(4, 6), "b": np.ones(3, dtype=np.int64)}


@pytest.mark.parametrize("f_type", list(TYPES))
def test_each_filesystem_type_gets_its_backend(f_type):
    assert _filesystem_backend(f_type) == TYPES[f_type]


@pytest.fixture
def model(tmp_path):
    p = tmp_path / "model.safetensors"
    save_file(TENSORS, p)
    return p


def expected_here(handle) -> str:
    """What auto must pick for a handle on this machine's temporary folder."""
    return "pread" if handle.filesystem in REMOTE else "mmap"


def test_auto_reports_what_it_picked_for_a_local_file(model):
    with safe_open(model, "np", backend="auto") as f:
        assert f.filesystem is not None  # Linux names it
        assert f.backend == expected_here(f)
        assert f"backend=auto: {f.backend} ({f.filesystem})" in repr(f)
        np.testing.assert_array_equal(f.get_tensor("w"), TENSORS["w"])
        np.testing.assert_array_equal(f.get_slice("w")[1:3, ::2], TENSORS["w"][1:3, ::2])
    for backend in ("mmap", "pread"):
        with safe_open(model, "np", backend=backend) as f:
            assert (f.backend, f.filesystem) == (backend, None)
            assert repr(f) == f"<safe_open with 2 tensors, backend={backend}>"


def test_every_loader_and_a_sharded_folder_take_auto(model, tmp_path):
    out = load_file(model, backend="auto")
    for k, v in TENSORS.items():
        np.testing.assert_array_equal(out[k], v)
    folder = tmp_path / "sharded"
    folder.mkdir()
    save_file({"w": TENSORS["w"]}, folder / "model-00001-of-00002.safetensors")
    save_file({"b": TENSORS["b"]}, folder / "model-00002-of-00002.safetensors")
    shards = {"w": "model-00001-of-00002.safetensors", "b": "model-00002-of-00002.safetensors"}
    index = {"metadata": {}, "weight_map": shards}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    for location in (folder, folder / "model.safetensors.index.json"):
        with safe_open(location, "np", backend="auto") as f:
            assert f.backend == expected_here(f)
            np.testing.assert_array_equal(f.get_tensor("b"), TENSORS["b"])
        out = load_file(location, backend="auto")
        np.testing.assert_array_equal(out["w"], TENSORS["w"])


def test_the_environment_overrides_auto_but_never_an_explicit_backend(model, monkeypatch):
    monkeypatch.setenv("SAFETENSORS_AUTO_BACKEND", "pread")
    with safe_open(model, "np", backend="auto") as f:
        assert f.backend == "pread"
        assert "backend=auto: pread (SAFETENSORS_AUTO_BACKEND)" in repr(f)
        np.testing.assert_array_equal(f.get_tensor("w"), TENSORS["w"])
    with safe_open(model, "np", backend="mmap") as f:
        assert f.backend == "mmap"
    monkeypatch.setenv("SAFETENSORS_AUTO_BACKEND", "uring")
    with pytest.raises(SafetensorError, match='SAFETENSORS_AUTO_BACKEND="uring" is not a backend'):
        safe_open(model, "np", backend="auto")


def test_an_unknown_backend_names_auto_among_the_choices(model):
    with pytest.raises(SafetensorError, match='backend "Auto" is invalid.*"auto"') as info:
        safe_open(model, "np", backend="Auto")
    assert isinstance(info.value, ValueError)


def test_a_real_fuse_mount_is_read_with_pread(tmp_path):
    source, mountpoint = tmp_path / "source", tmp_path / "mnt"
    source.mkdir()
    mountpoint.mkdir()
    save_file(TENSORS, source / "model.safetensors")
    try:
        context = mounted(source, mountpoint)
        mnt = context.__enter__()
    except FuseUnavailable as e:
        pytest.skip(f"no FUSE mount on this machine: {e}")
    try:
        on_fuse = mnt / "model.safetensors"
        with safe_open(on_fuse, "np", backend="auto") as f:
            assert (f.backend, f.filesystem) == ("pread", "fuse")
            assert "backend=auto: pread (fuse)" in repr(f)
            np.testing.assert_array_equal(f.get_tensor("w"), TENSORS["w"])
            np.testing.assert_array_equal(f.get_slice("w")[::-1, 2], TENSORS["w"][::-1, 2])
        out = load_file(on_fuse, backend="auto")
        for k, v in TENSORS.items():
            np.testing.assert_array_equal(out[k], v)
        # The same file on the local disk is mapped.
        with safe_open(source / "model.safetensors", "np", backend="auto") as f:
            assert f.backend == expected_here(f) and f.filesystem != "fuse"
    finally:
        context.__exit__(None, None, None)
