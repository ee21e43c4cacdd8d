#![doc = include_str!("../README.md")]
#![cfg_attr(not(feature = "std"), no_std)]
#![deny(missing_docs)]

extern crate alloc;

// The layers, each a folder; an arrow only ever points down this list.
#[cfg(feature = "std")]
pub mod checkpoint;
pub mod format;
pub mod plan;
#[cfg(feature = "std")]
pub mod reader;
pub mod source;

// The reference crate's public paths.
#[doc(inline)]
pub use format::tensor;
#[doc(inline)]
pub use plan::slice;

pub use format::dtype::Dtype;
pub use format::error::Error;
pub use format::header::TensorInfo;
pub use format::limits::{MAX_HEADER_SIZE, METADATA_KEY};
pub use format::safe_tensor_error::SafeTensorError;
#[cfg(feature = "std")]
pub use format::serialize::serialize_to_file;
pub use format::serialize::{serialize, MetadataArg};
pub use format::tensor::{SafeTensors, View};

/// The writer with the crate's detailed [`Error`]: what [`serialize`] and
/// `serialize_to_file` do (same bytes, same checks), for callers that report which tensor
/// and which numbers are wrong (the CLI, the converter, the Python package); and the
/// streaming writers, which take the tensors' specs first and their bytes one at a time
/// ([`StreamingWriter`](write::StreamingWriter) for a file,
/// [`ShardedWriter`](write::ShardedWriter) for a sharded checkpoint).
pub mod write {
    #[cfg(feature = "std")]
    pub use crate::checkpoint::sharded_writer::ShardedWriter;
    #[cfg(feature = "std")]
    pub use crate::format::atomic::write_atomically;
    pub use crate::format::serialize::to_bytes;
    #[cfg(feature = "std")]
    pub use crate::format::serialize::{to_bytes_with, to_file, to_file_with, WriteOptions};
    #[cfg(feature = "std")]
    pub use crate::format::streaming::{Spec, StreamingWriter};
}
