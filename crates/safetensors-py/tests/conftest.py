"""Shared fixtures: where the conformance vectors are, and the framework-import rule.

A framework test may skip only when the framework is not installed AND the environment
variable SAFETENSORS_REQUIRE_FRAMEWORKS is unset (CI sets it to 1: there a missing
framework is a failure, not a skip).
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests judge results, not speed: on a loaded 2-core machine generating examples can
# be slow, which hypothesis would otherwise report as a failure (HealthCheck.too_slow).
settings.register_profile("project", suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("project")

REPO_ROOT = Path(__file__).resolve().parents[3]
VECTORS = REPO_ROOT / "tests" / "data" / "vectors"


def require(module: str):
    """Imports a framework module, skipping the test module when it is genuinely missing."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        if os.environ.get("SAFETENSORS_REQUIRE_FRAMEWORKS"):
            raise RuntimeError(
                f"{module} is required (SAFETENSORS_REQUIRE_FRAMEWORKS is set) but cannot be imported: {e}"
            ) from e
        pytest.skip(f"{module} is not installed", allow_module_level=True)


def manifest() -> dict:
    with open(VECTORS / "manifest.json", encoding="utf-8") as f:
        return json.load(f)


def valid_vectors():
    m = manifest()
    return [(name, VECTORS / "valid" / f"{name}.safetensors", entry) for name, entry in m["valid"].items()]


def invalid_vectors():
    m = manifest()
    return [(name, VECTORS / "invalid" / f"{name}.safetensors", entry) for name, entry in m["invalid"].items()]


def header_of(data: bytes):
    """(header JSON object, data part) of a safetensors byte string, parsed independently."""
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8 : 8 + n]), data[8 + n :]


def numpy_dtypes() -> dict:
    """Header dtype -> numpy dtype, for every dtype numpy can hold (ml_dtypes for the
    bfloat16 and float8 types). Shared by the numpy-based framework tests."""
    import ml_dtypes
    import numpy as np

    return {
        "BOOL": np.bool_,
        "U8": np.uint8,
        "I8": np.int8,
        "U16": np.uint16,
        "I16": np.int16,
        "F16": np.float16,
        "BF16": ml_dtypes.bfloat16,
        "U32": np.uint32,
        "I32": np.int32,
        "F32": np.float32,
        "C64": np.complex64,
        "U64": np.uint64,
        "I64": np.int64,
        "F64": np.float64,
        "F8_E5M2": ml_dtypes.float8_e5m2,
        "F8_E4M3": ml_dtypes.float8_e4m3fn,
        "F8_E4M3FNUZ": ml_dtypes.float8_e4m3fnuz,
        "F8_E5M2FNUZ": ml_dtypes.float8_e5m2fnuz,
        "F8_E8M0": ml_dtypes.float8_e8m0fnu,
    }
