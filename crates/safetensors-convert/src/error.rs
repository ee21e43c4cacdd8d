//! The crate's one error type. Each variant names the file and, where it applies, the tensor,
//! the pickle global or opcode, and the numbers involved; `Display` is a single line.

use std::fmt;
use std::path::PathBuf;

/// Why a conversion (or a checkpoint read) failed.
#[non_exhaustive]
#[derive(Debug)]
pub enum ConvertError {
    /// Reading or writing a file failed.
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is neither a `torch.save` zip archive nor a legacy `torch.save` stream.
    NotACheckpoint {
        /// The file.
        path: PathBuf,
        /// What was found instead.
        reason: String,
    },
    /// The zip archive is malformed, truncated, compressed or encrypted.
    Archive {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The pickle uses an opcode outside the safe subset.
    UnsupportedOpcode {
        /// The file.
        path: PathBuf,
        /// The pickle stream inside the file (e.g. `archive/data.pkl`).
        stream: String,
        /// The opcode byte.
        opcode: u8,
        /// Its pickle name (`"unknown"` when not a pickle opcode).
        name: &'static str,
        /// Byte offset of the opcode within the stream.
        offset: u64,
    },
    /// The pickle references a global that is not on the allowlist; nothing was run.
    ForbiddenGlobal {
        /// The file.
        path: PathBuf,
        /// The pickle stream inside the file.
        stream: String,
        /// The global's module, e.g. `os`.
        module: String,
        /// The global's name, e.g. `system`.
        name: String,
        /// Byte offset of the opcode within the stream.
        offset: u64,
    },
    /// The pickle is malformed or builds something a state dict cannot contain.
    Pickle {
        /// The file.
        path: PathBuf,
        /// The pickle stream inside the file.
        stream: String,
        /// Byte offset within the stream.
        offset: u64,
        /// What is wrong.
        message: String,
    },
    /// The unpickled object is not laid out like a checkpoint.
    Structure {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A tensor's dtype has no safetensors equivalent.
    UnsupportedDtype {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The torch dtype name.
        dtype: String,
    },
    /// A tensor's storage record is missing from the checkpoint.
    MissingStorage {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// The storage key.
        key: String,
    },
    /// A tensor needs more bytes than its storage has, or its geometry is unusable.
    InvalidTensor {
        /// The file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What is wrong, with the numbers.
        message: String,
    },
    /// A sharded checkpoint's index file is missing, malformed or inconsistent.
    Index {
        /// The index file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The safetensors writer or reader refused.
    Safetensors {
        /// The output file.
        path: PathBuf,
        /// The core crate's error.
        source: safetensors::Error,
    },
    /// Verification found the written file differs from the source.
    Verify {
        /// The output file.
        path: PathBuf,
        /// The tensor.
        tensor: String,
        /// What differs.
        message: String,
    },
}

/// What an error keeps of a name or string read from a checkpoint: all of it up to 256 bytes,
/// otherwise its start, `…` and its length (a hostile pickle can hold a huge string).
pub(crate) fn excerpt(text: &str) -> String {
    let cut = (0..=text.len().min(256))
        .rev()
        .find(|&i| text.is_char_boundary(i))
        .unwrap_or(0);
    match cut < text.len() {
        true => format!("{}… ({} bytes)", &text[..cut], text.len()),
        false => text.to_owned(),
    }
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use ConvertError::*;
        match self {
            Io { path, source } => write!(f, "{}: {source}", path.display()),
            NotACheckpoint { path, reason } => {
                write!(f, "{}: not a PyTorch checkpoint: {reason}", path.display())
            }
            Archive { path, message } => write!(f, "{}: bad zip archive: {message}", path.display()),
            UnsupportedOpcode { path, stream, opcode, name, offset } => write!(
                f,
                "{}: {stream}: pickle opcode {name} (0x{opcode:02x}) at byte {offset} is not supported by the safe unpickler",
                path.display()
            ),
            ForbiddenGlobal { path, stream, module, name, offset } => write!(
                f,
                "{}: {stream}: refusing global `{module}.{name}` (at byte {offset}): only state-dict types are allowed, \
                 nothing was executed",
                path.display()
            ),
            Pickle { path, stream, offset, message } => {
                write!(f, "{}: {stream}: malformed pickle at byte {offset}: {message}", path.display())
            }
            Structure { path, message } => write!(f, "{}: {message}", path.display()),
            UnsupportedDtype { path, tensor, dtype } => write!(
                f,
                "{}: tensor `{tensor}` has dtype torch.{dtype}, which safetensors cannot store",
                path.display()
            ),
            MissingStorage { path, tensor, key } => write!(
                f,
                "{}: tensor `{tensor}` uses storage `{key}`, which is missing from the checkpoint",
                path.display()
            ),
            InvalidTensor { path, tensor, message } => {
                write!(f, "{}: tensor `{tensor}`: {message}", path.display())
            }
            Index { path, message } => write!(f, "{}: {message}", path.display()),
            Safetensors { path, source } => write!(f, "{}: {source}", path.display()),
            Verify { path, tensor, message } => {
                write!(f, "{}: verification failed for tensor `{tensor}`: {message}", path.display())
            }
        }
    }
}

impl std::error::Error for ConvertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConvertError::Io { source, .. } => Some(source),
            ConvertError::Safetensors { source, .. } => Some(source),
            _ => None,
        }
    }
}
