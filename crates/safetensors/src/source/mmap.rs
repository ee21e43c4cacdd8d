//! The one place that memory-maps files. Everything unsafe about mapping lives here.

use std::fs::File;
use std::io;

use memmap2::{Mmap, MmapOptions};

/// Maps the whole of `file` read-only, shared with the file (`MAP_SHARED`): the map shows
/// the file's current contents, including later writes by other processes.
///
/// # Safety
/// While the map (or any slice borrowed from it) lives, the file must not be modified in
/// place or truncated by anyone: a write would change bytes behind a `&[u8]`, and a
/// truncation makes reads of the lost pages fault (SIGBUS). Callers pass this contract on
/// to their users (see `Backend::mmap`) and check the file's size before each read.
pub(crate) unsafe fn map_file(file: &File) -> io::Result<Mmap> {
    // SAFETY: the map is read-only and this crate never writes through it; that nobody
    // else writes to or truncates the file is this function's contract, stated above.
    unsafe { MmapOptions::new().map(file) }
}
