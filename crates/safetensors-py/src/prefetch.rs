//! `safe_open.prefetch(plan=None, *, device=None, threads=8, memory_budget=None)`, the
//! `PrefetchLoader` it returns, and `safe_open.get_tensor_meta(name)`: the reference's 0.9
//! loading API, on every framework and device, for any basic index, over files, sharded
//! checkpoints and URLs, within a memory budget.
//!
//! This file converts the Python plan (a dict of name -> None, a slice, or any basic index
//! `get_slice` takes) into the core's `safetensors::reader::prefetch::PrefetchPlan`, checks it all
//! before anything is read (names, indices, dtypes the framework can hold), and runs it:
//!
//! - in host memory (any framework; any device but torch's CUDA): the core's `Prefetch` reads
//!   in the background straight into framework tensors allocated (`_st_empty`) as the budget
//!   allows; `take` finishes each (`_st_finish`: wraps it, or moves it to the device);
//! - onto CUDA with torch: `safetensors._prefetch` streams the plan through the pinned staging
//!   ring (the core's, `_PrefetchSource._staging_ring`) into device tensors on a background
//!   thread; a tensor of several runs is read with `_PrefetchSource._fill`.
//!
//! A loader keeps the files it reads open, as `get_slice` objects do: it keeps working after
//! its handle is closed. Closing the loader stops its reads and releases what was not taken.

use crate::container::{Container, Inner};
use crate::error::{slice_error, st_err, to_pyerr};
use crate::framework::{Empty, Framework, Hooks};
use crate::raw::RawDst;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple};
use safetensors::checkpoint::ShardFile;
use safetensors::plan::numpy_index::{plan_index, Index};
use safetensors::reader::prefetch::{
    PlannedTensor, Prefetch, PrefetchOptions, PrefetchPlan, SharedSource, DEFAULT_BUDGET,
};
use safetensors::Error as CoreError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// A tensor's header entry, as written in the file.
#[pyclass(frozen, name = "TensorMeta", module = "safetensors")]
pub struct TensorMeta {
    dtype: &'static str,
    shape: Vec<usize>,
    data_offsets: (usize, usize),
}

#[pymethods]
impl TensorMeta {
    /// The dtype's header name, e.g. "F32".
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype
    }

    /// The shape, as a list.
    #[getter]
    fn shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        PyList::new(py, &self.shape)
    }

    /// `(start, end)` of the tensor's bytes within the data section (of its shard).
    #[getter]
    fn data_offsets(&self) -> (usize, usize) {
        self.data_offsets
    }

    fn __repr__(&self) -> String {
        format!(
            "TensorMeta {{ dtype: {:?}, shape: {:?}, data_offsets: {:?} }}",
            self.dtype, self.shape, self.data_offsets
        )
    }
}

/// `get_tensor_meta(name)`: the header entry of tensor `name`, reading no data.
pub fn tensor_meta(py: Python<'_>, inner: &Inner, name: &str) -> PyResult<TensorMeta> {
    let info = inner.opened(py)?.info(py, name)?;
    Ok(TensorMeta {
        dtype: info.dtype.name(),
        shape: info.shape.clone(),
        data_offsets: info.data_offsets,
    })
}

/// One plan entry: the index of a value, None for the whole tensor.
fn parse_value(
    value: &Bound<'_, PyAny>,
    name: &str,
    numpy_rules: bool,
) -> PyResult<Option<Vec<Index>>> {
    if value.is_none() {
        return Ok(None);
    }
    let parsed = match value.cast::<PyTuple>() {
        Ok(t) => t
            .iter()
            .map(|e| crate::slice::parse_item(&e, numpy_rules))
            .collect::<PyResult<Option<Vec<_>>>>()?,
        Err(_) => crate::slice::parse_item(value, numpy_rules)?.map(|one| vec![one]),
    };
    let Some(mut index) = parsed else {
        return Err(st_err(format!(
            "prefetch plan values must be None (the whole tensor), or an index get_slice takes \
             made of ints, slices, `...` and None (a tuple of these), got {} for {name}",
            value.get_type().repr()?
        )));
    };
    if !numpy_rules {
        // As `get_slice` with torch: every `...` after the first stands for nothing.
        let mut seen = false;
        index.retain(|e| {
            let extra = seen && *e == Index::Ellipsis;
            seen |= *e == Index::Ellipsis;
            !extra
        });
    }
    Ok(Some(index))
}

/// The plan's requests in the order given, each checked against the header and the
/// framework before anything is read.
fn requests(
    py: Python<'_>,
    container: &Container,
    hooks: &Hooks,
    plan: Option<&Bound<'_, PyAny>>,
) -> PyResult<Vec<(String, Option<Vec<Index>>)>> {
    let numpy_rules = hooks.framework != Framework::Pytorch;
    let mut out = Vec::new();
    match plan.filter(|p| !p.is_none()) {
        None => out.extend(container.keys().into_iter().map(|n| (n, None))),
        Some(plan) => {
            let dict = plan.cast::<PyDict>()?;
            if dict.is_empty() {
                return Err(st_err("prefetch plan selects no tensors"));
            }
            for (key, value) in dict.iter() {
                let name: String = key
                    .cast::<PyString>()
                    .map_err(|_| st_err("prefetch plan keys must be tensor names"))?
                    .extract()?;
                let index = parse_value(&value, &name, numpy_rules)?;
                out.push((name, index));
            }
        }
    }
    for (name, index) in &out {
        let info = container.info(py, name)?;
        if info.shape.is_empty() && value_is_slice(index) {
            return Err(st_err(format!(
                "cannot slice rows of the 0-d tensor {name}"
            )));
        }
        let runs = plan_index(info.dtype, &info.shape, index.as_deref().unwrap_or(&[]))
            .map_err(|e| slice_error(py, name, e))?;
        // The framework must hold the dtype: an empty allocation of it refuses it now.
        let mut probe = runs.newshape();
        let want = match probe.first_mut() {
            Some(first) => {
                *first = 0;
                0
            }
            None => info.dtype.bitsize().div_ceil(8),
        };
        hooks.empty(py, name, info.dtype, &probe, want)?;
    }
    Ok(out)
}

/// Whether an index is one plain slice (the reference's only kind of plan value).
fn value_is_slice(index: &Option<Vec<Index>>) -> bool {
    matches!(index.as_deref(), Some([Index::Slice { .. }]))
}

/// The core plan of `requests` over `container`, and a source for each of its files.
fn core_plan(
    py: Python<'_>,
    container: &Container,
    requests: Vec<(String, Option<Vec<Index>>)>,
) -> PyResult<(PrefetchPlan, Vec<SharedSource>)> {
    let plan = match container {
        Container::Single(one) => {
            let meta = one.origin.metadata();
            PrefetchPlan::for_file(meta, one.origin.data_start(), requests)
        }
        Container::Sharded { checkpoint, .. } => {
            py.detach(|| PrefetchPlan::new(checkpoint, requests))
        }
    }
    .map_err(to_pyerr)?;
    let mut sources = Vec::with_capacity(plan.files().len());
    for file in 0..plan.files().len() {
        let first = plan.tensors().iter().find(|t| t.file == file);
        let name = first.map(|t| t.name.as_str()).unwrap_or_default();
        // The checkpoint's file is a core source itself (a file object takes the
        // interpreter for each read: the loader's waits release it).
        let opened = container.for_tensor(py, name)?;
        sources.push(Arc::new(opened.origin.clone()) as SharedSource);
    }
    Ok((plan, sources))
}

/// Framework memory a prefetch fills: the destination of an `_st_empty` allocation.
struct HostDst(RawDst);

impl AsMut<[u8]> for HostDst {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

/// The host engine: the core's reader, and the framework objects owning its buffers.
struct HostEngine {
    prefetch: Prefetch<HostDst>,
    hooks: Hooks,
    /// The `_st_empty` holder of each tensor given to the reader and not handed out yet.
    holders: Mutex<Vec<Option<Py<PyAny>>>>,
}

impl HostEngine {
    /// Allocates tensor `index` (called by the core from a loader call, interpreter detached).
    fn alloc(&self, index: usize, t: &PlannedTensor) -> Result<HostDst, CoreError> {
        Python::attach(|py| {
            let empty = self.hooks.empty(py, &t.name, t.dtype, &t.shape, t.nbytes)?;
            let (holder, dst) = empty.into_parts();
            let mut holders = self
                .holders
                .lock()
                .map_err(|_| st_err("a previous prefetch call failed midway"))?;
            holders[index] = Some(holder.unbind());
            Ok(HostDst(dst))
        })
        .map_err(|e: PyErr| CoreError::IoError(std::io::Error::other(e)))
    }

    /// The user's tensor of landed tensor `index`.
    fn finish<'py>(&self, py: Python<'py>, index: usize) -> PyResult<Bound<'py, PyAny>> {
        let t = &self.prefetch.plan().tensors()[index];
        let holder = self
            .holders
            .lock()
            .map_err(|_| st_err("a previous prefetch call failed midway"))?[index]
            .take()
            .ok_or_else(|| st_err(format!("tensor {} has no buffer", t.name)))?;
        let empty = Empty::from_parts(holder.into_bound(py), t.dtype, t.shape.clone());
        self.hooks.finish(py, empty)
    }
}

/// How a loader runs.
enum Engine {
    Host(HostEngine),
    /// The Python staging-ring driver of `safetensors._prefetch` (torch onto CUDA).
    Ring(Py<PyAny>),
}

/// The tensors of one plan loading in the background (see `safe_open.prefetch`). Each tensor
/// is handed out once, by `take(name)` or by iterating `(name, tensor)` pairs in the order
/// they become ready; memory of tensors not taken is held until they are, or until `close()`.
#[pyclass(frozen, name = "PrefetchLoader", module = "safetensors")]
pub struct PrefetchLoader {
    engine: Engine,
    names: Vec<String>,
    positions: HashMap<String, usize>,
}

impl PrefetchLoader {
    fn position(&self, name: &str) -> PyResult<usize> {
        self.positions.get(name).copied().ok_or_else(|| {
            st_err(format!(
                "tensor {name} is not in this loader's plan: call names() to list what it loads"
            ))
        })
    }

    /// The next `(position, tensor)` in readiness order, None at the end.
    fn next_ready<'py>(&self, py: Python<'py>) -> PyResult<Option<(usize, Bound<'py, PyAny>)>> {
        match &self.engine {
            Engine::Host(host) => {
                let mut alloc = |i: usize, t: &PlannedTensor| host.alloc(i, t);
                match py.detach(|| host.prefetch.next(&mut alloc)) {
                    None => Ok(None),
                    Some(Err(e)) => Err(loader_error(e)),
                    Some(Ok((i, _))) => Ok(Some((i, host.finish(py, i)?))),
                }
            }
            Engine::Ring(driver) => {
                let got = driver.bind(py).call_method0("next")?;
                match got.is_none() {
                    true => Ok(None),
                    false => Ok(Some(got.extract()?)),
                }
            }
        }
    }
}

/// A core error of a loader call as the Python exception. (The framework memory of a tensor
/// whose read failed stays with the loader until it closes: only then is the reader surely
/// done with every buffer.)
fn loader_error(e: CoreError) -> PyErr {
    to_pyerr(e)
}

#[pymethods]
impl PrefetchLoader {
    /// The names this loader hands out, in file order.
    fn names(&self) -> Vec<String> {
        self.names.clone()
    }

    fn __len__(&self) -> usize {
        self.names.len()
    }

    /// Takes `name`'s tensor, waiting for its bytes if they have not landed yet (a tensor
    /// not started yet is read next, before the others). Each tensor is handed out once.
    fn take<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let index = self.position(name)?;
        match &self.engine {
            Engine::Host(host) => {
                let mut alloc = |i: usize, t: &PlannedTensor| host.alloc(i, t);
                py.detach(|| host.prefetch.take(index, &mut alloc))
                    .map_err(loader_error)?;
                host.finish(py, index)
            }
            Engine::Ring(driver) => driver.bind(py).call_method1("take", (index,)),
        }
    }

    /// `(name, tensor)` pairs in the order they become ready; tensors taken are skipped.
    fn __iter__(slf: Bound<'_, Self>) -> TensorStream {
        TensorStream {
            loader: slf.unbind(),
        }
    }

    /// Stops the background reads and releases every tensor not taken; tensors handed out
    /// stay valid. Idempotent.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        match &self.engine {
            Engine::Host(host) => {
                py.detach(|| host.prefetch.close());
                // Only now that the reader is joined may the memory it wrote go.
                if let Ok(mut holders) = host.holders.lock() {
                    holders.iter_mut().for_each(|h| *h = None);
                }
                Ok(())
            }
            Engine::Ring(driver) => driver.bind(py).call_method0("close").map(|_| ()),
        }
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        py: Python<'_>,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self) -> String {
        format!("<PrefetchLoader of {} tensors>", self.names.len())
    }
}

impl Drop for PrefetchLoader {
    /// A loader dropped without `close` stops its reads too (and frees what it holds).
    fn drop(&mut self) {
        match &self.engine {
            // The reader may take the interpreter (a Python file object): release it while
            // joining. The holders are dropped after, with the engine.
            Engine::Host(host) => Python::attach(|py| py.detach(|| host.prefetch.close())),
            // The driver's thread holds the driver: only `close` ends it.
            Engine::Ring(driver) => Python::attach(|py| {
                if let Err(e) = driver.bind(py).call_method0("close") {
                    e.write_unraisable(py, None);
                }
            }),
        }
    }
}

/// Iterator over a `PrefetchLoader`: `(name, tensor)` pairs in readiness order.
#[pyclass(frozen, name = "TensorStream", module = "safetensors")]
pub struct TensorStream {
    loader: Py<PrefetchLoader>,
}

#[pymethods]
impl TensorStream {
    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__<'py>(&self, py: Python<'py>) -> PyResult<Option<(String, Bound<'py, PyAny>)>> {
        let loader = self.loader.get();
        Ok(loader
            .next_ready(py)?
            .map(|(i, tensor)| (loader.names[i].clone(), tensor)))
    }
}

/// What the staging-ring driver reads through: the loader's own container (open whatever
/// its handle does) and plan. Private.
#[pyclass(frozen, name = "_PrefetchSource", module = "safetensors")]
pub struct PrefetchSource {
    container: Arc<Container>,
    plan: PrefetchPlan,
}

#[pymethods]
impl PrefetchSource {
    /// As `safe_open._staging_ring`, over the loader's files; the plan's digests were
    /// checked when it started.
    #[pyo3(signature = (slots, slot_bytes, copier, *, threads = None, block_size = None, sequential = true))]
    #[allow(clippy::too_many_arguments)]
    fn _staging_ring(
        &self,
        slots: Vec<usize>,
        slot_bytes: usize,
        copier: Bound<'_, PyAny>,
        threads: Option<usize>,
        block_size: Option<usize>,
        sequential: bool,
    ) -> PyResult<crate::staging::StagingRing> {
        crate::staging::StagingRing::new(
            self.container.clone(),
            None,
            slots,
            slot_bytes,
            copier,
            threads,
            block_size,
            sequential,
        )
    }

    /// Reads planned tensor `index` (any runs) into the `nbytes` bytes at `address`: the
    /// caller guarantees it is writable memory it keeps alive for the call and that nothing
    /// else uses meanwhile (a host tensor it just allocated).
    fn _fill(&self, py: Python<'_>, index: usize, address: usize, nbytes: usize) -> PyResult<()> {
        let t = self
            .plan
            .tensors()
            .get(index)
            .ok_or_else(|| st_err(format!("no planned tensor {index}")))?;
        if nbytes != t.nbytes || (nbytes > 0 && address == 0) {
            return Err(PyValueError::new_err(format!(
                "tensor {}: {nbytes} bytes at {address:#x} given for {} bytes",
                t.name, t.nbytes
            )));
        }
        // SAFETY: this private method's contract (above): the caller's memory, alive and
        // unshared for the call.
        let mut dst = unsafe { RawDst::new(address, nbytes) };
        let opened = self.container.for_tensor(py, &t.name)?;
        let info = opened.info(&t.name)?;
        opened.read_plan(py, &info, t.runs(), dst.as_mut_slice())
    }
}

/// Prepares the local files a plan of parts reads for reading parts (the core's
/// `reader::whole::for_parts`, as `load_for_rank` does): readahead would fetch past the end of
/// each part, the bytes of the parts other ranks read.
fn no_readahead(py: Python<'_>, container: &Container, plan: &PrefetchPlan) -> PyResult<()> {
    for file in 0..plan.files().len() {
        if let Some(t) = plan.tensors().iter().find(|t| t.file == file) {
            if let ShardFile::Local(f) = &container.for_tensor(py, &t.name)?.origin {
                safetensors::reader::whole::for_parts(f);
            }
        }
    }
    Ok(())
}

/// What the ring driver knows of a planned tensor: name, dtype, shape, bytes, and where its
/// one run of bytes starts in the tensor (None: several runs).
type LayoutEntry = (String, &'static str, Vec<usize>, usize, Option<usize>);

/// `safe_open.prefetch(...)`: checks everything, then starts the loader.
pub fn start(
    py: Python<'_>,
    inner: &Inner,
    plan: Option<&Bound<'_, PyAny>>,
    device: Option<&Bound<'_, PyAny>>,
    threads: usize,
    memory_budget: Option<usize>,
) -> PyResult<PrefetchLoader> {
    let container = inner.opened(py)?;
    let device = match device.filter(|d| !d.is_none()) {
        Some(d) => d.clone(),
        None => inner.hooks.device(py).clone(),
    };
    let hooks = Hooks::load(py, inner.hooks.framework, &device)?;
    if memory_budget == Some(0) {
        return Err(PyValueError::new_err(
            "memory_budget must be at least 1 byte (None: the default, 1 GiB)",
        ));
    }
    let requests = requests(py, &container, &hooks, plan)?;
    let (plan, sources) = core_plan(py, &container, requests)?;
    let names: Vec<String> = plan.tensors().iter().map(|t| t.name.clone()).collect();
    inner.check_digests(py, &container, names.iter().map(String::as_str))?;
    let positions = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), i))
        .collect();
    let budget = memory_budget.unwrap_or(DEFAULT_BUDGET);
    // Whole tensors read best with the kernel's readahead; parts (a rank's) without it.
    let sequential = plan.tensors().iter().all(|t| t.nbytes == t.extent);
    if !sequential {
        no_readahead(py, &container, &plan)?;
    }
    let to_cuda = hooks.framework == Framework::Pytorch
        && hooks.device(py).getattr("type")?.extract::<String>()? == "cuda";
    let engine = if to_cuda {
        let layout: Vec<LayoutEntry> = plan
            .tensors()
            .iter()
            .map(|t| {
                let first = t.contiguous().map(|r| r.start);
                (
                    t.name.clone(),
                    t.dtype.name(),
                    t.shape.clone(),
                    t.nbytes,
                    first,
                )
            })
            .collect();
        let source = PrefetchSource { container, plan };
        let driver = py.import("safetensors._prefetch")?.call_method1(
            "ring_loader",
            (
                source,
                layout,
                hooks.device(py),
                threads,
                budget,
                sequential,
            ),
        )?;
        Engine::Ring(driver.unbind())
    } else {
        let options = PrefetchOptions {
            threads: threads.max(1),
            budget,
            remote: container.is_remote(),
            ..PrefetchOptions::default()
        };
        let holders = Mutex::new((0..plan.tensors().len()).map(|_| None).collect());
        let prefetch = Prefetch::start(plan, sources, options).map_err(to_pyerr)?;
        let host = HostEngine {
            prefetch,
            hooks,
            holders,
        };
        // Start reading now, as much as the budget allows.
        let mut alloc = |i: usize, t: &PlannedTensor| host.alloc(i, t);
        py.detach(|| host.prefetch.refill(&mut alloc))
            .map_err(to_pyerr)?;
        Engine::Host(host)
    };
    Ok(PrefetchLoader {
        engine,
        names,
        positions,
    })
}
