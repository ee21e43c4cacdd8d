"""safetensors: a simple, safe way to store and distribute tensors.

This package is a drop-in for the reference ``safetensors`` Python package, implemented
over a Rust core. Framework helpers live in ``safetensors.torch``, ``.numpy``,
``.tensorflow``, ``.flax``, ``.paddle`` and ``.mlx``.
"""

import json as _json
import os as _os
from typing import Any as _Any
from typing import Dict as _Dict
from typing import Optional as _Optional
from typing import Union as _Union

from ._safetensors_rust import (  # noqa: F401
    PrefetchLoader,
    PySafeSlice,
    SafetensorError,
    # A SafetensorError that is also the builtin exception the reference raises there (see
    # `src/error.rs`); here so that they pickle (their __module__ is "safetensors").
    SafetensorFileNotFoundError,
    SafetensorIndexError,
    SafetensorIsADirectoryError,
    SafetensorKeyError,
    SafetensorNotADirectoryError,
    SafetensorOSError,
    SafetensorPermissionError,
    SafetensorRuntimeError,
    SafetensorTypeError,
    SafetensorValueError,
    TensorMeta,
    TensorSpec,
    __version__,
    _inspect,
    _safe_open_bytes,
    _safe_open_handle,
    deserialize,
    safe_open,
    serialize,
    serialize_file,
)

__all__ = [
    "PrefetchLoader",
    "SafetensorError",
    "TensorMeta",
    "TensorSpec",
    "__version__",
    "deserialize",
    "inspect",
    "safe_open",
    "serialize",
    "serialize_file",
]


def inspect(
    location: _Union[str, "_os.PathLike[str]"], *, headers: _Optional[_Dict[str, str]] = None
) -> _Dict[str, _Any]:
    """What a safetensors file, sharded folder or index JSON holds, read from the headers
    alone (no tensor data): the document ``safetensors inspect --json`` prints, as a dict.

    ``location`` may also be the ``http://`` or ``https://`` URL of a file or of an index
    JSON: two Range requests per file (shards several at once), ``headers`` sent with each.

    Keys: ``source``, ``sharded``, ``index`` (sharded only: its ``metadata`` and
    ``weight_map_len``), ``files`` (``file``, ``file_size``, ``header_len``, ``tensors``,
    ``metadata``: the ``__metadata__``), ``tensors`` (``name``, ``file``, ``dtype``,
    ``shape``, ``parameters``, ``bytes``, ``data_offsets``), ``totals`` (``tensors``,
    ``parameters``, ``bytes``, ``by_dtype``) and ``warnings`` (where an index and its shards
    disagree).
    """
    report: _Dict[str, _Any] = _json.loads(_inspect(location, headers))
    return report
