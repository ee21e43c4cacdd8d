"""The streaming writers every framework module shares (``open_writer``,
``open_sharded_writer``): specs first, each tensor's bytes later.

A framework module says how a spec's dtype and shape become the header's (``SpecHeader``)
and how a tensor becomes bytes (the ``Convert`` its ``save_file`` uses, so dtype handling is
the same); the layout, the checks and the writing live in the Rust core.
"""

from __future__ import annotations

import json
import os
from types import TracebackType
from typing import Any, Callable, Dict, List, Mapping, Optional, Tuple, Type, Union

from . import _common
from ._safetensors_rust import _open_sharded_writer, _open_writer, _Writer

# name, the spec's dtype, the spec's shape -> (header dtype, header shape)
SpecHeader = Callable[[str, Any, List[int]], Tuple[str, List[int]]]
# name, value: raises when the value cannot be saved at all (before it is converted)
Check = Callable[[str, Any], None]


def _shape(name: str, shape: Any) -> List[int]:
    try:
        dims = [int(d) for d in shape]
    except (TypeError, ValueError):
        raise ValueError(f"spec of {name!r}: the shape must be a sequence of ints, got {shape!r}") from None
    if any(d < 0 for d in dims):
        raise ValueError(f"spec of {name!r}: the shape {dims} has a negative dimension")
    return dims


def _specs(specs: Any, spec_header: SpecHeader) -> List[Tuple[str, str, List[int]]]:
    """``(name, header dtype, header shape)`` of every spec, in the mapping's order.

    A spec is ``(dtype, shape)`` or anything with ``.dtype`` and ``.shape`` (a tensor, a
    "meta" tensor, an array). A dtype given as a header name ("F32", "BF16") is taken as is,
    with the header's shape; any other is the framework's dtype, with the framework's shape.
    """
    if not isinstance(specs, Mapping):
        raise ValueError(f"specs must map each tensor name to (dtype, shape), got {type(specs).__name__}")
    out: List[Tuple[str, str, List[int]]] = []
    for name, spec in specs.items():
        if not isinstance(name, str):
            raise _common.TensorNameError(f"tensor names must be str, got {type(name).__name__} ({name!r})")
        if isinstance(spec, (tuple, list)) and len(spec) == 2:
            dtype, shape = spec
        elif hasattr(spec, "dtype") and hasattr(spec, "shape"):
            dtype, shape = spec.dtype, spec.shape
        else:
            raise ValueError(f"spec of {name!r} must be (dtype, shape), got {spec!r:.80}")
        dims = _shape(name, shape)
        if isinstance(dtype, str) and dtype in _common.DTYPE_NAMES:
            out.append((name, dtype, dims))
        else:
            out.append((name, *spec_header(name, dtype, dims)))
    return out


class StreamingWriter:
    """A safetensors file written tensor by tensor (from ``open_writer``).

    ``write(name, tensor)`` writes each planned tensor once, in any order, at the place
    ``save_file`` would give it. Leaving the ``with`` block normally renames the file into
    place (an error if a tensor was never written); leaving it with an exception, or
    ``abort()``, removes the temporary file. Either way an existing file is untouched until the
    new one is complete.
    """

    def __init__(self, inner: _Writer, convert: _common.Convert, check: Optional[Check]) -> None:
        self._inner = inner
        self._convert = convert
        self._check = check

    def write(self, name: str, tensor: Any) -> None:
        """Writes ``tensor`` as planned tensor ``name``. Its dtype and shape must be the
        planned ones; a name not planned, or written already, is refused. The bytes are read
        during the call only: the tensor may be freed once it returns."""
        if not isinstance(name, str):
            raise _common.TensorNameError(f"tensor names must be str, got {type(name).__name__} ({name!r})")
        if self._check is not None:
            self._check(name, tensor)
        dtype, shape, ptr, nbytes, owner = self._convert(name, tensor)
        self._inner.write(name, dtype, shape, ptr if nbytes else 0, nbytes)
        del owner  # written: the bytes may go

    @property
    def missing(self) -> List[str]:
        """The planned tensors not written yet, in file order."""
        return self._inner.missing()

    @property
    def closed(self) -> bool:
        """True once closed or aborted."""
        return self._inner.closed

    def close(self) -> None:
        """Renames the file into place. A tensor never written raises ``SafetensorError``
        (also a ``ValueError``) naming it, and then nothing is left behind."""
        self._inner.finish()

    def abort(self) -> None:
        """Closes without writing anything: the temporary file is removed."""
        self._inner.abort()

    def __enter__(self) -> "StreamingWriter":
        return self

    def __exit__(
        self,
        exc_type: Optional[Type[BaseException]],
        exc_value: Optional[BaseException],
        traceback: Optional[TracebackType],
    ) -> None:
        if exc_type is not None:
            self.abort()
        elif not self.closed:
            self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self._inner!r}>"


class ShardedWriter(StreamingWriter):
    """A sharded checkpoint written tensor by tensor (from ``open_sharded_writer``): the
    shards ``save_sharded`` would write, renamed into place only once every tensor is written,
    then the index. ``index`` is the index as a dict once closed."""

    def __init__(self, inner: _Writer, convert: _common.Convert, check: Optional[Check]) -> None:
        super().__init__(inner, convert, check)
        self.index: Optional[Dict[str, Any]] = None

    def close(self) -> None:
        """Renames every shard into place, then writes the index (a tensor never written raises,
        and then nothing is left behind); sets ``index``."""
        text = self._inner.finish()
        self.index = json.loads(text) if text is not None else None

    def __enter__(self) -> "ShardedWriter":
        return self


def open_writer(
    filename: _common.PathLike,
    specs: Any,
    metadata: Optional[Dict[str, str]],
    checksum: Optional[str],
    spec_header: SpecHeader,
    convert: _common.Convert,
    check: Optional[Check] = None,
) -> StreamingWriter:
    """A ``StreamingWriter`` of ``filename`` laid out for ``specs``."""
    inner = _open_writer(os.fspath(filename), _specs(specs, spec_header), metadata=metadata, checksum=checksum)
    return StreamingWriter(inner, convert, check)


def open_sharded_writer(
    folder: _common.PathLike,
    specs: Any,
    max_shard_size: Union[int, str],
    metadata: Optional[Dict[str, str]],
    checksum: Optional[str],
    spec_header: SpecHeader,
    convert: _common.Convert,
    check: Optional[Check] = None,
) -> ShardedWriter:
    """A ``ShardedWriter`` of a checkpoint in ``folder`` with shards planned from ``specs``."""
    if isinstance(max_shard_size, bool) or not isinstance(max_shard_size, (int, str)):
        raise ValueError(f"max_shard_size must be an int or a str such as '5GB', got {max_shard_size!r}")
    inner = _open_sharded_writer(
        os.fspath(folder), _specs(specs, spec_header), str(max_shard_size), metadata=metadata, checksum=checksum
    )
    return ShardedWriter(inner, convert, check)
