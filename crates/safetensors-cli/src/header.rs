//! Reading only the header of a safetensors file, from disk or over HTTP: the 8-byte length,
//! then the JSON header, validated by the core against the real file size. Tensor data is
//! never read, so inspecting a 100 GB model costs a few kilobytes of I/O.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use safetensors::tensor::{read_header_len, Metadata};
use safetensors::SafeTensorError;

use crate::error::Error;
use crate::remote::RemoteFile;

/// What the first `8 + N` bytes of a file say.
pub struct FileHeader {
    /// The whole file's size in bytes.
    pub file_size: u64,
    /// `N`, the header's length in bytes (padding included).
    pub header_len: usize,
    /// The validated header.
    pub metadata: Metadata,
}

/// Somewhere bytes of a file can be read from by position.
pub trait ByteSource {
    /// The file's total size.
    fn size(&self) -> u64;
    /// Exactly `len` bytes at `offset` (`offset + len <= size()`).
    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, Error>;
}

/// A local file.
pub struct LocalFile {
    file: File,
    path: String,
    size: u64,
}

impl LocalFile {
    /// Opens `path` for reading.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let file = File::open(path).map_err(|e| Error::io("open", path, e))?;
        let size = file
            .metadata()
            .map_err(|e| Error::io("stat", path, e))?
            .len();
        Ok(LocalFile {
            file,
            path: path.display().to_string(),
            size,
        })
    }
}

impl ByteSource for LocalFile {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        let io = |e| Error::Io {
            action: "read",
            path: self.path.clone(),
            source: e,
        };
        self.file.seek(SeekFrom::Start(offset)).map_err(io)?;
        let mut buffer = vec![0u8; len];
        self.file.read_exact(&mut buffer).map_err(io)?;
        Ok(buffer)
    }
}

impl ByteSource for RemoteFile {
    fn size(&self) -> u64 {
        RemoteFile::size(self)
    }

    fn read_at(&mut self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        RemoteFile::read_at(self, offset, len)
    }
}

/// Reads and validates the header of `source`; `name` (path or URL) is used in errors.
///
/// Memory used is bounded by the real file size and the core's 100 MB header limit, never by
/// the length the file claims.
pub fn read_header(source: &mut dyn ByteSource, name: &str) -> Result<FileHeader, Error> {
    let format = |source| Error::Format {
        path: name.to_string(),
        source,
    };
    let file_size = source.size();
    let prefix = source.read_at(0, file_size.min(8) as usize)?;
    let header_len = read_header_len(&prefix).map_err(format)?;
    let data_start = 8 + header_len as u64;
    if data_start > file_size {
        return Err(format(SafeTensorError::InvalidHeaderLength {
            header_len: header_len as u64,
            file_len: file_size,
        }));
    }
    let header = source.read_at(8, header_len)?;
    let data_len = usize::try_from(file_size - data_start).map_err(|_| {
        Error::invalid(
            name,
            format!(
                "the data section ({} bytes) is too large for this platform",
                file_size - data_start
            ),
        )
    })?;
    let metadata = Metadata::from_header_bytes(&header, data_len).map_err(format)?;
    Ok(FileHeader {
        file_size,
        header_len,
        metadata,
    })
}

/// Reads the header of a local file.
pub fn read_local_header(path: &Path) -> Result<FileHeader, Error> {
    let mut file = LocalFile::open(path)?;
    read_header(&mut file, &path.display().to_string())
}
