//! The one conversion of Rust errors into Python exceptions.
//!
//! Format errors (a bad header, a missing tensor, a bad slice) become `SafetensorError`;
//! a missing file becomes `FileNotFoundError` and a refused permission `PermissionError`, so
//! Python code can handle them the usual way. Messages come from the core crate (which names
//! the tensor and the numbers) plus, where it helps, what the caller can do about it.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyPermissionError};
use pyo3::prelude::*;
use safetensors::slice::InvalidSlice;
use safetensors::SafeTensorError;
use std::io;

create_exception!(
    safetensors,
    SafetensorError,
    PyException,
    "Raised for any problem with safetensors data: a file that is not valid safetensors, a \
     tensor that is not in the file, a slice outside the tensor, a dtype that cannot be stored."
);

/// Converts an I/O error, keeping Python's usual exception classes for the common kinds.
pub fn io_error(err: io::Error, context: &str) -> PyErr {
    let msg = format!("{context}: {err}");
    match err.kind() {
        io::ErrorKind::NotFound => PyFileNotFoundError::new_err(msg),
        io::ErrorKind::PermissionDenied => PyPermissionError::new_err(msg),
        _ => PyOSError::new_err(msg),
    }
}

/// The error for a file that cannot be opened. A missing file is a `FileNotFoundError`
/// whose text is exactly `No such file or directory: <filename as given>`, with `errno`,
/// `strerror` and `filename` set (`safetensors._common.FileNotFound` formats it so).
pub fn open_error(py: Python<'_>, err: io::Error, filename: &Bound<'_, PyAny>) -> PyErr {
    if err.kind() != io::ErrorKind::NotFound {
        let shown = filename
            .str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "the file".into());
        return io_error(err, &format!("cannot open {shown}"));
    }
    const ENOENT: i32 = 2;
    let made = py
        .import("safetensors._common")
        .and_then(|m| m.getattr("FileNotFound"))
        .and_then(|cls| {
            cls.call1((
                err.raw_os_error().unwrap_or(ENOENT),
                "No such file or directory",
                filename,
            ))
        });
    match made {
        Ok(exc) => PyErr::from_value(exc),
        Err(e) => e,
    }
}

/// Converts a core error into the Python exception a caller expects.
pub fn to_pyerr(err: SafeTensorError) -> PyErr {
    match err {
        // A Python exception raised by a file object's `seek`/`read` travels through the
        // core's reader wrapped in an I/O error: raise it as it was.
        SafeTensorError::IoError(e) => match e.downcast::<PyErr>() {
            Ok(err) => err,
            Err(e) => io_error(e, "safetensors I/O error"),
        },
        SafeTensorError::TensorNotFound(ref name) => SafetensorError::new_err(format!(
            "File does not contain tensor {name}: call keys() to list the tensors it has"
        )),
        other => SafetensorError::new_err(other.to_string()),
    }
}

/// Converts a refused slice of tensor `name`.
pub fn slice_error(name: &str, err: InvalidSlice) -> PyErr {
    SafetensorError::new_err(format!("Invalid slice of tensor {name}: {err}"))
}

/// A `SafetensorError` with the given message.
pub fn st_err(msg: impl Into<String>) -> PyErr {
    SafetensorError::new_err(msg.into())
}
