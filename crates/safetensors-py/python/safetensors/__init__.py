"""safetensors: a simple, safe way to store and distribute tensors.

This package is a drop-in for the reference ``safetensors`` Python package, implemented
over a Rust core. Framework helpers live in ``safetensors.torch``, ``.numpy``,
``.tensorflow``, ``.flax``, ``.paddle`` and ``.mlx``.
"""

from ._safetensors_rust import (  # noqa: F401
    PySafeSlice,
    SafetensorError,
    TensorSpec,
    __version__,
    _safe_open_bytes,
    _safe_open_handle,
    deserialize,
    safe_open,
    serialize,
    serialize_file,
)

__all__ = [
    "SafetensorError",
    "TensorSpec",
    "__version__",
    "deserialize",
    "safe_open",
    "serialize",
    "serialize_file",
]
