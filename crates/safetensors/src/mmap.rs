//! The one place that memory-maps files. Everything unsafe about mapping lives here.

use std::fs::File;
use std::io;

use memmap2::{Mmap, MmapOptions};

/// Maps the whole of `file` read-only.
///
/// A mapped file that another process truncates makes reads of the lost pages fault
/// (SIGBUS). Callers check the file's size before handing out bytes (see
/// `SafeFile::check_unchanged`), which catches every truncation that happens before a
/// read; one that races with a read in progress cannot be caught by any mmap reader.
pub(crate) fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and private to this process's view; the crate never
    // writes through it. The remaining hazard, the file being truncated by someone else,
    // is documented above and checked for before every read.
    unsafe { MmapOptions::new().map(file) }
}
