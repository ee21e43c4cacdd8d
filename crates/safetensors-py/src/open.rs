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
//! Leaving the `with` block closes the handle: its reference to the file descriptor and to the
//! mapping is released (tensors already handed out keep the mapping alive, and slices taken
//! from the handle keep the file open and stay readable, as the reference's do), and every
//! later use of the handle raises `SafetensorError`.

use crate::container::{Container, Inner, Opened};
use crate::error::{st_err, to_pyerr};
use crate::framework::{Framework, Hooks};
use crate::slice::PySafeSlice;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use safetensors::checkpoint::{AutoChoice, Backend, Checkpoint, Filesystem, ShardFile};
use safetensors::reader::whole::WholeLoad;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// Opens a safetensors file lazily.
///
/// `safe_open(filename, framework, device="cpu", *, backend="mmap")`; use it as a context
/// manager. `framework` picks the tensor type returned ("pt", "np", "tf", "flax", "paddle",
/// "mlx"), `backend` how the file is read ("mmap", "pread", or "auto": the core picks by
/// the file's filesystem).
#[pyclass(frozen, name = "safe_open", module = "safetensors")]
pub struct SafeOpen {
    inner: Arc<Inner>,
    /// How local files are read, resolved at open.
    read: ReadAs,
}

/// The `backend` argument as given: a backend, or "auto" still to be resolved.
#[derive(Clone, Copy)]
pub enum BackendArg {
    /// "mmap": the one private mapping of `mapping.rs`.
    Mmap,
    /// "pread": positioned reads only; the file is never mapped.
    Pread,
    /// "auto": the core's choice for the file's filesystem (`AutoChoice`).
    Auto,
}

impl BackendArg {
    /// How to read, deciding "auto" with `choose` (the core's `AutoChoice` for the file).
    fn resolve(
        self,
        choose: impl FnOnce() -> Result<AutoChoice, safetensors::Error>,
    ) -> PyResult<ReadAs> {
        Ok(match self {
            BackendArg::Mmap => ReadAs::fixed(true),
            BackendArg::Pread => ReadAs::fixed(false),
            BackendArg::Auto => {
                let auto = choose().map_err(to_pyerr)?;
                ReadAs {
                    map: auto.mmap,
                    auto: Some(auto),
                }
            }
        })
    }
}

/// How a handle reads its local files: mapped or not, and why, when "auto" decided.
#[derive(Clone, Copy)]
pub struct ReadAs {
    map: bool,
    auto: Option<AutoChoice>,
}

impl ReadAs {
    /// Not decided by "auto": what was asked (URLs, buffers and file objects: never mapped).
    pub fn fixed(map: bool) -> ReadAs {
        ReadAs { map, auto: None }
    }
}

impl SafeOpen {
    fn from_container(hooks: Hooks, container: Container, read: ReadAs) -> SafeOpen {
        SafeOpen {
            inner: Arc::new(Inner::new(hooks, container, verify_by_default())),
            read,
        }
    }

    /// This handle with digest checks on or off (`None`: as `SAFETENSORS_VERIFY` says).
    fn verifying(mut self, verify: Option<bool>) -> SafeOpen {
        if let Some(verify) = verify {
            // Just made: nothing else holds the handle's state yet.
            if let Some(inner) = Arc::get_mut(&mut self.inner) {
                inner.verify = verify;
            }
        }
        self
    }

    /// Opens `filename` (a file, folder, index JSON or URL) as `safe_open` describes.
    fn open(
        py: Python<'_>,
        filename: &Bound<'_, PyAny>,
        framework: &str,
        device: Option<&Bound<'_, PyAny>>,
        backend: &str,
        headers: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        // Check the cheap arguments before touching the file system.
        Framework::parse(framework)?;
        let backend = parse_backend(backend)?;
        let headers = crate::remote::headers(headers)?;
        let cpu = pyo3::types::PyString::new(py, "cpu").into_any();
        let device = device.unwrap_or(&cpu);
        if let Some(url) = crate::remote::url_of(filename) {
            return SafeOpen::open_url(py, &url, headers, framework, device);
        }
        let path: PathBuf = filename.extract()?;
        if path.is_dir() || path.extension().is_some_and(|e| e == "json") {
            return SafeOpen::open_checkpoint(py, &path, filename, backend, framework, device);
        }
        // A single file is a checkpoint of one shard. The core opens it with positioned
        // reads: with the mmap backend the one mapping is made here (`mapping.rs`), which
        // views and copies share.
        let checkpoint = py
            .detach(|| Checkpoint::open_with(&path, Backend::Pread))
            .map_err(|e| match e {
                safetensors::Error::IoError(io) => crate::error::open_error(py, io, filename),
                other => to_pyerr(other),
            })?;
        let read = Self::resolve_single(&checkpoint, backend)?;
        SafeOpen::from_checkpoint(py, checkpoint, read, framework, device)
    }

    /// Opens a folder or an index JSON: a sharded checkpoint, or the one file a folder holds.
    fn open_checkpoint(
        py: Python<'_>,
        path: &Path,
        filename: &Bound<'_, PyAny>,
        backend: BackendArg,
        framework: &str,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<SafeOpen> {
        let checkpoint = py.detach(|| Checkpoint::open(path)).map_err(|e| match e {
            safetensors::Error::IoError(io) if !path.exists() => {
                crate::error::open_error(py, io, filename)
            }
            other => to_pyerr(other),
        })?;
        // One choice for every shard, by the filesystem of the folder the index lives in,
        // as the core's `Checkpoint::open_with(.., Backend::auto())` decides.
        let read = match checkpoint.index() {
            Some((index, _)) => backend.resolve(|| AutoChoice::for_path(index))?,
            None => Self::resolve_single(&checkpoint, backend)?,
        };
        SafeOpen::from_checkpoint(py, checkpoint, read, framework, device)
    }

    /// How to read a checkpoint of one local file: "auto" looks at the open file itself.
    fn resolve_single(checkpoint: &Checkpoint, backend: BackendArg) -> PyResult<ReadAs> {
        backend.resolve(|| AutoChoice::for_file(checkpoint.shard(0)?.file()))
    }

    /// Opens the URL of a file or of an index JSON, sending `headers` on every request.
    fn open_url(
        py: Python<'_>,
        url: &str,
        headers: Vec<(String, String)>,
        framework: &str,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<SafeOpen> {
        let client = crate::remote::client(headers)?;
        let checkpoint = py
            .detach(|| Checkpoint::open_url(url, &client))
            .map_err(to_pyerr)?;
        SafeOpen::from_checkpoint(py, checkpoint, ReadAs::fixed(false), framework, device)
    }

    /// A handle over an open checkpoint: its one file, or its shards opened as needed.
    pub fn from_checkpoint(
        py: Python<'_>,
        checkpoint: Checkpoint,
        read: ReadAs,
        framework: &str,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<SafeOpen> {
        let map = read.map;
        if !checkpoint.is_sharded() {
            let file = checkpoint.shard_file(0).map_err(to_pyerr)?.clone();
            let hooks = Hooks::load(py, Framework::parse(framework)?, device)?;
            let opened = Opened::from_shard(py, file, map)?;
            return Ok(SafeOpen::from_container(
                hooks,
                Container::Single(Arc::new(opened)),
                read,
            ));
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
        Ok(SafeOpen::from_container(hooks, container, read))
    }
}

/// Whether handles check recorded digests when `verify` is not given: the environment
/// variable `SAFETENSORS_VERIFY` set to `1`, `true`, `yes` or `on`.
pub fn verify_by_default() -> bool {
    std::env::var("SAFETENSORS_VERIFY").is_ok_and(|v| {
        matches!(
            v.trim().to_ascii_lowercase().as_str(),
            "1" | "true" | "yes" | "on"
        )
    })
}

/// Parses the `backend` argument shared by `safe_open` and the framework loaders: "mmap"
/// (the one private mapping of `mapping.rs`), "pread" (positioned reads only; the file is
/// never mapped) or "auto" (one of these, as the file's filesystem suits).
pub fn parse_backend(name: &str) -> PyResult<BackendArg> {
    match name {
        "mmap" => Ok(BackendArg::Mmap),
        "pread" => Ok(BackendArg::Pread),
        "auto" => Ok(BackendArg::Auto),
        // The reference raises SafetensorError, ours raised ValueError: both.
        _ => Python::attach(|py| {
            Err(crate::error::dual_err(
                py,
                "ValueError",
                format!(
                    "backend {name:?} is invalid: use \"mmap\" (map the file), \"pread\" \
                     (read each tensor with positioned reads) or \"auto\" (pread on network and \
                     FUSE filesystems, mmap elsewhere)"
                ),
            ))
        }),
    }
}

#[pymethods]
impl SafeOpen {
    #[new]
    #[pyo3(signature = (filename, framework, device = None, *, backend = "mmap", headers = None, verify = None))]
    fn new(
        py: Python<'_>,
        filename: &Bound<'_, PyAny>,
        framework: &str,
        device: Option<&Bound<'_, PyAny>>,
        backend: &str,
        headers: Option<&Bound<'_, PyAny>>,
        verify: Option<bool>,
    ) -> PyResult<Self> {
        Ok(SafeOpen::open(py, filename, framework, device, backend, headers)?.verifying(verify))
    }

    /// Prepares the files of this handle for reading parts of tensors (the core's
    /// `reader::whole::for_parts`, `Checkpoint::for_parts` for shards, also those opened
    /// later): `load_for_rank` reads only its rank's share. Private.
    fn _prepare_for_parts(&self, py: Python<'_>) -> PyResult<()> {
        let container = self.inner.opened(py)?;
        match &*container {
            Container::Single(one) => {
                if let ShardFile::Local(file) = &one.origin {
                    safetensors::reader::whole::for_parts(file);
                }
            }
            // Shards opened later get the advice before their header is read.
            Container::Sharded { checkpoint, .. } => checkpoint.for_parts(),
        }
        Ok(())
    }

    /// The tensor names, sorted (of every shard, for a sharded checkpoint).
    fn keys<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        // Straight from the header's names into Python strings: no intermediate copy of
        // every name (a header may hold a million).
        match &*self.inner.opened(py)? {
            Container::Single(one) => PyList::new(py, one.origin.metadata().iter_names_sorted()),
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
                let Some(pairs) = one.origin.metadata().metadata_ordered() else {
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

    /// Loads every tensor, as a dict keyed by name (sorted order): views of the mapping when
    /// the file is in the page cache, else the parallel reader (see `bulk.rs`). Onto a
    /// device, the framework's `_st_load_all` hook loads them where it has one for that
    /// device (torch on CUDA: the pinned staging ring), else tensor by tensor.
    fn get_tensors<'py>(slf: &Bound<'py, Self>, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let this = slf.get();
        let opened = this.inner.opened(py)?;
        let names = opened.keys();
        this.inner
            .check_digests(py, &opened, names.iter().map(String::as_str))?;
        if !this.inner.hooks.on_cpu(py) {
            if let Some(dict) = this.inner.hooks.load_all(py, slf.as_any(), &names)? {
                return Ok(dict);
            }
        }
        let options = crate::bulk::options(None, None);
        let one = |name: &str| this.inner.tensor(py, &opened, name);
        crate::bulk::load_all(
            py,
            &this.inner.hooks,
            &opened,
            names,
            crate::bulk::Strategy::Auto,
            &options,
            one,
        )
    }

    /// Private, for the loaders of this package: the tensors `names` as a dict in that order,
    /// read as `strategy` ("auto", "mmap", "read") says (see `bulk.rs`).
    #[pyo3(signature = (names, strategy = "auto", *, threads = None, block_size = None))]
    fn _load_all<'py>(
        &self,
        py: Python<'py>,
        names: Vec<String>,
        strategy: &str,
        threads: Option<usize>,
        block_size: Option<usize>,
    ) -> PyResult<Bound<'py, PyDict>> {
        let strategy = crate::bulk::Strategy::parse(strategy)?;
        let opened = self.inner.opened(py)?;
        self.inner
            .check_digests(py, &opened, names.iter().map(String::as_str))?;
        let options = crate::bulk::options(threads, block_size);
        let one = |name: &str| self.inner.tensor(py, &opened, name);
        crate::bulk::load_all(
            py,
            &self.inner.hooks,
            &opened,
            names,
            strategy,
            &options,
            one,
        )
    }

    /// Private, for tests and benchmarks: how a whole load of `names` would read now
    /// ("views", "prefetch" or "read"; see `bulk.rs`).
    #[pyo3(signature = (names, strategy = "auto"))]
    fn _plan(&self, py: Python<'_>, names: Vec<String>, strategy: &str) -> PyResult<&'static str> {
        let strategy = crate::bulk::Strategy::parse(strategy)?;
        let opened = self.inner.opened(py)?;
        Ok(match crate::bulk::plan(py, &opened, &names, strategy)? {
            WholeLoad::Views => "views",
            WholeLoad::Prefetch => "prefetch",
            WholeLoad::Read => "read",
        })
    }

    /// Private, for the loaders of this package that fill memory they allocated themselves
    /// (`load_model`/`load_into` into CPU tensors): fills caller memory with tensor bytes,
    /// with the parallel reader. Each item is `(name, start, address, nbytes)`: bytes
    /// `start..start + nbytes` of tensor `name` go to `address`. The caller guarantees that
    /// each `address..address + nbytes` is writable memory it keeps alive for the call and
    /// that nothing else uses meanwhile (a tensor's `data_ptr()` it holds). `sequential`:
    /// hint the kernel that the files are read sequentially (false keeps its readahead as
    /// `load_for_rank` set it).
    #[pyo3(signature = (items, *, threads = None, block_size = None, sequential = true))]
    fn _read_into(
        &self,
        py: Python<'_>,
        items: Vec<(String, usize, usize, usize)>,
        threads: Option<usize>,
        block_size: Option<usize>,
        sequential: bool,
    ) -> PyResult<()> {
        let opened = self.inner.opened(py)?;
        self.inner
            .check_digests(py, &opened, items.iter().map(|item| item.0.as_str()))?;
        let items = items
            .into_iter()
            .map(|(name, start, addr, nbytes)| {
                if nbytes > 0 && addr == 0 {
                    return Err(PyValueError::new_err(format!(
                        "tensor {name}: a null destination address"
                    )));
                }
                // SAFETY: this private method's contract (above): the caller owns the
                // memory, keeps it alive for the call and lets nothing else touch it.
                let dst = unsafe { crate::raw::RawDst::new(addr, nbytes) };
                Ok(crate::bulk::Item { name, start, dst })
            })
            .collect::<PyResult<Vec<_>>>()?;
        crate::bulk::read_items(
            py,
            &opened,
            items,
            &crate::bulk::options(threads, block_size),
            sequential,
        )
    }

    /// Private, for the staging ring (`_staging.py`): a ring over this handle's files whose
    /// host buffers are the `slot_bytes` bytes at each address of `slots`, handed over to
    /// `copier` (see `staging.rs`); with `verify`, each tensor's digest is checked before its
    /// bytes are staged. The caller guarantees each buffer is writable memory `copier` keeps
    /// alive and that only the copies the ring enqueues read it.
    #[pyo3(signature = (slots, slot_bytes, copier, *, threads = None, block_size = None, sequential = true))]
    #[allow(clippy::too_many_arguments)]
    fn _staging_ring(
        &self,
        py: Python<'_>,
        slots: Vec<usize>,
        slot_bytes: usize,
        copier: Bound<'_, PyAny>,
        threads: Option<usize>,
        block_size: Option<usize>,
        sequential: bool,
    ) -> PyResult<crate::staging::StagingRing> {
        crate::staging::StagingRing::new(
            self.inner.opened(py)?,
            Some(self.inner.clone()),
            slots,
            slot_bytes,
            copier,
            threads,
            block_size,
            sequential,
        )
    }

    /// Private, for the loaders of this package: `(dtype, shape, nbytes)` of each tensor of
    /// `names`, from the header(s).
    fn _layout(
        &self,
        py: Python<'_>,
        names: Vec<String>,
    ) -> PyResult<Vec<(&'static str, Vec<usize>, usize)>> {
        let opened = self.inner.opened(py)?;
        names
            .iter()
            .map(|name| {
                let info = opened.info(py, name)?;
                Ok((info.dtype.name(), info.shape.clone(), info.byte_len()))
            })
            .collect()
    }

    /// Tensor `name`'s header entry (`dtype`, `shape`, `data_offsets`), reading no data.
    fn get_tensor_meta(&self, py: Python<'_>, name: &str) -> PyResult<crate::prefetch::TensorMeta> {
        crate::prefetch::tensor_meta(py, &self.inner, name)
    }

    /// Starts loading the tensors of `plan` in the background: see `prefetch.rs`.
    #[pyo3(signature = (plan = None, *, device = None, threads = 8, memory_budget = None))]
    fn prefetch(
        &self,
        py: Python<'_>,
        plan: Option<&Bound<'_, PyAny>>,
        device: Option<&Bound<'_, PyAny>>,
        threads: usize,
        memory_budget: Option<usize>,
    ) -> PyResult<crate::prefetch::PrefetchLoader> {
        crate::prefetch::start(py, &self.inner, plan, device, threads, memory_budget)
    }

    /// A lazy view of tensor `name`: index it to read only part of it.
    fn get_slice(&self, py: Python<'_>, name: &str) -> PyResult<PySafeSlice> {
        let container = self.inner.opened(py)?;
        let info = container.info(py, name)?;
        Ok(PySafeSlice::new(
            self.inner.clone(),
            container,
            name.to_owned(),
            info,
        ))
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

    /// How the handle reads its local files: "mmap" or "pread" (what "auto" picked, when it
    /// was asked for). URLs, buffers and file objects are never mapped: "pread".
    #[getter]
    fn backend(&self) -> &'static str {
        match self.read.map {
            true => "mmap",
            false => "pread",
        }
    }

    /// The filesystem "auto" saw ("ext4", "nfs", "fuse", ..., or its magic number in hex),
    /// or None when another backend was asked for or the platform does not say.
    #[getter]
    fn filesystem(&self) -> Option<String> {
        self.read.auto?.filesystem.map(|fs| fs.to_string())
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        let backend = match self.read.auto {
            Some(auto) => format!("auto: {auto}"),
            None => self.backend().to_owned(),
        };
        match self.inner.opened(py) {
            Ok(opened) => format!(
                "<safe_open with {} tensors, backend={backend}>",
                opened.len()
            ),
            Err(_) => "<safe_open (closed)>".to_owned(),
        }
    }
}

/// `_filesystem_backend(f_type)`: the name of the filesystem whose `statfs` magic number is
/// `f_type` and the backend "auto" picks on it ("mmap" or "pread"), the environment's
/// override aside: the core's table, for tests.
#[pyfunction]
#[pyo3(name = "_filesystem_backend")]
pub fn filesystem_backend(f_type: u32) -> PyResult<(String, &'static str)> {
    let filesystem = Filesystem::from_magic(f_type);
    let choice = AutoChoice::decide(Some(filesystem), None).map_err(to_pyerr)?;
    Ok((filesystem.to_string(), choice.backend_name()))
}

/// `_inspect(location, headers=None)`: the JSON report of a local file, folder or index
/// JSON, or of the URL of a file or index JSON, read from the headers alone (the core's
/// `inspect::json_report`, which the CLI's `inspect --json` prints).
#[pyfunction]
#[pyo3(name = "_inspect", signature = (location, headers = None))]
pub fn inspect(
    py: Python<'_>,
    location: &Bound<'_, PyAny>,
    headers: Option<&Bound<'_, PyAny>>,
) -> PyResult<String> {
    let headers = crate::remote::headers(headers)?;
    if let Some(url) = crate::remote::url_of(location) {
        let client = crate::remote::client(headers)?;
        let model = py
            .detach(|| safetensors::checkpoint::inspect::inspect_url(&url, &client))
            .map_err(|(at, e)| match e {
                safetensors::Error::IoError(_) => to_pyerr(e),
                other => st_err(format!("{at}: {other}")),
            })?;
        return Ok(safetensors::checkpoint::inspect::json_report(&model));
    }
    let path: PathBuf = location.extract()?;
    let shown = path.to_string_lossy().into_owned();
    let model = py
        .detach(|| safetensors::checkpoint::inspect::inspect_local(&shown))
        .map_err(|e| match e {
            safetensors::Error::IoError(io) if !path.exists() => {
                crate::error::open_error(py, io, location)
            }
            other => to_pyerr(other),
        })?;
    Ok(safetensors::checkpoint::inspect::json_report(&model))
}
