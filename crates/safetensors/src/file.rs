//! Reading tensors from a file on disk without loading it: open validates the header
//! only; tensor bytes come from a memory map or from positioned reads, as the caller
//! chooses. Both refuse to read once the file has changed size under them.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;

use crate::error::SafeTensorError;
use crate::header::{read_header_len, Metadata, TensorInfo};
use crate::mmap::map_file;
use crate::tensor::TensorView;

/// How [`SafeFile`] gets tensor bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Backend {
    /// Map the file into memory: zero-copy views, pages read on first touch.
    Mmap,
    /// Positioned reads (`pread`) into the caller's buffers: no mapping at all.
    Pread,
}

/// An open, validated safetensors file. `Send + Sync`: many threads may read at once.
#[derive(Debug)]
pub struct SafeFile {
    file: File,
    map: Option<Mmap>,
    metadata: Metadata,
    header_len: usize,
    file_len: u64,
    backend: Backend,
}

impl SafeFile {
    /// Opens `path` and validates its header.
    pub fn open(path: impl AsRef<Path>, backend: Backend) -> Result<Self, SafeTensorError> {
        Self::from_file(File::open(path)?, backend)
    }

    /// Validates the header of an already open file.
    pub fn from_file(file: File, backend: Backend) -> Result<Self, SafeTensorError> {
        let file_len = file.metadata()?.len();
        let mut prefix = [0u8; 8];
        let got = read_at_most(&file, &mut prefix, 0)?;
        let header_len = read_header_len(&prefix[..got])?;
        let data_start = 8 + header_len as u64;
        if data_start > file_len {
            return Err(SafeTensorError::InvalidHeaderLength {
                header_len: header_len as u64,
                file_len,
            });
        }
        // Bounded by MAX_HEADER_SIZE and by the file's real size, checked just above.
        let mut header = vec![0u8; header_len];
        read_exact_at(&file, &mut header, 8)?;
        let data_len = usize::try_from(file_len - data_start).map_err(|_| {
            SafeTensorError::InvalidHeaderLength {
                header_len: header_len as u64,
                file_len,
            }
        })?;
        let metadata = Metadata::from_header_bytes(&header, data_len)?;
        let map = match backend {
            Backend::Mmap if file_len > 0 => Some(map_file(&file)?),
            _ => None,
        };
        Ok(SafeFile {
            file,
            map,
            metadata,
            header_len,
            file_len,
            backend,
        })
    }

    /// The validated header.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The header length `N` (padding included).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Absolute file offset of the data section (`8 + N`).
    pub fn data_start(&self) -> u64 {
        8 + self.header_len as u64
    }

    /// The backend chosen at open.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn info(&self, name: &str) -> Result<&TensorInfo, SafeTensorError> {
        self.metadata
            .info(name)
            .ok_or_else(|| SafeTensorError::TensorNotFound(name.into()))
    }

    /// Fails with [`SafeTensorError::FileChanged`] if the file no longer has the size it
    /// had when opened (a truncated mapped file would otherwise crash the process).
    pub fn check_unchanged(&self) -> Result<(), SafeTensorError> {
        let now = self.file.metadata()?.len();
        if now != self.file_len {
            return Err(SafeTensorError::FileChanged {
                expected_len: self.file_len,
                actual_len: now,
            });
        }
        Ok(())
    }

    /// Absolute file range of `range` within tensor `name`, checked.
    fn file_range(&self, name: &str, range: Range<usize>) -> Result<Range<u64>, SafeTensorError> {
        let info = self.info(name)?;
        let (begin, end) = info.data_offsets;
        if range.start > range.end || range.end > end - begin {
            return Err(SafeTensorError::InvalidArgument(format!(
                "byte range {}..{} is outside tensor {name:?}, which has {} bytes",
                range.start,
                range.end,
                end - begin
            )));
        }
        let start = self.data_start() + (begin + range.start) as u64;
        Ok(start..start + range.len() as u64)
    }

    /// Copies `range` (relative to the tensor's first byte) of tensor `name` into `dst`,
    /// which must be exactly `range.len()` bytes long.
    pub fn read_into(
        &self,
        name: &str,
        range: Range<usize>,
        dst: &mut [u8],
    ) -> Result<(), SafeTensorError> {
        let span = self.file_range(name, range)?;
        if dst.len() as u64 != span.end - span.start {
            return Err(SafeTensorError::InvalidArgument(format!(
                "destination holds {} bytes but {} were asked for from tensor {name:?}",
                dst.len(),
                span.end - span.start
            )));
        }
        self.check_unchanged()?;
        match &self.map {
            Some(map) => dst.copy_from_slice(&map[span.start as usize..span.end as usize]),
            None => read_exact_at(&self.file, dst, span.start).map_err(|e| self.short_read(e))?,
        }
        Ok(())
    }

    /// A whole tensor's bytes: borrowed from the map (mmap) or read into a new buffer (pread).
    pub fn tensor_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, SafeTensorError> {
        let len = self.info(name)?.byte_len();
        let span = self.file_range(name, 0..len)?;
        self.check_unchanged()?;
        match &self.map {
            Some(map) => Ok(Cow::Borrowed(&map[span.start as usize..span.end as usize])),
            None => {
                let mut buf = vec![0u8; len];
                read_exact_at(&self.file, &mut buf, span.start).map_err(|e| self.short_read(e))?;
                Ok(Cow::Owned(buf))
            }
        }
    }

    /// A zero-copy view of a tensor. Needs the mmap backend.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, SafeTensorError> {
        let info = self.info(name)?;
        match self.tensor_bytes(name)? {
            Cow::Borrowed(data) => TensorView::new(info.dtype, info.shape.clone(), data),
            Cow::Owned(_) => Err(SafeTensorError::InvalidArgument(
                "zero-copy views need the mmap backend; use tensor_bytes or read_into with pread"
                    .into(),
            )),
        }
    }

    /// An error from a positioned read: a short read means the file shrank.
    fn short_read(&self, e: io::Error) -> SafeTensorError {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            if let Ok(meta) = self.file.metadata() {
                return SafeTensorError::FileChanged {
                    expected_len: self.file_len,
                    actual_len: meta.len(),
                };
            }
        }
        SafeTensorError::IoError(e)
    }
}

/// Reads up to `buf.len()` bytes at `offset`, stopping early only at end of file.
fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    let mut done = 0;
    while done < buf.len() {
        match read_at(file, &mut buf[done..], offset + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
    if read_at_most(file, buf, offset)? != buf.len() {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "file ended early",
        ));
    }
    Ok(())
}

#[cfg(unix)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::unix::fs::FileExt::read_at(file, buf, offset)
}

#[cfg(windows)]
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
    std::os::windows::fs::FileExt::seek_read(file, buf, offset)
}

/// Replaces `path` with `bytes` the way [`crate::serialize_to_file`] replaces files: through
/// a temporary file in the same folder renamed into place, so readers see the old content or
/// the new, never a partial file. For the small files that travel with models (index JSON).
pub fn write_atomically(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = crate::atomic::AtomicFile::create(path.as_ref())?;
    file.write_all(bytes)?;
    file.commit()
}
