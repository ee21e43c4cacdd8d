"""SPEC section 1, header reading, through the Python package: JSON whitespace before the
header object is accepted, a tensor-entry field beyond dtype, shape and data_offsets is
ignored (as the reference does, so files from newer writers load), and repeated names are
still refused. Checked with safe_open and the numpy/torch load_file and load."""

from __future__ import annotations

import json
import struct

import numpy as np
import pytest
from conftest import require

from safetensors import SafetensorError, safe_open
from safetensors.numpy import load as np_load
from safetensors.numpy import load_file as np_load_file

DATA = np.arange(6, dtype=np.float32).tobytes()  # 24 bytes: "w", F32 [2, 3]
ENTRY = '"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24]}'


def file_bytes(header: str, data: bytes = DATA) -> bytes:
    raw = header.encode()
    raw += b" " * (-(8 + len(raw)) % 8)
    return struct.pack("<Q", len(raw)) + raw + data


def write(tmp_path, header: str, data: bytes = DATA):
    p = tmp_path / "f.safetensors"
    p.write_bytes(file_bytes(header, data))
    return p


def check_loads(path):
    """Every reader sees the one tensor "w" with the right values."""
    expected = np.arange(6, dtype=np.float32).reshape(2, 3)
    for backend in ("mmap", "pread"):
        with safe_open(path, "numpy", backend=backend) as f:
            assert list(f.keys()) == ["w"]
            np.testing.assert_array_equal(f.get_tensor("w"), expected)
            assert f.get_slice("w").get_shape() == [2, 3]
    np.testing.assert_array_equal(np_load_file(path)["w"], expected)
    np.testing.assert_array_equal(np_load(path.read_bytes())["w"], expected)


@pytest.mark.parametrize("lead", [" ", "\n", "\t", "\r\n", "  \n\t "])
def test_leading_json_whitespace_is_accepted(tmp_path, lead):
    check_loads(write(tmp_path, lead + "{" + ENTRY + "}"))


def test_leading_whitespace_with_metadata(tmp_path):
    p = write(tmp_path, '\n {"__metadata__":{"format":"np"},' + ENTRY + "}")
    with safe_open(p, "np") as f:
        assert f.metadata() == {"format": "np"}
    check_loads(p)


@pytest.mark.parametrize("lead", ["\x0c", "\x0b", "\u00a0", "x"])
def test_other_leading_characters_are_refused(tmp_path, lead):
    p = write(tmp_path, lead + "{" + ENTRY + "}")
    with pytest.raises(SafetensorError):
        safe_open(p, "np")
    with pytest.raises(SafetensorError):
        np_load_file(p)


@pytest.mark.parametrize(
    "extra",
    [
        '"x":1',
        '"note":"written by a newer tool"',
        '"nested":{"a":[1,{"b":null}],"c":true}',
        '"x":1,"x":2',
        '"dtypes":"I64","offsets":[9,9]',
    ],
)
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_extra_tensor_fields_are_ignored(tmp_path, extra, where):
    fields = ['"dtype":"F32"', '"shape":[2,3]', '"data_offsets":[0,24]']
    fields.insert({"first": 0, "middle": 1, "last": 3}[where], extra)
    check_loads(write(tmp_path, '{"w":{' + ",".join(fields) + "}}"))


def test_extra_fields_do_not_excuse_missing_or_repeated_ones(tmp_path):
    for header, needle in [
        ('{"w":{"dtype":"F32","shape":[2,3],"offsets":[0,24]}}', "data_offsets"),
        ('{"w":{"dtype":"F32","dtype":"F32","shape":[2,3],"data_offsets":[0,24],"x":0}}', "twice"),
        ('{"w":{"dtype":"F32","shape":[2,3],"data_offsets":[0,24],"x":}}', None),
    ]:
        p = write(tmp_path, header)
        with pytest.raises(SafetensorError, match=needle):
            safe_open(p, "np")


def test_repeated_names_are_still_refused(tmp_path):
    twice = '{"w":{"dtype":"U8","shape":[3],"data_offsets":[0,3]},"w":{"dtype":"U8","shape":[3],"data_offsets":[3,6]}}'
    for header, data in [
        ("  " + twice, bytes(6)),
        ('{"__metadata__":{"k":"1","k":"2"}}', b""),
        ('{"__metadata__":{},"__metadata__":{}}', b""),
    ]:
        p = write(tmp_path, header, data)
        with pytest.raises(SafetensorError):
            safe_open(p, "np")
        with pytest.raises(SafetensorError):
            np_load(p.read_bytes())


def test_many_metadata_entries(tmp_path):
    # Quadratic duplicate checks made this take minutes; it must be quick and exact.
    n = 50_000
    meta = {f"key{i}": str(i) for i in range(n)}
    p = write(tmp_path, json.dumps({"__metadata__": meta}, separators=(",", ":")), b"")
    with safe_open(p, "np") as f:
        assert f.keys() == []
        assert f.metadata() == meta


def test_torch_load_file_reads_them_too(tmp_path):
    torch = require("torch")
    from safetensors.torch import load as torch_load
    from safetensors.torch import load_file as torch_load_file

    header = '\r\n\t{"w":{"shape":[2,3],"future":{"quantized":false},"dtype":"F32","data_offsets":[0,24]}}'
    p = write(tmp_path, header)
    expected = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    assert torch.equal(torch_load_file(p)["w"], expected)
    assert torch.equal(torch_load(p.read_bytes())["w"], expected)
    with safe_open(p, "pt") as f:
        assert torch.equal(f.get_tensor("w"), expected)


def _hostile_headers():
    long = "n" * 5_000_000
    entry = '{"dtype":"%s","shape":[%s],"data_offsets":[0,4]}'
    yield "2 M dimensions", '{"w":' + entry % ("F32", ",".join(["2"] * 2_000_000)) + "}", "2000000 dimensions"
    yield "long name", '{"' + long + '":{"dtype":"F32"}}', "5000000 bytes"
    yield "long dtype", '{"w":' + entry % (long, "1") + "}", "5000000 bytes"
    yield "long metadata key", '{"__metadata__":{"' + long + '":1}}', "5000000 bytes"


@pytest.mark.parametrize("what", ["2 M dimensions", "long name", "long dtype", "long metadata key"])
def test_errors_stay_small_whatever_the_input(tmp_path, what):
    # A hostile header of millions of dimensions or a multi-megabyte name: the error says what
    # is wrong in a few hundred bytes, not by quoting the whole input back.
    header, says = next((h, s) for w, h, s in _hostile_headers() if w == what)
    path = write(tmp_path, header, DATA[:4])
    for attempt in (lambda: safe_open(path, "numpy"), lambda: np_load(path.read_bytes())):
        with pytest.raises(SafetensorError) as info:
            attempt()
        message = str(info.value)
        assert len(message) < 1024 and says in message, message[:300]
