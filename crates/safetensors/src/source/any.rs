//! A safetensors file read through any [`Source`]: a caller's buffer in memory, a Python file
//! object, or whatever else a face implements the trait for. Its header is read and
//! validated at open, by the one header reader, like a file's or a URL's.

use std::fmt;

use crate::format::error::Error;
use crate::format::header::Metadata;
use crate::source::{read_header, FileHeader, Source};

/// An open, validated safetensors file over a caller's [`Source`].
pub struct SourceFile {
    source: Box<dyn Source + Send + Sync>,
    header: FileHeader,
}

impl SourceFile {
    /// Reads and validates the header of `source`.
    ///
    /// ```
    /// use safetensors::source::any::SourceFile;
    ///
    /// let file: Vec<u8> = b"\x02\0\0\0\0\0\0\0{}".to_vec();
    /// let opened = SourceFile::open(file).unwrap();
    /// assert_eq!((opened.metadata().len(), opened.data_start()), (0, 10));
    /// assert!(opened.bytes().is_some()); // memory: zero-copy views are possible
    /// ```
    pub fn open(source: impl Source + Send + Sync + 'static) -> Result<Self, Error> {
        let header = read_header(&source)?;
        Ok(SourceFile {
            source: Box::new(source),
            header,
        })
    }

    /// The validated header.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// The file's first `8 + N` bytes, as read.
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// Absolute offset of the data section (`8 + N`).
    pub fn data_start(&self) -> u64 {
        self.header.data_start()
    }

    /// The whole file's bytes, when the source holds them in memory.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.source.as_bytes()
    }

    /// The header, moved out.
    pub fn into_header(self) -> FileHeader {
        self.header
    }
}

impl Source for SourceFile {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.header.file_len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.source.read_at(offset, buf)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        self.source.as_bytes()
    }
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("file_len", &self.header.file_len)
            .field("header_len", &self.header.header_len)
            .field("in_memory", &self.bytes().is_some())
            .finish()
    }
}
