//! Dtype names as Python callers spell them.
//!
//! The header spelling (`"F32"`, `"BF16"`, ...) and the numpy/torch spelling older callers of
//! `serialize` pass (`"float32"`, `"bfloat16"`, `"float8_e4m3fn"`) are both tabled in the
//! core crate (`Dtype::from_str`, `Dtype::from_framework_name`); this module only words the
//! error.

use crate::error::st_err;
use pyo3::PyResult;
use safetensors::format::dtype::ALL_DTYPES;
use safetensors::Dtype;
use std::str::FromStr;

/// Parses a dtype given either in header spelling or in numpy/torch spelling.
pub fn parse_dtype(name: &str) -> PyResult<Dtype> {
    Dtype::from_str(name)
        .ok()
        .or_else(|| Dtype::from_framework_name(name))
        .ok_or_else(|| {
            let names: Vec<&str> = ALL_DTYPES.iter().map(|d| d.name()).collect();
            st_err(format!(
                "Unknown dtype {name:?}: use a header name ({}) or its numpy/torch name (e.g. \
                 \"float32\")",
                names.join(", ")
            ))
        })
}
