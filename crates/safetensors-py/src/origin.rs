//! `Origin`: where a lazily opened safetensors container's bytes come from (named apart from
//! the core's `Source` trait, which the file-object origin implements): a file on disk (the
//! core's `SafeFile`, mmap or pread), a file at an http(s) URL (the core's `UrlFile`, read
//! with Range requests, several at once through `safetensors::reader::read_into`), an
//! in-memory Python buffer (`load(bytes)`), or a Python file object (`_safe_open_handle`,
//! e.g. an fsspec file) driven through `seek`/`read`.
//!
//! Every origin validates the header with the core crate and copies the selected byte
//! ranges of a tensor straight into a destination slice.

use crate::error::{io_error, st_err, to_pyerr};
use crate::raw::{buffer_bytes, PinnedBytes};
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyBytes;
use safetensors::reader::{self, Read, ReaderOptions};
use safetensors::source::file::SafeFile;
use safetensors::source::http::UrlFile;
use safetensors::source::{read_header, Source as CoreSource};
use safetensors::tensor::{Metadata, TensorInfo};
use safetensors::Error as CoreError;
use std::ops::Range;
use std::sync::{Arc, Mutex};

/// Copies above this size run with the interpreter detached.
const DETACH_ABOVE: usize = 1 << 16;

/// A validated safetensors container and the means to read its tensors' bytes.
pub enum Origin {
    /// A file opened by the core crate (shared with the `Checkpoint` it may come from).
    File(Arc<SafeFile>),
    /// A file at an http(s) URL (shared with the `Checkpoint` it comes from).
    Remote(Arc<UrlFile>),
    /// A Python buffer holding a whole safetensors file.
    Buffer {
        /// The pinned buffer.
        buf: PinnedBytes,
        /// The validated header.
        meta: Metadata,
        /// Offset of the data part in the buffer (8 + header length).
        data_start: usize,
    },
    /// A Python file object read through `seek`/`read`.
    Handle {
        /// The file object.
        file: FileObject,
        /// The validated header.
        meta: Metadata,
        /// Offset of the data part in the file.
        data_start: u64,
    },
}

impl Origin {
    /// The validated header.
    pub fn metadata(&self) -> &Metadata {
        match self {
            Origin::File(f) => f.metadata(),
            Origin::Remote(f) => f.metadata(),
            Origin::Buffer { meta, .. } | Origin::Handle { meta, .. } => meta,
        }
    }

    /// Where the data part starts (the tensors' offsets count from there).
    pub fn data_start(&self) -> u64 {
        match self {
            Origin::File(f) => f.data_start(),
            Origin::Remote(f) => f.data_start(),
            Origin::Buffer { data_start, .. } => *data_start as u64,
            Origin::Handle { data_start, .. } => *data_start,
        }
    }

    /// Validates a whole safetensors file held in a Python buffer.
    pub fn from_buffer(data: &Bound<'_, PyAny>) -> PyResult<Origin> {
        let buf = PinnedBytes::get(data)?;
        if !buf.is_c_contiguous() {
            return Err(st_err(
                "the safetensors data must be a contiguous bytes-like object",
            ));
        }
        let bytes = buffer_bytes(&buf);
        let header = safetensors::source::read_header(bytes).map_err(to_pyerr)?;
        let (n, meta) = (header.header_len, header.metadata);
        Ok(Origin::Buffer {
            buf,
            meta,
            data_start: 8 + n,
        })
    }

    /// Validates the header of a Python file object (anything with `seek` and `read`)
    /// with the core's header reader, the same one that reads paths and buffers.
    pub fn from_handle(file: &Bound<'_, PyAny>) -> PyResult<Origin> {
        let file = FileObject {
            file: file.clone().unbind(),
            lock: Mutex::new(()),
        };
        let header = read_header(&file).map_err(to_pyerr)?;
        Ok(Origin::Handle {
            file,
            data_start: header.data_start(),
            meta: header.metadata,
        })
    }

    /// Copies the byte `ranges` (relative to the first byte of tensor `name`, described by
    /// `info`) one after the other into `dst`, whose length is the ranges' total.
    pub fn read_ranges(
        &self,
        py: Python<'_>,
        name: &str,
        info: &TensorInfo,
        ranges: &[Range<usize>],
        dst: &mut [u8],
    ) -> PyResult<()> {
        debug_assert_eq!(dst.len(), ranges.iter().map(|r| r.len()).sum::<usize>());
        match self {
            Origin::File(file) => py
                .detach(|| {
                    let mut off = 0;
                    for r in ranges {
                        file.read_into(name, r.clone(), &mut dst[off..off + r.len()])?;
                        off += r.len();
                    }
                    Ok(())
                })
                .map_err(to_pyerr),
            Origin::Remote(file) => {
                let begin = file.data_start() + info.data_offsets.0 as u64;
                let mut reads = Vec::with_capacity(ranges.len());
                let mut rest = dst;
                for r in ranges {
                    let (head, tail) = rest.split_at_mut(r.len());
                    reads.push(Read {
                        offset: begin + r.start as u64,
                        dst: head,
                    });
                    rest = tail;
                }
                py.detach(|| reader::read_into(file.source(), reads, &ReaderOptions::default()))
                    .map_err(to_pyerr)
            }
            Origin::Buffer {
                buf, data_start, ..
            } => {
                let tensor = &buffer_bytes(buf)
                    [data_start + info.data_offsets.0..data_start + info.data_offsets.1];
                let copy = |dst: &mut [u8]| {
                    let mut off = 0;
                    for r in ranges {
                        dst[off..off + r.len()].copy_from_slice(&tensor[r.clone()]);
                        off += r.len();
                    }
                };
                if dst.len() > DETACH_ABOVE {
                    py.detach(|| copy(dst));
                } else {
                    copy(dst);
                }
                Ok(())
            }
            Origin::Handle {
                file, data_start, ..
            } => {
                let begin = data_start + info.data_offsets.0 as u64;
                let mut off = 0;
                for r in ranges {
                    file.read_at(begin + r.start as u64, &mut dst[off..off + r.len()])
                        .map_err(to_pyerr)?;
                    off += r.len();
                }
                Ok(())
            }
        }
    }
}

/// A Python file object as a core [`CoreSource`]: each read is a `seek` then `read`s,
/// serialized by a lock so concurrent readers do not move each other's position. Python
/// errors travel through the core wrapped in its I/O error and come out unchanged (see
/// `error::to_pyerr`).
pub struct FileObject {
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
