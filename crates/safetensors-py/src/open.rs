//! `safe_open`: lazy, thread-safe access to the tensors of a safetensors container.
//!
//! Opening reads and validates only the header (and, with the mmap backend, maps the file
//! privately: see `mapping.rs`). `get_tensor` then returns a view into that mapping where the
//! framework can make one; otherwise it allocates the framework tensor and copies its bytes
//! once, with the interpreter detached, straight into it.

use crate::error::{st_err, to_pyerr};
use crate::framework::{Framework, Hooks};
use crate::slice::PySafeSlice;
use crate::source::Source;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use safetensors::file::{Backend, SafeFile};
use safetensors::tensor::TensorInfo;
use std::path::PathBuf;
use std::sync::Arc;

/// What a `safe_open` and the slices it hands out share.
pub struct Inner {
    /// Where the bytes come from.
    pub source: Source,
    /// The framework's hooks and the device.
    pub hooks: Hooks,
    /// The private, copy-on-write mapping of the file that tensors are views of (mmap
    /// backend on a path only).
    pub map: Option<Py<PyAny>>,
}

impl Inner {
    /// The header entry of tensor `name`, or a `SafetensorError` naming it.
    pub fn info(&self, name: &str) -> PyResult<&TensorInfo> {
        self.source.metadata().info(name).ok_or_else(|| {
            st_err(format!(
                "File does not contain tensor {name}: call keys() to list the tensors it has"
            ))
        })
    }

    /// Tensor `name` (described by `info`) as a view of the private mapping, indexed by
    /// `index` when given; None when there is no mapping or the framework cannot view it.
    pub fn view<'py>(
        &self,
        py: Python<'py>,
        info: &TensorInfo,
        index: Option<Bound<'py, pyo3::types::PyTuple>>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (Some(map), Source::File(file)) = (&self.map, &self.source) else {
            return Ok(None);
        };
        // A file that shrank since it was mapped would fault on first touch of a view:
        // refuse cleanly instead (a shrink after this check is the documented limit).
        file.check_unchanged().map_err(to_pyerr)?;
        let (begin, end) = info.data_offsets;
        let offset = file.data_start() + begin as u64;
        self.hooks
            .view(py, map, info.dtype, &info.shape, offset, end - begin, index)
    }

    /// The whole tensor `name` as a framework tensor.
    pub fn tensor<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let info = self.info(name)?;
        if let Some(view) = self.view(py, info, None)? {
            return Ok(view);
        }
        let len = info.data_offsets.1 - info.data_offsets.0;
        #[allow(clippy::single_range_in_vec_init)]
        let ranges = [0..len];
        self.hooks
            .build(py, &self.source, name, info, &info.shape, &ranges, None)
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
    /// Wraps a validated source for `framework` on `device`.
    pub fn from_source(
        py: Python<'_>,
        source: Source,
        framework: &str,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<SafeOpen> {
        let framework = Framework::parse(framework)?;
        let hooks = Hooks::load(py, framework, device)?;
        let map = match &source {
            Source::File(file) => crate::mapping::private_map(py, file)?,
            Source::Buffer { .. } | Source::Handle { .. } => None,
        };
        Ok(SafeOpen {
            inner: Arc::new(Inner { source, hooks, map }),
        })
    }
}

fn parse_backend(name: &str) -> PyResult<Backend> {
    match name {
        // SAFETY: `safe_open`'s documented contract, the same as the reference package's and
        // every mmap loader's (numpy.memmap, torch.load(mmap=True)): the file is not modified
        // in place or truncated while open. Truncation is also checked before every read.
        "mmap" => Ok(unsafe { Backend::mmap() }),
        "pread" => Ok(Backend::Pread),
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
        filename: PathBuf,
        framework: &str,
        device: Option<&Bound<'_, PyAny>>,
        backend: &str,
    ) -> PyResult<Self> {
        // Check the cheap arguments before touching the file system.
        Framework::parse(framework)?;
        let backend = parse_backend(backend)?;
        let file = py
            .detach(|| SafeFile::open(&filename, backend))
            .map_err(|e| match e {
                safetensors::SafeTensorError::IoError(io) => {
                    crate::error::io_error(io, &format!("cannot open {}", filename.display()))
                }
                other => to_pyerr(other),
            })?;
        let cpu = pyo3::types::PyString::new(py, "cpu").into_any();
        let device = device.unwrap_or(&cpu);
        SafeOpen::from_source(py, Source::File(file), framework, device)
    }

    /// The tensor names, sorted.
    fn keys(&self) -> Vec<String> {
        self.inner
            .source
            .metadata()
            .names_sorted()
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    /// The tensor names in the order of their data in the file.
    fn offset_keys(&self) -> Vec<String> {
        self.inner.source.metadata().offset_keys()
    }

    /// The `__metadata__` of the header as a dict (in file order), or None.
    fn metadata<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(pairs) = self.inner.source.metadata().metadata_ordered() else {
            return Ok(None);
        };
        let dict = PyDict::new(py);
        for (k, v) in pairs {
            dict.set_item(k, v)?;
        }
        Ok(Some(dict))
    }

    /// Loads the tensor `name` (whole).
    fn get_tensor<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        self.inner.tensor(py, name)
    }

    /// Loads every tensor, as a dict keyed by name (sorted order).
    fn get_tensors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = PyDict::new(py);
        for name in self.inner.source.metadata().names_sorted() {
            dict.set_item(name, self.inner.tensor(py, name)?)?;
        }
        Ok(dict)
    }

    /// A lazy view of tensor `name`: index it to read only part of it.
    fn get_slice(&self, name: &str) -> PyResult<PySafeSlice> {
        let info = self.inner.info(name)?.clone();
        Ok(PySafeSlice::new(self.inner.clone(), name.to_owned(), info))
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (_exc_type = None, _exc_value = None, _traceback = None))]
    fn __exit__(
        &self,
        _exc_type: Option<&Bound<'_, PyAny>>,
        _exc_value: Option<&Bound<'_, PyAny>>,
        _traceback: Option<&Bound<'_, PyAny>>,
    ) -> bool {
        false
    }

    fn __len__(&self) -> usize {
        self.inner.source.metadata().len()
    }

    fn __contains__(&self, name: &str) -> bool {
        self.inner.source.metadata().info(name).is_some()
    }

    fn __repr__(&self) -> String {
        format!(
            "<safe_open with {} tensors>",
            self.inner.source.metadata().len()
        )
    }
}

/// Helper used by slices: a list of Python ints.
pub fn shape_list<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, shape)
}
