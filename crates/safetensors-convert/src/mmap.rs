//! The one place this crate uses `unsafe`: a read-only memory map of the input checkpoint.
//!
//! Mapping lets a multi-gigabyte checkpoint be converted with memory proportional to one tensor
//! (contiguous tensors are written straight from the map). An empty file is represented without
//! a map, since mapping zero bytes fails on some platforms.

use std::fs::File;
use std::path::Path;

/// A read-only view of a whole file.
pub(crate) struct Mapped {
    map: Option<memmap2::Mmap>,
}

impl Mapped {
    /// Maps `path` read-only.
    pub(crate) fn open(path: &Path) -> std::io::Result<Mapped> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        if len == 0 {
            return Ok(Mapped { map: None });
        }
        // SAFETY: the map is read-only and private to this process; the file is opened read-only
        // and never written by us. As with every mmap-based reader (including the safetensors
        // format's own loaders), another process truncating the file while it is mapped could
        // fault the reader; that is outside what a library can prevent, and documented on
        // `read_checkpoint`.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        Ok(Mapped { map: Some(map) })
    }

    /// The file's bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&[])
    }
}
