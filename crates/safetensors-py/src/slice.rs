//! `get_slice(name)[...]`: reading part of a tensor.
//!
//! This file only converts the Python index into the core's `Index` entries (ints and
//! anything with `__index__`, slices, `...`, `None`, the empty list `[]`, or a tuple of
//! these); the core's planner (`safetensors::indexing::plan_index`) applies numpy's rules and
//! decides both the bytes to read and the result's shape, so the result is exactly numpy's
//! `arr[index]`. A selection that is one contiguous byte run is a view of the file mapping
//! where the framework can make one (mmap backend); any other is copied run by run into a
//! new tensor (a negative step simply lists the runs backwards).

use crate::error::{slice_error, st_err};
use crate::open::{shape_list, Inner};
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyEllipsis, PyList, PySlice, PyTuple};
use safetensors::indexing::{plan_index, Index};
use safetensors::tensor::TensorInfo;
use std::sync::Arc;

/// A lazy view of one tensor of an open file.
#[pyclass(frozen, name = "PySafeSlice", module = "safetensors")]
pub struct PySafeSlice {
    inner: Arc<Inner>,
    name: String,
    info: TensorInfo,
}

impl PySafeSlice {
    /// A view of tensor `name` (described by `info`) of `inner`.
    pub fn new(inner: Arc<Inner>, name: String, info: TensorInfo) -> Self {
        PySafeSlice { inner, name, info }
    }
}

/// An integer-like object (`__index__`) as an i64, saturated where it does not fit: a
/// saturated position is out of range, a saturated slice bound clamps the same way.
fn index_int(obj: &Bound<'_, PyAny>) -> PyResult<i64> {
    match obj.extract::<i64>() {
        Ok(i) => Ok(i),
        Err(e) if e.is_instance_of::<PyOverflowError>(obj.py()) => {
            Ok(if obj.lt(0)? { i64::MIN } else { i64::MAX })
        }
        Err(e) => Err(e),
    }
}

fn optional_int(obj: &Bound<'_, PyAny>) -> PyResult<Option<i64>> {
    if obj.is_none() {
        Ok(None)
    } else {
        index_int(obj).map(Some)
    }
}

fn unsupported(obj: &Bound<'_, PyAny>, why: &str) -> PyErr {
    let shown = obj
        .repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "this object".into());
    st_err(format!("cannot index a tensor slice with {shown}: {why}"))
}

/// Converts one entry of a Python index.
fn parse_item(obj: &Bound<'_, PyAny>) -> PyResult<Index> {
    if obj.is_instance_of::<PyEllipsis>() {
        return Ok(Index::Ellipsis);
    }
    if obj.is_none() {
        return Ok(Index::NewAxis);
    }
    if let Ok(slice) = obj.cast::<PySlice>() {
        let part = |attr: &str| optional_int(&slice.getattr(attr)?);
        return Ok(Index::Slice {
            start: part("start")?,
            stop: part("stop")?,
            step: part("step")?,
        });
    }
    if obj.is_instance_of::<PyBool>() {
        // numpy reads a bool as a mask, not as the position 0 or 1.
        return Err(unsupported(
            obj,
            "boolean (mask) indexing is not supported; use ints, slices, ..., None",
        ));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        if list.is_empty() {
            return Ok(Index::EmptyList);
        }
        return Err(unsupported(
            obj,
            "integer-array (advanced) indexing is not supported, except the empty list; load \
             the tensor and index it, or slice it with ints and slices",
        ));
    }
    if obj.hasattr("__index__")? {
        return index_int(obj).map(Index::Int).map_err(|e| {
            unsupported(
                obj,
                &format!("its __index__ failed ({e}); use ints, slices, ..., None"),
            )
        });
    }
    Err(unsupported(
        obj,
        "use ints, slices (a:b:c), ..., None or a tuple of these",
    ))
}

#[pymethods]
impl PySafeSlice {
    /// The tensor's shape as a list of ints.
    fn get_shape<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        shape_list(py, &self.info.shape)
    }

    /// The tensor's dtype in header spelling ("F32", "BF16", ...).
    fn get_dtype(&self) -> &'static str {
        self.info.dtype.name()
    }

    fn __len__(&self) -> PyResult<usize> {
        self.info
            .shape
            .first()
            .copied()
            .ok_or_else(|| st_err(format!("tensor {} is a scalar: it has no len()", self.name)))
    }

    fn __getitem__<'py>(
        &self,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let index = match key.cast::<PyTuple>() {
            Ok(t) => t
                .iter()
                .map(|e| parse_item(&e))
                .collect::<PyResult<Vec<_>>>()?,
            Err(_) => vec![parse_item(key)?],
        };
        let plan = plan_index(self.info.dtype, &self.info.shape, &index)
            .map_err(|e| slice_error(&self.name, e))?;
        let shape = plan.newshape();
        let opened = self.inner.opened(py)?.for_tensor(py, &self.name)?;
        opened.tensor_of(py, &self.inner.hooks, &self.name, &self.info, &shape, plan)
    }

    fn __repr__(&self) -> String {
        format!(
            "<PySafeSlice {} dtype={} shape={:?}>",
            self.name, self.info.dtype, self.info.shape
        )
    }
}
