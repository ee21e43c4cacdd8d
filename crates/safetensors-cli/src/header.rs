//! Reading only the header of a safetensors file, from disk or over HTTP, through the core's
//! one header reader (`safetensors::source::read_header`): the 8-byte length, then the JSON
//! header, validated against the real file size. Tensor data is never read, so inspecting a
//! 100 GB model costs a few kilobytes of I/O. This module only names the file in errors.

use std::fs::File;
use std::path::Path;

pub use safetensors::source::FileHeader;
use safetensors::source::Source;

use crate::error::Error;

/// Reads and validates the header of `source`; `name` (path or URL) is used in errors.
pub fn read_header<S: Source>(source: &S, name: &str) -> Result<FileHeader, Error> {
    safetensors::source::read_header(source).map_err(|e| Error::from_core(name, e))
}

/// Reads the header of a local file.
pub fn read_local_header(path: &Path) -> Result<FileHeader, Error> {
    let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
    read_header(&file, &path.display().to_string())
}
