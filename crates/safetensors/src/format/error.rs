//! The error of the project's own API ([`Error`]): every message names what is wrong and
//! where (the tensor, the offending numbers, and what was expected). The reference crate's
//! API (`SafeTensors::deserialize`, `serialize`, `TensorView::new`, ...) returns the
//! reference's enum, [`crate::format::safe_tensor_error::SafeTensorError`], instead; `From<Error>` converts one into the
//! other (see `safe_tensor_error.rs`).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use crate::format::dtype::{Dtype, ALL_DTYPES};
use crate::format::invalid_slice::SliceError;

/// Everything that can go wrong reading, slicing or writing a safetensors file, told in
/// detail: the error of the project's own API (`file`, `checkpoint`, `reader`, `source`,
/// `inspect`, `index`, `split`, [`crate::format::serialize`], [`crate::format::tensor::Metadata::from_header_bytes`]) and
/// of every face built on it (the CLI, the converter, the Python package).
///
/// The reference crate's functions return [`crate::format::safe_tensor_error::SafeTensorError`] instead, the
/// reference's own enum; `SafeTensorError::from(error)` gives its closest variant, keeping
/// the tensor's name where the reference's variant has a payload for it (see that
/// conversion for the table).
#[non_exhaustive]
#[derive(Debug)]
pub enum Error {
    /// The buffer is shorter than the 8-byte length prefix.
    HeaderTooSmall {
        /// Bytes available.
        len: usize,
    },
    /// The declared header length is above [`crate::format::limits::MAX_HEADER_SIZE`].
    HeaderTooLarge {
        /// Declared header length.
        header_len: u64,
    },
    /// `8 + header_len` goes past the end of the file.
    InvalidHeaderLength {
        /// Declared header length.
        header_len: u64,
        /// Size of the whole file or buffer.
        file_len: u64,
    },
    /// The header is not valid UTF-8.
    InvalidHeader {
        /// Offset in the header of the first invalid byte.
        valid_up_to: usize,
        /// The decoder's own error (what the reference's `InvalidHeader` carries).
        error: core::str::Utf8Error,
    },
    /// The header does not start with `{`.
    InvalidHeaderStart,
    /// The header is not a JSON object, or is not valid JSON.
    InvalidHeaderDeserialization(String),
    /// A tensor name (or `__metadata__`) appears twice in the header.
    DuplicateTensor(String),
    /// A tensor entry does not have exactly `dtype`, `shape` and `data_offsets` with the
    /// right JSON types.
    InvalidTensorEntry {
        /// Tensor name.
        tensor: String,
        /// What is wrong with the entry.
        reason: String,
    },
    /// A dtype string is not one of the known names.
    UnknownDtype {
        /// Tensor name, when known.
        tensor: Option<String>,
        /// The unknown spelling.
        dtype: String,
    },
    /// `__metadata__` is not an object of strings to strings.
    InvalidMetadata(String),
    /// The element count or bit count of a tensor overflows 64 bits.
    ValidationOverflow {
        /// Tensor name.
        tensor: String,
        /// The shape's first dimensions (at most 8: an error stays small whatever the input).
        shape: Vec<usize>,
        /// How many dimensions the shape has.
        ndim: usize,
    },
    /// A sub-byte tensor whose bits do not fill whole bytes.
    MisalignedSubByte {
        /// Tensor name.
        tensor: String,
        /// Its dtype.
        dtype: Dtype,
        /// The shape's first dimensions (at most 8: an error stays small whatever the input).
        shape: Vec<usize>,
        /// How many dimensions the shape has.
        ndim: usize,
    },
    /// `end - begin` does not equal the size computed from dtype and shape, or `begin > end`.
    TensorInvalidInfo {
        /// Tensor name.
        tensor: String,
        /// Byte size computed from dtype and shape.
        expected: usize,
        /// Declared `data_offsets`.
        data_offsets: (usize, usize),
    },
    /// Tensors do not tile the data section: a hole, an overlap or a tensor past the end.
    InvalidOffset {
        /// Tensor name.
        tensor: String,
        /// Declared `data_offsets`.
        data_offsets: (usize, usize),
        /// Where this tensor had to begin for the data to be packed.
        expected_begin: usize,
        /// Length of the data section.
        data_len: usize,
    },
    /// Bytes after the last tensor: the data section is longer than the tensors need.
    MetadataIncompleteBuffer {
        /// Where the last tensor ends.
        covered: usize,
        /// Length of the data section.
        data_len: usize,
    },
    /// No tensor with that name.
    TensorNotFound(String),
    /// A `TensorView` whose data length does not match its dtype and shape.
    InvalidTensorView {
        /// Its dtype.
        dtype: Dtype,
        /// Its shape.
        shape: Vec<usize>,
        /// Length of the data given.
        data_len: usize,
    },
    /// A slice request that does not fit the tensor.
    InvalidSlice(SliceError),
    /// An I/O error, with what was being done.
    #[cfg(feature = "std")]
    IoError(std::io::Error),
    /// The file changed size after it was opened.
    #[cfg(feature = "std")]
    FileChanged {
        /// Size when opened.
        expected_len: u64,
        /// Size now.
        actual_len: u64,
    },
    /// A write was refused before anything was written.
    InvalidWrite(String),
    /// A sharded model's index json that cannot be used (not JSON, a tensor listed twice,
    /// a shard name outside the index's folder); the message says which.
    InvalidIndex(String),
    /// A call's argument does not fit the file (a byte range, a buffer size, a backend).
    InvalidArgument(String),
    /// A tensor's bytes do not match the digest its file records (or the recorded value
    /// cannot be checked): see [`crate::format::checksum`].
    ChecksumMismatch {
        /// The tensor.
        tensor: String,
        /// What differs: the algorithm, the recorded digest and the bytes' digest.
        message: String,
    },
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use Error::*;
        match self {
            HeaderTooSmall { len } => write!(
                f,
                "file too small: {len} bytes, a safetensors file needs at least the 8-byte header length"
            ),
            HeaderTooLarge { header_len } => write!(
                f,
                "header too large: {header_len} bytes declared, the limit is {}",
                crate::format::limits::MAX_HEADER_SIZE
            ),
            InvalidHeaderLength { header_len, file_len } => write!(
                f,
                "header length {header_len} goes past the end of the file: 8 + {header_len} > {file_len} bytes"
            ),
            InvalidHeader { valid_up_to, .. } => write!(
                f,
                "header is not valid UTF-8 (invalid byte at header offset {valid_up_to})"
            ),
            InvalidHeaderStart => f.write_str("header does not start with '{': not a JSON object"),
            InvalidHeaderDeserialization(e) => write!(f, "header is not a valid JSON object: {e}"),
            DuplicateTensor(name) => write!(f, "tensor {name:?} appears more than once in the header"),
            InvalidTensorEntry { tensor, reason } => write!(f, "tensor {tensor:?}: {reason}"),
            UnknownDtype { tensor: Some(t), dtype } => write!(f, "tensor {t:?}: unknown dtype {dtype:?}"),
            UnknownDtype { tensor: None, dtype } => write!(f, "unknown dtype {dtype:?}"),
            InvalidMetadata(reason) => write!(f, "invalid __metadata__: {reason}"),
            ValidationOverflow { tensor, shape, ndim } => write!(
                f,
                "tensor {tensor:?}: the size of shape {} overflows 64 bits",
                ShapeExcerpt(shape, *ndim)
            ),
            MisalignedSubByte { tensor, dtype, shape, ndim } => write!(
                f,
                "tensor {tensor:?}: {dtype} shape {} does not fill a whole number of bytes",
                ShapeExcerpt(shape, *ndim)
            ),
            TensorInvalidInfo { tensor, expected, data_offsets: (b, e) } => write!(
                f,
                "tensor {tensor:?}: data_offsets [{b}, {e}] span {} bytes but dtype and shape need {expected}",
                if e >= b { (e - b) as i128 } else { *e as i128 - *b as i128 }
            ),
            InvalidOffset { tensor, data_offsets: (b, e), expected_begin, data_len } => {
                if *e > *data_len {
                    write!(
                        f,
                        "tensor {tensor:?}: data_offsets [{b}, {e}] go past the end of the data section ({data_len} bytes)"
                    )
                } else if b > expected_begin {
                    write!(
                        f,
                        "tensor {tensor:?}: data_offsets [{b}, {e}] leave a hole: the previous tensor ends at {expected_begin}"
                    )
                } else {
                    write!(
                        f,
                        "tensor {tensor:?}: data_offsets [{b}, {e}] overlap the previous tensor, which ends at {expected_begin}"
                    )
                }
            }
            MetadataIncompleteBuffer { covered, data_len } => write!(
                f,
                "{} trailing bytes: the tensors cover {covered} bytes of a {data_len}-byte data section",
                data_len - covered
            ),
            TensorNotFound(name) => write!(f, "no tensor named {name:?}"),
            InvalidTensorView { dtype, shape, data_len } => write!(
                f,
                "a {dtype} tensor of shape {shape:?} cannot hold {data_len} bytes"
            ),
            InvalidSlice(e) => write!(f, "invalid slice: {e}"),
            #[cfg(feature = "std")]
            IoError(e) => write!(f, "I/O error: {e}"),
            #[cfg(feature = "std")]
            FileChanged { expected_len, actual_len } => write!(
                f,
                "the file changed under the reader: it was {expected_len} bytes when opened and is {actual_len} now"
            ),
            InvalidWrite(reason) => write!(f, "cannot write: {reason}"),
            InvalidIndex(reason) | InvalidArgument(reason) => f.write_str(reason),
            ChecksumMismatch { tensor, message } => {
                write!(f, "tensor {:?}: {message}", excerpt(tensor))
            }
        }
    }
}

/// At most this many bytes of a name or string from the input are kept by an error.
pub(crate) const QUOTED_BYTES: usize = 256;
/// At most this many dimensions of a shape from the input are kept by an error.
pub(crate) const QUOTED_DIMS: usize = 8;

/// What an error keeps of `text` from its input: all of it up to [`QUOTED_BYTES`] bytes,
/// otherwise its start, `…` and its length. A hostile header can hold a 100 MB name or
/// string; an error about it stays small whatever the input.
pub(crate) fn excerpt(text: &str) -> String {
    excerpt_to(text, QUOTED_BYTES)
}

/// [`excerpt`] with another limit, for messages that quote input in their own words.
pub(crate) fn excerpt_to(text: &str, limit: usize) -> String {
    if text.len() <= limit {
        return text.into();
    }
    let mut cut = limit;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}… ({} bytes)", &text[..cut], text.len())
}

/// Shows the dimensions an error kept, and how many there were when it kept fewer.
struct ShapeExcerpt<'a>(&'a [usize], usize);

impl fmt::Display for ShapeExcerpt<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ShapeExcerpt(head, ndim) = *self;
        if head.len() >= ndim {
            return write!(f, "{head:?}");
        }
        f.write_str("[")?;
        for dim in head {
            write!(f, "{dim}, ")?;
        }
        write!(f, "…] ({ndim} dimensions)")
    }
}

#[cfg(feature = "std")]
impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::IoError(e) => Some(e),
            Error::InvalidSlice(e) => Some(e),
            _ => None,
        }
    }
}

/// Without `std` (Rust 1.81 or later): the same, through `core::error::Error`.
#[cfg(not(feature = "std"))]
impl core::error::Error for Error {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            Error::InvalidSlice(e) => Some(e),
            _ => None,
        }
    }
}

#[cfg(feature = "std")]
impl From<std::io::Error> for Error {
    fn from(e: std::io::Error) -> Self {
        Error::IoError(e)
    }
}

impl From<SliceError> for Error {
    fn from(e: SliceError) -> Self {
        Error::InvalidSlice(e)
    }
}

/// Reading a dtype's header spelling. Here rather than beside the dtype table, so that the
/// table knows no errors (the errors name dtypes).
impl FromStr for Dtype {
    type Err = Error;

    /// Parses the exact header spelling; anything else (including lowercase) is an error.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ALL_DTYPES
            .iter()
            .copied()
            .find(|d| d.name() == s)
            .ok_or_else(|| Error::UnknownDtype {
                tensor: None,
                dtype: excerpt(s),
            })
    }
}
