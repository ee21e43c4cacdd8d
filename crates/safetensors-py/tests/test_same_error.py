"""One header reader: every entry point refuses the same bad file with the same message.

Paths (mmap and pread), open file objects, in-memory bytes, ``deserialize`` and the
command-line tool all read the header through the core's one reader, so the reason a file
is refused does not depend on how it was handed over (a 4-byte file once got a different
error from ``_safe_open_handle`` than from ``safe_open``).
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO_ROOT

import safetensors
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load, load_file, save


def _header(text: bytes, length: int | None = None) -> bytes:
    n = len(text) if length is None else length
    return n.to_bytes(8, "little") + text


# Each bad file and a fragment of the one message every entry point must give.
BAD_FILES = {
    "empty": (b"", "file too small: 0 bytes"),
    "four_bytes": (b"\x10\0\0\0", "file too small: 4 bytes"),
    "header_past_eof": (_header(b"{}", length=64), "header length 64 goes past the end of the file"),
    "header_too_large": (_header(b"{}", length=2**40), "header too large"),
    "not_json": (_header(b"{nope"), "header is not a valid JSON object"),
    "not_an_object": (_header(b"[1, 2]"), "does not start with '{'"),
    "trailing_bytes": (_header(b"{}") + b"xyz", "3 trailing bytes"),
    "offsets_past_end": (
        _header(b'{"t":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}') + b"ab",
        "go past the end of the data section",
    ),
}


def _python_errors(path: Path) -> dict[str, str]:
    """The message each Python entry point raises for the file at `path`."""
    data = path.read_bytes()
    calls = {
        "safe_open mmap": lambda: safe_open(path, "np"),
        "safe_open pread": lambda: safe_open(path, "np", backend="pread"),
        "load_file": lambda: load_file(path),
        "_safe_open_handle file": lambda: _with_file(path),
        "_safe_open_handle BytesIO": lambda: safetensors._safe_open_handle(io.BytesIO(data), "np"),
        "_safe_open_bytes": lambda: safetensors._safe_open_bytes(data, "np"),
        "load(bytes)": lambda: load(data),
        "deserialize": lambda: safetensors.deserialize(data),
    }
    errors = {}
    for name, call in calls.items():
        with pytest.raises(SafetensorError) as info:
            call()
        errors[name] = str(info.value)
    return errors


def _with_file(path: Path):
    with open(path, "rb") as fh:
        return safetensors._safe_open_handle(fh, "np")


def _cli() -> Path | None:
    """The `safetensors` binary built by cargo (the newest of debug and release)."""
    named = os.environ.get("SAFETENSORS_CLI")
    if named:
        return Path(named)
    built = [REPO_ROOT / "target" / kind / "safetensors" for kind in ("debug", "release")]
    built = [p for p in built if p.is_file()]
    return max(built, key=lambda p: p.stat().st_mtime) if built else None


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_every_python_entry_point_gives_the_same_error(tmp_path, name):
    data, fragment = BAD_FILES[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    errors = _python_errors(path)
    assert len(set(errors.values())) == 1, errors
    message = next(iter(errors.values()))
    assert fragment in message, message


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_the_cli_gives_the_same_error(tmp_path, name):
    cli = _cli()
    if cli is None:
        if os.environ.get("SAFETENSORS_REQUIRE_FRAMEWORKS"):
            pytest.fail("the safetensors CLI is not built (cargo build -p safetensors-cli)")
        pytest.skip("the safetensors CLI is not built (cargo build -p safetensors-cli)")
    data, _ = BAD_FILES[name]
    path = tmp_path / f"{name}.safetensors"
    path.write_bytes(data)
    message = next(iter(_python_errors(path).values()))
    for command in ("validate", "inspect"):
        run = subprocess.run([str(cli), command, str(path)], capture_output=True, text=True, timeout=60)
        assert run.returncode != 0, (command, run.stdout)
        assert message in run.stderr, (command, message, run.stderr)


class _Flaky(io.BytesIO):
    """A file object whose reads fail after the header, as a network file might."""

    def __init__(self, data: bytes, fail_after: int) -> None:
        super().__init__(data)
        self.fail_after = fail_after

    def read(self, size: int | None = -1) -> bytes:
        if self.tell() >= self.fail_after:
            raise ConnectionResetError("the server went away")
        return super().read(size)


def test_a_file_object_error_comes_out_unchanged(tmp_path):
    """The core reads file objects through a Source; their own exceptions pass through it."""
    data = save({"t": np.arange(4, dtype=np.float32)})
    header_end = 8 + int.from_bytes(data[:8], "little")
    with pytest.raises(ConnectionResetError, match="the server went away"):
        safetensors._safe_open_handle(_Flaky(data, fail_after=0), "np")
    f = safetensors._safe_open_handle(_Flaky(data, fail_after=header_end), "np")
    with pytest.raises(ConnectionResetError, match="the server went away"):
        f.get_tensor("t")
