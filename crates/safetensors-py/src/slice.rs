//! `get_slice(name)[...]`: reading part of a tensor.
//!
//! This file only converts the Python index into the core's `Index` entries (Python ints,
//! slices, `...`, `None`, the empty list `[]`, or a tuple of these); the core's planner
//! (`safetensors::plan::numpy_index::plan_index`) applies numpy's rules and decides both the bytes to
//! read and the result's shape, so the result is exactly numpy's `arr[index]`. A selection
//! that is one contiguous byte run is a view of the file mapping where the framework can make
//! one (mmap backend); any other is copied run by run into a new tensor (a negative step
//! simply lists the runs backwards).
//!
//! Any other entry (a list, an index tensor or array, a bool, a numpy or torch integer) goes
//! to `safetensors._slicing.getitem`, which applies the framework's own rules: it reads the
//! part of the tensor the index needs through this same `__getitem__` with basic entries
//! only, then indexes that part as the framework indexes the full tensor.
//!
//! A slice keeps the open container it was taken from: it stays readable after its
//! `safe_open` handle is closed, as the reference's does (the file stays open while a slice
//! of it is alive).

use crate::container::{shape_list, Container, Inner};
use crate::error::slice_error;
use crate::framework::Framework;
use pyo3::exceptions::PyOverflowError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyEllipsis, PyInt, PyList, PySlice, PyTuple};
use safetensors::plan::numpy_index::{plan_index, Index};
use safetensors::tensor::TensorInfo;
use std::sync::Arc;

/// A lazy view of one tensor of an open file.
#[pyclass(frozen, name = "PySafeSlice", module = "safetensors")]
pub struct PySafeSlice {
    inner: Arc<Inner>,
    /// The container the slice reads, kept open for as long as the slice lives.
    container: Arc<Container>,
    name: String,
    info: TensorInfo,
}

impl PySafeSlice {
    /// A view of tensor `name` (described by `info`) of `container`, opened by `inner`.
    pub fn new(
        inner: Arc<Inner>,
        container: Arc<Container>,
        name: String,
        info: TensorInfo,
    ) -> Self {
        PySafeSlice {
            inner,
            container,
            name,
            info,
        }
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

/// Converts one entry of a Python index; None for an entry only the framework's rules can
/// apply (see the module docs). `numpy_rules`: whether the framework indexes as numpy does
/// with `[]` (torch reads an int next to it as a basic index, numpy as an advanced one).
pub(crate) fn parse_item(obj: &Bound<'_, PyAny>, numpy_rules: bool) -> PyResult<Option<Index>> {
    if obj.is_instance_of::<PyEllipsis>() {
        return Ok(Some(Index::Ellipsis));
    }
    if obj.is_none() {
        return Ok(Some(Index::NewAxis));
    }
    if let Ok(slice) = obj.cast::<PySlice>() {
        let part = |attr: &str| optional_int(&slice.getattr(attr)?);
        return Ok(Some(Index::Slice {
            start: part("start")?,
            stop: part("stop")?,
            step: part("step")?,
        }));
    }
    if obj.is_instance_of::<PyBool>() {
        return Ok(None); // a mask, not the position 0 or 1
    }
    if obj.is_instance_of::<PyInt>() {
        return index_int(obj).map(|i| Some(Index::Int(i)));
    }
    if let Ok(list) = obj.cast::<PyList>() {
        if list.is_empty() && numpy_rules {
            return Ok(Some(Index::EmptyList));
        }
    }
    Ok(None)
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

    fn __len__(&self, py: Python<'_>) -> PyResult<usize> {
        self.info.shape.first().copied().ok_or_else(|| {
            let msg = format!("tensor {} is a scalar: it has no len()", self.name);
            crate::error::dual_err(py, "TypeError", msg)
        })
    }

    fn __getitem__<'py>(
        slf: &Bound<'py, Self>,
        py: Python<'py>,
        key: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let this = slf.get();
        let numpy_rules = this.inner.hooks.framework != Framework::Pytorch;
        let index = match key.cast::<PyTuple>() {
            Ok(t) => t
                .iter()
                .map(|e| parse_item(&e, numpy_rules))
                .collect::<PyResult<Option<Vec<_>>>>()?,
            Err(_) => parse_item(key, numpy_rules)?.map(|one| vec![one]),
        };
        let Some(mut index) = index else {
            let framework = match this.inner.hooks.framework {
                Framework::Pytorch => "pt",
                Framework::Numpy => "np",
                Framework::Tensorflow => "tf",
                Framework::Flax => "flax",
                Framework::Paddle => "paddle",
                Framework::Mlx => "mlx",
            };
            return py
                .import("safetensors._slicing")?
                .call_method1("getitem", (slf, key, framework, this.name.as_str()));
        };
        if !numpy_rules {
            // torch reads every `...` after the first as nothing (numpy refuses a second one).
            let mut seen = false;
            index.retain(|e| {
                let extra = seen && *e == Index::Ellipsis;
                seen |= *e == Index::Ellipsis;
                !extra
            });
        }
        let plan = plan_index(this.info.dtype, &this.info.shape, &index)
            .map_err(|e| slice_error(py, &this.name, e))?;
        let shape = plan.newshape();
        // A digest covers the whole tensor: with `verify`, the first slice checks all of it.
        this.inner
            .check_digests(py, &this.container, [this.name.as_str()])?;
        let opened = this.container.for_tensor(py, &this.name)?;
        opened.tensor_of(py, &this.inner.hooks, &this.name, &this.info, &shape, plan)
    }

    fn __repr__(&self) -> String {
        format!(
            "<PySafeSlice {} dtype={} shape={:?}>",
            self.name, self.info.dtype, self.info.shape
        )
    }
}
