"""The conformance vectors through torch: every valid file loads with the manifest's
sha256s (F4 as float4_e2m1fn_x2), and torch's save_file writes the same bytes."""

from __future__ import annotations

import hashlib

import pytest
from conftest import require

torch = require("torch")

from test_vectors import HAND_MADE, TORCH_CANNOT_HOLD, VALID, assert_same_file, ids  # noqa: E402

from safetensors import SafetensorError, safe_open  # noqa: E402
from safetensors.torch import load_file, save_file  # noqa: E402


def torch_bytes(t: "torch.Tensor") -> bytes:
    return t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()


@pytest.mark.parametrize("backend", ["mmap", "pread"])
@pytest.mark.parametrize("name, path, entry", VALID, ids=ids(VALID))
def test_valid_file_loads_torch(name, path, entry, backend):
    with safe_open(path, "pt", backend=backend) as f:
        assert f.metadata() == entry["metadata"]
        for k, t in entry["tensors"].items():
            if t["dtype"] in TORCH_CANNOT_HOLD:
                with pytest.raises(SafetensorError, match="cannot be loaded as a torch"):
                    f.get_tensor(k)
                continue
            x = f.get_tensor(k)
            shape = list(x.shape)
            if t["dtype"] == "F4":
                assert x.dtype == torch.float4_e2m1fn_x2
                shape[-1] *= 2
            assert shape == t["shape"]
            assert hashlib.sha256(torch_bytes(x)).hexdigest() == t["sha256"], k


WRITTEN = [
    v
    for v in VALID
    if v[0] not in HAND_MADE and not any(t["dtype"] in TORCH_CANNOT_HOLD for t in v[2]["tensors"].values())
]


@pytest.mark.parametrize("name, path, entry", WRITTEN, ids=ids(WRITTEN))
def test_torch_save_file_is_byte_identical(name, path, entry, tmp_path):
    tensors = load_file(path)
    out = tmp_path / "out.safetensors"
    save_file(tensors, out, metadata=entry["metadata"])
    assert_same_file(out.read_bytes(), path.read_bytes(), entry)
