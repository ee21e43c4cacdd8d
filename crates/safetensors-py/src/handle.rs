//! `_safe_open_handle` (over an open Python file object, such as an fsspec file) and
//! `_safe_open_bytes` (over an in-memory safetensors file, used by every framework's
//! `load(bytes)`): the same lazy `safe_open` object over other sources.

use crate::open::{ReadAs, SafeOpen};
use pyo3::prelude::*;

/// The binary stream under `fileobj`: the object itself, or for a text-mode file object
/// (`open(path, "r")`) its `buffer`, or failing that a binary stream over its descriptor.
fn binary_stream<'py>(fileobj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
    let py = fileobj.py();
    let io = py.import("io")?;
    if !fileobj.is_instance(&io.getattr("TextIOBase")?)? {
        return Ok(fileobj.clone());
    }
    if let Ok(buffer) = fileobj.getattr("buffer") {
        return Ok(buffer);
    }
    let fd = fileobj.call_method0("fileno").map_err(|_| {
        crate::error::st_err(
            "the file object is in text mode and has neither a binary buffer nor a file \
             descriptor: open the file in binary mode (\"rb\")",
        )
    })?;
    let kwargs = pyo3::types::PyDict::new(py);
    kwargs.set_item("closefd", false)?;
    io.getattr("open")?.call((fd, "rb"), Some(&kwargs))
}

/// `_safe_open_handle(fileobj, framework, device="cpu")`: like `safe_open`, reading through
/// the file object's `seek`/`read` (a text-mode object is read through its binary buffer).
#[pyfunction]
#[pyo3(name = "_safe_open_handle", signature = (fileobj, framework, device = None))]
pub fn safe_open_handle(
    py: Python<'_>,
    fileobj: &Bound<'_, PyAny>,
    framework: &str,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<SafeOpen> {
    crate::framework::Framework::parse(framework)?;
    let checkpoint = crate::py_source::open_handle(&binary_stream(fileobj)?)?;
    let cpu = pyo3::types::PyString::new(py, "cpu").into_any();
    SafeOpen::from_checkpoint(
        py,
        checkpoint,
        ReadAs::fixed(false),
        framework,
        device.unwrap_or(&cpu),
    )
}

/// `_safe_open_bytes(data, framework, device="cpu")`: like `safe_open`, over a bytes-like
/// object holding a whole safetensors file.
#[pyfunction]
#[pyo3(name = "_safe_open_bytes", signature = (data, framework, device = None))]
pub fn safe_open_bytes(
    py: Python<'_>,
    data: &Bound<'_, PyAny>,
    framework: &str,
    device: Option<&Bound<'_, PyAny>>,
) -> PyResult<SafeOpen> {
    crate::framework::Framework::parse(framework)?;
    let checkpoint = crate::py_source::open_buffer(data)?;
    let cpu = pyo3::types::PyString::new(py, "cpu").into_any();
    SafeOpen::from_checkpoint(
        py,
        checkpoint,
        ReadAs::fixed(false),
        framework,
        device.unwrap_or(&cpu),
    )
}
