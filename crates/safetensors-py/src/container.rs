//! What a `safe_open` handle reads: one open container (`Opened`: a file, a buffer, a file
//! object or a URL, with its mapping), or the shards of a checkpoint opened as needed
//! (`Container`), and what the handle shares with the slices it hands out (`Inner`). Reads of
//! whole tensors and of slices end here: a view of the mapping, or a copy of the selected
//! runs of bytes into a new framework tensor.

use crate::error::{slice_error, st_err, to_pyerr};
use crate::framework::Hooks;
use crate::mapping::Map;
use crate::raw::buffer_bytes;
use crate::source::Source;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyList;
use safetensors::checkpoint::{Checkpoint, ShardFile};
use safetensors::plan::coalesce::{coalesce, span_of};
use safetensors::slice::{byte_ranges, ByteRanges};
use safetensors::tensor::TensorInfo;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// Copies from the mapping above this size run with the interpreter detached.
const DETACH_ABOVE: usize = 1 << 16;

/// Without a mapping, runs shorter than this on average are read as one covering span...
const COVER_BELOW: usize = 1 << 12;

/// ...when every page of this size in that span holds selected bytes: storage reads whole
/// pages, so the span then costs no more I/O than the runs, in one call instead of one a run.
const PAGE: usize = 1 << 12;

/// Over HTTP, runs of a slice closer than this are fetched in one Range request: skipping
/// up to 1 MiB costs less than another round trip.
const REMOTE_GAP: usize = 1 << 20;

/// An open container: where its bytes come from, and the mapping views are made of.
pub struct Opened {
    /// Where the bytes come from.
    pub source: Source,
    /// The one private mapping of the file (mmap backend on a path only).
    pub map: Option<Map>,
}

impl Opened {
    /// A checkpoint's file as an `Opened`: a local file mapped when `map` (the mmap backend),
    /// a remote one read with Range requests.
    pub fn from_shard(py: Python<'_>, file: ShardFile, map: bool) -> PyResult<Opened> {
        Ok(match file {
            ShardFile::Local(file) => Opened {
                map: match map {
                    true => crate::mapping::private_map(py, &file)?,
                    false => None,
                },
                source: Source::File(file),
            },
            ShardFile::Remote(file) => Opened {
                source: Source::Remote(file),
                map: None,
            },
            _ => return Err(st_err("this kind of checkpoint file is not supported")),
        })
    }

    /// The header entry of tensor `name`, or a `SafetensorError` naming it.
    pub fn info(&self, name: &str) -> PyResult<TensorInfo> {
        self.source.metadata().entry(name).ok_or_else(|| {
            st_err(format!(
                "File does not contain tensor {name}: call keys() to list the tensors it has"
            ))
        })
    }

    /// The bytes `run` (relative to the first byte of the tensor described by `info`) as a
    /// framework tensor of `shape` viewing the mapping; None when there is no mapping or the
    /// framework cannot view these bytes.
    pub fn view<'py>(
        &self,
        py: Python<'py>,
        hooks: &Hooks,
        info: &TensorInfo,
        shape: &[usize],
        run: Range<usize>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (Some(map), Source::File(file)) = (&self.map, &self.source) else {
            return Ok(None);
        };
        // A file that shrank since it was mapped would fault on first touch of a view:
        // refuse cleanly instead (a shrink after this check is the documented limit).
        file.check_unchanged().map_err(to_pyerr)?;
        let offset = file.data_start() + (info.data_offsets.0 + run.start) as u64;
        hooks.view(py, &map.obj, info.dtype, shape, offset, run.len())
    }

    /// Copies the byte runs of `plan` (relative to the first byte of tensor `name`) one after
    /// the other into `dst`, whose length is their total: from the mapping or an in-memory
    /// source run by run, from a file or file object as described in `read_unmapped`.
    pub fn read_plan(
        &self,
        py: Python<'_>,
        name: &str,
        info: &TensorInfo,
        plan: ByteRanges,
        dst: &mut [u8],
    ) -> PyResult<()> {
        let (begin, end) = info.data_offsets;
        let tensor: &[u8] = match (&self.map, &self.source) {
            (Some(map), Source::File(file)) => {
                file.check_unchanged().map_err(to_pyerr)?;
                let start = file.data_start() as usize;
                &map.bytes()[start + begin..start + end]
            }
            (
                _,
                Source::Buffer {
                    buf, data_start, ..
                },
            ) => &buffer_bytes(buf)[data_start + begin..data_start + end],
            _ => return self.read_unmapped(py, name, info, plan, dst),
        };
        if dst.len() > DETACH_ABOVE {
            py.detach(|| gather(tensor, 0, plan, dst));
        } else {
            gather(tensor, 0, plan, dst);
        }
        Ok(())
    }

    /// `read_plan` from a file without a mapping (pread) or a Python file object. Many short
    /// runs (a step along an inner dimension, a rank's part of short rows) are read as their
    /// covering span in one read, then gathered, when no page of that span lies wholly
    /// between runs: the storage reads those pages in any case, and one system call (or one
    /// Python `read`) per run would cost far more. Otherwise each run is read on its own, so
    /// a selection never costs reading pages it does not touch (a rank's part of a split
    /// tensor reads only that part's pages).
    fn read_unmapped(
        &self,
        py: Python<'_>,
        name: &str,
        info: &TensorInfo,
        plan: ByteRanges,
        dst: &mut [u8],
    ) -> PyResult<()> {
        if let Source::Remote(_) = self.source {
            return self.read_remote(py, name, info, plan, dst);
        }
        let runs = plan.len();
        let n = plan.run_len();
        let (lo, hi) = plan
            .rows()
            .fold((usize::MAX, 0), |(lo, hi), (start, count, step)| {
                let last = (start as isize + (count as isize - 1).max(0) * step) as usize;
                (lo.min(start.min(last)), hi.max(start.max(last) + n))
            });
        let short_runs = runs > 1 && dst.len() / runs < COVER_BELOW;
        let at = self.source.data_start() + info.data_offsets.0 as u64;
        if !short_runs || skips_a_page(&plan, at, lo, hi) {
            let ranges: Vec<Range<usize>> = plan.collect();
            return self.source.read_ranges(py, name, info, &ranges, dst);
        }
        let mut span = vec![0u8; hi - lo];
        #[allow(clippy::single_range_in_vec_init)]
        let cover = [lo..hi];
        self.source.read_ranges(py, name, info, &cover, &mut span)?;
        py.detach(|| gather(&span, lo, plan, dst));
        Ok(())
    }

    /// `read_plan` from a URL: runs closer than [`REMOTE_GAP`] are fetched as one covering
    /// span (one Range request each, several at once), then gathered; runs with no gap
    /// between them (a row slice) go straight into `dst`.
    fn read_remote(
        &self,
        py: Python<'_>,
        name: &str,
        info: &TensorInfo,
        plan: ByteRanges,
        dst: &mut [u8],
    ) -> PyResult<()> {
        let spans = coalesce(plan.clone(), REMOTE_GAP);
        let covered: usize = spans.iter().map(|s| s.len()).sum();
        if covered == dst.len() {
            return self.source.read_ranges(py, name, info, &spans, dst);
        }
        let mut buf = vec![0u8; covered];
        self.source.read_ranges(py, name, info, &spans, &mut buf)?;
        // Where each span starts in `buf`.
        let starts: Vec<usize> = spans
            .iter()
            .scan(0, |at, s| {
                let here = *at;
                *at += s.len();
                Some(here)
            })
            .collect();
        py.detach(|| {
            let mut off = 0;
            for run in plan {
                let Some(k) = span_of(&spans, &run) else {
                    return Err(st_err(format!(
                        "tensor {name}: byte run {run:?} is outside the spans read"
                    )));
                };
                let from = starts[k] + run.start - spans[k].start;
                dst[off..off + run.len()].copy_from_slice(&buf[from..from + run.len()]);
                off += run.len();
            }
            Ok(())
        })
    }

    /// The byte runs of `plan` of tensor `name` as a framework tensor of `shape`: a view of
    /// the mapping when they are one run and the framework can view it, else a copy.
    pub fn tensor_of<'py>(
        &self,
        py: Python<'py>,
        hooks: &Hooks,
        name: &str,
        info: &TensorInfo,
        shape: &[usize],
        plan: ByteRanges,
    ) -> PyResult<Bound<'py, PyAny>> {
        if plan.len() == 1 {
            let run = plan.clone().next().unwrap_or(0..0);
            if let Some(view) = self.view(py, hooks, info, shape, run)? {
                return Ok(view);
            }
        }
        let want = plan.remaining_byte_len();
        hooks.build(py, name, info.dtype, shape, want, |dst| {
            self.read_plan(py, name, info, plan, dst)
        })
    }
}

/// Whether some page (`PAGE` bytes of the file) of `lo..hi` holds none of the runs of
/// `plan`, whose offsets are relative to the tensor's first byte at `at` in the file: the
/// pages the runs touch, counted in the runs' order (exact for runs in file order, an
/// over-count otherwise, which only favours covering), are fewer than the span's.
fn skips_a_page(plan: &ByteRanges, at: u64, lo: usize, hi: usize) -> bool {
    // Offsets shifted by the tensor's position within its page give the file's pages.
    let shift = (at % PAGE as u64) as usize;
    let (lo, hi) = (lo + shift, hi + shift);
    let span_pages = (hi - 1) / PAGE - lo / PAGE + 1;
    let n = plan.run_len();
    let mut touched = 0;
    let mut last_page = usize::MAX;
    for (start, count, step) in plan.rows() {
        let mut at = (start + shift) as isize;
        for _ in 0..count {
            let (first, last) = (at as usize / PAGE, (at as usize + n - 1) / PAGE);
            touched += last - first + 1 - usize::from(first == last_page);
            if touched >= span_pages {
                return false;
            }
            last_page = last;
            at += step;
        }
    }
    true
}

/// Copies the runs of `plan` from `src` (which holds the tensor's bytes from offset `lo` on)
/// one after the other into `dst`, row by row (see `ByteRanges::rows`). Runs of one small
/// element (a step along the last dimension) are copied as fixed-size values, far faster
/// than a `memcpy` call each.
fn gather(src: &[u8], lo: usize, plan: ByteRanges, dst: &mut [u8]) {
    match plan.run_len() {
        1 => gather_rows::<1>(src, lo, &plan, dst),
        2 => gather_rows::<2>(src, lo, &plan, dst),
        4 => gather_rows::<4>(src, lo, &plan, dst),
        8 => gather_rows::<8>(src, lo, &plan, dst),
        16 => gather_rows::<16>(src, lo, &plan, dst),
        n => {
            let mut off = 0;
            for (start, count, step) in plan.rows() {
                let mut at = start as isize - lo as isize;
                for _ in 0..count {
                    let from = at as usize;
                    dst[off..off + n].copy_from_slice(&src[from..from + n]);
                    off += n;
                    at += step;
                }
            }
        }
    }
}

/// `gather` for runs of exactly `N` bytes.
fn gather_rows<const N: usize>(src: &[u8], lo: usize, plan: &ByteRanges, dst: &mut [u8]) {
    let mut out = dst.chunks_exact_mut(N);
    for (start, count, step) in plan.rows() {
        let mut at = start as isize - lo as isize;
        for chunk in out.by_ref().take(count) {
            let from = at as usize;
            let bytes: [u8; N] = src[from..from + N].try_into().expect("a run of N bytes");
            chunk.copy_from_slice(&bytes);
            at += step;
        }
    }
}

/// What a handle reads: one container, or the shards of a checkpoint opened as needed.
pub enum Container {
    /// One file, buffer or file object.
    Single(Arc<Opened>),
    /// An index of shards.
    Sharded {
        /// The checkpoint: names, shard of each tensor, lazily opened shard files.
        checkpoint: Checkpoint,
        /// Each shard as an `Opened` (with its mapping), made on first use.
        opened: Vec<OnceLock<Arc<Opened>>>,
        /// Whether to map shards (the mmap backend).
        map: bool,
    },
}

impl Container {
    /// The container holding tensor `name`, opening its shard if needed.
    pub fn for_tensor(&self, py: Python<'_>, name: &str) -> PyResult<Arc<Opened>> {
        let (checkpoint, opened, map) = match self {
            Container::Single(one) => return Ok(one.clone()),
            Container::Sharded {
                checkpoint,
                opened,
                map,
            } => (checkpoint, opened, *map),
        };
        let at = checkpoint.shard_of(name).ok_or_else(|| {
            st_err(format!(
                "File does not contain tensor {name}: call keys() to list the tensors it has"
            ))
        })?;
        self.shard(py, checkpoint, opened, map, at)
    }

    /// Shard `at` as an `Opened`, made once.
    fn shard(
        &self,
        py: Python<'_>,
        checkpoint: &Checkpoint,
        opened: &[OnceLock<Arc<Opened>>],
        map: bool,
        at: usize,
    ) -> PyResult<Arc<Opened>> {
        if let Some(one) = opened[at].get() {
            return Ok(one.clone());
        }
        let file = py
            .detach(|| checkpoint.shard_file(at).cloned())
            .map_err(to_pyerr)?;
        let made = Arc::new(Opened::from_shard(py, file, map)?);
        Ok(opened[at].get_or_init(|| made).clone())
    }

    /// The header entry of tensor `name`.
    pub fn info(&self, py: Python<'_>, name: &str) -> PyResult<TensorInfo> {
        Ok(self.for_tensor(py, name)?.info(name)?.clone())
    }

    /// The tensor names, sorted.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Container::Single(one) => one
                .source
                .metadata()
                .iter_names_sorted()
                .map(str::to_owned)
                .collect(),
            Container::Sharded { checkpoint, .. } => {
                checkpoint.names().map(str::to_owned).collect()
            }
        }
    }

    /// The tensor names in shard order, then in the order of their data.
    pub fn offset_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        match self {
            Container::Single(one) => Ok(one.source.metadata().offset_keys()),
            Container::Sharded { checkpoint, .. } => {
                py.detach(|| checkpoint.offset_keys()).map_err(to_pyerr)
            }
        }
    }

    /// The metadata pairs: the header's `__metadata__`, or the index's `metadata` merged
    /// with the shards' (see `Checkpoint::metadata`).
    pub fn metadata(&self, py: Python<'_>) -> PyResult<Option<Vec<(String, String)>>> {
        match self {
            Container::Single(one) => {
                Ok(one.source.metadata().metadata_ordered().map(|m| m.to_vec()))
            }
            Container::Sharded { checkpoint, .. } => {
                py.detach(|| checkpoint.metadata()).map_err(to_pyerr)
            }
        }
    }

    /// True when the files are at URLs (reads are Range requests).
    pub fn is_remote(&self) -> bool {
        match self {
            Container::Single(one) => matches!(one.source, Source::Remote(_)),
            Container::Sharded { checkpoint, .. } => checkpoint.is_remote(),
        }
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        match self {
            Container::Single(one) => one.source.metadata().len(),
            Container::Sharded { checkpoint, .. } => checkpoint.len(),
        }
    }

    /// True when tensor `name` is in the container.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Container::Single(one) => one.source.metadata().entry(name).is_some(),
            Container::Sharded { checkpoint, .. } => checkpoint.contains(name),
        }
    }
}

/// What a `safe_open` and the slices it hands out share.
pub struct Inner {
    /// The framework's hooks and the device.
    pub hooks: Hooks,
    /// The open container; None once closed.
    state: Mutex<Option<Arc<Container>>>,
}

impl Inner {
    /// What a handle opened on `container` shares with its slices.
    pub fn new(hooks: Hooks, container: Container) -> Self {
        Inner {
            hooks,
            state: Mutex::new(Some(Arc::new(container))),
        }
    }

    /// The open container, or the `SafetensorError` of a closed handle.
    pub fn opened(&self, py: Python<'_>) -> PyResult<Arc<Container>> {
        let state = self
            .state
            .lock_py_attached(py)
            .map_err(|_| st_err("a previous call on this file failed midway; open it again"))?;
        state.clone().ok_or_else(|| {
            st_err(
                "File is closed: this safe_open handle was used after its `with` block \
                 ended; open the file again",
            )
        })
    }

    /// Closes the container: drops the source (its file descriptor) and the reference to the
    /// mapping, once any read in progress on another thread is done.
    pub fn close(&self, py: Python<'_>) {
        let taken = match self.state.lock_py_attached(py) {
            Ok(mut state) => state.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(taken);
    }

    /// The whole tensor `name` as a framework tensor.
    pub fn tensor<'py>(
        &self,
        py: Python<'py>,
        container: &Container,
        name: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let opened = container.for_tensor(py, name)?;
        let info = opened.info(name)?;
        let whole =
            byte_ranges(info.dtype, &info.shape, &[]).map_err(|e| slice_error(py, name, e))?;
        opened.tensor_of(py, &self.hooks, name, &info, &info.shape, whole)
    }
}

/// Helper used by slices: a list of Python ints.
pub fn shape_list<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, shape)
}
