#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

#[cfg(feature = "std")]
mod atomic;
#[cfg(feature = "std")]
pub mod cache;
#[cfg(feature = "std")]
pub mod checkpoint;
pub mod coalesce;
pub mod dtype;
mod error;
#[cfg(feature = "std")]
pub mod file;
mod header;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "std")]
pub mod index;
pub mod indexing;
#[cfg(feature = "std")]
pub mod inspect;
mod json;
mod json_plain;
mod metadata_serde;
#[cfg(feature = "std")]
mod mmap;
#[cfg(feature = "std")]
pub mod prefetch;
#[cfg(feature = "std")]
pub mod reader;
mod safe_tensor_error;
mod serialize;
pub mod slice;
pub mod source;
pub mod split;
mod table;
pub mod tensor;

/// The writer with the crate's detailed [`Error`]: what [`serialize`] and
/// `serialize_to_file` do (same bytes, same checks), for callers that report which tensor
/// and which numbers are wrong (the CLI, the converter, the Python package).
pub mod write {
    pub use crate::serialize::to_bytes;
    #[cfg(feature = "std")]
    pub use crate::serialize::to_file;
}

#[cfg(not(feature = "std"))]
pub(crate) use hashbrown::HashMap;
#[cfg(feature = "std")]
pub(crate) use std::collections::HashMap;

pub use dtype::Dtype;
pub use error::Error;
pub use header::TensorInfo;
pub use header::{MAX_HEADER_SIZE, METADATA_KEY};
pub use safe_tensor_error::SafeTensorError;
#[cfg(feature = "std")]
pub use serialize::serialize_to_file;
pub use serialize::{serialize, MetadataArg};
pub use tensor::{SafeTensors, View};
