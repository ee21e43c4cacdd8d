//! The one conversion of Rust errors into Python exceptions.
//!
//! Format errors (a bad header, a missing tensor, a bad slice) become `SafetensorError`;
//! a missing file becomes `FileNotFoundError` and a refused permission `PermissionError`, so
//! Python code can handle them the usual way. Messages come from the core crate (which names
//! the tensor and the numbers) plus, where it helps, what the caller can do about it.
//!
//! Where the reference package raises a builtin exception and ours a `SafetensorError` (or
//! the other way round), the error is an instance of a class deriving from both: the
//! `DUAL` classes below (`SafetensorIndexError(SafetensorError, IndexError)`, ...), made
//! once when the module is loaded and registered in it (so they pickle). Code written for
//! the reference catches what it always caught, and `except SafetensorError` still works.

use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyFileNotFoundError, PyOSError, PyPermissionError};
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyTuple, PyType};
use safetensors::slice::SliceError;
use safetensors::Error as CoreError;
use std::io;

create_exception!(
    safetensors,
    SafetensorError,
    PyException,
    "Raised for any problem with safetensors data: a file that is not valid safetensors, a \
     tensor that is not in the file, a slice outside the tensor, a dtype that cannot be stored."
);

/// An I/O error of writing a file: the `SafetensorError` the reference raises, which is also
/// the `OSError` subclass Python gives that kind (`IsADirectoryError`, ...).
pub fn write_error(py: Python<'_>, err: io::Error, context: &str) -> PyErr {
    let base = match err.kind() {
        io::ErrorKind::NotFound => "FileNotFoundError",
        io::ErrorKind::PermissionDenied => "PermissionError",
        io::ErrorKind::IsADirectory => "IsADirectoryError",
        io::ErrorKind::NotADirectory => "NotADirectoryError",
        _ => "OSError",
    };
    dual_err(py, base, format!("{context}: {err}"))
}

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
pub fn to_pyerr(err: CoreError) -> PyErr {
    match err {
        // A Python exception raised by a file object's `seek`/`read` travels through the
        // core's reader wrapped in an I/O error: raise it as it was.
        CoreError::IoError(e) => match e.downcast::<PyErr>() {
            Ok(err) => err,
            Err(e) => io_error(e, "safetensors I/O error"),
        },
        CoreError::TensorNotFound(ref name) => SafetensorError::new_err(format!(
            "File does not contain tensor {name}: call keys() to list the tensors it has"
        )),
        other => SafetensorError::new_err(other.to_string()),
    }
}

/// Converts a refused slice of tensor `name`: an out-of-range position and too many indices
/// are also `IndexError`s, a zero step a `ValueError`, as torch and numpy raise them.
pub fn slice_error(py: Python<'_>, name: &str, err: SliceError) -> PyErr {
    let base = match err {
        SliceError::TooManySlices { .. }
        | SliceError::SliceOutOfRange { .. }
        | SliceError::MultipleEllipsis => "IndexError",
        SliceError::ZeroStep { .. } => "ValueError",
        _ => "",
    };
    dual_err(py, base, format!("Invalid slice of tensor {name}: {err}"))
}

/// A `SafetensorError` with the given message.
pub fn st_err(msg: impl Into<String>) -> PyErr {
    SafetensorError::new_err(msg.into())
}

/// The builtin exceptions a `SafetensorError` may also be (see the module docs), each with the
/// name of the class deriving from both.
const DUAL: [(&str, &str); 10] = [
    ("IndexError", "SafetensorIndexError"),
    ("ValueError", "SafetensorValueError"),
    ("KeyError", "SafetensorKeyError"),
    ("TypeError", "SafetensorTypeError"),
    ("RuntimeError", "SafetensorRuntimeError"),
    ("OSError", "SafetensorOSError"),
    ("FileNotFoundError", "SafetensorFileNotFoundError"),
    ("IsADirectoryError", "SafetensorIsADirectoryError"),
    ("NotADirectoryError", "SafetensorNotADirectoryError"),
    ("PermissionError", "SafetensorPermissionError"),
];

/// The classes of `DUAL`, in its order, made by `register_dual`.
static DUAL_TYPES: PyOnceLock<Vec<Py<PyType>>> = PyOnceLock::new();

/// Makes the `DUAL` classes and adds them to the extension module `m`.
pub fn register_dual(m: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = m.py();
    let types = DUAL_TYPES.get_or_try_init(py, || {
        let builtins = py.import("builtins")?;
        let make = builtins.getattr("type")?;
        DUAL.iter()
            .map(|(base, name)| {
                let bases = PyTuple::new(
                    py,
                    [
                        py.get_type::<SafetensorError>().into_any(),
                        builtins.getattr(*base)?,
                    ],
                )?;
                let ns = PyDict::new(py);
                ns.set_item("__module__", "safetensors")?;
                // KeyError's own `str()` shows the message quoted, as a key: show it as text.
                ns.set_item(
                    "__str__",
                    builtins.getattr("BaseException")?.getattr("__str__")?,
                )?;
                ns.set_item(
                    "__doc__",
                    format!(
                        "A SafetensorError that is also a {base}, where the reference package \
                         raises {base} (or ours raised it before)."
                    ),
                )?;
                Ok(make
                    .call1((*name, bases, ns))?
                    .cast_into::<PyType>()?
                    .unbind())
            })
            .collect::<PyResult<Vec<_>>>()
    })?;
    for ((_, name), t) in DUAL.iter().zip(types) {
        m.add(*name, t.bind(py))?;
    }
    Ok(())
}

/// A `SafetensorError` that is also the builtin exception `base` (one of `DUAL`'s), with
/// message `msg`; a plain `SafetensorError` for any other `base`.
pub fn dual_err(py: Python<'_>, base: &str, msg: impl Into<String>) -> PyErr {
    let msg = msg.into();
    let at = DUAL.iter().position(|(b, _)| *b == base);
    match (at, DUAL_TYPES.get(py)) {
        (Some(i), Some(types)) => match types[i].bind(py).call1((msg,)) {
            Ok(exc) => PyErr::from_value(exc),
            Err(e) => e,
        },
        _ => SafetensorError::new_err(msg),
    }
}

/// `err` as the dual class of its own type where it has one (a `RuntimeError` from
/// `torch.device("nope")` becomes a `SafetensorRuntimeError`), with the same message prefixed
/// by `context`; unchanged when it already is a `SafetensorError`.
pub fn as_dual(py: Python<'_>, err: PyErr, context: &str) -> PyErr {
    if err.is_instance_of::<SafetensorError>(py) {
        return err;
    }
    let ty = err
        .get_type(py)
        .name()
        .map(|n| n.to_string())
        .unwrap_or_default();
    let base = DUAL.iter().map(|(b, _)| *b).find(|b| *b == ty);
    let msg = format!("{context}: {}", err.value(py));
    let out = dual_err(py, base.unwrap_or(""), msg);
    out.set_cause(py, Some(err));
    out
}
