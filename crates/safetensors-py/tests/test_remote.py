"""Files and sharded checkpoints at http:// URLs: ``safe_open(url)``, ``load_file(url)``,
``inspect(url)``.

Against a real nginx on 127.0.0.1 (skipped when nginx is not installed, unless
SAFETENSORS_REQUIRE_NGINX is set, as in CI), whose access log shows how many requests and
bytes each call made; and against a small scripted Python server for what nginx will not do
on demand (503 answers, dropped connections).
"""

from __future__ import annotations

import http.server
import json
import os
import socket
import threading
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest
from nginx_server import TOKEN, start

import safetensors
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file, save_file, save_sharded


def tensors() -> dict:
    rng = np.random.default_rng(7)
    return {
        "embed": rng.standard_normal((512, 96)).astype(np.float32),
        "layer.0.w": rng.standard_normal((96, 64)).astype(np.float16),
        "layer.0.b": np.arange(64, dtype=np.int64),
        "layer.1.w": rng.standard_normal((64, 200)).astype(np.float32),
        "norm": np.ones(96, dtype=np.float32),
        "big": rng.standard_normal((6, 1 << 20)).astype(np.float32),  # 24 MiB: several blocks
    }


@pytest.fixture(scope="module")
def served(tmp_path_factory) -> Iterator[tuple]:
    root = tmp_path_factory.mktemp("served")
    data = tensors()
    save_file(data, str(root / "model.safetensors"), metadata={"format": "np"})
    save_sharded(data, str(root / "sharded"), max_shard_size="100KB", metadata={"origin": "test"})
    server = start(root)
    if server is None:
        pytest.skip("nginx is not installed (apt-get install nginx)")
    with server:
        yield server, root, data


def header_len(path: Path) -> int:
    with open(path, "rb") as f:
        return int.from_bytes(f.read(8), "little")


def test_open_fetches_only_the_header(served):
    nginx, root, data = served
    mark = nginx.mark()
    with safe_open(nginx.url("model.safetensors"), "np") as f:
        assert sorted(f.keys()) == sorted(data)
        assert f.metadata() == {"format": "np"}
        assert f.get_slice("embed").get_shape() == [512, 96]
    log = nginx.since(mark)
    assert len(log) == 2, log
    assert [e.range for e in log] == ["bytes=0-7", f"bytes=8-{7 + header_len(root / 'model.safetensors')}"]
    assert all(e.status == 206 for e in log)
    assert sum(e.body_bytes for e in log) == 8 + header_len(root / "model.safetensors")


def test_get_tensor_fetches_exactly_its_bytes(served):
    nginx, _, data = served
    with safe_open(nginx.url("model.safetensors"), "np") as f:
        for name in ["embed", "layer.0.w", "layer.0.b", "norm"]:
            mark = nginx.mark()
            got = f.get_tensor(name)
            log = nginx.since(mark)
            np.testing.assert_array_equal(got, data[name])
            assert got.dtype == data[name].dtype
            assert len(log) == 1, (name, log)
            assert log[0].body_bytes == data[name].nbytes


def test_a_row_slice_is_one_range(served):
    nginx, _, data = served
    with safe_open(nginx.url("model.safetensors"), "np") as f:
        mark = nginx.mark()
        rows = f.get_slice("embed")[100:140]
        log = nginx.since(mark)
    np.testing.assert_array_equal(rows, data["embed"][100:140])
    assert len(log) == 1, log
    assert log[0].body_bytes == data["embed"][100:140].nbytes


def test_other_slices_coalesce_into_few_ranges(served):
    nginx, _, data = served
    with safe_open(nginx.url("model.safetensors"), "np") as f:
        for index in [np.s_[:, 3:7], np.s_[10:300:7, ::5], np.s_[5]]:
            mark = nginx.mark()
            got = f.get_slice("layer.1.w")[index] if index != np.s_[5] else f.get_slice("embed")[5]
            log = nginx.since(mark)
            want = data["layer.1.w"][index] if index != np.s_[5] else data["embed"][5]
            np.testing.assert_array_equal(got, want)
            assert len(log) == 1, (index, log)
        # Columns of a 24 MiB tensor: one covering span per row group, not one per element.
        mark = nginx.mark()
        got = f.get_slice("big")[:, 1000:1010]
        log = nginx.since(mark)
        np.testing.assert_array_equal(got, data["big"][:, 1000:1010])
        assert len(log) <= 6, log
        assert sum(e.body_bytes for e in log) < 6 * (1 << 20)


def test_load_file_fetches_in_parallel_on_kept_alive_connections(served):
    nginx, root, data = served
    mark = nginx.mark()
    got = load_file(nginx.url("model.safetensors"))
    log = nginx.since(mark)
    local = load_file(root / "model.safetensors")
    assert list(got) == list(local)  # file order, like a local file
    for name in data:
        np.testing.assert_array_equal(got[name], data[name])
    size = (root / "model.safetensors").stat().st_size
    # The header (2 requests), then every tensor byte exactly once.
    assert sum(e.body_bytes for e in log) == size
    # The 24 MiB tensor is cut into 16 MiB blocks fetched at once: several connections,
    # each kept alive for more than one request.
    assert len({e.connection for e in log}) > 1, log
    assert max(e.connection_requests for e in log) > 1, log
    assert all(e.status == 206 for e in log)


def test_get_tensors_equals_the_local_file(served):
    nginx, root, _ = served
    with safe_open(nginx.url("model.safetensors"), "np") as remote:
        got = remote.get_tensors()
    with safe_open(root / "model.safetensors", "np") as local:
        want = local.get_tensors()
    assert list(got) == list(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name])


def test_a_sharded_checkpoint_by_its_index_url(served):
    nginx, root, data = served
    index_url = nginx.url("sharded/model.safetensors.index.json")
    index = json.loads((root / "sharded" / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) >= 3
    mark = nginx.mark()
    with safe_open(index_url, "np") as f:
        log = nginx.since(mark)
        # Opening reads the index only; shards are opened when first read.
        assert [(e.method, e.uri, e.range) for e in log] == [("GET", "/sharded/model.safetensors.index.json", "-")]
        assert sorted(f.keys()) == sorted(data)
        mark = nginx.mark()
        np.testing.assert_array_equal(f.get_tensor("norm"), data["norm"])
        log = nginx.since(mark)
        shard = index["weight_map"]["norm"]
        assert [e.uri for e in log] == [f"/sharded/{shard}"] * 3  # length, header, tensor
        assert log[2].body_bytes == data["norm"].nbytes
        meta = f.metadata()
    with safe_open(root / "sharded", "np") as local:
        assert meta == local.metadata()
    mark = nginx.mark()
    got = load_file(index_url)
    log = nginx.since(mark)
    want = load_file(root / "sharded")
    assert list(got) == list(want)
    for name in data:
        np.testing.assert_array_equal(got[name], data[name])
    # Index once, two header requests per shard, every data byte once.
    per_file = {}
    for e in log:
        per_file.setdefault(e.uri, []).append(e)
    for shard in shards:
        entries = per_file[f"/sharded/{shard}"]
        path = root / "sharded" / shard
        assert sum(e.body_bytes for e in entries) == path.stat().st_size, shard
        assert sum(1 for e in entries if e.range.startswith("bytes=0-7")) == 1


def test_inspect_a_url_reads_headers_only(served):
    nginx, root, _ = served
    for local, path in [
        (root / "model.safetensors", "model.safetensors"),
        (root / "sharded", "sharded/model.safetensors.index.json"),
    ]:
        mark = nginx.mark()
        report = safetensors.inspect(nginx.url(path))
        log = nginx.since(mark)
        want = safetensors.inspect(local)
        files = len(want["files"])
        assert len(log) == 2 * files + (1 if want["sharded"] else 0), log
        header_bytes = sum(8 + f["header_len"] for f in want["files"])
        index_bytes = (root / path).stat().st_size if want["sharded"] else 0
        assert sum(e.body_bytes for e in log) == header_bytes + index_bytes
        for r in (report, want):
            r["source"] = None
            for item in r["tensors"] + r["files"]:
                item["file"] = None
        assert report == want


def test_headers_are_sent_with_every_request(served):
    nginx, root, data = served
    url = nginx.url("private/sharded/model.safetensors.index.json")
    with pytest.raises(PermissionError, match=r"private/sharded/model.safetensors.index.json: HTTP 401"):
        safe_open(url, "np")
    mark = nginx.mark()
    auth = {"Authorization": TOKEN}
    got = load_file(url, headers=auth)
    log = nginx.since(mark)
    for name in data:
        np.testing.assert_array_equal(got[name], data[name])
    assert log and all(e.status in (200, 206) for e in log), log
    assert safetensors.inspect(nginx.url("private/model.safetensors"), headers=auth)["totals"]["tensors"] == len(data)
    with safe_open(nginx.url("private/model.safetensors"), "np", headers=auth) as f:
        np.testing.assert_array_equal(f.get_slice("embed")[3:4], data["embed"][3:4])
    with pytest.raises(TypeError, match="headers must"):
        safe_open(url, "np", headers=["Authorization"])
    with pytest.raises(SafetensorError, match="line break"):
        safe_open(url, "np", headers={"X-Bad": "a\r\nInjected: yes"})


def test_missing_urls_and_bad_files_name_the_url(served):
    nginx, root, _ = served
    url = nginx.url("absent.safetensors")
    with pytest.raises(FileNotFoundError, match=r"absent\.safetensors: HTTP 404"):
        safe_open(url, "np")
    mark = nginx.mark()
    with pytest.raises(FileNotFoundError):
        safetensors.inspect(url)
    assert len(nginx.since(mark)) == 1  # a 4xx answer is never tried again
    (root / "not_safetensors.bin").write_bytes(b"\xff" * 64)
    with pytest.raises(SafetensorError, match=r"not_safetensors\.bin"):
        safe_open(nginx.url("not_safetensors.bin"), "np")


def test_a_path_like_is_never_a_url(served):
    _, _, _ = served
    with pytest.raises(FileNotFoundError):
        safe_open(Path("http://127.0.0.1:1/x.safetensors"), "np")


def test_verify_over_http(served):
    """Digests recorded in a served checkpoint are checked on load; a flipped byte on the
    server is caught, naming the tensor and shard."""
    nginx, root, data = served
    folder = root / "checked"
    save_sharded(data, str(folder), max_shard_size="100KB", checksum="sha256")
    url = nginx.url("checked/model.safetensors.index.json")
    out = load_file(url, verify=True)
    for name, arr in data.items():
        np.testing.assert_array_equal(out[name], arr)
    shard = sorted(folder.glob("model-*.safetensors"))[-1]
    damaged = bytearray(shard.read_bytes())
    damaged[-1] ^= 1
    shard.write_bytes(bytes(damaged))
    with pytest.raises(SafetensorError, match=rf"checksum mismatch.*\(shard {shard.name}\)"):
        load_file(url, verify=True)


def test_torch_load_file_from_a_url(served):
    try:
        import torch

        from safetensors.torch import load_file as torch_load_file
    except ImportError:
        if os.environ.get("SAFETENSORS_REQUIRE_FRAMEWORKS"):
            raise
        pytest.skip("torch is not installed")
    nginx, root, _ = served
    got = torch_load_file(nginx.url("sharded/model.safetensors.index.json"))
    want = torch_load_file(root / "sharded")
    assert list(got) == list(want)
    for name in want:
        assert torch.equal(got[name], want[name])


def test_torch_load_into_from_a_url_fetches_each_byte_once(served):
    """``load_into`` (and ``load_model``) over a URL: the parallel reader's Range requests go
    straight into the existing tensors' memory."""
    try:
        import torch

        from safetensors.torch import load_into
    except ImportError:
        if os.environ.get("SAFETENSORS_REQUIRE_FRAMEWORKS"):
            raise
        pytest.skip("torch is not installed")
    nginx, root, data = served
    targets = {name: torch.zeros(value.shape, dtype=getattr(torch, str(value.dtype))) for name, value in data.items()}
    addresses = {name: t.data_ptr() for name, t in targets.items()}
    mark = nginx.mark()
    missing, unexpected = load_into(targets, nginx.url("sharded/model.safetensors.index.json"))
    log = nginx.since(mark)
    assert (missing, unexpected) == ([], [])
    for name, value in data.items():
        assert targets[name].data_ptr() == addresses[name]
        np.testing.assert_array_equal(targets[name].numpy(), value)
    data_bytes = sum(v.nbytes for v in data.values())
    headers = sum(8 + header_len(p) for p in (root / "sharded").glob("*.safetensors"))
    index = (root / "sharded" / "model.safetensors.index.json").stat().st_size
    assert sum(e.body_bytes for e in log) == data_bytes + headers + index


# --- A scripted server: failures nginx will not produce on demand -------------------------


class Scripted:
    """Serves one file with Range support; the first answers follow ``script``: "503" answers
    503, "drop" sends half the body then closes the connection, "404" answers 404. Every
    request is logged as (range, action)."""

    def __init__(self, payload: bytes, script: List[str]) -> None:
        self.payload = payload
        self.script = list(script)
        self.requests: List[tuple] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                action = owner.script.pop(0) if owner.script else "ok"
                rng = self.headers.get("Range", "")
                owner.requests.append((rng, action, self.headers.get("X-Token")))
                if action in ("503", "404"):
                    self.send_response(int(action))
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                start, end = 0, len(owner.payload) - 1
                if rng.startswith("bytes="):
                    a, b = rng[6:].split("-")
                    start, end = int(a), min(int(b), len(owner.payload) - 1)
                body = owner.payload[start : end + 1]
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(owner.payload)}")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if action == "drop":
                    self.wfile.write(body[: len(body) // 2])
                    self.wfile.flush()
                    self.connection.shutdown(socket.SHUT_RDWR)
                    self.close_connection = True
                    return
                self.wfile.write(body)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/model.safetensors"

    def __enter__(self) -> "Scripted":
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def payload() -> bytes:
    data = {"w": np.arange(4096, dtype=np.float32).reshape(64, 64)}
    return safetensors.numpy.save(data)


def test_a_503_is_tried_again(payload):
    with Scripted(payload, ["503", "ok", "503", "503"]) as server:
        with safe_open(server.url(), "np", headers={"X-Token": "t"}) as f:
            np.testing.assert_array_equal(f.get_tensor("w"), np.arange(4096, dtype=np.float32).reshape(64, 64))
        actions = [a for _, a, _ in server.requests]
        assert actions == ["503", "ok", "503", "503", "ok", "ok"]
        # The retried request is the same request, headers included.
        assert server.requests[0][0] == server.requests[1][0] == "bytes=0-7"
        assert all(token == "t" for _, _, token in server.requests)


def test_a_dropped_connection_is_tried_again(payload):
    with Scripted(payload, ["ok", "ok", "drop"]) as server:
        with safe_open(server.url(), "np") as f:
            got = f.get_tensor("w")
        np.testing.assert_array_equal(got, np.arange(4096, dtype=np.float32).reshape(64, 64))
        assert [a for _, a, _ in server.requests] == ["ok", "ok", "drop", "ok"]
        assert server.requests[2][0] == server.requests[3][0]


def test_retries_are_bounded_and_4xx_never_retried(payload):
    with Scripted(payload, ["503"] * 20) as server:
        with pytest.raises(OSError, match=r"HTTP 503 .*after 3 retries"):
            safe_open(server.url(), "np")
        assert len(server.requests) == 4
    with Scripted(payload, ["404"] * 5) as server:
        with pytest.raises(FileNotFoundError, match="HTTP 404"):
            safe_open(server.url(), "np")
        assert len(server.requests) == 1
