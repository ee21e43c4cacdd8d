//! `_rank_part`: the core's split planner (`safetensors::plan::split`) for the Python per-rank
//! loader (`safetensors.torch.load_for_rank`), which then reads the part with `get_slice`.

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use safetensors::plan::split::rank_part as core_rank_part;

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
