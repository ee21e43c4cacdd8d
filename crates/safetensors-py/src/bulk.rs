//! Whole loads: many tensors (or large parts of them) read at once by the core's parallel
//! reader, straight into memory the caller allocated.
//!
//! `safe_open` is lazy: `get_tensor` hands out views of the file's private mapping, whose
//! pages the kernel reads one fault at a time on first touch. That is ideal when the file is
//! already in the page cache (nothing is copied) or when only part of it is used, and slow
//! from a cold disk, where one thread faulting 4 KiB-128 KiB at a time leaves the device
//! mostly idle. A load that wants every byte (`load_file`, `get_tensors`, `load_model`) goes
//! through here instead:
//!
//! - [`read_items`] fills caller memory (tensors the framework allocated: the loads below,
//!   and `safe_open._read_into` for `load_model`/`load_into` into CPU tensors) with byte
//!   ranges of named tensors through the core's `reader::batch::read_pieces`, which groups
//!   them by file (shard) and reads each group with several threads, large blocks in file
//!   order, after an `advise_sequential` hint.
//! - [`load_all`] allocates every tensor with the framework's `_st_empty` hook, reads them
//!   all in one go with [`read_items`], then finishes each (`_st_finish`). Each tensor owns
//!   its memory, so tensors are independent and writable, as with any other copy.
//! - [`plan`] asks the core (`safetensors::reader::whole::choose`) how to read: the parallel
//!   reader for the pread backend (no mapping to view); with the mmap backend, the mapping's
//!   views (zero-copy, independent of how much is used later), after [`prefetch`] when the
//!   files' bytes are not in the page cache: `POSIX_FADV_WILLNEED` over the span needed
//!   queues every read at once in large requests, so the faults that follow find their
//!   pages arriving instead of reading them one by one. Loads that know their
//!   destination (`load_model`, `load_into`) always use [`read_items`]. In-memory buffers
//!   and Python file objects keep their own paths, and so do loads to a device other than
//!   the CPU (one tensor in host memory at a time), except where the framework stages them
//!   (torch on CUDA: `_staging.py` drives the core's staging ring,
//!   `safetensors::reader::staging`, through `staging.rs`, into its pinned buffers).

use crate::container::{Container, Opened};
use crate::error::{st_err, to_pyerr};
use crate::framework::Hooks;
use crate::raw::RawDst;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use safetensors::checkpoint::ShardFile;
use safetensors::reader::batch::{read_pieces, Piece};
use safetensors::reader::whole::{self, choose, WholeLoad};
use safetensors::reader::ReaderOptions;
use std::sync::Arc;

/// How a whole load reads: chosen per load by [`plan`] (`Auto`), or forced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Strategy {
    /// As [`plan`] decides.
    Auto,
    /// Always tensor by tensor (`get_tensor`), never prefetched.
    Mmap,
    /// Always the parallel reader into fresh memory.
    Read,
}

impl Strategy {
    /// Parses the private `strategy` argument ("auto", "mmap", "read").
    pub fn parse(name: &str) -> PyResult<Strategy> {
        match name {
            "auto" => Ok(Strategy::Auto),
            "mmap" => Ok(Strategy::Mmap),
            "read" => Ok(Strategy::Read),
            _ => Err(PyValueError::new_err(format!(
                "load strategy {name:?} is not supported: use \"auto\", \"mmap\" or \"read\""
            ))),
        }
    }
}

/// The reader's options, with the caller's overrides.
pub fn options(threads: Option<usize>, block_size: Option<usize>) -> ReaderOptions {
    let mut options = ReaderOptions::default();
    if let Some(threads) = threads {
        options.threads = threads.max(1);
    }
    if let Some(block_size) = block_size {
        options.block_size = block_size.max(1);
    }
    options
}

/// One piece to read: `dst.len()` bytes of tensor `name` from byte `start` of the tensor on.
pub struct Item {
    /// The tensor.
    pub name: String,
    /// The first byte wanted, relative to the tensor's first byte.
    pub start: usize,
    /// Where the bytes go.
    pub dst: RawDst,
}

/// Fills every item's destination: the core's `reader::batch::read_pieces` groups them by
/// the file (shard) holding the tensor and reads each group as its kind of file reads best,
/// with the interpreter detached. Ranges are checked against the header first; nothing is
/// read when one is out of bounds. `sequential`: first tell the kernel a local file is read
/// sequentially (a whole load); false leaves its readahead as it is (a rank's parts).
pub fn read_items(
    py: Python<'_>,
    container: &Container,
    mut items: Vec<Item>,
    options: &ReaderOptions,
    sequential: bool,
) -> PyResult<()> {
    let mut located: Vec<(Arc<Opened>, u64)> = Vec::with_capacity(items.len());
    for item in &items {
        let opened = container.for_tensor(py, &item.name)?;
        let info = opened.info(&item.name)?;
        let (begin, end) = info.data_offsets;
        let len = item.dst.len();
        if item
            .start
            .checked_add(len)
            .is_none_or(|stop| stop > end - begin)
        {
            return Err(st_err(format!(
                "byte range {}..{} is outside tensor {}, which has {} bytes",
                item.start,
                item.start.saturating_add(len),
                item.name,
                end - begin
            )));
        }
        let offset = opened.origin.data_start() + (begin + item.start) as u64;
        located.push((opened, offset));
    }
    let pieces: Vec<Piece<'_>> = located
        .iter()
        .zip(items.iter_mut())
        .map(|((opened, offset), item)| Piece {
            file: &opened.origin,
            offset: *offset,
            dst: item.dst.as_mut_slice(),
        })
        .collect();
    py.detach(|| read_pieces(pieces, options, sequential))
        .map_err(to_pyerr)
}

/// The way a whole load of `names` with `strategy` reads: as the core's
/// `reader::whole::choose` decides from the files' mappings (the parallel reader for the
/// pread backend; views, prefetched first when the data is not cached). Buffers and file
/// objects: tensor by tensor.
pub fn plan(
    py: Python<'_>,
    container: &Container,
    names: &[String],
    strategy: Strategy,
) -> PyResult<WholeLoad> {
    match strategy {
        Strategy::Read => return Ok(WholeLoad::Read),
        Strategy::Mmap => return Ok(WholeLoad::Views),
        Strategy::Auto => {}
    }
    let mut mapped: Vec<Option<&[u8]>> = Vec::new();
    let opened = distinct(py, container, names)?;
    for one in &opened {
        match (&one.origin, &one.map) {
            (ShardFile::Local(file), map) => mapped.push(
                map.as_ref()
                    .map(|m| &m.bytes()[file.data_start() as usize..]),
            ),
            // Buffers and file objects: their own per-tensor paths.
            _ => return Ok(WholeLoad::Views),
        }
    }
    Ok(choose(mapped))
}

/// The containers holding `names`, each once, in order of first appearance.
fn distinct(py: Python<'_>, container: &Container, names: &[String]) -> PyResult<Vec<Arc<Opened>>> {
    let mut seen: Vec<Arc<Opened>> = Vec::new();
    for name in names {
        let opened = container.for_tensor(py, name)?;
        if !seen.iter().any(|o| Arc::ptr_eq(o, &opened)) {
            seen.push(opened);
        }
    }
    Ok(seen)
}

/// Asks the kernel to read the bytes of `names` into the page cache now, file by file (the
/// span from the first to the last byte needed in each).
pub fn prefetch(py: Python<'_>, container: &Container, names: &[String]) -> PyResult<()> {
    let mut spans: Vec<(Arc<Opened>, usize, usize)> = Vec::new();
    for name in names {
        let opened = container.for_tensor(py, name)?;
        let (begin, end) = opened.info(name)?.data_offsets;
        match spans.iter_mut().find(|(o, _, _)| Arc::ptr_eq(o, &opened)) {
            Some((_, lo, hi)) => (*lo, *hi) = ((*lo).min(begin), (*hi).max(end)),
            None => spans.push((opened, begin, end)),
        }
    }
    for (opened, lo, hi) in spans {
        if let ShardFile::Local(file) = &opened.origin {
            py.detach(|| whole::prefetch(file, lo..hi));
        }
    }
    Ok(())
}

/// Every tensor of `names` as a dict (in the order given): with the parallel reader into
/// freshly allocated tensors, or tensor by tensor through the hooks, as [`plan`] says.
pub fn load_all<'py>(
    py: Python<'py>,
    hooks: &Hooks,
    container: &Container,
    names: Vec<String>,
    strategy: Strategy,
    options: &ReaderOptions,
    one: impl Fn(&str) -> PyResult<Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    if container.is_remote() {
        // Fetched with Range requests, several at once, straight into fresh tensors.
        let tensors = crate::remote::load_all(py, hooks, container, &names)?;
        for (name, tensor) in names.into_iter().zip(tensors) {
            dict.set_item(name, tensor)?;
        }
        return Ok(dict);
    }
    // Tensors bound for a device are read one at a time (each moved before the next is
    // read), so that host memory never holds them all. Whole loads to CUDA with torch
    // (`load_file`, `get_tensors` through the `_st_load_all` hook) use the staging ring of
    // `_staging.py` instead and never come here.
    let plan = match hooks.on_cpu(py) {
        true => plan(py, container, &names, strategy)?,
        false => WholeLoad::Views,
    };
    if plan != WholeLoad::Read {
        if plan == WholeLoad::Prefetch {
            prefetch(py, container, &names)?;
        }
        for name in names {
            dict.set_item(&name, one(&name)?)?;
        }
        return Ok(dict);
    }
    let mut holders = Vec::with_capacity(names.len());
    let mut items = Vec::with_capacity(names.len());
    for name in names {
        let info = container.for_tensor(py, &name)?.info(&name)?.clone();
        let mut empty = hooks.empty(py, &name, info.dtype, &info.shape, info.byte_len())?;
        items.push(Item {
            name: name.clone(),
            start: 0,
            dst: empty.take_dst(),
        });
        holders.push((name, empty));
    }
    read_items(py, container, items, options, true)?;
    for (name, empty) in holders {
        dict.set_item(name, hooks.finish(py, empty)?)?;
    }
    Ok(dict)
}
