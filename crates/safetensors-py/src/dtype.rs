//! Dtype names as Python callers spell them.
//!
//! The header spelling (`"F32"`, `"BF16"`, ...) is parsed by the core crate. Older callers
//! of `serialize` pass framework spellings (`"float32"`, `"bfloat16"`, `"float8_e4m3fn"`),
//! which this module maps onto the same `Dtype`.

use crate::error::st_err;
use pyo3::PyResult;
use safetensors::Dtype;
use std::str::FromStr;

/// Parses a dtype given either in header spelling or in numpy/torch spelling.
pub fn parse_dtype(name: &str) -> PyResult<Dtype> {
    if let Ok(dtype) = Dtype::from_str(name) {
        return Ok(dtype);
    }
    let dtype = match name {
        "bool" => Dtype::BOOL,
        "uint8" => Dtype::U8,
        "int8" => Dtype::I8,
        "uint16" => Dtype::U16,
        "int16" => Dtype::I16,
        "float16" | "half" => Dtype::F16,
        "bfloat16" => Dtype::BF16,
        "uint32" => Dtype::U32,
        "int32" | "int" => Dtype::I32,
        "float32" | "float" => Dtype::F32,
        "complex64" => Dtype::C64,
        "uint64" => Dtype::U64,
        "int64" | "long" => Dtype::I64,
        "float64" | "double" => Dtype::F64,
        "float8_e5m2" => Dtype::F8_E5M2,
        "float8_e4m3fn" => Dtype::F8_E4M3,
        "float8_e4m3fnuz" => Dtype::F8_E4M3FNUZ,
        "float8_e5m2fnuz" => Dtype::F8_E5M2FNUZ,
        "float8_e8m0fnu" => Dtype::F8_E8M0,
        "float4_e2m1fn" => Dtype::F4,
        "float6_e2m3fn" => Dtype::F6_E2M3,
        "float6_e3m2fn" => Dtype::F6_E3M2,
        _ => {
            return Err(st_err(format!(
            "Unknown dtype {name:?}: use a header name (BOOL, U8, I8, U16, I16, F16, BF16, U32, \
                 I32, F32, C64, U64, I64, F64, F8_E5M2, F8_E4M3, F8_E4M3FNUZ, F8_E5M2FNUZ, \
                 F8_E8M0, F4, F6_E2M3, F6_E3M2) or its numpy/torch name (e.g. \"float32\")"
        )))
        }
    };
    Ok(dtype)
}
