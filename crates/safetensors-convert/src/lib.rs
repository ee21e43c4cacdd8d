//! Convert PyTorch checkpoints to safetensors **without executing any pickle code**.
//!
//! `torch.load` runs whatever a checkpoint's pickle tells it to; this crate instead reads the
//! pickle with a small virtual machine of its own (a private `pickle` module) that knows
//! only the opcodes a state dict needs and an allowlist of globals:
//! `collections.OrderedDict`, `torch._utils._rebuild_tensor{,_v2,_v3}`,
//! `torch._utils._rebuild_parameter{,_with_state}`, `torch._tensor._rebuild_from_type_v2` (for
//! `torch.Tensor`/`Parameter` only), `torch.Size`, the `torch.*Storage` classes,
//! `torch.UntypedStorage` and the torch dtypes. Those are re-implemented in Rust and only record
//! numbers. Any other global (`os.system`, `builtins.eval`, ...) is refused with
//! [`ConvertError::ForbiddenGlobal`] naming it, and any other opcode with
//! [`ConvertError::UnsupportedOpcode`] naming it and its byte offset, before anything could run.
//!
//! # Inputs
//! - The zip archive `torch.save` writes (`<name>/data.pkl`, `<name>/data/<key>`,
//!   `<name>/byteorder`, zip64 included). Entries must be *stored*: compressed or encrypted
//!   entries are refused, so a small file can never claim a large amount of memory.
//! - The legacy stream (`_use_new_zipfile_serialization=False`).
//! - A top-level dict of tensors (a state dict). A dict with a `"state_dict"` dict inside is
//!   unwrapped to it; nested dicts and lists are flattened with `.`-joined names; non-tensor
//!   leaves (numbers, strings) are skipped.
//!
//! Every length, offset, size and stride is checked against the bytes the file really has;
//! memory use is bounded by the input's size, never by a number the file claims.
//!
//! # Output
//! - Every dtype safetensors can hold is mapped (`float4_e2m1fn_x2` becomes `F4` with its last
//!   dimension doubled; a 0-d one becomes shape `[2]`); others are a
//!   [`ConvertError::UnsupportedDtype`] naming the tensor.
//! - A view writes only its own bytes; non-contiguous tensors are gathered into C order;
//!   big-endian checkpoints are byte-swapped.
//! - Tensors whose bytes overlap in one storage (tied weights, views of one another) are
//!   written once: per overlapping group, the kept name is the first by name among the tensors
//!   spanning the whole group (or else the largest); each other member lying inside the kept
//!   tensor is dropped. `__metadata__` holds `"format": "pt"` and, when anything was dropped,
//!   [`SHARED_METADATA_KEY`] (`"shared_tensors"`) mapping each dropped name to its kept name as a
//!   JSON object string, e.g. `{"lm_head.weight":"embed.weight"}`, so a loader can re-tie them.
//! - Files are written by the core crate's atomic `serialize_to_file`: an error never leaves a
//!   partial or corrupt output behind.
//!
//! ```no_run
//! use std::path::Path;
//! use safetensors_convert::{convert_file, ConvertOptions};
//!
//! let report = convert_file(
//!     Path::new("pytorch_model.bin"),
//!     Path::new("model.safetensors"),
//!     &ConvertOptions { verify: true, progress: None },
//! )?;
//! println!("{} tensors, {} bytes", report.tensors_written, report.bytes_written);
//! # Ok::<(), safetensors_convert::ConvertError>(())
//! ```
#![deny(missing_docs)]

mod archive;
mod checkpoint;
mod convert;
mod error;
mod mmap;
mod pickle;
mod torch;

pub use checkpoint::{read_checkpoint, Checkpoint, TensorEntry};
pub use convert::{convert_file, convert_folder, ConvertOptions, ConvertReport, PT_INDEX, SHARED_METADATA_KEY, ST_INDEX};
pub use error::ConvertError;
pub use torch::TorchDtype;
