//! `safe_open`: lazy, thread-safe access to the tensors of a safetensors container.
//!
//! Opening reads and validates only the header (and, with the mmap backend, maps the file
//! once, privately: see `mapping.rs`). `get_tensor` then returns a view into that mapping where
//! the framework can make one; otherwise it allocates the framework tensor and copies its
//! bytes once, with the interpreter detached, straight into it.
//!
//! A folder or an index JSON opens a sharded checkpoint through the core's `Checkpoint`:
//! the names come from the index, and each shard is opened (header validated, checked
//! against the index, mapped with the mmap backend) the first time one of its tensors is
//! read; from then on it is read exactly like a single file.
//!
//! Leaving the `with` block closes the handle: the file descriptor and the handle's reference
//! to the mapping are released (tensors already handed out keep the mapping alive), and every
//! later use of the handle or of its slices raises `SafetensorError`.

use crate::error::{slice_error, st_err, to_pyerr};
use crate::framework::{Framework, Hooks};
use crate::mapping::Map;
use crate::raw::buffer_bytes;
use crate::slice::PySafeSlice;
use crate::source::Source;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::{PyDict, PyList};
use safetensors::checkpoint::Checkpoint;
use safetensors::file::{Backend, SafeFile};
use safetensors::slice::{byte_ranges, ByteRanges};
use safetensors::tensor::TensorInfo;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Copies from the mapping above this size run with the interpreter detached.
const DETACH_ABOVE: usize = 1 << 16;

/// Without a mapping, runs shorter than this on average are read as one covering span.
const COVER_BELOW: usize = 1 << 12;

/// ...and when the span is at most this many times the selected bytes (or 1 MiB).
const COVER_FACTOR: usize = 8;

/// An open container: where its bytes come from, and the mapping views are made of.
pub struct Opened {
    /// Where the bytes come from.
    pub source: Source,
    /// The one private mapping of the file (mmap backend on a path only).
    pub map: Option<Map>,
}

impl Opened {
    /// The header entry of tensor `name`, or a `SafetensorError` naming it.
    pub fn info(&self, name: &str) -> PyResult<&TensorInfo> {
        self.source.metadata().info(name).ok_or_else(|| {
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
    /// runs (a step along an inner dimension) are read as their covering span in one read,
    /// then gathered, when that span is not much larger than what is selected: one system call
    /// (or one Python `read`) per element would cost far more than the bytes skipped.
    fn read_unmapped(
        &self,
        py: Python<'_>,
        name: &str,
        info: &TensorInfo,
        plan: ByteRanges,
        dst: &mut [u8],
    ) -> PyResult<()> {
        let runs = plan.len();
        let n = plan.run_len();
        let (lo, hi) = plan
            .rows()
            .fold((usize::MAX, 0), |(lo, hi), (start, count, step)| {
                let last = (start as isize + (count as isize - 1).max(0) * step) as usize;
                (lo.min(start.min(last)), hi.max(start.max(last) + n))
            });
        let short_runs = runs > 1 && dst.len() / runs < COVER_BELOW;
        if !short_runs || hi - lo > (COVER_FACTOR * dst.len()).max(1 << 20) {
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
            .detach(|| checkpoint.shard(at).cloned())
            .map_err(to_pyerr)?;
        let map = match map {
            true => crate::mapping::private_map(py, &file)?,
            false => None,
        };
        let made = Arc::new(Opened {
            source: Source::File(file),
            map,
        });
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
                .names_sorted()
                .into_iter()
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
                Ok(one.source.metadata().metadata_ordered().map(<[_]>::to_vec))
            }
            Container::Sharded { checkpoint, .. } => {
                py.detach(|| checkpoint.metadata()).map_err(to_pyerr)
            }
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
            Container::Single(one) => one.source.metadata().info(name).is_some(),
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
    /// The open container, or the `SafetensorError` of a closed handle.
    pub fn opened(&self, py: Python<'_>) -> PyResult<Arc<Container>> {
        let state = self
            .state
            .lock_py_attached(py)
            .map_err(|_| st_err("a previous call on this file failed midway; open it again"))?;
        state.clone().ok_or_else(|| {
            st_err(
                "The file is closed: this safe_open handle was used after its `with` block \
                 ended; open the file again",
            )
        })
    }

    /// Closes the container: drops the source (its file descriptor) and the reference to the
    /// mapping, once any read in progress on another thread is done.
    fn close(&self, py: Python<'_>) {
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
        let whole = byte_ranges(info.dtype, &info.shape, &[]).map_err(|e| slice_error(name, e))?;
        opened.tensor_of(py, &self.hooks, name, info, &info.shape, whole)
    }
}

/// Opens a safetensors file lazily.
///
/// `safe_open(filename, framework, device="cpu", *, backend="mmap")`; use it as a context
/// manager. `framework` picks the tensor type returned ("pt", "np", "tf", "flax", "paddle",
/// "mlx"), `backend` how the file is read ("mmap" or "pread").
#[pyclass(frozen, name = "safe_open", module = "safetensors")]
pub struct SafeOpen {
    inner: Arc<Inner>,
}

impl SafeOpen {
    /// Wraps a validated source for `framework` on `device`; `map`: whether to map a file
    /// source (the mmap backend).
    pub fn from_source(
        py: Python<'_>,
        source: Source,
        map: bool,
        framework: &str,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<SafeOpen> {
        let framework = Framework::parse(framework)?;
        let hooks = Hooks::load(py, framework, device)?;
        let map = match &source {
            Source::File(file) if map => crate::mapping::private_map(py, file)?,
            _ => None,
        };
        let opened = Opened { source, map };
        Ok(SafeOpen::from_container(
            hooks,
            Container::Single(Arc::new(opened)),
        ))
    }

    fn from_container(hooks: Hooks, container: Container) -> SafeOpen {
        SafeOpen {
            inner: Arc::new(Inner {
                hooks,
                state: Mutex::new(Some(Arc::new(container))),
            }),
        }
    }

    /// Opens a folder or an index JSON: a sharded checkpoint, or the one file a folder holds.
    fn open_checkpoint(
        py: Python<'_>,
        path: &Path,
        filename: &Bound<'_, PyAny>,
        map: bool,
        framework: &str,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<SafeOpen> {
        let checkpoint = py.detach(|| Checkpoint::open(path)).map_err(|e| match e {
            safetensors::SafeTensorError::IoError(io) if !path.exists() => {
                crate::error::open_error(py, io, filename)
            }
            other => to_pyerr(other),
        })?;
        if !checkpoint.is_sharded() {
            let file = checkpoint.shard(0).map_err(to_pyerr)?.clone();
            return SafeOpen::from_source(py, Source::File(file), map, framework, device);
        }
        let hooks = Hooks::load(py, Framework::parse(framework)?, device)?;
        let opened = (0..checkpoint.shard_count())
            .map(|_| OnceLock::new())
            .collect();
        let container = Container::Sharded {
            checkpoint,
            opened,
            map,
        };
        Ok(SafeOpen::from_container(hooks, container))
    }
}

/// Parses the `backend` argument shared by `safe_open` and the framework loaders: true for
/// "mmap" (the one private mapping of `mapping.rs`), false for "pread" (positioned reads only;
/// the file is never mapped).
pub fn parse_backend(name: &str) -> PyResult<bool> {
    match name {
        "mmap" => Ok(true),
        "pread" => Ok(false),
        _ => Err(PyValueError::new_err(format!(
            "backend {name:?} is not supported: use \"mmap\" (map the file) or \"pread\" (read \
             each tensor with positioned reads)"
        ))),
    }
}

#[pymethods]
impl SafeOpen {
    #[new]
    #[pyo3(signature = (filename, framework, device = None, *, backend = "mmap"))]
    fn new(
        py: Python<'_>,
        filename: &Bound<'_, PyAny>,
        framework: &str,
        device: Option<&Bound<'_, PyAny>>,
        backend: &str,
    ) -> PyResult<Self> {
        // Check the cheap arguments before touching the file system.
        Framework::parse(framework)?;
        let map = parse_backend(backend)?;
        let path: PathBuf = filename.extract()?;
        let cpu = pyo3::types::PyString::new(py, "cpu").into_any();
        let device = device.unwrap_or(&cpu);
        if path.is_dir() || path.extension().is_some_and(|e| e == "json") {
            return SafeOpen::open_checkpoint(py, &path, filename, map, framework, device);
        }
        // The core never maps: with the mmap backend the one mapping is made here
        // (`mapping.rs`), which views and copies share.
        let file = py
            .detach(|| SafeFile::open(&path, Backend::Pread))
            .map_err(|e| match e {
                safetensors::SafeTensorError::IoError(io) => {
                    crate::error::open_error(py, io, filename)
                }
                other => to_pyerr(other),
            })?;
        SafeOpen::from_source(py, Source::File(Arc::new(file)), map, framework, device)
    }

    /// The tensor names, sorted (of every shard, for a sharded checkpoint).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // Straight from the header's names into Python strings: no intermediate copy of
        // every name (a header may hold a million).
        match &*self.inner.opened(py)? {
            Container::Single(one) => PyList::new(py, one.source.metadata().names_sorted()),
            Container::Sharded { checkpoint, .. } => PyList::new(py, checkpoint.names()),
        }
    }

    /// The tensor names in the order of their data in the file (shard by shard).
    fn offset_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        self.inner.opened(py)?.offset_keys(py)
    }

    /// The `__metadata__` of the header as a dict (in file order), or None; for a sharded
    /// checkpoint the index's `metadata` merged with the shards'.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let opened = self.inner.opened(py)?;
        let dict = PyDict::new(py);
        match &*opened {
            // Straight from the header's pairs: no intermediate copy of every entry.
            Container::Single(one) => {
                let Some(pairs) = one.source.metadata().metadata_ordered() else {
                    return Ok(None);
                };
                for (k, v) in pairs {
                    dict.set_item(k, v)?;
                }
            }
            Container::Sharded { .. } => {
                let Some(pairs) = opened.metadata(py)? else {
                    return Ok(None);
                };
                for (k, v) in pairs {
                    dict.set_item(k, v)?;
                }
            }
        }
        Ok(Some(dict))
    }

    /// Loads the tensor `name` (whole).
    fn get_tensor<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let opened = self.inner.opened(py)?;
        self.inner.tensor(py, &opened, name)
    }

    /// Loads every tensor, as a dict keyed by name (sorted order).
    fn get_tensors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let opened = self.inner.opened(py)?;
        let dict = PyDict::new(py);
        for name in opened.keys() {
            let tensor = self.inner.tensor(py, &opened, &name)?;
            dict.set_item(name, tensor)?;
        }
        Ok(dict)
    }

    /// A lazy view of tensor `name`: index it to read only part of it.
    fn get_slice(&self, py: Python<'_>, name: &str) -> PyResult<PySafeSlice> {
        let info = self.inner.opened(py)?.info(py, name)?;
        Ok(PySafeSlice::new(self.inner.clone(), name.to_owned(), info))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    /// Closes the handle (see the module docs); exceptions propagate.
    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        self.inner.close(py);
        false
    }

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        Ok(self.inner.opened(py)?.len())
    }

    fn __contains__(&self, py: Python<'_>, name: &str) -> PyResult<bool> {
        Ok(self.inner.opened(py)?.contains(name))
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.inner.opened(py) {
            Ok(opened) => format!("<safe_open with {} tensors>", opened.len()),
            Err(_) => "<safe_open (closed)>".to_owned(),
        }
    }
}

/// `_inspect(location)`: the JSON report of a local file, folder or index JSON, read from
/// the headers alone (the core's `inspect::json_report`, which the CLI's `inspect --json`
/// prints).
#[pyfunction]
#[pyo3(name = "_inspect")]
pub fn inspect(py: Python<'_>, location: &Bound<'_, PyAny>) -> PyResult<String> {
    let path: PathBuf = location.extract()?;
    let shown = path.to_string_lossy().into_owned();
    let model = py
        .detach(|| safetensors::inspect::inspect_local(&shown))
        .map_err(|e| match e {
            safetensors::SafeTensorError::IoError(io) if !path.exists() => {
                crate::error::open_error(py, io, location)
            }
            other => to_pyerr(other),
        })?;
    Ok(safetensors::inspect::json_report(&model))
}

/// Helper used by slices: a list of Python ints.
pub fn shape_list<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, shape)
}
