//! `get_slice(name)[...]`: reading part of a tensor.
//!
//! The Python index (ints, slices with negative bounds, `...`, tuples of these) is turned
//! into core `TensorIndexer`s. With a private file mapping (mmap backend, see `mapping.rs`)
//! the normalized index is applied to a view of the whole tensor: the result is a view (torch,
//! numpy) or a copy of just the selected elements (other frameworks). Otherwise
//! `safetensors::slice::byte_ranges` computes which bytes to read and the result's shape, and
//! only those bytes are copied. A slice with a step > 1 reads
//! the covering range and lets the framework take every step-th element; a negative step is
//! refused (no framework here can represent it as a plain dense tensor without a copy that
//! the caller can just as well make with a flip).

use crate::error::{slice_error, st_err};
use crate::open::{shape_list, Inner};
use pyo3::prelude::*;
use pyo3::types::{PyEllipsis, PyList, PySlice, PyTuple};
use safetensors::slice::{byte_ranges, TensorIndexer};
use safetensors::tensor::TensorInfo;
use std::ops::Bound as B;
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

/// One parsed index entry, before ellipsis expansion.
enum Item {
    Index(isize),
    Slice(isize, isize, isize, usize),
    Ellipsis,
}

/// Parses one entry of an index.
fn parse_item(obj: &Bound<'_, PyAny>, dim_size: Option<usize>) -> PyResult<Item> {
    if obj.is_instance_of::<PyEllipsis>() {
        return Ok(Item::Ellipsis);
    }
    if let Ok(slice) = obj.cast::<PySlice>() {
        let size = dim_size.unwrap_or(0);
        let ind = slice.indices(size as isize)?;
        return Ok(Item::Slice(ind.start, ind.stop, ind.step, ind.slicelength));
    }
    if let Ok(i) = obj.extract::<isize>() {
        return Ok(Item::Index(i));
    }
    Err(st_err(format!(
        "cannot index a tensor slice with {}: use ints, slices (a:b:c), ... or a tuple of these",
        obj.repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| "this object".into())
    )))
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
        let shape = &self.info.shape;
        let rank = shape.len();
        let entries: Vec<Bound<'py, PyAny>> = match key.cast::<PyTuple>() {
            Ok(t) => t.iter().collect(),
            Err(_) => vec![key.clone()],
        };
        let ellipses = entries
            .iter()
            .filter(|e| e.is_instance_of::<PyEllipsis>())
            .count();
        if ellipses > 1 {
            return Err(st_err(format!(
                "Invalid slice of tensor {}: an index can only have a single ellipsis ('...')",
                self.name
            )));
        }
        let given = entries.len() - ellipses;
        if given > rank {
            return Err(st_err(format!(
                "Invalid slice of tensor {}: {given} indices given for a tensor of rank {rank} \
                 (shape {shape:?})",
                self.name
            )));
        }
        // Resolve each entry against the dimension it applies to.
        let mut indexers = Vec::with_capacity(rank);
        let mut steps: Vec<Option<isize>> = Vec::new(); // one per output dim
        let mut any_step = false;
        // The same selection as a normalized Python index (ints and slices with resolved,
        // non-negative bounds and positive steps), for the view path.
        let mut pyindex: Vec<Bound<'py, PyAny>> = Vec::with_capacity(rank);
        let mut dim = 0;
        for entry in &entries {
            match parse_item(entry, shape.get(dim).copied())? {
                Item::Ellipsis => {
                    let fill = rank - given;
                    for _ in 0..fill {
                        indexers.push(TensorIndexer::Narrow(B::Unbounded, B::Unbounded));
                        steps.push(None);
                        pyindex.push(PySlice::full(py).into_any());
                        dim += 1;
                    }
                }
                Item::Index(i) => {
                    let size = shape[dim];
                    let j = if i < 0 { i + size as isize } else { i };
                    if j < 0 || j as usize >= size {
                        return Err(st_err(format!(
                            "Invalid slice of tensor {}: index {i} is out of range for dimension \
                             {dim} of size {size}",
                            self.name
                        )));
                    }
                    indexers.push(TensorIndexer::Select(j as usize));
                    pyindex.push(j.into_pyobject(py)?.into_any());
                    dim += 1;
                }
                Item::Slice(start, _stop, step, len) => {
                    if step < 0 {
                        return Err(st_err(format!(
                            "Invalid slice of tensor {}: negative step {step} in dimension {dim} \
                             is not supported; slice with a positive step and flip the result",
                            self.name
                        )));
                    }
                    let start = start.max(0) as usize;
                    if len == 0 {
                        indexers.push(TensorIndexer::Narrow(
                            B::Included(start),
                            B::Excluded(start),
                        ));
                        steps.push(None);
                        let at = start as isize;
                        pyindex.push(PySlice::new(py, at, at, 1).into_any());
                    } else {
                        let step = step as usize;
                        let end = start + (len - 1) * step + 1;
                        indexers.push(TensorIndexer::Narrow(B::Included(start), B::Excluded(end)));
                        pyindex.push(
                            PySlice::new(py, start as isize, end as isize, step as isize)
                                .into_any(),
                        );
                        if step > 1 {
                            any_step = true;
                            steps.push(Some(step as isize));
                        } else {
                            steps.push(None);
                        }
                    }
                    dim += 1;
                }
            }
        }
        while dim < rank {
            indexers.push(TensorIndexer::Narrow(B::Unbounded, B::Unbounded));
            steps.push(None);
            pyindex.push(PySlice::full(py).into_any());
            dim += 1;
        }
        if any_step && self.info.dtype.bitsize() < 8 {
            return Err(st_err(format!(
                "Invalid slice of tensor {}: a step > 1 is not supported for the sub-byte dtype {}",
                self.name, self.info.dtype
            )));
        }
        if self.info.dtype.bitsize() >= 8 {
            let index = PyTuple::new(py, pyindex)?;
            if let Some(view) = self.inner.view(py, &self.info, Some(index))? {
                return Ok(view);
            }
        }
        let plan = byte_ranges(self.info.dtype, shape, &indexers)
            .map_err(|e| slice_error(&self.name, e))?;
        let newshape = plan.newshape();
        let ranges: Vec<_> = plan.collect();
        let steps = if any_step {
            let items = steps.iter().map(|s| s.unwrap_or(1));
            Some(PyTuple::new(py, items)?)
        } else {
            None
        };
        self.inner.hooks.build(
            py,
            &self.inner.source,
            &self.name,
            &self.info,
            &newshape,
            &ranges,
            steps,
        )
    }

    fn __repr__(&self) -> String {
        format!(
            "<PySafeSlice {} dtype={} shape={:?}>",
            self.name, self.info.dtype, self.info.shape
        )
    }
}
