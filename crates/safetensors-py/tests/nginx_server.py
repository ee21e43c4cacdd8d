"""A real nginx on 127.0.0.1 serving a folder, for the HTTP tests and the sharded benchmark.

The instance runs with its own config in a temporary folder (the system service is not
used) and logs one tab-separated line per request, so a test can count the requests and
bytes each call made. ``start`` returns None when nginx is not installed, unless
SAFETENSORS_REQUIRE_NGINX is set (CI), where that is an error.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

# Requests under /private/ need this header (a test of ``headers=``).
TOKEN = "Bearer test-token-1234"


@dataclass
class Entry:
    """One access-log line."""

    method: str
    uri: str
    status: int
    range: str
    body_bytes: int
    connection: int
    connection_requests: int


def find_nginx() -> Optional[str]:
    found = shutil.which("nginx")
    if found:
        return found
    for candidate in ("/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"):
        if os.path.isfile(candidate):
            return candidate
    return None


class Nginx:
    """A running nginx serving ``root``; ``stop()`` ends it (also on ``with`` exit)."""

    def __init__(self, binary: str, root: Path) -> None:
        self.dir = tempfile.TemporaryDirectory(prefix="st-nginx-")
        d = self.dir.name
        last_error = ""
        # The port is picked free then released, so another process may grab it: retry.
        for _attempt in range(5):
            with socket.socket() as s:
                s.bind(("127.0.0.1", 0))
                self.port = s.getsockname()[1]
            config = f"""
daemon off; master_process off; worker_processes 1;
pid {d}/nginx.pid; error_log {d}/error.log info;
events {{ worker_connections 128; }}
http {{
  default_type application/octet-stream;
  log_format counted "$request_method\\t$uri\\t$status\\t$http_range\\t$body_bytes_sent"
                     "\\t$connection\\t$connection_requests";
  access_log {d}/access.log counted;
  client_body_temp_path {d}/client_body; proxy_temp_path {d}/proxy; fastcgi_temp_path {d}/fastcgi;
  uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
  keepalive_requests 10000;
  sendfile on; tcp_nopush on;
  server {{
    listen 127.0.0.1:{self.port};
    root {root};
    location / {{ }}
    location /private/ {{
      if ($http_authorization != "{TOKEN}") {{ return 401; }}
      alias {root}/;
    }}
  }}
}}
"""
            conf = Path(d) / "nginx.conf"
            conf.write_text(config)
            self.proc = subprocess.Popen(
                [binary, "-p", d, "-c", str(conf), "-e", f"{d}/error.log"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                    return
                except OSError:
                    time.sleep(0.05)
            self.proc.kill()
            self.proc.wait()
            last_error = Path(d, "error.log").read_text() if Path(d, "error.log").exists() else ""
        raise RuntimeError(f"nginx could not start: {last_error}")

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def log(self) -> List[Entry]:
        path = Path(self.dir.name) / "access.log"
        lines = path.read_text().splitlines() if path.exists() else []
        entries = []
        for line in lines:
            f = line.split("\t")
            entries.append(Entry(f[0], f[1], int(f[2]), f[3], int(f[4]), int(f[5]), int(f[6])))
        return entries

    def mark(self) -> int:
        """The number of requests logged so far (settled: see ``since``)."""
        return len(self.since(0))

    def since(self, mark: int) -> List[Entry]:
        """The requests logged after ``mark``. nginx writes a line once the answer is sent,
        so wait (at most 2 s) until the log stops growing."""
        deadline = time.monotonic() + 2
        seen = self.log()
        while time.monotonic() < deadline:
            time.sleep(0.05)
            now = self.log()
            if len(now) == len(seen):
                break
            seen = now
        return seen[mark:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.dir.cleanup()

    def __enter__(self) -> "Nginx":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start(root: Path) -> Optional[Nginx]:
    """nginx serving ``root``, or None when it is not installed (and CI does not require it)."""
    binary = find_nginx()
    if binary is None:
        if os.environ.get("SAFETENSORS_REQUIRE_NGINX"):
            raise RuntimeError("nginx is required (SAFETENSORS_REQUIRE_NGINX is set) but not installed")
        return None
    return Nginx(binary, root)
