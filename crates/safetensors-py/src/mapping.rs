//! The private, copy-on-write memory map that zero-copy loads are views of.
//!
//! With the mmap backend, `safe_open` maps the file it has just validated once more, this time
//! `MAP_PRIVATE` and writable (Python's `mmap.mmap(fd, 0, access=ACCESS_COPY)` over the core's
//! own file descriptor, so it is the very file whose header was checked, not whatever the path
//! names now). The framework modules build each tensor as a view into this mapping
//! (`torch.frombuffer`, `numpy.frombuffer`): loading copies nothing, pages are read from the
//! page cache on first touch, writes to a tensor stay private to the process (copy-on-write)
//! and never reach the file, and the mapping lives as long as any tensor references it.
//!
//! "Private" is about our writes only: a page this process has not written still shows the
//! file, so another process writing the file in place changes the tensors' values (and a
//! truncation makes touching them fault). That is `safe_open`'s contract with its caller, as
//! for any mmap loader; Python's `mmap` module owns this mapping, so no Rust reference ever
//! points into it.

use crate::error::{st_err, to_pyerr};
use pyo3::prelude::*;
use pyo3::types::PyDict;
use safetensors::file::SafeFile;

/// Maps `file` privately for zero-copy views, or returns None where views are not offered
/// (the pread backend, which never maps; platforms without POSIX file descriptors).
///
/// The mapping's length must equal the file length validated at open (`data_start` plus the
/// header's data length) and the file must still have that length: otherwise the file changed
/// since it was validated and the open fails rather than hand out views of other bytes.
pub fn private_map(py: Python<'_>, file: &SafeFile) -> PyResult<Option<Py<PyAny>>> {
    if !file.backend().is_mmap() {
        return Ok(None);
    }
    map_fd(py, file)
}

#[cfg(unix)]
fn map_fd(py: Python<'_>, file: &SafeFile) -> PyResult<Option<Py<PyAny>>> {
    use std::os::fd::AsRawFd;

    let expected = file.data_start() + file.metadata().data_len() as u64;
    let mmap = py.import("mmap")?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("access", mmap.getattr("ACCESS_COPY")?)?;
    // `mmap.mmap` duplicates the descriptor, so the mapping does not depend on the core's
    // `File` staying open; the core's file outlives this call in any case (borrowed here).
    let fd = file.file().as_raw_fd();
    // A failure here is Python's own OSError (errno and message), raised as is.
    let map = mmap.getattr("mmap")?.call((fd, 0), Some(&kwargs))?;
    let len: u64 = map.len()? as u64;
    file.check_unchanged().map_err(to_pyerr)?;
    if len != expected {
        return Err(st_err(format!(
            "the file changed while it was being opened: it was {expected} bytes long when its \
             header was validated, but {len} bytes were mapped; open it again"
        )));
    }
    Ok(Some(map.unbind()))
}

#[cfg(not(unix))]
fn map_fd(_py: Python<'_>, _file: &SafeFile) -> PyResult<Option<Py<PyAny>>> {
    Ok(None)
}
