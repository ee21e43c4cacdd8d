"""The conformance vectors (tests/data/vectors, written by the reference implementation).

Every valid file loads with the manifest's dtypes, shapes, metadata and per-tensor sha256,
through numpy and torch and through every source (file via mmap and pread, bytes, file
object). Files our writers produce from the same tensors are byte-identical to the vectors
(for several metadata keys: the same header JSON and the same data). Every invalid file is
rejected with SafetensorError.
"""

from __future__ import annotations

import hashlib
import io

import numpy as np
import pytest
from conftest import header_of, invalid_vectors, valid_vectors

import safetensors
from safetensors import SafetensorError, deserialize, safe_open, serialize, serialize_file

VALID = valid_vectors()
INVALID = invalid_vectors()


def _unpadded(path) -> bool:
    n = int.from_bytes(path.read_bytes()[:8], "little")
    return (8 + n) % 8 != 0


# Vectors that are not writer output (unusual but valid layouts, made by hand): a header
# not padded to 8 bytes, or tensors listed out of data order. Only their values are compared.
HAND_MADE = {"unsorted_header"} | {name for name, path, _ in VALID if _unpadded(path)}

NUMPY_CANNOT_HOLD = {"F4", "F6_E2M3", "F6_E3M2"}
TORCH_CANNOT_HOLD = {"F6_E2M3", "F6_E3M2"}


def sha(b: bytes) -> str:
    return hashlib.sha256(b).hexdigest()


def ids(items):
    return [i[0] for i in items]


def test_manifest_covers_every_file():
    assert len(VALID) >= 30 and len(INVALID) >= 20
    for _, path, _ in VALID + INVALID:
        assert path.exists(), path


@pytest.mark.parametrize("name, path, entry", VALID, ids=ids(VALID))
def test_valid_file_sha_and_header(name, path, entry):
    data = path.read_bytes()
    assert sha(data) == entry["file_sha256"]
    with safe_open(path, "np") as f:
        assert f.metadata() == entry["metadata"]
        assert f.keys() == sorted(entry["tensors"])
        by_offset = sorted(entry["tensors"], key=lambda k: entry["tensors"][k]["data_offsets"][0])
        assert f.offset_keys() == by_offset
        for k, t in entry["tensors"].items():
            s = f.get_slice(k)
            assert s.get_dtype() == t["dtype"] and s.get_shape() == t["shape"]


def numpy_bytes(arr: np.ndarray) -> bytes:
    return arr.tobytes()


@pytest.mark.parametrize("backend", ["mmap", "pread", "bytes", "handle"])
@pytest.mark.parametrize("name, path, entry", VALID, ids=ids(VALID))
def test_valid_file_loads_numpy(name, path, entry, backend):
    if backend == "bytes":
        f = safetensors._safe_open_bytes(path.read_bytes(), "np")
    elif backend == "handle":
        f = safetensors._safe_open_handle(io.BytesIO(path.read_bytes()), "np")
    else:
        f = safe_open(path, "np", backend=backend)
    for k, t in entry["tensors"].items():
        if t["dtype"] in NUMPY_CANNOT_HOLD:
            with pytest.raises(SafetensorError, match="cannot be loaded as a numpy"):
                f.get_tensor(k)
            continue
        arr = f.get_tensor(k)
        assert list(arr.shape) == t["shape"]
        assert sha(numpy_bytes(arr)) == t["sha256"], k


@pytest.mark.parametrize("name, path, entry", VALID, ids=ids(VALID))
def test_deserialize_matches_manifest(name, path, entry):
    out = dict(deserialize(path.read_bytes()))
    assert set(out) == set(entry["tensors"])
    for k, t in entry["tensors"].items():
        assert out[k]["dtype"] == t["dtype"] and out[k]["shape"] == t["shape"]
        assert sha(bytes(out[k]["data"])) == t["sha256"]


def assert_same_file(ours: bytes, theirs: bytes, entry) -> None:
    meta = entry["metadata"]
    if meta is not None and len(meta) > 1:
        # The reference orders several metadata keys by hash: compare JSON and data.
        h1, d1 = header_of(ours)
        h2, d2 = header_of(theirs)
        assert h1 == h2 and d1 == d2
    else:
        assert ours == theirs


WRITTEN = [v for v in VALID if v[0] not in HAND_MADE]


@pytest.mark.parametrize("name, path, entry", WRITTEN, ids=ids(WRITTEN))
def test_core_writer_is_byte_identical(name, path, entry, tmp_path):
    tensors = dict(deserialize(path.read_bytes()))
    assert_same_file(serialize(tensors, metadata=entry["metadata"]), path.read_bytes(), entry)
    out = tmp_path / "out.safetensors"
    serialize_file(tensors, out, metadata=entry["metadata"])
    assert_same_file(out.read_bytes(), path.read_bytes(), entry)


# numpy has no type for packed sub-byte floats: those files are covered by the core writer test.
NUMPY_WRITTEN = [v for v in WRITTEN if not any(t["dtype"] in NUMPY_CANNOT_HOLD for t in v[2]["tensors"].values())]


@pytest.mark.parametrize("name, path, entry", NUMPY_WRITTEN, ids=ids(NUMPY_WRITTEN))
def test_numpy_save_file_is_byte_identical(name, path, entry, tmp_path):
    from safetensors.numpy import save_file

    with safe_open(path, "np") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    out = tmp_path / "out.safetensors"
    save_file(tensors, out, metadata=entry["metadata"])
    assert_same_file(out.read_bytes(), path.read_bytes(), entry)


@pytest.mark.parametrize(
    "name, path, entry", [v for v in VALID if v[0] in HAND_MADE], ids=[v[0] for v in VALID if v[0] in HAND_MADE]
)
def test_hand_made_files_round_trip_values(name, path, entry, tmp_path):
    tensors = dict(deserialize(path.read_bytes()))
    again = dict(deserialize(serialize(tensors, metadata=entry["metadata"])))
    for k, t in entry["tensors"].items():
        assert sha(bytes(again[k]["data"])) == t["sha256"]


@pytest.mark.parametrize("name, path, entry", INVALID, ids=ids(INVALID))
def test_invalid_file_is_rejected_everywhere(name, path, entry):
    data = path.read_bytes()
    for backend in ("mmap", "pread"):
        with pytest.raises(SafetensorError) as e:
            safe_open(path, "np", backend=backend)
        assert str(e.value)
    with pytest.raises(SafetensorError):
        safetensors._safe_open_bytes(data, "np")
    with pytest.raises(SafetensorError):
        safetensors._safe_open_handle(io.BytesIO(data), "np")
    with pytest.raises(SafetensorError):
        deserialize(data)
    from safetensors.numpy import load, load_file

    with pytest.raises(SafetensorError):
        load(data)
    with pytest.raises(SafetensorError):
        load_file(path)
