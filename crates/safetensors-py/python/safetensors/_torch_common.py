"""What every torch-side module of the package shares: the torch dtype of each header dtype
this torch build has, the storage shape a tensor takes (F4 packs two values a byte), and how
a ``device`` argument becomes a ``torch.device``."""

from __future__ import annotations

from typing import Any, Dict, List

import torch

from . import _common
from ._safetensors_rust import SafetensorError, SafetensorRuntimeError, SafetensorTypeError

# Header dtype -> torch dtype, for every type this torch build has.
_TYPES: Dict[str, torch.dtype] = {}
# F4: torch holds two 4-bit floats a byte (float4_e2m1fn_x2); no F6 types in torch.
for _name, _attr in {**_common.DTYPE_NAMES, "F4": "float4_e2m1fn_x2"}.items():
    if isinstance(getattr(torch, _attr, None), torch.dtype):
        _TYPES[_name] = getattr(torch, _attr)
_NAMES: Dict[torch.dtype, str] = {v: k for k, v in _TYPES.items()}
_F4 = _TYPES.get("F4")
# torch dtype -> bytes per element (of storage: a float4_e2m1fn_x2 holds two values in one).
_SIZE: Dict[torch.dtype, int] = {t: t.itemsize for t in _TYPES.values()}


def _storage_shape(dtype: str, shape: List[int]) -> List[int]:
    if dtype == "F4":
        if not shape or shape[-1] % 2:
            raise SafetensorError(
                f"an F4 tensor of shape {shape} cannot be a torch.float4_e2m1fn_x2 tensor: "
                "its last dimension must be even"
            )
        return shape[:-1] + [shape[-1] // 2]
    return shape


def _st_device(device: Any) -> torch.device:
    """``device`` as a torch.device (None: the CPU, an int: that CUDA device). One torch refuses
    is a SafetensorError, as the reference raises it, that is also what torch raised."""
    try:
        if device is None:
            return torch.device("cpu")
        if isinstance(device, int) and not isinstance(device, bool):
            return torch.device("cuda", device)
        return torch.device(device)
    except RuntimeError as e:
        raise SafetensorRuntimeError(f"device {device!r} is invalid: {e}") from e
    except TypeError as e:
        raise SafetensorTypeError(f"device {device!r} is invalid: {e}") from e
