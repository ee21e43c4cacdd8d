//! The reference crate's error enum, variant for variant as the crates.io 0.8.0 release has
//! it: what the reference's functions return (`SafeTensors::deserialize`, `read_metadata`,
//! `tensor`, `serialize`, `serialize_to_file`, `TensorView::new`), so that clients that
//! construct it or match it exhaustively compile and behave unchanged.
//!
//! The project's own API keeps its detailed [`Error`]; `From<Error>` below is the one place
//! that decides which reference variant a detailed error becomes.

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::Utf8Error;

use crate::format::dtype::Dtype;
use crate::format::error::Error;
use crate::format::invalid_slice::SliceError;

/// Possible errors that could occur while reading a safetensors file, as the reference
/// crate (0.8.0) defines them. Not `#[non_exhaustive]`: clients match it exhaustively.
///
/// The reference's variants carry little (most are unit variants); the detail of a problem
/// found by this crate is kept where a variant has room for it: the tensor's name in
/// [`InvalidOffset`](Self::InvalidOffset), a header problem's full message in the
/// `serde_json::Error` of [`InvalidHeaderDeserialization`](Self::InvalidHeaderDeserialization),
/// and (with `std`) any error of this crate's own API that the reference has no variant for
/// inside [`IoError`](Self::IoError), from which `downcast` gives back the [`Error`].
#[derive(Debug)]
pub enum SafeTensorError {
    /// The header is an invalid UTF-8 string and cannot be read.
    InvalidHeader(Utf8Error),
    /// The header does contain a valid string, but it is not valid JSON (or not a valid
    /// header: an unknown dtype, a field of the wrong type, a name given twice).
    InvalidHeaderDeserialization(serde_json::Error),
    /// The header is larger than 100 MB (`MAX_HEADER_SIZE`).
    HeaderTooLarge,
    /// The buffer is smaller than the 8-byte header length.
    HeaderTooSmall,
    /// The header length goes past the end of the buffer.
    InvalidHeaderLength,
    /// The tensor name was not found in the archive.
    TensorNotFound(String),
    /// The shape and dtype of a tensor disagree with the size its offsets give.
    TensorInvalidInfo,
    /// The offsets declared for the tensor named `String` in the header are invalid.
    InvalidOffset(String),
    /// An I/O error.
    #[cfg(feature = "std")]
    IoError(std::io::Error),
    /// A JSON error.
    JsonError(serde_json::Error),
    /// The tensor cannot be created because the buffer size doesn't match shape and dtype:
    /// the dtype, the shape and the buffer's length.
    InvalidTensorView(Dtype, Vec<usize>, usize),
    /// The tensors do not cover the data section exactly (it is longer or shorter than the
    /// header says).
    MetadataIncompleteBuffer,
    /// Computing a buffer size from a shape and an element type overflows.
    ValidationOverflow,
    /// A sub-byte dtype's tensor or slice does not end on a byte boundary.
    MisalignedSlice,
}

impl fmt::Display for SafeTensorError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use SafeTensorError::*;
        match self {
            InvalidHeader(e) => write!(f, "invalid UTF-8 in header: {e}"),
            InvalidHeaderDeserialization(e) => write!(f, "invalid JSON in header: {e}"),
            HeaderTooLarge => f.write_str("header too large"),
            HeaderTooSmall => f.write_str("header too small"),
            InvalidHeaderLength => f.write_str("invalid header length"),
            TensorNotFound(name) => write!(f, "tensor `{name}` not found"),
            TensorInvalidInfo => f.write_str("invalid shape, data type, or offset for tensor"),
            InvalidOffset(name) => write!(f, "invalid offset for tensor `{name}`"),
            #[cfg(feature = "std")]
            IoError(e) => write!(f, "I/O error: {e}"),
            JsonError(e) => write!(f, "JSON error: {e}"),
            InvalidTensorView(dtype, shape, len) => {
                f.write_str("tensor of type ")?;
                write!(f, "{dtype} and shape (")?;
                for (i, dim) in shape.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{dim}")?;
                }
                write!(f, ") can't be created from {len} bytes")
            }
            MetadataIncompleteBuffer => f.write_str("incomplete metadata, file not fully covered"),
            ValidationOverflow => {
                f.write_str("overflow computing buffer size from shape and/or element type")
            }
            MisalignedSlice => f.write_str(
                "The slice is slicing for subbytes dtypes, and the slice does not end up at a byte boundary, this is invalid.",
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for SafeTensorError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            SafeTensorError::InvalidHeader(e) => Some(e),
            SafeTensorError::InvalidHeaderDeserialization(e) | SafeTensorError::JsonError(e) => {
                Some(e)
            }
            SafeTensorError::IoError(e) => Some(e),
            _ => None,
        }
    }
}

/// Without `std` (Rust 1.81 or later): the same, through `core::error::Error`.
#[cfg(not(feature = "std"))]
impl core::error::Error for SafeTensorError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            SafeTensorError::InvalidHeader(e) => Some(e),
            _ => None,
        }
    }
}

impl From<serde_json::Error> for SafeTensorError {
    fn from(e: serde_json::Error) -> Self {
        SafeTensorError::JsonError(e)
    }
}

#[cfg(feature = "std")]
impl From<std::io::Error> for SafeTensorError {
    fn from(e: std::io::Error) -> Self {
        SafeTensorError::IoError(e)
    }
}

/// A `serde_json::Error` that says `message`: how a header problem this crate tells in
/// detail travels in the reference's `InvalidHeaderDeserialization`.
fn json_message(message: impl fmt::Display) -> serde_json::Error {
    <serde_json::Error as serde::de::Error>::custom(message)
}

/// An error of this crate's own API that the reference has no variant for. With `std` it
/// travels whole inside `IoError` (`std::io::Error::new(kind, error)`: `get_ref` and
/// `into_inner` + `downcast` give it back, `source()` reaches it); without `std`, its
/// message inside `JsonError`.
fn not_in_reference(error: Error) -> SafeTensorError {
    #[cfg(feature = "std")]
    {
        use std::io::ErrorKind;
        let kind = match &error {
            Error::FileChanged { .. } => ErrorKind::UnexpectedEof,
            Error::InvalidIndex(_) => ErrorKind::InvalidData,
            _ => ErrorKind::InvalidInput,
        };
        SafeTensorError::IoError(std::io::Error::new(kind, error))
    }
    #[cfg(not(feature = "std"))]
    {
        SafeTensorError::JsonError(json_message(error))
    }
}

/// The closest reference variant of a detailed error:
///
/// | [`Error`] | [`SafeTensorError`] |
/// | --- | --- |
/// | `HeaderTooSmall`, `HeaderTooLarge`, `InvalidHeaderLength` | the same, unit variants |
/// | `InvalidHeader` | `InvalidHeader` with the decoder's `Utf8Error` |
/// | `InvalidHeaderStart`, `InvalidHeaderDeserialization`, `InvalidTensorEntry`, `UnknownDtype`, `InvalidMetadata` | `InvalidHeaderDeserialization`, its `serde_json::Error` saying the detailed message |
/// | `DuplicateTensor(name)` | `InvalidOffset(name)` (what the reference reports for a repeated name) |
/// | `ValidationOverflow` | `ValidationOverflow` |
/// | `MisalignedSubByte` | `MisalignedSlice` |
/// | `TensorInvalidInfo` | `TensorInvalidInfo`; `InvalidOffset(name)` when `begin > end` |
/// | `InvalidOffset` | `InvalidOffset(name)`; `MetadataIncompleteBuffer` when the tensor goes past the end of the data |
/// | `MetadataIncompleteBuffer` | `MetadataIncompleteBuffer` |
/// | `TensorNotFound(name)` | `TensorNotFound(name)` |
/// | `InvalidTensorView` | `InvalidTensorView(dtype, shape, len)` |
/// | `InvalidSlice` that splits a sub-byte element | `MisalignedSlice` |
/// | `IoError(e)` | `IoError(e)` |
/// | any other (`FileChanged`, `InvalidWrite`, `InvalidIndex`, `InvalidArgument`, `ChecksumMismatch`, other `InvalidSlice`s) | with `std`: `IoError` wrapping the whole [`Error`]; without: `JsonError` saying its message |
///
/// The variants match what the reference itself reports for the same input (a tensor
/// that runs past the end of the data is `MetadataIncompleteBuffer`, offsets with
/// `begin > end` are `InvalidOffset`).
impl From<Error> for SafeTensorError {
    fn from(error: Error) -> Self {
        match error {
            Error::HeaderTooSmall { .. } => SafeTensorError::HeaderTooSmall,
            Error::HeaderTooLarge { .. } => SafeTensorError::HeaderTooLarge,
            Error::InvalidHeaderLength { .. } => SafeTensorError::InvalidHeaderLength,
            Error::InvalidHeader { error, .. } => SafeTensorError::InvalidHeader(error),
            Error::InvalidHeaderDeserialization(message) => {
                SafeTensorError::InvalidHeaderDeserialization(json_message(message))
            }
            // The reference reads a repeated name as "the last one wins", which leaves the
            // first entry's bytes uncovered: it reports the name's offsets.
            Error::DuplicateTensor(name) => SafeTensorError::InvalidOffset(name),
            e @ (Error::InvalidHeaderStart
            | Error::InvalidTensorEntry { .. }
            | Error::UnknownDtype { .. }
            | Error::InvalidMetadata(_)) => {
                SafeTensorError::InvalidHeaderDeserialization(json_message(e))
            }
            Error::ValidationOverflow { .. } => SafeTensorError::ValidationOverflow,
            Error::MisalignedSubByte { .. } => SafeTensorError::MisalignedSlice,
            Error::TensorInvalidInfo {
                tensor,
                data_offsets: (begin, end),
                ..
            } => {
                if begin > end {
                    SafeTensorError::InvalidOffset(tensor)
                } else {
                    SafeTensorError::TensorInvalidInfo
                }
            }
            Error::InvalidOffset {
                tensor,
                data_offsets: (_, end),
                data_len,
                ..
            } => {
                if end > data_len {
                    SafeTensorError::MetadataIncompleteBuffer
                } else {
                    SafeTensorError::InvalidOffset(tensor)
                }
            }
            Error::MetadataIncompleteBuffer { .. } => SafeTensorError::MetadataIncompleteBuffer,
            Error::TensorNotFound(name) => SafeTensorError::TensorNotFound(name),
            Error::InvalidTensorView {
                dtype,
                shape,
                data_len,
            } => SafeTensorError::InvalidTensorView(dtype, shape, data_len),
            Error::InvalidSlice(SliceError::SplitsSubByteElement { .. }) => {
                SafeTensorError::MisalignedSlice
            }
            #[cfg(feature = "std")]
            Error::IoError(e) => SafeTensorError::IoError(e),
            other => not_in_reference(other),
        }
    }
}
