//! Why a selection does not fit a tensor: the slicer's error,
//! defined beside the crate's other errors so that they can carry it without the format
//! knowing the planner. Its public path is `safetensors::slice::InvalidSlice`.

use core::fmt;

use crate::format::dtype::Dtype;

/// Why a selection does not fit a tensor.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidSlice {
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

impl fmt::Display for InvalidSlice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InvalidSlice::TooManySlices { given, rank } => write!(
                f,
                "{given} indices given for a tensor of rank {rank}"
            ),
            InvalidSlice::SliceOutOfRange { dim_index, asked, dim_size } => write!(
                f,
                "index {asked} is out of range for dimension {dim_index} of size {dim_size}"
            ),
            InvalidSlice::SplitsSubByteElement { dtype } => write!(
                f,
                "the selection does not start and end on byte boundaries, which {dtype} elements need"
            ),
            InvalidSlice::ZeroStep { dim_index } => {
                write!(f, "slice step cannot be zero (dimension {dim_index})")
            }
            InvalidSlice::MultipleEllipsis => {
                f.write_str("an index can only have a single ellipsis ('...')")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for InvalidSlice {}

#[cfg(not(feature = "std"))]
impl core::error::Error for InvalidSlice {}
