//! Whole loads (every tensor of a file, or most of it): how to read them, and the kernel's
//! read hints that go with each way.
//!
//! Views of a file's mapping copy nothing, which is ideal when the file is already in the
//! page cache, but from a cold disk one thread faulting a page at a time leaves the device
//! mostly idle. So a whole load over mappings first asks how much of the data is cached
//! (`source::cache::resident_fraction`, sampled): below
//! [`WARM_FRACTION`] it asks the kernel to read every needed byte at once
//! ([`prefetch`]) before viewing; a file opened without a mapping (the pread backend) is read
//! by the parallel reader into memory the caller owns ([`read_local`]).

use std::ops::Range;

use crate::format::error::Error;
use crate::reader::{read_into, Read, ReaderOptions};
use crate::source::cache::{advise_random, advise_sequential, advise_willneed, resident_fraction};
use crate::source::file::SafeFile;

/// At least this fraction of the data in the page cache makes a load "warm": the mapping's
/// views are used as they are.
pub const WARM_FRACTION: f64 = 0.9;

/// How a whole load reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WholeLoad {
    /// Tensor by tensor: views of the mapping (or a source's own copy path).
    Views,
    /// Views of the mapping, after [`prefetch`] over the bytes needed.
    Prefetch,
    /// The parallel reader, into memory the caller owns ([`read_local`]).
    Read,
}

/// The way to load from files whose data sections are `mapped` (`None`: a file opened
/// without a mapping): [`WholeLoad::Read`] when any has no mapping, [`WholeLoad::Prefetch`]
/// when less than [`WARM_FRACTION`] of their bytes are cached, else [`WholeLoad::Views`]
/// (also when the page cache cannot be asked).
///
/// ```
/// use safetensors::reader::whole::{choose, WholeLoad};
/// assert_eq!(choose([None]), WholeLoad::Read);
/// // A buffer in this process's memory counts as cached.
/// let data = vec![1u8; 1 << 20];
/// assert_eq!(choose([Some(&data[..])]), WholeLoad::Views);
/// ```
pub fn choose<'a>(mapped: impl IntoIterator<Item = Option<&'a [u8]>>) -> WholeLoad {
    let (mut cached, mut total) = (0.0, 0.0);
    for data in mapped {
        let Some(data) = data else {
            return WholeLoad::Read;
        };
        let Some(fraction) = resident_fraction(data) else {
            return WholeLoad::Views;
        };
        cached += fraction * data.len() as f64;
        total += data.len() as f64;
    }
    match total > 0.0 && cached < WARM_FRACTION * total {
        true => WholeLoad::Prefetch,
        false => WholeLoad::Views,
    }
}

/// Asks the kernel to read `span` (offsets in `file`'s data section) into the page cache
/// now, in large requests, so that the faults of the views that follow find their pages
/// arriving.
pub fn prefetch(file: &SafeFile, span: Range<usize>) {
    if span.start < span.end {
        let start = file.data_start() + span.start as u64;
        advise_willneed(file.file(), start, span.len() as u64);
    }
}

/// Fills every read (offsets absolute in `file`) with the parallel reader, in file order,
/// after checking the file kept its size. `sequential` first tells the kernel the span from
/// the first to the last byte is read from start to end (a whole load); false leaves its
/// readahead as it is (a rank's parts, where readahead would fetch past each).
pub fn read_local(
    file: &SafeFile,
    mut reads: Vec<Read<'_>>,
    options: &ReaderOptions,
    sequential: bool,
) -> Result<(), Error> {
    file.check_unchanged()?;
    reads.sort_by_key(|r| r.offset);
    let (lo, hi) = reads.iter().fold((u64::MAX, 0), |(lo, hi), r| {
        (lo.min(r.offset), hi.max(r.offset + r.dst.len() as u64))
    });
    if sequential && lo < hi {
        advise_sequential(file.file(), lo, hi - lo);
    }
    read_into(file.file(), reads, options)
}

/// Prepares `file` for reading parts of its tensors (one rank's share): the kernel then
/// fetches exactly the pages each read asks for. Its read-ahead would otherwise also fetch
/// past the end of each part, and take a part's strided runs for a sequential stream,
/// fetching the other ranks' bytes in between. Large reads stay large.
pub fn for_parts(file: &SafeFile) {
    advise_random(file.file());
}
