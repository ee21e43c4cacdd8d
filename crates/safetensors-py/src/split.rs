//! `_rank_part` and `_rank_bytes`: the core's split planner (`safetensors::plan::split`) for
//! the Python per-rank loader (`safetensors.torch.load_for_rank`), which then reads the part
//! with `get_slice`, or as one run of bytes through the staging ring.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use safetensors::plan::split::{rank_bytes as core_rank_bytes, rank_part as core_rank_part};
use safetensors::Dtype;

/// Part `rank` of `world_size` of a tensor of `shape` split along `dim` (negative counts
/// from the end), by `torch.chunk`'s rule: `(dim, start, stop)` with `dim` made non-negative.
/// A bad dimension, rank or world size is a `ValueError` saying which.
#[pyfunction]
#[pyo3(name = "_rank_part")]
pub fn rank_part(
    shape: Vec<usize>,
    dim: i64,
    world_size: usize,
    rank: usize,
) -> PyResult<(usize, usize, usize)> {
    let part = core_rank_part(&shape, dim, world_size, rank)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((part.dim, part.range.start, part.range.end))
}

/// `(dim, start, stop, part shape, (first byte, byte count) when one run)`.
type PartTuple = (usize, usize, usize, Vec<usize>, Option<(usize, usize)>);

/// The part as its bytes are read (`rank_bytes`: whole bytes for sub-byte dtypes):
/// `(dim, start, stop, part shape, run)` in the header's positions, `run` the part's
/// `(first byte, byte count)` within the tensor when it is one contiguous run, else None.
#[pyfunction]
#[pyo3(name = "_rank_bytes")]
pub fn rank_bytes(
    dtype: &str,
    shape: Vec<usize>,
    dim: i64,
    world_size: usize,
    rank: usize,
) -> PyResult<PartTuple> {
    let dtype: Dtype = dtype
        .parse()
        .map_err(|e: safetensors::Error| PyValueError::new_err(e.to_string()))?;
    let part = core_rank_bytes(dtype, &shape, dim, world_size, rank)
        .map_err(|e| PyValueError::new_err(e.to_string()))?;
    Ok((
        part.part.dim,
        part.part.range.start,
        part.part.range.end,
        part.shape,
        part.run.map(|r| (r.start, r.len())),
    ))
}
