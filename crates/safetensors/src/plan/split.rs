//! One rank's part of a tensor split across ranks (tensor parallelism): which range of
//! which dimension it holds, as an indexer list for [`crate::plan::slice`], so that a rank reads
//! only the byte runs of its own part.
//!
//! The parts follow `torch.chunk`'s rule exactly, so a part equals
//! `torch.chunk(tensor, parts, dim)[index]`: every part but the last holds
//! `ceil(size / parts)` positions and the last holds what is left. When that rule yields
//! fewer than `parts` chunks (`torch.chunk(arange(6), 4)` gives three chunks of 2), the
//! ranks past the last chunk get an empty part: the same shape with the split dimension 0,
//! starting at the end of the dimension. A dimension of size 0 gives every rank an empty part
//! (as `torch.chunk` returns `parts` empty chunks then).

use alloc::vec::Vec;
use core::fmt;
use core::ops::Range;

use crate::format::dtype::Dtype;
use crate::plan::slice::TensorIndexer;

/// Why a tensor cannot be split as asked.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidSplit {
    /// The tensor is a scalar: it has no dimension to split.
    Scalar,
    /// The dimension is outside `-rank..rank`.
    DimOutOfRange {
        /// The dimension asked for (negative counts from the end).
        dim: i64,
        /// The tensor's number of dimensions.
        rank: usize,
    },
    /// Zero parts asked for.
    NoParts,
    /// The part's index is not below the number of parts.
    IndexOutOfRange {
        /// The part asked for.
        index: usize,
        /// The number of parts.
        parts: usize,
    },
}

impl fmt::Display for InvalidSplit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidSplit::Scalar => f.write_str("a scalar (0-dimensional) tensor cannot be split"),
            InvalidSplit::DimOutOfRange { dim, rank } => write!(
                f,
                "dimension {dim} is out of range for a tensor of {rank} dimension{} \
                 (expected to be in range of [{}, {}])",
                if *rank == 1 { "" } else { "s" },
                -(*rank as i64),
                *rank as i64 - 1
            ),
            InvalidSplit::NoParts => f.write_str("cannot split into 0 parts"),
            InvalidSplit::IndexOutOfRange { index, parts } => write!(
                f,
                "part {index} does not exist: there are {parts} parts (0 to {})",
                parts - 1
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidSplit {}

#[cfg(not(feature = "std"))]
impl core::error::Error for InvalidSplit {}

/// The positions part `index` of `parts` holds of a dimension of `size`, by `torch.chunk`'s
/// rule (see the module docs); empty, at `size..size`, for a part past the last chunk.
///
/// ```
/// use safetensors::plan::split::chunk_range;
///
/// // torch.chunk(arange(5), 4) gives chunks of 2, 2, 1: the fourth rank gets nothing.
/// let parts: Vec<_> = (0..4).map(|i| chunk_range(5, 4, i)).collect();
/// assert_eq!(parts, [0..2, 2..4, 4..5, 5..5]);
/// ```
///
/// # Panics
/// When `parts` is 0 ([`rank_part`] checks its arguments instead).
pub fn chunk_range(size: usize, parts: usize, index: usize) -> Range<usize> {
    let chunk = size.div_ceil(parts);
    let start = index.saturating_mul(chunk).min(size);
    let end = index
        .saturating_add(1)
        .saturating_mul(chunk)
        .min(size)
        .max(start);
    start..end
}

/// One rank's part of a tensor: the range `range` of dimension `dim`, every other
/// dimension whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RankPart {
    /// The split dimension (non-negative).
    pub dim: usize,
    /// The positions of that dimension the part holds.
    pub range: Range<usize>,
}

impl RankPart {
    /// The indexers selecting the part, for [`crate::plan::slice::slice_byte_ranges`] or
    /// [`TensorView::sliced_data`](crate::format::tensor::TensorView::sliced_data): whole
    /// dimensions up to `dim`, then the range.
    pub fn indexers(&self) -> Vec<TensorIndexer> {
        let mut out: Vec<TensorIndexer> = (0..self.dim).map(|_| (..).into()).collect();
        out.push(self.range.clone().into());
        out
    }

    /// The part's shape, given the whole tensor's.
    pub fn shape(&self, shape: &[usize]) -> Vec<usize> {
        let mut out = shape.to_vec();
        out[self.dim] = self.range.len();
        out
    }
}

/// Part `index` of `parts` of a tensor of `shape` split along `dim` (negative counts from
/// the end, as in torch), by `torch.chunk`'s rule.
///
/// ```
/// use safetensors::slice::slice_byte_ranges;
/// use safetensors::plan::split::rank_part;
/// use safetensors::Dtype;
///
/// // Rank 1 of 2 holds columns 2..3 of a 2x3 F32 tensor: one 4-byte run per row.
/// let part = rank_part(&[2, 3], -1, 2, 1).unwrap();
/// assert_eq!((part.dim, part.range.clone()), (1, 2..3));
/// let (runs, shape) = slice_byte_ranges(Dtype::F32, &[2, 3], &part.indexers()).unwrap();
/// assert_eq!((runs, shape), (vec![(8, 12), (20, 24)], vec![2, 1]));
/// ```
pub fn rank_part(
    shape: &[usize],
    dim: i64,
    parts: usize,
    index: usize,
) -> Result<RankPart, InvalidSplit> {
    if parts == 0 {
        return Err(InvalidSplit::NoParts);
    }
    if index >= parts {
        return Err(InvalidSplit::IndexOutOfRange { index, parts });
    }
    let rank = shape.len();
    if rank == 0 {
        return Err(InvalidSplit::Scalar);
    }
    let resolved = if dim < 0 {
        i128::from(dim) + rank as i128
    } else {
        i128::from(dim)
    };
    if resolved < 0 || resolved >= rank as i128 {
        return Err(InvalidSplit::DimOutOfRange { dim, rank });
    }
    let dim = resolved as usize;
    Ok(RankPart {
        dim,
        range: chunk_range(shape[dim], parts, index),
    })
}

/// One rank's part of a tensor as its bytes are read: the part in the header's positions,
/// its shape, and where its bytes lie when they are one contiguous run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartBytes {
    /// The part, in the header's positions.
    pub part: RankPart,
    /// The part's shape.
    pub shape: Vec<usize>,
    /// The part's bytes, relative to the tensor's first byte, when they are one run (every
    /// dimension before the split one holds at most one position, and the part starts and
    /// ends on whole bytes); `None` when the part is several runs (see
    /// [`RankPart::indexers`] to plan them).
    pub run: Option<Range<usize>>,
}

/// Part `index` of `parts` of a tensor of `dtype` and `shape` split along `dim` (negative
/// counts from the end), by `torch.chunk`'s rule over whole bytes: a sub-byte dtype split
/// along its last dimension is chunked in the fewest values that fill whole bytes (two F4
/// values, as torch's packed `float4_e2m1fn_x2` holds them), so no part splits a byte.
///
/// ```
/// use safetensors::plan::split::rank_bytes;
/// use safetensors::Dtype;
///
/// // A 3x10 F4 tensor (5 bytes a row) split in 3 along its rows of values: 2 bytes, 2, 1.
/// let last = rank_bytes(Dtype::F4, &[3, 10], -1, 3, 2).unwrap();
/// assert_eq!((last.part.range.clone(), last.shape.clone()), (8..10, vec![3, 2]));
/// assert_eq!(last.run, None); // one byte from each of 3 rows
///
/// // Split along dimension 0, rank 1 of 3 holds row 1: one run of 5 bytes.
/// let row = rank_bytes(Dtype::F4, &[3, 10], 0, 3, 1).unwrap();
/// assert_eq!(row.run, Some(5..10));
/// ```
pub fn rank_bytes(
    dtype: Dtype,
    shape: &[usize],
    dim: i64,
    parts: usize,
    index: usize,
) -> Result<PartBytes, InvalidSplit> {
    let mut part = rank_part(shape, dim, parts, index)?;
    let bits = dtype.bitsize();
    // The fewest values that fill whole bytes: 2 for F4, 4 for F6, 1 from U8 up.
    let unit = if bits < 8 { 8 / gcd(bits, 8) } else { 1 };
    let d = part.dim;
    if unit > 1 && d + 1 == shape.len() && shape[d] % unit == 0 {
        let whole = chunk_range(shape[d] / unit, parts, index);
        part.range = whole.start * unit..whole.end * unit;
    }
    let mut part_shape = shape.to_vec();
    part_shape[d] = part.range.len();
    let before: usize = shape[..d].iter().product();
    let row_bits = shape[d + 1..]
        .iter()
        .try_fold(bits, |acc, &n| acc.checked_mul(n));
    let run = row_bits.and_then(|row_bits| {
        let first = part.range.start.checked_mul(row_bits)?;
        let len = part.range.len().checked_mul(row_bits)?;
        (before <= 1 && first % 8 == 0 && len % 8 == 0).then(|| first / 8..(first + len) / 8)
    });
    Ok(PartBytes {
        part,
        shape: part_shape,
        run,
    })
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `torch.chunk`'s sizes, written out independently: chunks of ceil(size/parts) while
    /// anything is left (`parts` empty chunks for an empty dimension).
    fn torch_chunk_sizes(size: usize, parts: usize) -> Vec<usize> {
        if size == 0 {
            return alloc::vec![0; parts];
        }
        let chunk = size.div_ceil(parts);
        let mut left = size;
        let mut out = Vec::new();
        while left > 0 {
            out.push(chunk.min(left));
            left -= chunk.min(left);
        }
        out
    }

    #[test]
    fn parts_follow_torch_chunk() {
        for size in 0..40 {
            for parts in 1..12 {
                let sizes = torch_chunk_sizes(size, parts);
                let mut at = 0;
                for index in 0..parts {
                    let r = chunk_range(size, parts, index);
                    let want = sizes.get(index).copied().unwrap_or(0);
                    assert_eq!(r.len(), want, "size {size} parts {parts} index {index}");
                    if want > 0 {
                        assert_eq!(r.start, at);
                    } else {
                        assert_eq!(r.start, r.end);
                        assert!(r.end <= size);
                    }
                    at += want;
                }
                assert_eq!(at, size);
            }
        }
    }

    #[test]
    fn fewer_chunks_than_parts_leave_the_last_ranks_empty() {
        assert_eq!(
            (0..4).map(|i| chunk_range(6, 4, i)).collect::<Vec<_>>(),
            [0..2, 2..4, 4..6, 6..6]
        );
        assert_eq!(chunk_range(1, 3, 2), 1..1);
        assert_eq!(chunk_range(usize::MAX, 2, 1).end, usize::MAX);
    }

    #[test]
    fn negative_dims_count_from_the_end() {
        let part = rank_part(&[4, 6, 8], -1, 2, 1).unwrap();
        assert_eq!(
            part,
            RankPart {
                dim: 2,
                range: 4..8
            }
        );
        assert_eq!(part.shape(&[4, 6, 8]), [4, 6, 4]);
        assert_eq!(rank_part(&[4, 6, 8], -3, 3, 2).unwrap().dim, 0);
    }

    #[test]
    fn bad_arguments_are_refused() {
        assert_eq!(rank_part(&[], 0, 2, 0), Err(InvalidSplit::Scalar));
        assert_eq!(
            rank_part(&[2, 3], 2, 2, 0),
            Err(InvalidSplit::DimOutOfRange { dim: 2, rank: 2 })
        );
        assert_eq!(
            rank_part(&[2, 3], -3, 2, 0),
            Err(InvalidSplit::DimOutOfRange { dim: -3, rank: 2 })
        );
        assert_eq!(
            rank_part(&[2, 3], i64::MIN, 2, 0),
            Err(InvalidSplit::DimOutOfRange {
                dim: i64::MIN,
                rank: 2
            })
        );
        assert_eq!(rank_part(&[2], 0, 0, 0), Err(InvalidSplit::NoParts));
        assert_eq!(
            rank_part(&[2], 0, 2, 2),
            Err(InvalidSplit::IndexOutOfRange { index: 2, parts: 2 })
        );
        let msg = alloc::format!("{}", InvalidSplit::DimOutOfRange { dim: 2, rank: 2 });
        assert_eq!(
            msg,
            "dimension 2 is out of range for a tensor of 2 dimensions (expected to be in range of [-2, 1])"
        );
    }

    #[test]
    fn byte_parts_never_split_a_byte_and_tile_the_tensor() {
        use crate::plan::slice::slice_byte_ranges;
        for (dtype, shape) in [
            (Dtype::F4, alloc::vec![3, 10]),
            (Dtype::F4, alloc::vec![1, 14]),
            (Dtype::BF16, alloc::vec![5, 3]),
            (Dtype::U8, alloc::vec![1, 1, 9]),
        ] {
            for dim in 0..shape.len() as i64 {
                for parts in 1..5 {
                    let mut covered = 0;
                    for index in 0..parts {
                        let p = rank_bytes(dtype, &shape, dim, parts, index).unwrap();
                        let (ranges, sliced) =
                            slice_byte_ranges(dtype, &shape, &p.part.indexers()).unwrap();
                        assert_eq!(sliced, p.shape);
                        let bytes: usize = ranges.iter().map(|(a, b)| b - a).sum();
                        if let Some(run) = &p.run {
                            assert_eq!(ranges.len(), usize::from(!run.is_empty()));
                            assert_eq!(run.len(), bytes, "{dtype:?} {shape:?} {dim} {parts}");
                            if let Some(&(a, _)) = ranges.first() {
                                assert_eq!(run.start, a);
                            }
                        }
                        covered += bytes;
                    }
                    assert_eq!(Some(covered), dtype.byte_size(&shape).ok());
                }
            }
        }
    }

    #[test]
    fn indexers_select_the_part() {
        let part = rank_part(&[3, 5], 1, 2, 0).unwrap();
        let (ranges, shape) = crate::plan::slice::slice_byte_ranges(
            crate::format::dtype::Dtype::BF16,
            &[3, 5],
            &part.indexers(),
        )
        .unwrap();
        assert_eq!(shape, [3, 3]);
        assert_eq!(ranges, [(0, 6), (10, 16), (20, 26)]);
    }
}
