//! The one memory map of a file opened with the mmap backend.
//!
//! `safe_open` maps the file it has just validated once, `MAP_PRIVATE` and writable (Python's
//! `mmap.mmap(fd, 0, access=ACCESS_COPY)` over the core's own file descriptor, so it is the
//! very file whose header was checked, not whatever the path names now). Everything reads
//! through this one mapping: the framework modules build views into it (`torch.frombuffer`,
//! `numpy.frombuffer`), so loading copies nothing and pages are read from the page cache on
//! first touch, and every copy (other frameworks, slices of several byte runs) copies from it.
//! Writes to a view stay private to the process (copy-on-write) and never reach the file.
//! Closing the `safe_open` drops this object's references: the mapping goes away as soon as
//! no tensor handed out still views it.
//!
//! "Private" is about our writes only: a page this process has not written still shows the
//! file, so another process writing the file in place changes the tensors' values (and a
//! truncation makes touching them fault). That is `safe_open`'s contract with its caller, as
//! for any mmap loader (numpy.memmap, torch.load(mmap=True)); Python's `mmap` module owns
//! this mapping, and the copies that read it through [`Map::bytes`] check the file's length
//! first.

use crate::error::{st_err, to_pyerr};
use crate::raw::PinnedWritable;
use pyo3::prelude::*;
use safetensors::source::file::SafeFile;

/// The private mapping of a file: the Python `mmap` object views are made of, and a pinned
/// buffer over it that copies read from.
pub struct Map {
    /// The `mmap.mmap` object.
    pub obj: Py<PyAny>,
    buf: PinnedWritable,
}

impl Map {
    /// The whole file's bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.bytes()
    }
}

/// Maps `file` privately, or returns None where mapping is not offered (platforms without
/// POSIX file descriptors: the loader then reads with the core's positioned reads).
///
/// The mapping's length must equal the file length validated at open (`data_start` plus the
/// header's data length) and the file must still have that length: otherwise the file changed
/// since it was validated and the open fails rather than hand out views of other bytes.
#[cfg(unix)]
pub fn private_map(py: Python<'_>, file: &SafeFile) -> PyResult<Option<Map>> {
    use pyo3::types::PyDict;
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
    let buf = PinnedWritable::get(&map, len as usize)?;
    Ok(Some(Map {
        obj: map.unbind(),
        buf,
    }))
}

/// No mapping where there are no POSIX file descriptors.
#[cfg(not(unix))]
pub fn private_map(_py: Python<'_>, _file: &SafeFile) -> PyResult<Option<Map>> {
    Ok(None)
}
