//! `_open_writer` and `_open_sharded_writer`: the core's streaming writers
//! (`write::StreamingWriter`, `write::ShardedWriter`), which take every tensor's dtype and
//! shape first and each tensor's bytes later, one `write` at a time, in any order.
//!
//! The framework modules (`safetensors.torch.open_writer`, ...) turn specs and tensors into
//! header dtypes, shapes and addresses; this file only hands them to the core. Each write
//! runs with the interpreter detached, viewing the tensor's own memory (no copy).

use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use safetensors::write::{ShardedWriter, Spec, StreamingWriter};
use safetensors::Error;

use crate::dtype::parse_dtype;
use crate::error::{dual_err, st_err, to_pyerr, write_error};
use crate::raw::RawView;
use crate::serialize::{metadata_pairs, write_options};

/// The core writer behind a `_Writer`: one file, or a sharded checkpoint.
enum Inner {
    File(StreamingWriter),
    Sharded(ShardedWriter),
}

/// A file (or sharded checkpoint) being written tensor by tensor. Dropped or aborted before
/// `finish`, it removes its temporary files and leaves the target as it was.
#[pyclass(frozen, name = "_Writer", module = "safetensors")]
pub struct Writer {
    /// `None` once finished or aborted.
    inner: Mutex<Option<Inner>>,
    /// The file or folder written, for messages.
    target: PathBuf,
}

impl Writer {
    fn lock(&self) -> MutexGuard<'_, Option<Inner>> {
        // A panic while writing leaves nothing half-done in the state (each write marks its
        // tensor written only after its bytes are in): the state stays usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The error for a call on a writer that was finished or aborted.
    fn closed_error(&self) -> PyErr {
        st_err(format!(
            "the writer of {} is closed: nothing more can be written",
            self.target.display()
        ))
    }

    /// A core error as the Python exception a caller expects: a refused write (a tensor not
    /// planned, written twice, with another dtype or shape, never written) is a
    /// `SafetensorError` that is also a `ValueError`; a failed write an `OSError` one.
    fn error(&self, py: Python<'_>, err: Error) -> PyErr {
        match err {
            Error::InvalidWrite(_) => dual_err(py, "ValueError", err.to_string()),
            Error::IoError(io) => {
                write_error(py, io, &format!("cannot write {}", self.target.display()))
            }
            other => to_pyerr(other),
        }
    }
}

#[pymethods]
impl Writer {
    /// `write(name, dtype, shape, data_ptr, data_len)`: writes tensor `name` (header dtype and
    /// shape, and the address and length of its little-endian C-order bytes, which the caller
    /// keeps alive and unchanged until this returns) at its planned place.
    fn write(
        &self,
        py: Python<'_>,
        name: &str,
        dtype: &str,
        shape: Vec<usize>,
        data_ptr: usize,
        data_len: usize,
    ) -> PyResult<()> {
        let dtype = parse_dtype(dtype)?;
        if data_len > 0 && data_ptr == 0 {
            return Err(st_err(format!("tensor {name}: data_ptr is null")));
        }
        // SAFETY: the caller (the framework module's `write`) holds the tensor that owns
        // `data_ptr..data_ptr + data_len` for the whole call and nothing writes to it meanwhile;
        // the core checks the length against the planned dtype and shape before reading.
        let view = unsafe { RawView::new(dtype, shape, data_ptr, data_len) };
        let done = py.detach(|| {
            let mut guard = self.lock();
            match guard.as_mut() {
                None => Ok(None),
                Some(Inner::File(w)) => w.write(name, &view).map(Some),
                Some(Inner::Sharded(w)) => w.write(name, &view).map(Some),
            }
        });
        match done {
            Ok(Some(())) => Ok(()),
            Ok(None) => Err(self.closed_error()),
            Err(e) => Err(self.error(py, e)),
        }
    }

    /// The planned tensors not written yet (file order; shard by shard when sharded).
    fn missing(&self) -> Vec<String> {
        match self.lock().as_ref() {
            None => Vec::new(),
            Some(Inner::File(w)) => w.missing().map(str::to_owned).collect(),
            Some(Inner::Sharded(w)) => w.missing().map(str::to_owned).collect(),
        }
    }

    /// Renames the file (every shard, then the index) into place once every tensor is
    /// written; the index JSON for a sharded checkpoint, None for a file. A tensor never
    /// written raises, and nothing is left behind. The writer is closed afterwards either way.
    fn finish(&self, py: Python<'_>) -> PyResult<Option<String>> {
        let Some(inner) = self.lock().take() else {
            return Err(self.closed_error());
        };
        py.detach(|| match inner {
            Inner::File(w) => w.finish().map(|()| None),
            Inner::Sharded(w) => w.finish().map(Some),
        })
        .map_err(|e| self.error(py, e))
    }

    /// Closes the writer without renaming anything: its temporary files are removed and the
    /// target is left as it was. Does nothing on a closed writer.
    fn abort(&self, py: Python<'_>) {
        let inner = self.lock().take();
        py.detach(|| drop(inner));
    }

    /// True once finished or aborted.
    #[getter]
    fn closed(&self) -> bool {
        self.lock().is_none()
    }

    fn __repr__(&self) -> String {
        let state = match self.lock().as_ref() {
            None => "closed".to_owned(),
            Some(Inner::File(w)) => format!("{} missing", w.missing().count()),
            Some(Inner::Sharded(w)) => format!("{} missing", w.missing().count()),
        };
        format!("_Writer({}, {state})", self.target.display())
    }
}

/// The specs as the core takes them: (name, header or framework dtype name, header shape).
fn core_specs(specs: Vec<(String, String, Vec<usize>)>) -> PyResult<Vec<(String, Spec)>> {
    specs
        .into_iter()
        .map(|(name, dtype, shape)| Ok((name, Spec::new(parse_dtype(&dtype)?, shape))))
        .collect()
}

/// A core error of creating a writer of `target`.
fn create_error(py: Python<'_>, target: &std::path::Path, err: Error) -> PyErr {
    match err {
        Error::IoError(io) => write_error(py, io, &format!("cannot write {}", target.display())),
        other => to_pyerr(other),
    }
}

/// `_open_writer(filename, specs, metadata=None, checksum=None)`: a writer of one file laid
/// out for `specs` (a list of `(name, dtype, shape)`), with its temporary file created.
#[pyfunction]
#[pyo3(name = "_open_writer", signature = (filename, specs, metadata = None, checksum = None))]
pub fn open_writer(
    py: Python<'_>,
    filename: PathBuf,
    specs: Vec<(String, String, Vec<usize>)>,
    metadata: Option<&Bound<'_, PyAny>>,
    checksum: Option<&str>,
) -> PyResult<Writer> {
    let specs = core_specs(specs)?;
    let metadata = metadata_pairs(metadata)?;
    let options = write_options(checksum)?;
    let writer = py
        .detach(|| match metadata {
            None => StreamingWriter::create(&filename, specs, None, &options),
            Some(pairs) => StreamingWriter::create(&filename, specs, pairs, &options),
        })
        .map_err(|e| create_error(py, &filename, e))?;
    Ok(Writer {
        inner: Mutex::new(Some(Inner::File(writer))),
        target: filename,
    })
}

/// `_open_sharded_writer(folder, specs, max_shard_size, metadata=None, checksum=None)`: a
/// writer of a sharded checkpoint in `folder` (shards planned from `specs` in order, as
/// `_serialize_sharded` plans them), with every shard's temporary file created.
#[pyfunction]
#[pyo3(
    name = "_open_sharded_writer",
    signature = (folder, specs, max_shard_size, metadata = None, checksum = None)
)]
pub fn open_sharded_writer(
    py: Python<'_>,
    folder: PathBuf,
    specs: Vec<(String, String, Vec<usize>)>,
    max_shard_size: &str,
    metadata: Option<&Bound<'_, PyAny>>,
    checksum: Option<&str>,
) -> PyResult<Writer> {
    let limit = safetensors::checkpoint::shard_index::parse_size(max_shard_size)
        .map_err(|e| PyValueError::new_err(format!("max_shard_size {max_shard_size:?}: {e}")))?;
    let specs = core_specs(specs)?;
    let metadata = metadata_pairs(metadata)?;
    let options = write_options(checksum)?;
    let writer = py
        .detach(|| ShardedWriter::create(&folder, specs, metadata, limit, &options))
        .map_err(|e| create_error(py, &folder, e))?;
    Ok(Writer {
        inner: Mutex::new(Some(Inner::Sharded(writer))),
        target: folder,
    })
}
