//! The frameworks a tensor can be loaded into, and the two hooks each framework's Python
//! module provides so that loading copies file bytes exactly once, straight into the final
//! tensor's memory:
//!
//! - `_st_empty(dtype, shape) -> (holder, address, nbytes)` allocates an uninitialized CPU
//!   tensor (or array) for a header dtype and shape, and reports where its bytes live;
//! - `_st_finish(holder, dtype, shape, device) -> tensor` turns the filled holder into what
//!   the user gets: moves it to the device, wraps it in the framework's type.
//!
//! - `_st_view(map, dtype, shape, offset, nbytes, device) -> tensor | None` builds the tensor
//!   from the bytes `offset..offset + nbytes` of the private file mapping `map` (see
//!   `mapping.rs`) without copying where the framework can (torch, numpy: a view into the
//!   mapping), or with a single copy into the framework otherwise. It returns None when no
//!   view can be made (an offset not aligned to the element size, a tensor with no elements,
//!   a dtype the framework cannot view): the loader then copies.
//!
//! Which bytes a tensor or a slice of it needs, and the result's shape, are decided by the
//! core's planner (`safetensors::checkpoint::shard_index`); the hooks never index.
//!
//! `_st_device(device)` checks and normalizes the `device` argument once, at open time.
//!
//! Optionally, `_st_load_all(handle, names, device) -> dict | None` is a framework's own
//! whole load of `names` from the open `safe_open` handle onto a device that is not the CPU
//! (torch: CUDA through the pinned staging ring of `_staging.py`, the core's ring behind the
//! handle's private `_layout`/`_staging_ring`); None lets the loader read tensor by tensor.

use crate::error::st_err;
use crate::raw::RawDst;
use pyo3::prelude::*;
use pyo3::types::PyDict;
use safetensors::Dtype;

/// A framework a tensor can be returned as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framework {
    /// PyTorch (`"pt"`, `"torch"`).
    Pytorch,
    /// NumPy (`"np"`, `"numpy"`).
    Numpy,
    /// TensorFlow (`"tf"`, `"tensorflow"`).
    Tensorflow,
    /// JAX / Flax (`"flax"`, `"jax"`).
    Flax,
    /// PaddlePaddle (`"paddle"`).
    Paddle,
    /// MLX (`"mlx"`).
    Mlx,
}

impl Framework {
    /// Parses the `framework` argument of `safe_open`.
    pub fn parse(name: &str) -> PyResult<Framework> {
        Ok(match name {
            "pt" | "torch" | "pytorch" => Framework::Pytorch,
            "np" | "numpy" => Framework::Numpy,
            "tf" | "tensorflow" => Framework::Tensorflow,
            "flax" | "jax" => Framework::Flax,
            "paddle" | "paddlepaddle" => Framework::Paddle,
            "mlx" => Framework::Mlx,
            // The reference raises SafetensorError, ours raised ValueError: both.
            _ => {
                return Python::attach(|py| {
                    Err(crate::error::dual_err(
                        py,
                        "ValueError",
                        format!(
                            "framework {name:?} is invalid: use one of \"pt\" (or \"torch\"), \
                             \"np\" (\"numpy\"), \"tf\" (\"tensorflow\"), \"flax\" (\"jax\"), \
                             \"paddle\", \"mlx\""
                        ),
                    ))
                })
            }
        })
    }

    /// The Python module that implements the hooks.
    fn module(self) -> &'static str {
        match self {
            Framework::Pytorch => "safetensors.torch",
            Framework::Numpy => "safetensors.numpy",
            Framework::Tensorflow => "safetensors.tensorflow",
            Framework::Flax => "safetensors.flax",
            Framework::Paddle => "safetensors.paddle",
            Framework::Mlx => "safetensors.mlx",
        }
    }
}

/// The resolved hooks of one framework plus the normalized device.
pub struct Hooks {
    /// The framework the hooks belong to.
    pub framework: Framework,
    empty: Py<PyAny>,
    finish: Py<PyAny>,
    view: Py<PyAny>,
    load_all: Option<Py<PyAny>>,
    device: Py<PyAny>,
}

impl Hooks {
    /// Imports the framework's module (which imports the framework itself) and normalizes
    /// `device` through its `_st_device` hook.
    pub fn load(
        py: Python<'_>,
        framework: Framework,
        device: &Bound<'_, PyAny>,
    ) -> PyResult<Hooks> {
        let module = py.import(framework.module())?;
        // An invalid device is a SafetensorError, as the reference raises it, that is also
        // what the framework raised (torch: RuntimeError, TypeError; ours: ValueError).
        let device = module.call_method1("_st_device", (device,)).map_err(|e| {
            let shown = device.repr().map(|r| r.to_string()).unwrap_or_default();
            crate::error::as_dual(py, e, &format!("device {shown} is invalid"))
        })?;
        Ok(Hooks {
            framework,
            empty: module.getattr("_st_empty")?.unbind(),
            finish: module.getattr("_st_finish")?.unbind(),
            view: module.getattr("_st_view")?.unbind(),
            load_all: match module.hasattr("_st_load_all")? {
                true => Some(module.getattr("_st_load_all")?.unbind()),
                false => None,
            },
            device: device.unbind(),
        })
    }

    /// The framework tensor for the `nbytes` bytes at absolute `offset` of the private file
    /// mapping `map`, with header `dtype` and `shape`; None when the framework cannot view
    /// these bytes (the caller then copies them instead).
    pub fn view<'py>(
        &self,
        py: Python<'py>,
        map: &Py<PyAny>,
        dtype: Dtype,
        shape: &[usize],
        offset: u64,
        nbytes: usize,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let made = self.view.bind(py).call1((
            map.bind(py),
            dtype.name(),
            shape.to_vec(),
            offset,
            nbytes,
            self.device.bind(py),
        ))?;
        Ok(if made.is_none() { None } else { Some(made) })
    }

    /// The framework's own whole load of `names` from `handle` (the `safe_open` they belong
    /// to) onto the device, where it has one for this device; None: load tensor by tensor.
    pub fn load_all<'py>(
        &self,
        py: Python<'py>,
        handle: &Bound<'py, PyAny>,
        names: &[String],
    ) -> PyResult<Option<Bound<'py, PyDict>>> {
        let Some(hook) = &self.load_all else {
            return Ok(None);
        };
        let made = hook
            .bind(py)
            .call1((handle, names.to_vec(), self.device.bind(py)))?;
        match made.is_none() {
            true => Ok(None),
            false => Ok(Some(made.cast_into::<PyDict>()?)),
        }
    }

    /// The normalized device tensors go to.
    pub fn device<'py>(&self, py: Python<'py>) -> &Bound<'py, PyAny> {
        self.device.bind(py)
    }

    /// True when tensors are returned in host memory: the normalized device prints as
    /// `cpu` (torch, numpy and the others), `cpu:N` (torch) or `Place(cpu)` (paddle).
    pub fn on_cpu(&self, py: Python<'_>) -> bool {
        let name = self
            .device
            .bind(py)
            .str()
            .and_then(|s| s.extract::<String>());
        name.is_ok_and(|s| s == "cpu" || s.starts_with("cpu:") || s == "Place(cpu)")
    }

    /// Builds the framework tensor `name` of `dtype` and `shape` from `want` bytes: allocates
    /// it, lets `fill` copy the bytes straight into its memory, then finishes it.
    pub fn build<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        want: usize,
        fill: impl FnOnce(&mut [u8]) -> PyResult<()>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut empty = self.empty(py, name, dtype, shape, want)?;
        fill(empty.dst.as_mut_slice())?;
        self.finish(py, empty)
    }

    /// Allocates the framework tensor `name` of `dtype` and `shape`, `want` bytes, not yet
    /// filled: write its bytes through [`Empty::dst`], then [`Hooks::finish`] it.
    pub fn empty<'py>(
        &self,
        py: Python<'py>,
        name: &str,
        dtype: Dtype,
        shape: &[usize],
        want: usize,
    ) -> PyResult<Empty<'py>> {
        let made = self.empty.bind(py).call1((dtype.name(), shape.to_vec()))?;
        let (holder, addr, nbytes): (Bound<'py, PyAny>, usize, usize) = made.extract()?;
        if nbytes != want {
            return Err(st_err(format!(
                "tensor {name}: the framework allocated {nbytes} bytes for dtype {dtype} and shape \
                 {shape:?}, expected {want}"
            )));
        }
        if want > 0 && addr == 0 {
            return Err(st_err(format!(
                "tensor {name}: the framework returned a null buffer"
            )));
        }
        // SAFETY: `holder` owns `nbytes` bytes at `addr`, freshly allocated by `_st_empty` and
        // not yet visible to any other Python code; `Empty` keeps `holder` alive with the
        // destination, and `finish` consumes both, so the memory outlives every write to it.
        let dst = unsafe { RawDst::new(addr, nbytes) };
        Ok(Empty {
            holder,
            dst,
            dtype,
            shape: shape.to_vec(),
        })
    }

    /// Turns a filled tensor into what the user gets (on the device, in the framework's type).
    pub fn finish<'py>(&self, py: Python<'py>, empty: Empty<'py>) -> PyResult<Bound<'py, PyAny>> {
        self.finish.bind(py).call1((
            empty.holder,
            empty.dtype.name(),
            empty.shape,
            self.device.bind(py),
        ))
    }
}

/// A framework tensor allocated by [`Hooks::empty`] and not yet filled.
pub struct Empty<'py> {
    holder: Bound<'py, PyAny>,
    /// Its memory, to be filled before [`Hooks::finish`].
    pub dst: RawDst,
    dtype: Dtype,
    shape: Vec<usize>,
}

impl<'py> Empty<'py> {
    /// The object owning the memory, to keep while the memory is filled elsewhere (a
    /// prefetch); [`Hooks::finish`] it later with [`Empty::from_parts`].
    pub fn into_parts(self) -> (Bound<'py, PyAny>, RawDst) {
        (self.holder, self.dst)
    }

    /// An allocation split by [`Empty::into_parts`], whole again once filled.
    pub fn from_parts(holder: Bound<'py, PyAny>, dtype: Dtype, shape: Vec<usize>) -> Self {
        Empty {
            holder,
            dst: RawDst::default(),
            dtype,
            shape,
        }
    }

    /// Moves the destination out, to fill it in a batch read: the tensor keeps its memory,
    /// and [`Hooks::finish`] still takes it afterwards.
    pub fn take_dst(&mut self) -> RawDst {
        std::mem::take(&mut self.dst)
    }
}
