//! Python objects as the core's byte `Source`s, so that a bytes-like object (`load(bytes)`,
//! `_safe_open_bytes`) and a file object (`_safe_open_handle`, e.g. an fsspec file) open
//! through the core's `Checkpoint` like a path or a URL: [`open_buffer`], [`open_handle`].
//! The checkpoint's file is then a `ShardFile::Other`, read by the core's readers (a buffer
//! viewed in memory, a file object through `seek`/`read`).

use crate::error::{io_error, st_err, to_pyerr};
use crate::raw::{buffer_bytes, PinnedBytes};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyBytes;
use safetensors::checkpoint::Checkpoint;
use safetensors::source::Source as CoreSource;
use safetensors::Error as CoreError;
use std::sync::Mutex;

/// A checkpoint of the whole safetensors file held in a Python buffer.
pub fn open_buffer(data: &Bound<'_, PyAny>) -> PyResult<Checkpoint> {
    let buf = PinnedBytes::get(data)?;
    if !buf.is_c_contiguous() {
        return Err(st_err(
            "the safetensors data must be a contiguous bytes-like object",
        ));
    }
    open_pinned(buf)
}

/// A checkpoint of the whole safetensors file in a buffer already pinned (and checked to be
/// one contiguous run).
pub fn open_pinned(buf: PinnedBytes) -> PyResult<Checkpoint> {
    Checkpoint::from_source("<bytes>", Buffer(buf)).map_err(to_pyerr)
}

/// A checkpoint of the file a Python file object (anything with `seek` and `read`) reads.
pub fn open_handle(file: &Bound<'_, PyAny>) -> PyResult<Checkpoint> {
    let file = FileObject {
        file: file.clone().unbind(),
        lock: Mutex::new(()),
    };
    Checkpoint::from_source("<file object>", file).map_err(to_pyerr)
}

/// A pinned Python buffer: memory, so readers view it directly.
struct Buffer(PinnedBytes);

impl CoreSource for Buffer {
    fn size(&self) -> Result<u64, CoreError> {
        buffer_bytes(&self.0).size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CoreError> {
        buffer_bytes(&self.0).read_at(offset, buf)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(buffer_bytes(&self.0))
    }
}

/// A Python file object as a core [`CoreSource`]: each read is a `seek` then `read`s,
/// serialized by a lock so concurrent readers do not move each other's position. Python
/// errors travel through the core wrapped in its I/O error and come out unchanged (see
/// `error::to_pyerr`).
struct FileObject {
    file: Py<PyAny>,
    lock: Mutex<()>,
}

impl FileObject {
    fn with_file<T>(
        &self,
        f: impl FnOnce(&Bound<'_, PyAny>) -> PyResult<T>,
    ) -> Result<T, CoreError> {
        Python::attach(|py| {
            let _guard = self.lock.lock_py_attached(py).map_err(|_| {
                st_err("a previous read of this file object failed midway; open it again")
            })?;
            f(self.file.bind(py))
        })
        .map_err(|e| CoreError::IoError(std::io::Error::other(e)))
    }
}

impl CoreSource for FileObject {
    fn size(&self) -> Result<u64, CoreError> {
        self.with_file(|file| {
            let size = seek(file, 0, 2)?;
            seek(file, 0, 0)?;
            Ok(size)
        })
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), CoreError> {
        self.with_file(|file| {
            seek(file, offset, 0)?;
            read_into(file, buf)
        })
    }
}

/// `file.seek(pos, whence)`, returning the new position (from `tell()` when `seek` returns None).
fn seek(file: &Bound<'_, PyAny>, pos: u64, whence: u8) -> PyResult<u64> {
    let ret = file.call_method1("seek", (pos, whence))?;
    if ret.is_none() {
        return file.call_method0("tell")?.extract();
    }
    ret.extract()
}

/// Fills `dst` from the file object's current position, looping over short reads.
fn read_into(file: &Bound<'_, PyAny>, dst: &mut [u8]) -> PyResult<()> {
    let mut off = 0;
    while off < dst.len() {
        let want = dst.len() - off;
        let chunk = file.call_method1("read", (want,))?;
        let chunk = chunk.cast::<PyBytes>().map_err(|_| {
            st_err("the file object's read() must return bytes (open the file in binary mode)")
        })?;
        let bytes = chunk.as_bytes();
        if bytes.is_empty() {
            return Err(io_error(
                std::io::Error::from(std::io::ErrorKind::UnexpectedEof),
                &format!("file object ended {} bytes early", dst.len() - off),
            ));
        }
        let take = bytes.len().min(want);
        dst[off..off + take].copy_from_slice(&bytes[..take]);
        off += take;
    }
    Ok(())
}
