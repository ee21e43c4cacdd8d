//! numpy's basic indexing rules: an index as Python code writes it (`t[1, -3:, ..., ::-2]`)
//! resolved against a tensor's shape into the byte plan of [`crate::plan::slice`].
//!
//! Every front end (the Python binding, anything else that takes numpy-style indices) only
//! converts its objects into [`Index`] entries; the rules live here, once: negative positions
//! count from the end, slice bounds are clamped the way Python's `slice.indices` clamps them,
//! `...` stands for as many whole dimensions as the other entries leave, a new axis adds a
//! dimension of length 1, and an empty integer list (`t[[]]`) selects nothing along its
//! dimension, its result dimension placed where numpy places it.

use alloc::string::ToString;
use alloc::vec::Vec;

use crate::format::dtype::Dtype;
use crate::plan::slice::{byte_ranges, ByteRanges, DimIndexer, SliceError};

/// One entry of a numpy-style index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Index {
    /// `i`: one position (a negative one counts from the end); the dimension disappears.
    Int(i64),
    /// `start:stop:step`, each part optional, with Python's defaults and clamping; a
    /// negative step walks backwards.
    Slice {
        /// First position (default: the first element in the step's direction).
        start: Option<i64>,
        /// Position to stop before (default: past the last element in the step's direction).
        stop: Option<i64>,
        /// Distance between kept positions (default 1; never 0).
        step: Option<i64>,
    },
    /// `...`: as many whole dimensions as the other entries leave (at most one per index).
    Ellipsis,
    /// `None` (`np.newaxis`): a new dimension of length 1; consumes no dimension.
    NewAxis,
    /// `[]`: an empty integer-list index; selects nothing along its dimension.
    EmptyList,
}

impl Index {
    /// Whether the entry stands for one dimension of the tensor.
    fn consumes(&self) -> bool {
        matches!(self, Index::Int(_) | Index::Slice { .. } | Index::EmptyList)
    }
}

/// Python's `slice.indices` + slice length, in wide integers so no bound overflows:
/// (first position, step, number of positions).
fn slice_span(
    start: Option<i64>,
    stop: Option<i64>,
    step: Option<i64>,
    size: usize,
    dim_index: usize,
) -> Result<(usize, isize, usize), SliceError> {
    let step = i128::from(step.unwrap_or(1));
    if step == 0 {
        return Err(SliceError::ZeroStep { dim_index });
    }
    let n = size as i128;
    let (lower, upper) = if step > 0 { (0, n) } else { (-1, n - 1) };
    let adjust = |v: Option<i64>, default: i128| match v {
        None => default,
        Some(v) if v < 0 => (i128::from(v) + n).max(lower),
        Some(v) => i128::from(v).min(upper),
    };
    let start = adjust(start, if step < 0 { upper } else { lower });
    let stop = adjust(stop, if step < 0 { lower } else { upper });
    let len = if step < 0 && stop < start {
        (start - stop - 1) / -step + 1
    } else if step > 0 && start < stop {
        (stop - start - 1) / step + 1
    } else {
        0
    };
    if len == 0 {
        return Ok((0, 1, 0));
    }
    // With two or more positions inside the dimension, |step| < size: it fits an isize.
    let step = if len == 1 { 1 } else { step as isize };
    Ok((start as usize, step, len as usize))
}

/// Resolves `index` against a tensor of `dtype` and `shape`: the byte ranges to read (relative
/// to the tensor's first byte, in the result's row-major order) and, through
/// [`ByteRanges::newshape`], the shape numpy gives `arr[index]`. Where numpy raises
/// (too many indices, a position out of range, a zero step, two `...`), this errors.
pub fn plan_index(
    dtype: Dtype,
    shape: &[usize],
    index: &[Index],
) -> Result<ByteRanges, SliceError> {
    let rank = shape.len();
    if index
        .iter()
        .filter(|e| matches!(e, Index::Ellipsis))
        .count()
        > 1
    {
        return Err(SliceError::MultipleEllipsis);
    }
    let given = index.iter().filter(|e| e.consumes()).count();
    if given > rank {
        return Err(SliceError::TooManySlices { given, rank });
    }
    // The index with `...` expanded (and missing trailing entries filled) to whole slices.
    let whole = Index::Slice {
        start: None,
        stop: None,
        step: None,
    };
    let mut entries = Vec::with_capacity(index.len() + rank);
    for entry in index {
        match entry {
            Index::Ellipsis => entries.extend(core::iter::repeat(whole).take(rank - given)),
            other => entries.push(*other),
        }
    }
    if !index.contains(&Index::Ellipsis) {
        entries.extend(core::iter::repeat(whole).take(rank - given));
    }

    let mut indexers = Vec::with_capacity(rank);
    // The result's dimensions, each with the position of the entry it comes from.
    let mut dims: Vec<usize> = Vec::with_capacity(entries.len());
    let mut dim_index = 0;
    for entry in &entries {
        match *entry {
            Index::NewAxis => dims.push(1),
            Index::Int(i) => {
                let size = shape[dim_index];
                let at = if i < 0 {
                    i128::from(i) + size as i128
                } else {
                    i128::from(i)
                };
                if at < 0 || at >= size as i128 {
                    return Err(SliceError::SliceOutOfRange {
                        dim_index,
                        asked: i.to_string(),
                        index: at.clamp(0, usize::MAX as i128) as usize,
                        dim_size: size,
                    });
                }
                indexers.push(DimIndexer::Select(at as usize));
                dim_index += 1;
            }
            Index::Slice { start, stop, step } => {
                let (start, step, len) =
                    slice_span(start, stop, step, shape[dim_index], dim_index)?;
                indexers.push(if step == 1 {
                    (start..start + len).into()
                } else {
                    DimIndexer::Strided { start, step, len }
                });
                dims.push(len);
                dim_index += 1;
            }
            Index::EmptyList => {
                indexers.push((0..0).into());
                dim_index += 1;
            }
            Index::Ellipsis => unreachable!("expanded above"),
        }
    }
    let ranges = byte_ranges(dtype, shape, &indexers)?;
    if !entries.contains(&Index::EmptyList) {
        return Ok(ranges.with_shape(dims));
    }
    // numpy's advanced indexing: the empty lists and the ints (which then count as advanced
    // too) broadcast to one dimension of length 0. It takes the place of the first of them
    // when they are next to each other in the index, and goes first otherwise.
    let advanced: Vec<usize> = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| matches!(e, Index::Int(_) | Index::EmptyList))
        .map(|(i, _)| i)
        .collect();
    let first = advanced[0];
    let adjacent = advanced.last() == Some(&(first + advanced.len() - 1));
    // Result dimensions before the first advanced entry.
    let before = entries[..first]
        .iter()
        .filter(|e| matches!(e, Index::NewAxis | Index::Slice { .. }))
        .count();
    let at = if adjacent { before } else { 0 };
    dims.insert(at, 0);
    Ok(ranges.with_shape(dims))
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)]
mod tests {
    use super::*;
    use alloc::vec;
    use core::ops::Range;

    fn s(start: Option<i64>, stop: Option<i64>, step: Option<i64>) -> Index {
        Index::Slice { start, stop, step }
    }

    fn plan(shape: &[usize], index: &[Index]) -> (Vec<usize>, Vec<Range<usize>>) {
        let r = plan_index(Dtype::U8, shape, index).unwrap();
        (r.newshape(), r.collect())
    }

    #[test]
    fn negative_step_reads_backwards() {
        let (shape, runs) = plan(&[4], &[s(None, None, Some(-1))]);
        assert_eq!(shape, vec![4]);
        assert_eq!(runs, vec![3..4, 2..3, 1..2, 0..1]);
        // Rows reversed: each row stays one run.
        let (shape, runs) = plan(&[3, 2], &[s(None, None, Some(-2))]);
        assert_eq!(shape, vec![2, 2]);
        assert_eq!(runs, vec![4..6, 0..2]);
    }

    #[test]
    fn python_clamping() {
        assert_eq!(plan(&[5], &[s(Some(-100), Some(100), None)]).0, vec![5]);
        assert_eq!(
            plan(&[5], &[s(Some(i64::MIN), Some(i64::MAX), Some(i64::MAX))]).1,
            vec![0..1]
        );
        assert_eq!(plan(&[5], &[s(Some(3), Some(1), None)]).0, vec![0]);
        assert_eq!(plan(&[5], &[Index::Int(-1)]), (vec![], vec![4..5]));
    }

    #[test]
    fn ellipsis_and_new_axes() {
        let (shape, _) = plan(
            &[2, 3, 4],
            &[
                Index::NewAxis,
                Index::Ellipsis,
                Index::Int(0),
                Index::NewAxis,
            ],
        );
        assert_eq!(shape, vec![1, 2, 3, 1]);
        assert_eq!(plan(&[], &[Index::Ellipsis]), (vec![], vec![0..1]));
    }

    #[test]
    fn empty_list_places_its_dimension_like_numpy() {
        assert_eq!(plan(&[3, 4], &[Index::EmptyList]).0, vec![0, 4]);
        assert_eq!(plan(&[3, 4], &[whole(), Index::EmptyList]).0, vec![3, 0]);
        assert_eq!(plan(&[3, 4], &[Index::Int(1), Index::EmptyList]).0, vec![0]);
        // Not next to each other: the broadcast dimension goes first.
        assert_eq!(
            plan(&[2, 3, 4], &[Index::EmptyList, whole(), Index::Int(1)]).0,
            vec![0, 3]
        );
        assert!(plan(&[3, 4], &[Index::EmptyList]).1.is_empty());
    }

    fn whole() -> Index {
        s(None, None, None)
    }

    #[test]
    fn errors_where_numpy_raises() {
        let err =
            |shape: &[usize], index: &[Index]| plan_index(Dtype::U8, shape, index).unwrap_err();
        assert!(matches!(
            err(&[], &[Index::EmptyList]),
            SliceError::TooManySlices { given: 1, rank: 0 }
        ));
        assert!(matches!(
            err(&[3], &[Index::Int(3)]),
            SliceError::SliceOutOfRange { .. }
        ));
        assert!(matches!(
            err(&[3], &[Index::Int(-4)]),
            SliceError::SliceOutOfRange { .. }
        ));
        assert!(matches!(
            err(&[3], &[s(None, None, Some(0))]),
            SliceError::ZeroStep { dim_index: 0 }
        ));
        assert!(matches!(
            err(&[3], &[Index::Ellipsis, Index::Ellipsis]),
            SliceError::MultipleEllipsis
        ));
    }
}
