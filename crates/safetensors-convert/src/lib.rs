//! The `convert` engine of the safetensors tools: PyTorch checkpoints in, safetensors out, no
//! pickle code run. See the README below for what is accepted and what is written.
#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

mod archive;
mod convert;
mod error;
mod mmap;
mod pickle;
mod torch;
mod torch_checkpoint;
mod torch_types;

pub use convert::{
    convert_file, convert_folder, ConvertOptions, ConvertReport, PT_INDEX, SHARED_METADATA_KEY,
    ST_INDEX,
};
pub use error::ConvertError;
#[doc(hidden)]
pub use torch_checkpoint::parse_checkpoint_bytes;
pub use torch_checkpoint::{read_checkpoint, TensorEntry, TorchCheckpoint};
pub use torch_types::TorchDtype;
