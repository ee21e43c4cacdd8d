//! The format itself: the header model and its rules, element types, the reference's
//! zero-copy [`SafeTensors`](tensor::SafeTensors) over bytes, the writer, and the errors.
//!
//! Knows nothing of where bytes come from (sources), of shards (checkpoints) or of read
//! plans: everything else builds on it.

#[cfg(feature = "std")]
pub mod atomic;
#[cfg(feature = "std")]
pub mod checksum;
pub mod dtype;
pub mod error;
pub mod file_header;
pub mod header;
pub mod invalid_slice;
pub(crate) mod json;
pub(crate) mod json_plain;
pub mod limits;
mod metadata_serde;
pub mod safe_tensor_error;
pub mod serialize;
#[cfg(feature = "std")]
pub mod streaming;
pub(crate) mod table;
pub mod tensor;

#[cfg(not(feature = "std"))]
pub(crate) use hashbrown::HashMap;
#[cfg(feature = "std")]
pub(crate) use std::collections::HashMap;
