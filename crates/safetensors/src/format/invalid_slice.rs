//! Why a selection does not fit a tensor: [`InvalidSlice`], the reference's enum, variant for
//! variant as the crates.io 0.8.0 release has it (what `sliced_data`, `IndexOp::slice` and
//! `slice_byte_ranges` return), and [`SliceError`], the detailed one the project's own API
//! returns (the indexer as written, the counts). Both are defined beside the crate's other
//! errors so that those can carry them without the format knowing the planner; their public
//! path is `safetensors::slice`.

use core::fmt;

use crate::format::dtype::Dtype;

/// Why a selection does not fit a tensor: the reference's enum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidSlice {
    /// More indexers than the tensor has dimensions.
    TooManySlices,
    /// A position past the dimension's size.
    SliceOutOfRange {
        /// Which dimension.
        dim_index: usize,
        /// The first position out of range.
        asked: usize,
        /// The dimension's size.
        dim_size: usize,
    },
    /// The selection starts or ends inside a byte of a sub-byte dtype.
    MisalignedSlice,
}

impl fmt::Display for InvalidSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidSlice::TooManySlices => {
                f.write_str("more slicing indexes than dimensions in tensor")
            }
            InvalidSlice::SliceOutOfRange {
                dim_index,
                asked,
                dim_size,
            } => write!(
                f,
                "index {asked} out of bounds for tensor dimension #{dim_index} of size {dim_size}"
            ),
            InvalidSlice::MisalignedSlice => f.write_str(
                "The slice is slicing for subbytes dtypes, and the slice does not end up at a byte boundary, this is invalid.",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidSlice {}

#[cfg(not(feature = "std"))]
impl core::error::Error for InvalidSlice {}

/// The detailed error as the reference's: the counts and the indexer's text are dropped.
/// A zero step and a second `...` cannot come from the reference's entry points (their steps
/// are `NonZeroUsize`, and they take no ellipsis); they become the closest variant.
impl From<SliceError> for InvalidSlice {
    fn from(e: SliceError) -> Self {
        match e {
            SliceError::TooManySlices { .. } | SliceError::MultipleEllipsis => {
                InvalidSlice::TooManySlices
            }
            SliceError::SliceOutOfRange {
                dim_index,
                index,
                dim_size,
                ..
            } => InvalidSlice::SliceOutOfRange {
                dim_index,
                asked: index,
                dim_size,
            },
            SliceError::SplitsSubByteElement { .. } => InvalidSlice::MisalignedSlice,
            SliceError::ZeroStep { dim_index } => InvalidSlice::SliceOutOfRange {
                dim_index,
                asked: 0,
                dim_size: 0,
            },
        }
    }
}

/// Why a selection does not fit a tensor, in detail: the error of the project's own slicing
/// API (`byte_ranges`, numpy indexing), converted into [`InvalidSlice`] where the reference's
/// API returns that.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SliceError {
    /// More indexers than the tensor has dimensions.
    TooManySlices {
        /// Indexers given.
        given: usize,
        /// Dimensions of the tensor.
        rank: usize,
    },
    /// An index or range end past the dimension's size, or a reversed range.
    SliceOutOfRange {
        /// Which dimension.
        dim_index: usize,
        /// The indexer, as written.
        asked: alloc::string::String,
        /// The first position out of range (what the reference's error reports).
        index: usize,
        /// The dimension's size.
        dim_size: usize,
    },
    /// The selection starts or ends inside a byte of a sub-byte dtype.
    SplitsSubByteElement {
        /// The tensor's dtype.
        dtype: Dtype,
    },
    /// A range with step 0.
    ZeroStep {
        /// Which dimension.
        dim_index: usize,
    },
    /// More than one `...` in an index.
    MultipleEllipsis,
}

impl fmt::Display for SliceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SliceError::TooManySlices { given, rank } => write!(
                f,
                "{given} indices given for a tensor of rank {rank}"
            ),
            SliceError::SliceOutOfRange {
                dim_index,
                asked,
                dim_size,
                ..
            } => write!(
                f,
                "index {asked} is out of range for dimension {dim_index} of size {dim_size}"
            ),
            SliceError::SplitsSubByteElement { dtype } => write!(
                f,
                "the selection does not start and end on byte boundaries, which {dtype} elements need"
            ),
            SliceError::ZeroStep { dim_index } => {
                write!(f, "slice step cannot be zero (dimension {dim_index})")
            }
            SliceError::MultipleEllipsis => {
                f.write_str("an index can only have a single ellipsis ('...')")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SliceError {}

#[cfg(not(feature = "std"))]
impl core::error::Error for SliceError {}
