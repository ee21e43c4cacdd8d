"""A real FUSE filesystem for the tests of ``backend="auto"``: a read-only passthrough of a
folder, served by mfusepy (ctypes bindings of libfuse 3) in a child process.

``mounted(source, mountpoint)`` mounts it and unmounts it on exit; it raises ``FuseUnavailable``
with the reason when this machine cannot mount one (no ``/dev/fuse``, no libfuse or
``fusermount3``, no mfusepy, or a mount the kernel refuses), so the caller can skip. Run as a
script (``python fuse_passthrough.py SOURCE MOUNTPOINT``) it serves the mount in the
foreground until unmounted.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Iterator

# How long a mount may take to appear, and an unmount to end the server.
MOUNT_SECONDS = 10.0


class FuseUnavailable(Exception):
    """This machine cannot mount a FUSE filesystem; the message says why."""


def serve(source: str, mountpoint: str) -> None:
    import mfusepy as fuse

    class Passthrough(fuse.Operations):  # type: ignore[misc]
        use_ns = True

        def _path(self, path: str) -> str:
            return os.path.join(source, path.lstrip("/"))

        def getattr(self, path, fh=None):
            try:
                st = os.lstat(self._path(path))
            except OSError as e:
                raise fuse.FuseOSError(e.errno) from None
            keys = ("st_mode", "st_nlink", "st_size", "st_uid", "st_gid")
            out = {k: getattr(st, k) for k in keys}
            out.update(st_atime=st.st_atime_ns, st_mtime=st.st_mtime_ns, st_ctime=st.st_ctime_ns)
            return out

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(self._path(path))]

        def open(self, path, flags):
            if flags & (os.O_WRONLY | os.O_RDWR):
                raise fuse.FuseOSError(errno.EROFS)
            return os.open(self._path(path), os.O_RDONLY)

        def read(self, path, size, offset, fh):
            return os.pread(fh, size, offset)

        def release(self, path, fh):
            os.close(fh)
            return 0

    fuse.FUSE(Passthrough(), mountpoint, foreground=True, ro=True, nothreads=True)


def _unmount_command() -> list[str]:
    for tool in ("fusermount3", "fusermount"):
        found = shutil.which(tool)
        if found:
            return [found, "-u"]
    return ["umount"]


@contextlib.contextmanager
def mounted(source: Path, mountpoint: Path) -> Iterator[Path]:
    """Serves ``source`` read-only at ``mountpoint`` (an empty folder) for the block."""
    if not os.path.exists("/dev/fuse"):
        raise FuseUnavailable("/dev/fuse does not exist")
    try:
        import mfusepy  # noqa: F401
    except (ImportError, OSError) as e:  # OSError: mfusepy found no libfuse
        raise FuseUnavailable(f"mfusepy cannot be loaded: {e}") from e
    if not (shutil.which("fusermount3") or shutil.which("fusermount") or os.geteuid() == 0):
        raise FuseUnavailable("neither fusermount3 nor root to mount and unmount")
    server = subprocess.Popen(
        [sys.executable, __file__, str(source.resolve()), str(mountpoint.resolve())],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + MOUNT_SECONDS
        while not os.path.ismount(mountpoint):
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                output = server.communicate()[0].decode(errors="replace").strip()
                raise FuseUnavailable(f"the FUSE mount did not appear: {output[-500:] or 'no output'}")
            time.sleep(0.05)
        yield mountpoint
    finally:
        if os.path.ismount(mountpoint):
            subprocess.run([*_unmount_command(), str(mountpoint)], check=False, capture_output=True)
        try:
            server.wait(timeout=MOUNT_SECONDS)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        if server.stdout is not None:
            server.stdout.close()


if __name__ == "__main__":
    serve(sys.argv[1], sys.argv[2])
