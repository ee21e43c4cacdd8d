//! `serialize`, `serialize_file`, `deserialize` and `TensorSpec`.
//!
//! Each tensor is passed to the core writer as a view over its own memory (a `TensorSpec`'s
//! address and length, or a bytes-like object's buffer): no byte of tensor data is copied
//! into an intermediate Python object, and the file is written with the interpreter detached.

use crate::dtype::parse_dtype;
use crate::error::{st_err, to_pyerr};
use crate::raw::{buffer_bytes, PinnedBytes, RawView};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyByteArray, PyBytes, PyDict, PyList, PyString};
use safetensors::checkpoint::ShardFile;
use safetensors::format::checksum::Algorithm;
use safetensors::write::{to_bytes_with, to_file_with, WriteOptions};
use safetensors::Dtype;
use std::collections::HashMap;
use std::path::PathBuf;

/// A tensor to serialize, described by its dtype, shape and the address and length of its
/// (C-contiguous, little-endian) bytes. The caller keeps the memory alive and unchanged
/// until `serialize`/`serialize_file` returns.
#[pyclass(frozen, name = "TensorSpec", module = "safetensors")]
pub struct TensorSpec {
    dtype: String,
    shape: Vec<usize>,
    data_ptr: usize,
    data_len: usize,
}

#[pymethods]
impl TensorSpec {
    /// Checks the dtype at once (a `SafetensorError` naming it), the rest when serializing.
    #[new]
    #[pyo3(signature = (*, dtype, shape, data_ptr, data_len))]
    fn new(dtype: String, shape: Vec<usize>, data_ptr: usize, data_len: usize) -> PyResult<Self> {
        parse_dtype(&dtype)?;
        Ok(TensorSpec {
            dtype,
            shape,
            data_ptr,
            data_len,
        })
    }

    /// The dtype, as given.
    #[getter]
    fn dtype(&self) -> &str {
        &self.dtype
    }

    /// The shape (header shape: elements, not storage units).
    #[getter]
    fn shape(&self) -> Vec<usize> {
        self.shape.clone()
    }

    /// The address of the first byte.
    #[getter]
    fn data_ptr(&self) -> usize {
        self.data_ptr
    }

    /// The number of bytes.
    #[getter]
    fn data_len(&self) -> usize {
        self.data_len
    }

    fn __repr__(&self) -> String {
        format!(
            "TensorSpec(dtype={:?}, shape={:?}, data_ptr={:#x}, data_len={})",
            self.dtype, self.shape, self.data_ptr, self.data_len
        )
    }
}

/// Checks that `len` is exactly the byte size of a `dtype` tensor of `shape`.
fn check_len(name: &str, dtype: Dtype, shape: &[usize], len: usize) -> PyResult<()> {
    match dtype.byte_size(shape) {
        Ok(w) if w == len => Ok(()),
        Ok(w) => Err(st_err(format!(
            "tensor {name}: dtype {dtype} with shape {shape:?} takes {w} bytes, but {len} bytes \
             were given"
        ))),
        Err(_) => Err(st_err(format!(
            "tensor {name}: shape {shape:?} with dtype {dtype} has no whole byte size (the shape \
             overflows, or the sub-byte elements do not fill whole bytes)"
        ))),
    }
}

/// The tensors of a `serialize` call, viewed in place, plus the buffers that pin them.
struct Prepared {
    views: Vec<(String, RawView)>,
    _pins: Vec<PinnedBytes>,
}

fn prepare(tensor_dict: &Bound<'_, PyDict>) -> PyResult<Prepared> {
    let mut views = Vec::with_capacity(tensor_dict.len());
    let mut pins = Vec::new();
    for (key, value) in tensor_dict.iter() {
        let name: String = key
            .extract()
            .map_err(|_| PyTypeError::new_err("tensor names must be str"))?;
        if let Ok(spec) = value.cast::<TensorSpec>() {
            let spec = spec.get();
            let dtype = parse_dtype(&spec.dtype)?;
            check_len(&name, dtype, &spec.shape, spec.data_len)?;
            if spec.data_len > 0 && spec.data_ptr == 0 {
                return Err(st_err(format!("tensor {name}: data_ptr is null")));
            }
            // SAFETY: the caller of `serialize` promises (documented on TensorSpec) that
            // `data_ptr..data_ptr+data_len` is its tensor's live memory, unchanged until the
            // call returns; the length matches dtype and shape (checked above).
            let view =
                unsafe { RawView::new(dtype, spec.shape.clone(), spec.data_ptr, spec.data_len) };
            views.push((name, view));
        } else if let Some(d) = value.cast::<PyDict>().ok().filter(|d| {
            ["dtype", "shape", "data"]
                .iter()
                .all(|k| d.contains(k).unwrap_or(false))
        }) {
            let get = |k: &str| -> PyResult<Bound<'_, PyAny>> {
                d.get_item(k)?.ok_or_else(|| {
                    st_err(format!("tensor {name}: the dict must have a {k:?} entry"))
                })
            };
            let dtype = parse_dtype(&get("dtype")?.extract::<String>()?)?;
            let shape: Vec<usize> = get("shape")?.extract().map_err(|_| {
                st_err(format!(
                    "tensor {name}: \"shape\" must be a list of non-negative ints"
                ))
            })?;
            let data = get("data")?;
            let buf = PinnedBytes::get(&data).map_err(|_| {
                PyTypeError::new_err(format!(
                    "tensor {name}: \"data\" must be a bytes-like object"
                ))
            })?;
            if !buf.is_c_contiguous() {
                return Err(st_err(format!(
                    "tensor {name}: \"data\" must be a contiguous buffer"
                )));
            }
            let bytes = buffer_bytes(&buf);
            check_len(&name, dtype, &shape, bytes.len())?;
            // SAFETY: `buf` pins the buffer's memory and is kept in `pins`, which lives as
            // long as the views; the length matches the buffer's (checked above).
            let view = unsafe { RawView::new(dtype, shape, bytes.as_ptr() as usize, bytes.len()) };
            views.push((name, view));
            pins.push(buf);
        } else {
            return Err(PyTypeError::new_err(format!(
                "tensor {name}: expected a TensorSpec or a dict with the keys \"dtype\", \
                 \"shape\", \"data\" (address and length go in a TensorSpec), got {}",
                value.get_type().name()?
            )));
        }
    }
    Ok(Prepared { views, _pins: pins })
}

/// The metadata argument as ordered pairs (None stays None).
pub(crate) fn metadata_pairs(
    metadata: Option<&Bound<'_, PyAny>>,
) -> PyResult<Option<Vec<(String, String)>>> {
    let Some(m) = metadata.filter(|m| !m.is_none()) else {
        return Ok(None);
    };
    let m = m
        .cast::<PyDict>()
        .map_err(|_| PyTypeError::new_err("metadata must be a dict of str to str, or None"))?;
    let mut pairs = Vec::with_capacity(m.len());
    for (k, v) in m.iter() {
        let key: String = k
            .extract()
            .map_err(|_| PyTypeError::new_err(format!("metadata keys must be str, got {k:?}")))?;
        if !v.is_instance_of::<PyString>() {
            return Err(PyTypeError::new_err(format!(
                "metadata values must be str: key {key:?} has a {} value; convert it with str() \
                 or json.dumps()",
                v.get_type().name()?
            )));
        }
        pairs.push((key, v.extract()?));
    }
    Ok(Some(pairs))
}

/// The writer's options from the `checksum` keyword: `None`, `"sha256"` or `"xxh3-64"`
/// (a `ValueError` naming the known algorithms otherwise).
pub(crate) fn write_options(checksum: Option<&str>) -> PyResult<WriteOptions> {
    let algorithm = checksum
        .map(|name| {
            name.parse::<Algorithm>()
                .map_err(|e| pyo3::exceptions::PyValueError::new_err(format!("checksum: {e}")))
        })
        .transpose()?;
    Ok(WriteOptions::default().with_checksum(algorithm))
}

/// `serialize(tensor_dict, metadata=None, *, checksum=None) -> bytes`.
#[pyfunction]
#[pyo3(signature = (tensor_dict, metadata = None, *, checksum = None))]
pub fn serialize<'py>(
    py: Python<'py>,
    tensor_dict: &Bound<'py, PyDict>,
    metadata: Option<&Bound<'py, PyAny>>,
    checksum: Option<&str>,
) -> PyResult<Bound<'py, PyBytes>> {
    let options = write_options(checksum)?;
    let prepared = prepare(tensor_dict)?;
    let metadata = metadata_pairs(metadata)?;
    let views = prepared.views;
    let out = py
        .detach(move || match metadata {
            None => to_bytes_with(views, None::<HashMap<String, String>>, &options),
            Some(pairs) => to_bytes_with(views, pairs, &options),
        })
        .map_err(to_pyerr)?;
    Ok(PyBytes::new(py, &out))
}

/// `serialize_file(tensor_dict, filename, metadata=None, *, checksum=None)`: writes a
/// temporary file next to `filename` and renames it over `filename` once complete.
#[pyfunction]
#[pyo3(signature = (tensor_dict, filename, metadata = None, *, checksum = None))]
pub fn serialize_file(
    py: Python<'_>,
    tensor_dict: &Bound<'_, PyDict>,
    filename: PathBuf,
    metadata: Option<&Bound<'_, PyAny>>,
    checksum: Option<&str>,
) -> PyResult<()> {
    let options = write_options(checksum)?;
    let prepared = prepare(tensor_dict)?;
    let metadata = metadata_pairs(metadata)?;
    let views = prepared.views;
    py.detach(|| match metadata {
        None => to_file_with(views, None::<HashMap<String, String>>, &filename, &options),
        Some(pairs) => to_file_with(views, pairs, &filename, &options),
    })
    .map_err(|e| match e {
        safetensors::Error::IoError(io) => {
            crate::error::write_error(py, io, &format!("cannot write {}", filename.display()))
        }
        other => to_pyerr(other),
    })?;
    drop(prepared._pins);
    Ok(())
}

/// `_serialize_sharded(tensor_dict, folder, max_shard_size, metadata=None)`: writes the
/// tensors (in dict order) as a sharded checkpoint in `folder` with the core's
/// `index::save_sharded` (shards of at most `max_shard_size` tensor bytes, e.g. "5GB" or
/// "1048576", then the index; one `model.safetensors` when everything fits) and returns the
/// index JSON text.
#[pyfunction]
#[pyo3(name = "_serialize_sharded", signature = (tensor_dict, folder, max_shard_size, metadata = None, *, checksum = None))]
pub fn serialize_sharded(
    py: Python<'_>,
    tensor_dict: &Bound<'_, PyDict>,
    folder: PathBuf,
    max_shard_size: &str,
    metadata: Option<&Bound<'_, PyAny>>,
    checksum: Option<&str>,
) -> PyResult<String> {
    let options = write_options(checksum)?;
    let limit = safetensors::checkpoint::shard_index::parse_size(max_shard_size).map_err(|e| {
        pyo3::exceptions::PyValueError::new_err(format!("max_shard_size {max_shard_size:?}: {e}"))
    })?;
    let prepared = prepare(tensor_dict)?;
    let metadata = metadata_pairs(metadata)?;
    let views = prepared.views;
    let index = py
        .detach(|| {
            safetensors::checkpoint::shard_index::save_sharded_with(
                views, metadata, &folder, limit, &options,
            )
        })
        .map_err(|e| match e {
            safetensors::Error::IoError(io) => crate::error::write_error(
                py,
                io,
                &format!("cannot write into {}", folder.display()),
            ),
            other => to_pyerr(other),
        })?;
    drop(prepared._pins);
    Ok(index)
}

/// `deserialize(bytes)`: every tensor, in data order, as `(name, {"dtype", "shape", "data"})`
/// with the header's dtype spelling and the bytes copied into a `bytearray`.
#[pyfunction]
pub fn deserialize<'py>(
    py: Python<'py>,
    bytes: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyList>> {
    let buf = PinnedBytes::get(bytes)?;
    if !buf.is_c_contiguous() {
        return Err(st_err("deserialize needs a contiguous bytes-like object"));
    }
    // Opened through the core's Checkpoint, like every other entry point: a buffer's file.
    let checkpoint = crate::py_source::open_pinned(buf)?;
    let file = checkpoint.shard_file(0).map_err(to_pyerr)?;
    let (Some(memory), start) = (shard_bytes(file), file.data_start() as usize) else {
        return Err(st_err("deserialize needs a bytes-like object"));
    };
    let out = PyList::empty(py);
    for (name, info) in file.metadata().entries() {
        let (begin, end) = info.data_offsets;
        let entry = PyDict::new(py);
        entry.set_item("dtype", info.dtype.name())?;
        entry.set_item("shape", info.shape)?;
        entry.set_item(
            "data",
            PyByteArray::new(py, &memory[start + begin..start + end]),
        )?;
        out.append((name, entry))?;
    }
    Ok(out)
}

/// The whole file's bytes, for a checkpoint file held in memory.
fn shard_bytes(file: &ShardFile) -> Option<&[u8]> {
    match file {
        ShardFile::Other(file) => file.bytes(),
        _ => None,
    }
}
