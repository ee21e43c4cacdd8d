//! Selecting part of a tensor without copying it: one indexer per dimension turns into
//! the few contiguous byte runs that hold the selection, in row-major order of the result.
//!
//! A range with a step other than 1 (negative steps included) still reads only the selected
//! elements: each run is then as long as the contiguous block under that dimension, and the
//! runs come in the order the result lists them (backwards for a negative step), so copying
//! them one after the other gives the result's bytes. [`crate::plan::numpy_index`] turns a numpy-style
//! index (negative positions, `...`, new axes) into these indexers.

use alloc::vec::Vec;
use core::fmt;
use core::num::NonZeroUsize;
use core::ops::{Bound, Range, RangeBounds};

use crate::format::dtype::Dtype;
#[doc(inline)]
pub use crate::format::invalid_slice::{InvalidSlice, SliceError};
use crate::format::tensor::TensorView;

/// How to index one dimension: the reference's indexer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TensorIndexer {
    /// Keep one index; the dimension disappears from the result.
    Select(usize),
    /// Keep a range, every `step`-th element from its start; the dimension stays.
    Narrow(Bound<usize>, Bound<usize>, NonZeroUsize),
}

/// A step of 1.
const ONE: NonZeroUsize = NonZeroUsize::MIN;

impl From<usize> for TensorIndexer {
    fn from(index: usize) -> Self {
        TensorIndexer::Select(index)
    }
}

/// How to index one dimension, as the project's own slicing API takes it: the reference's two
/// indexers, and any step, negative ones included (numpy's `start::step`), which numpy indexing
/// ([`crate::plan::numpy_index`]) needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DimIndexer {
    /// Keep one index; the dimension disappears from the result.
    Select(usize),
    /// Keep a range, every `step`-th element from its start; the dimension stays.
    Narrow(Bound<usize>, Bound<usize>, NonZeroUsize),
    /// Keep `len` elements from index `start` on, `step` apart (a negative step walks
    /// backwards, like numpy's `start::step`); the dimension stays with length `len`.
    Strided {
        /// Index of the first element kept.
        start: usize,
        /// Distance between kept elements (not 0).
        step: isize,
        /// Number of elements kept.
        len: usize,
    },
}

impl From<usize> for DimIndexer {
    fn from(index: usize) -> Self {
        DimIndexer::Select(index)
    }
}

impl From<&TensorIndexer> for DimIndexer {
    fn from(ix: &TensorIndexer) -> Self {
        match *ix {
            TensorIndexer::Select(i) => DimIndexer::Select(i),
            TensorIndexer::Narrow(start, end, step) => DimIndexer::Narrow(start, end, step),
        }
    }
}

impl From<TensorIndexer> for DimIndexer {
    fn from(ix: TensorIndexer) -> Self {
        DimIndexer::from(&ix)
    }
}

macro_rules! indexer_from_range {
    ($($t:ty),*) => {$(
        impl From<$t> for TensorIndexer {
            fn from(range: $t) -> Self {
                TensorIndexer::Narrow(range.start_bound().cloned(), range.end_bound().cloned(), ONE)
            }
        }
        impl From<$t> for DimIndexer {
            fn from(range: $t) -> Self {
                DimIndexer::Narrow(range.start_bound().cloned(), range.end_bound().cloned(), ONE)
            }
        }
    )*};
}
indexer_from_range!(
    Range<usize>,
    core::ops::RangeFrom<usize>,
    core::ops::RangeTo<usize>,
    core::ops::RangeFull,
    core::ops::RangeInclusive<usize>,
    core::ops::RangeToInclusive<usize>
);

/// Python's notation, as the reference writes it: `3`, `:`, `1:`, `:4`, `1:4:2` (bounds are
/// written as given, whether included or excluded).
impl fmt::Display for TensorIndexer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TensorIndexer::Select(i) => write!(f, "{i}"),
            TensorIndexer::Narrow(start, end, step) => {
                let shown = |b: &Bound<usize>| match b {
                    Bound::Included(n) | Bound::Excluded(n) => Some(*n),
                    Bound::Unbounded => None,
                };
                if let Some(s) = shown(start) {
                    write!(f, "{s}")?;
                }
                f.write_str(":")?;
                if let Some(e) = shown(end) {
                    write!(f, "{e}")?;
                }
                if step.get() != 1 {
                    write!(f, ":{step}")?;
                }
                Ok(())
            }
        }
    }
}

/// Rust's range notation (`1..3`, `..=2`), with the step when there is one.
impl fmt::Display for DimIndexer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DimIndexer::Select(i) => write!(f, "{i}"),
            DimIndexer::Narrow(start, end, step) => {
                match start {
                    Bound::Included(s) => write!(f, "{s}")?,
                    Bound::Excluded(s) => write!(f, "{}", s + 1)?,
                    Bound::Unbounded => {}
                }
                f.write_str("..")?;
                match end {
                    Bound::Included(e) => write!(f, "={e}")?,
                    Bound::Excluded(e) => write!(f, "{e}")?,
                    Bound::Unbounded => {}
                }
                if step.get() != 1 {
                    write!(f, " step {step}")?;
                }
                Ok(())
            }
            DimIndexer::Strided { start, step, len } => {
                write!(f, "{start}::{step} ({len} elements)")
            }
        }
    }
}

impl<'data> TensorView<'data> {
    /// The bytes of a selection, as contiguous chunks, without copying.
    pub fn sliced_data(
        &self,
        slices: &[TensorIndexer],
    ) -> Result<SliceIterator<'data>, InvalidSlice> {
        SliceIterator::new(self, slices)
    }
}

/// The selection worked out once: the shape it yields and how its bytes are laid out.
#[derive(Debug, Clone)]
struct Selection {
    newshape: Vec<usize>,
    /// Dimensions before the contiguous run: (count, signed distance in bytes between
    /// consecutive kept indices).
    outer: Vec<(usize, isize)>,
    /// Byte offset of the first run.
    base: usize,
    /// Bytes in each run.
    run_len: usize,
    /// Number of runs (0 when the selection is empty).
    runs: usize,
}

/// One dimension of a selection: first index, number kept, step between them, and whether
/// the dimension stays in the result.
#[derive(Debug, Clone, Copy)]
struct Span {
    start: usize,
    count: usize,
    step: isize,
    kept: bool,
}

impl Span {
    fn whole(size: usize) -> Span {
        Span {
            start: 0,
            count: size,
            step: 1,
            kept: true,
        }
    }

    /// Whether the span takes the whole dimension in order.
    fn is_whole(&self, size: usize) -> bool {
        self.start == 0 && self.count == size && (self.step == 1 || size <= 1)
    }

    fn resolve(ix: &DimIndexer, dim_index: usize, dim_size: usize) -> Result<Span, SliceError> {
        let out_of_range = |index: usize| SliceError::SliceOutOfRange {
            dim_index,
            asked: alloc::format!("{ix}"),
            index,
            dim_size,
        };
        match *ix {
            DimIndexer::Select(i) => {
                if i >= dim_size {
                    return Err(out_of_range(i));
                }
                Ok(Span {
                    start: i,
                    count: 1,
                    step: 1,
                    kept: false,
                })
            }
            DimIndexer::Narrow(start, end, step) => {
                let start = match start {
                    Bound::Included(s) => Some(s),
                    Bound::Excluded(s) => s.checked_add(1),
                    Bound::Unbounded => Some(0),
                };
                let end = match end {
                    Bound::Included(e) => e.checked_add(1),
                    Bound::Excluded(e) => Some(e),
                    Bound::Unbounded => Some(dim_size),
                };
                match (start, end) {
                    (Some(s), Some(e)) if s <= e && e <= dim_size => {
                        let count = (e - s).div_ceil(step.get());
                        Ok(Span {
                            start: if count > 0 { s } else { 0 },
                            count,
                            step: step.get() as isize,
                            kept: true,
                        })
                    }
                    // The first position past the end, as the reference reports it.
                    (Some(s), _) if s >= dim_size => Err(out_of_range(s)),
                    (Some(s), Some(e)) if e <= s => Err(out_of_range(s)),
                    (_, Some(e)) => Err(out_of_range(e.saturating_sub(1))),
                    _ => Err(out_of_range(usize::MAX)),
                }
            }
            DimIndexer::Strided { start, step, len } => {
                if step == 0 {
                    return Err(SliceError::ZeroStep { dim_index });
                }
                if len > 0 {
                    // The last index kept, start + (len - 1) * step, must be in range too.
                    let last = (len as i128 - 1)
                        .checked_mul(step as i128)
                        .map(|d| start as i128 + d);
                    let fits = |i: i128| i >= 0 && i < dim_size as i128;
                    if !fits(start as i128) {
                        return Err(out_of_range(start));
                    }
                    if !last.is_some_and(fits) {
                        let last = last.unwrap_or(i128::MAX).clamp(0, usize::MAX as i128);
                        return Err(out_of_range(last as usize));
                    }
                }
                Ok(Span {
                    start: if len > 0 { start } else { 0 },
                    count: len,
                    step,
                    kept: true,
                })
            }
        }
    }
}

impl Selection {
    fn new(dtype: Dtype, shape: &[usize], slices: &[DimIndexer]) -> Result<Selection, SliceError> {
        if slices.len() > shape.len() {
            return Err(SliceError::TooManySlices {
                given: slices.len(),
                rank: shape.len(),
            });
        }
        let mut spans = Vec::with_capacity(shape.len());
        for (dim_index, &dim_size) in shape.iter().enumerate() {
            spans.push(match slices.get(dim_index) {
                None => Span::whole(dim_size),
                Some(ix) => Span::resolve(ix, dim_index, dim_size)?,
            });
        }
        let newshape = spans.iter().filter(|s| s.kept).map(|s| s.count).collect();

        // Strides in bits; shape products fit since the tensor exists in memory.
        let bits = dtype.bitsize();
        let mut strides = alloc::vec![0usize; shape.len()];
        let mut acc = bits;
        for d in (0..shape.len()).rev() {
            strides[d] = acc;
            acc = acc.saturating_mul(shape[d]);
        }

        let total_elems: usize = spans.iter().map(|s| s.count).product();
        // Offset of the first selected element: every dimension at its start index.
        let base_bits: usize = spans.iter().zip(&strides).map(|(s, st)| s.start * st).sum();
        // The last dimension that is not taken whole decides where runs break: with step 1
        // its range joins the run, otherwise each of its elements is a run of its own.
        let split = spans
            .iter()
            .zip(shape)
            .rposition(|(span, &size)| !span.is_whole(size));
        let (outer_dims, run_bits) = match split {
            None => (0, total_elems * bits),
            Some(k) if spans[k].step == 1 || spans[k].count <= 1 => {
                (k, spans[k].count * strides[k])
            }
            Some(k) => (k + 1, strides[k]),
        };
        let outer: Vec<(usize, isize)> = (0..outer_dims)
            .map(|d| (spans[d].count, spans[d].step * strides[d] as isize))
            .collect();
        let aligned = base_bits % 8 == 0
            && run_bits % 8 == 0
            && outer
                .iter()
                .all(|&(count, stride)| count <= 1 || stride % 8 == 0);
        if total_elems > 0 && !aligned {
            return Err(SliceError::SplitsSubByteElement { dtype });
        }
        let runs = if total_elems == 0 {
            0
        } else {
            outer.iter().map(|&(count, _)| count).product()
        };
        Ok(Selection {
            newshape,
            outer: outer
                .into_iter()
                .map(|(count, stride)| (count, stride / 8))
                .collect(),
            base: base_bits / 8,
            run_len: run_bits / 8,
            runs,
        })
    }
}

/// The byte ranges (relative to the tensor's first byte) of a selection, in order.
/// A lazy iterator, so a selection with many runs costs no memory up front.
#[derive(Debug, Clone)]
pub struct ByteRanges {
    plan: Selection,
    /// Current index offset (0..count) per outer dimension.
    counters: Vec<usize>,
    /// Start of the next run, kept up to date as the counters move (O(1) a run).
    offset: isize,
    emitted: usize,
}

impl ByteRanges {
    /// The same ranges, reporting `shape` as the result's shape (same element count: new
    /// axes of length 1, or an empty result laid out otherwise).
    pub(crate) fn with_shape(mut self, shape: Vec<usize>) -> Self {
        self.plan.newshape = shape;
        self
    }

    fn new(plan: Selection) -> Self {
        let counters = alloc::vec![0; plan.outer.len()];
        ByteRanges {
            offset: plan.base as isize,
            plan,
            counters,
            emitted: 0,
        }
    }

    /// Shape of the selection.
    pub fn newshape(&self) -> Vec<usize> {
        self.plan.newshape.clone()
    }

    /// Bytes still to come.
    pub fn remaining_byte_len(&self) -> usize {
        (self.plan.runs - self.emitted) * self.plan.run_len
    }

    /// Bytes in each run (every run has the same length).
    pub fn run_len(&self) -> usize {
        self.plan.run_len
    }

    /// All the runs from the first (whatever this iterator has already yielded), grouped in
    /// rows along the innermost dimension that splits them: `(start of the row's first run,
    /// runs in the row, signed distance in bytes between consecutive runs)`, in order.
    /// Copying many short runs row by row saves most of the per-run bookkeeping.
    pub fn rows(&self) -> impl Iterator<Item = (usize, usize, isize)> {
        let (count, stride) = self.plan.outer.last().copied().unwrap_or((1, 0));
        let mut plan = self.plan.clone();
        plan.outer.pop();
        plan.runs = self.plan.runs.checked_div(count).unwrap_or(0);
        ByteRanges::new(plan).map(move |r| (r.start, count, stride))
    }
}

impl Iterator for ByteRanges {
    type Item = Range<usize>;

    fn next(&mut self) -> Option<Range<usize>> {
        if self.emitted == self.plan.runs {
            return None;
        }
        // Every run lies inside the tensor (checked by the plan): the offset of a run that
        // is emitted is never negative.
        let start = self.offset as usize;
        self.emitted += 1;
        // Odometer step, last outer dimension fastest, moving the offset along.
        for (counter, &(count, stride)) in self.counters.iter_mut().zip(&self.plan.outer).rev() {
            *counter += 1;
            if *counter < count {
                self.offset += stride;
                break;
            }
            *counter = 0;
            self.offset -= (count as isize - 1) * stride;
        }
        Some(start..start + self.plan.run_len)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.plan.runs - self.emitted;
        (left, Some(left))
    }
}

impl ExactSizeIterator for ByteRanges {}

/// Works out which bytes of a tensor a selection covers, without touching its data:
/// the shape of the result and its byte ranges (relative to the tensor's first byte).
/// Dimensions without an indexer are taken whole. An empty range (`2..2`, or `4..4` at the
/// end of a dimension of 4) is an empty selection, as in numpy.
pub fn byte_ranges(
    dtype: Dtype,
    shape: &[usize],
    slices: &[DimIndexer],
) -> Result<ByteRanges, SliceError> {
    Ok(ByteRanges::new(Selection::new(dtype, shape, slices)?))
}

/// Byte ranges `(start, end)` of a selection, relative to the tensor's first byte.
pub type SliceByteRanges = Vec<(usize, usize)>;

/// The shape of a selection.
pub type SlicedShape = Vec<usize>;

/// The reference's form of [`byte_ranges`]: every byte range of the selection, in order, and
/// its shape.
///
/// ```
/// use safetensors::slice::{slice_byte_ranges, TensorIndexer};
/// use safetensors::Dtype;
///
/// // Rows 1 and 2 of a 4x3 F32 tensor: one run of 24 bytes.
/// let (ranges, shape) = slice_byte_ranges(Dtype::F32, &[4, 3], &[(1..3).into()]).unwrap();
/// assert_eq!((ranges, shape), (vec![(12, 36)], vec![2, 3]));
/// ```
pub fn slice_byte_ranges(
    dtype: Dtype,
    shape: &[usize],
    slices: &[TensorIndexer],
) -> Result<(SliceByteRanges, SlicedShape), InvalidSlice> {
    let slices: Vec<DimIndexer> = slices.iter().map(DimIndexer::from).collect();
    let ranges = byte_ranges(dtype, shape, &slices)?;
    let shape = ranges.newshape();
    Ok((ranges.map(|r| (r.start, r.end)).collect(), shape))
}

/// The selected bytes of a tensor, as borrowed contiguous chunks in row-major order.
#[derive(Debug, Clone)]
pub struct SliceIterator<'data> {
    data: &'data [u8],
    ranges: ByteRanges,
}

impl<'data> SliceIterator<'data> {
    /// The selection `slices` of `view`.
    pub fn new(view: &TensorView<'data>, slices: &[TensorIndexer]) -> Result<Self, InvalidSlice> {
        let slices: Vec<DimIndexer> = slices.iter().map(DimIndexer::from).collect();
        Ok(SliceIterator {
            data: view.data(),
            ranges: byte_ranges(view.dtype(), view.shape(), &slices)?,
        })
    }

    /// Bytes still to come.
    pub fn remaining_byte_len(&self) -> usize {
        self.ranges.remaining_byte_len()
    }

    /// Shape of the selection.
    pub fn newshape(&self) -> Vec<usize> {
        self.ranges.newshape()
    }
}

impl<'data> Iterator for SliceIterator<'data> {
    type Item = &'data [u8];

    fn next(&mut self) -> Option<&'data [u8]> {
        self.ranges.next().map(|r| &self.data[r])
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.ranges.size_hint()
    }
}

/// Numpy-like indexing of a tensor view: `view.slice((0, 1..3))`.
pub trait IndexOp<'data, T> {
    /// Selects part of the tensor; see [`TensorIndexer`].
    fn slice(&'data self, index: T) -> Result<SliceIterator<'data>, InvalidSlice>;
}

impl<'data, A: Into<TensorIndexer>> IndexOp<'data, A> for TensorView<'data> {
    fn slice(&'data self, index: A) -> Result<SliceIterator<'data>, InvalidSlice> {
        self.sliced_data(&[index.into()])
    }
}

macro_rules! index_op_tuple {
    ($($name:ident),+) => {
        impl<'data, $($name: Into<TensorIndexer>),+> IndexOp<'data, ($($name,)+)> for TensorView<'data> {
            #[allow(non_snake_case)]
            fn slice(&'data self, index: ($($name,)+)) -> Result<SliceIterator<'data>, InvalidSlice> {
                let ($($name,)+) = index;
                self.sliced_data(&[$($name.into()),+])
            }
        }
    };
}
index_op_tuple!(A);
index_op_tuple!(A, B);
index_op_tuple!(A, B, C);
index_op_tuple!(A, B, C, D);
index_op_tuple!(A, B, C, D, E);
index_op_tuple!(A, B, C, D, E, F);

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    fn ranges(dtype: Dtype, shape: &[usize], s: &[DimIndexer]) -> Vec<Range<usize>> {
        byte_ranges(dtype, shape, s).unwrap().collect()
    }

    #[test]
    fn whole_tensor_is_one_run() {
        assert_eq!(ranges(Dtype::F32, &[2, 3], &[]), vec![0..24]);
        assert_eq!(ranges(Dtype::F32, &[], &[]), vec![0..4]);
    }

    #[test]
    fn row_block_is_one_run() {
        assert_eq!(ranges(Dtype::F32, &[4, 3], &[(1..3).into()]), vec![12..36]);
    }

    #[test]
    fn column_is_one_run_per_row() {
        let r = ranges(Dtype::U8, &[3, 4], &[(..).into(), (1..3).into()]);
        assert_eq!(r, vec![1..3, 5..7, 9..11]);
    }

    #[test]
    fn select_drops_dimension() {
        let it = byte_ranges(Dtype::F32, &[4, 3], &[DimIndexer::Select(2)]).unwrap();
        assert_eq!(it.newshape(), vec![3]);
        assert_eq!(it.collect::<Vec<_>>(), vec![24..36]);
    }

    #[test]
    fn empty_selection_has_no_runs() {
        let it = byte_ranges(Dtype::F32, &[4, 3], &[(2..2).into()]).unwrap();
        assert_eq!(it.newshape(), vec![0, 3]);
        assert_eq!(it.count(), 0);
    }

    #[test]
    fn errors() {
        assert!(matches!(
            byte_ranges(Dtype::F32, &[4], &[0.into(), 0.into()]),
            Err(SliceError::TooManySlices { .. })
        ));
        assert!(matches!(
            byte_ranges(Dtype::F32, &[4], &[4.into()]),
            Err(SliceError::SliceOutOfRange { .. })
        ));
        assert!(matches!(
            byte_ranges(
                Dtype::F32,
                &[4],
                &[DimIndexer::Narrow(
                    Bound::Included(3),
                    Bound::Excluded(2),
                    ONE
                )]
            ),
            Err(SliceError::SliceOutOfRange { .. })
        ));
        assert!(matches!(
            byte_ranges(Dtype::F32, &[4], &[(0..5).into()]),
            Err(SliceError::SliceOutOfRange { .. })
        ));
    }

    #[test]
    fn rows_list_the_same_runs() {
        let cases: [(&[usize], Vec<DimIndexer>); 4] = [
            (&[3, 4], vec![(..).into(), (1..3).into()]),
            (
                &[4, 3, 2],
                vec![
                    DimIndexer::Strided {
                        start: 3,
                        step: -1,
                        len: 4,
                    },
                    1.into(),
                ],
            ),
            (
                &[2, 5],
                vec![
                    (..).into(),
                    DimIndexer::Strided {
                        start: 4,
                        step: -2,
                        len: 3,
                    },
                ],
            ),
            (&[2, 3], vec![(1..1).into()]),
        ];
        for (shape, index) in cases {
            let plan = byte_ranges(Dtype::U8, shape, &index).unwrap();
            let n = plan.run_len();
            let from_rows: Vec<Range<usize>> = plan
                .rows()
                .flat_map(|(start, count, step)| {
                    (0..count).map(move |i| {
                        let at = (start as isize + i as isize * step) as usize;
                        at..at + n
                    })
                })
                .collect();
            assert_eq!(from_rows, plan.collect::<Vec<_>>());
        }
    }

    #[test]
    fn strided_runs_follow_the_result_order() {
        // Rows 3 and 1 of a [4, 2] U8 tensor: one run each, backwards.
        let strided = DimIndexer::Strided {
            start: 3,
            step: -2,
            len: 2,
        };
        let it = byte_ranges(Dtype::U8, &[4, 2], core::slice::from_ref(&strided)).unwrap();
        assert_eq!(it.newshape(), vec![2, 2]);
        assert_eq!(it.collect::<Vec<_>>(), vec![6..8, 2..4]);
        // Every other column: one element a run.
        let cols = DimIndexer::Strided {
            start: 0,
            step: 2,
            len: 2,
        };
        assert_eq!(
            ranges(Dtype::U16, &[2, 4], &[(..).into(), cols]),
            vec![0..2, 4..6, 8..10, 12..14]
        );
        // The last element kept must be inside the dimension; a zero step is refused.
        let past = DimIndexer::Strided {
            start: 1,
            step: -2,
            len: 2,
        };
        assert!(matches!(
            byte_ranges(Dtype::U8, &[4], &[past]),
            Err(SliceError::SliceOutOfRange { .. })
        ));
        let zero = DimIndexer::Strided {
            start: 0,
            step: 0,
            len: 2,
        };
        assert!(matches!(
            byte_ranges(Dtype::U8, &[4], &[zero]),
            Err(SliceError::ZeroStep { dim_index: 0 })
        ));
        // F4: every other row of 4 elements is whole bytes; every other element is not.
        assert_eq!(ranges(Dtype::F4, &[4, 4], &[strided]), vec![6..8, 2..4]);
        let halves = DimIndexer::Strided {
            start: 0,
            step: 2,
            len: 2,
        };
        assert!(matches!(
            byte_ranges(Dtype::F4, &[4], &[halves]),
            Err(SliceError::SplitsSubByteElement { .. })
        ));
    }

    #[test]
    fn sub_byte_cuts() {
        // F4 [2, 3]: rows are 12 bits, so row 1 starts mid-byte...
        assert!(matches!(
            byte_ranges(Dtype::F4, &[2, 3], &[1.into()]),
            Err(SliceError::SplitsSubByteElement { .. })
        ));
        // ...but elements (1,1) and (1,2) are bits 16..24: exactly byte 2.
        assert_eq!(
            ranges(Dtype::F4, &[2, 3], &[1.into(), (1..3).into()]),
            vec![2..3]
        );
        assert_eq!(ranges(Dtype::F4, &[4, 2], &[(1..3).into()]), vec![1..3]);
    }
}
