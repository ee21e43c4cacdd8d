//! Reading tensors from a file on disk without loading it: open validates the header
//! only; tensor bytes come from a memory map or from positioned reads, as the caller
//! chooses. Both refuse to read once the file has changed size under them.

use std::borrow::Cow;
use std::fs::File;
use std::io;
use std::ops::Range;
use std::path::Path;

use memmap2::Mmap;

use crate::format::error::Error;
use crate::format::header::{Metadata, TensorInfo};
use crate::format::tensor::TensorView;
use crate::source::filesystem::AutoChoice;
#[cfg(doc)]
use crate::source::filesystem::Filesystem;
use crate::source::mmap::map_file;
use crate::source::pread::read_exact_at;
use crate::source::{read_header, FileHeader, Source};

/// How [`SafeFile`] gets tensor bytes: positioned reads ([`Backend::Pread`], always safe),
/// a memory map ([`Backend::mmap`], which the caller opts into with `unsafe`), or either as
/// the file's filesystem suits ([`Backend::auto`], the same opt-in).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Backend {
    mode: Mode,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Pread,
    Mmap,
    Auto,
}

impl Backend {
    /// Positioned reads (`pread`) into the caller's buffers: no mapping at all, so nothing
    /// another process does to the file can change bytes already handed out.
    // Named like the enum variant it replaced, so `Backend::Pread` reads as before.
    #[allow(non_upper_case_globals)]
    pub const Pread: Backend = Backend { mode: Mode::Pread };

    /// Map the file into memory: zero-copy views, pages read on first touch.
    ///
    /// The map is shared with the file: bytes borrowed from it (`SafeFile::tensor`,
    /// `SafeFile::tensor_bytes`) are the file's current contents, not a copy. The same opt-in
    /// as ripgrep's `MmapChoice::auto`.
    ///
    /// # Safety
    /// While a `SafeFile` opened with this backend (or anything borrowed from it) lives, no
    /// one may modify the file in place or truncate it: another process writing to it would
    /// change bytes behind a `&[u8]`, which Rust assumes immutable, and truncation makes
    /// reads of the lost pages fault (SIGBUS). `SafeFile` checks the file's size before every
    /// read and refuses a file that shrank, which narrows but cannot close that window;
    /// replacing the file by rename (as this crate's writers do) is always fine.
    pub const unsafe fn mmap() -> Backend {
        Backend { mode: Mode::Mmap }
    }

    /// Decide at open, file by file: positioned reads on a network, cluster or FUSE
    /// filesystem (NFS, SMB, 9p, Ceph, Lustre, GPFS, FUSE, ...: see
    /// [`Filesystem::is_remote`]), a memory map anywhere else. The environment variable
    /// `SAFETENSORS_AUTO_BACKEND` (`pread` or `mmap`) overrides the filesystem's answer (see
    /// [`crate::source::filesystem`]). [`SafeFile::backend`] then reports what was picked,
    /// and [`SafeFile::auto_choice`] why.
    ///
    /// # Safety
    /// The contract of [`Backend::mmap`], which this backend picks on local filesystems.
    pub const unsafe fn auto() -> Backend {
        Backend { mode: Mode::Auto }
    }

    /// True for the memory-map backend (false for [`Backend::auto`] until resolved).
    pub const fn is_mmap(self) -> bool {
        matches!(self.mode, Mode::Mmap)
    }

    /// True for [`Backend::auto`], before it is resolved at open.
    pub const fn is_auto(self) -> bool {
        matches!(self.mode, Mode::Auto)
    }

    /// `"pread"`, `"mmap"` or `"auto"`.
    pub const fn name(self) -> &'static str {
        match self.mode {
            Mode::Pread => "pread",
            Mode::Mmap => "mmap",
            Mode::Auto => "auto",
        }
    }

    /// What this backend is for `file`: itself, or for [`Backend::auto`] the backend the
    /// file's filesystem suits and the choice that picked it.
    pub fn resolve(self, file: &File) -> Result<(Backend, Option<AutoChoice>), Error> {
        if !self.is_auto() {
            return Ok((self, None));
        }
        let choice = AutoChoice::for_file(file)?;
        Ok((choice.backend(), Some(choice)))
    }
}

impl AutoChoice {
    /// The concrete backend this choice names. Only `Backend::auto`, already an `unsafe`
    /// opt-in to mapping, resolves through it.
    pub(crate) fn backend(self) -> Backend {
        match self.mmap {
            true => Backend { mode: Mode::Mmap },
            false => Backend::Pread,
        }
    }
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
    auto: Option<AutoChoice>,
}

impl SafeFile {
    /// Opens `path` and validates its header.
    pub fn open(path: impl AsRef<Path>, backend: Backend) -> Result<Self, Error> {
        Self::from_file(File::open(path)?, backend)
    }

    /// Validates the header of an already open file.
    pub fn from_file(file: File, backend: Backend) -> Result<Self, Error> {
        let FileHeader {
            file_len,
            header_len,
            metadata,
        } = read_header(&file)?;
        let (backend, auto) = backend.resolve(&file)?;
        let map = match backend.is_mmap() && file_len > 0 {
            // SAFETY: the caller opted into mapping with the unsafe `Backend::mmap` (or
            // `Backend::auto`, which resolved to it), whose contract (no in-place writer, no
            // truncation while open) is `map_file`'s.
            true => Some(unsafe { map_file(&file) }?),
            false => None,
        };
        Ok(SafeFile {
            file,
            map,
            metadata,
            header_len,
            file_len,
            backend,
            auto,
        })
    }

    /// The validated header.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }

    /// The header, moved out (the file is closed and unmapped).
    pub fn into_header(self) -> FileHeader {
        FileHeader {
            file_len: self.file_len,
            header_len: self.header_len,
            metadata: self.metadata,
        }
    }

    /// The header length `N` (padding included).
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// Absolute file offset of the data section (`8 + N`).
    pub fn data_start(&self) -> u64 {
        8 + self.header_len as u64
    }

    /// The backend the file is read with: the one asked for at open, or what
    /// [`Backend::auto`] resolved to (never `auto` itself).
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Why [`Backend::auto`] picked [`SafeFile::backend`] (the filesystem it saw, or the
    /// environment's override); `None` when another backend was asked for.
    pub fn auto_choice(&self) -> Option<AutoChoice> {
        self.auto
    }

    /// The underlying file.
    pub fn file(&self) -> &File {
        &self.file
    }

    fn info(&self, name: &str) -> Result<TensorInfo, Error> {
        self.metadata
            .entry(name)
            .ok_or_else(|| Error::TensorNotFound(crate::format::error::excerpt(name)))
    }

    /// Fails with [`Error::FileChanged`] if the file no longer has the size it
    /// had when opened (a truncated mapped file would otherwise crash the process).
    pub fn check_unchanged(&self) -> Result<(), Error> {
        let now = self.file.metadata()?.len();
        if now != self.file_len {
            return Err(Error::FileChanged {
                expected_len: self.file_len,
                actual_len: now,
            });
        }
        Ok(())
    }

    /// Absolute file range of `range` within tensor `name`, checked.
    fn file_range(&self, name: &str, range: Range<usize>) -> Result<Range<u64>, Error> {
        let info = self.info(name)?;
        let (begin, end) = info.data_offsets;
        if range.start > range.end || range.end > end - begin {
            return Err(Error::InvalidArgument(format!(
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
    pub fn read_into(&self, name: &str, range: Range<usize>, dst: &mut [u8]) -> Result<(), Error> {
        let span = self.file_range(name, range)?;
        if dst.len() as u64 != span.end - span.start {
            return Err(Error::InvalidArgument(format!(
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
    pub fn tensor_bytes(&self, name: &str) -> Result<Cow<'_, [u8]>, Error> {
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
    pub fn tensor(&self, name: &str) -> Result<TensorView<'_>, Error> {
        let info = self.info(name)?;
        match self.tensor_bytes(name)? {
            Cow::Borrowed(data) => TensorView::checked(info.dtype, info.shape, data),
            Cow::Owned(_) => Err(Error::InvalidArgument(
                "zero-copy views need the mmap backend; use tensor_bytes or read_into with pread"
                    .into(),
            )),
        }
    }

    /// Zero-copy views of every tensor, in data order, with their names. Needs the mmap
    /// backend. The file's size is checked once for all of them, not once per tensor as
    /// [`SafeFile::tensor`] does: a header of a million tensors would pay a million system
    /// calls.
    #[allow(clippy::type_complexity)]
    pub fn views(
        &self,
    ) -> Result<impl ExactSizeIterator<Item = (&str, Result<TensorView<'_>, Error>)> + '_, Error>
    {
        let Some(map) = &self.map else {
            return Err(Error::InvalidArgument(
                "zero-copy views need the mmap backend; use tensor_bytes or read_into with pread"
                    .into(),
            ));
        };
        self.check_unchanged()?;
        let start = self.data_start() as usize;
        Ok(self.metadata.entries().map(move |(name, info)| {
            let (begin, end) = info.data_offsets;
            let data = &map[start + begin..start + end];
            (name, TensorView::checked(info.dtype, info.shape, data))
        }))
    }

    /// An error from a positioned read: a short read means the file shrank.
    fn short_read(&self, e: io::Error) -> Error {
        if e.kind() == io::ErrorKind::UnexpectedEof {
            if let Ok(meta) = self.file.metadata() {
                return Error::FileChanged {
                    expected_len: self.file_len,
                    actual_len: meta.len(),
                };
            }
        }
        Error::IoError(e)
    }
}

/// The whole file as a [`Source`], for the reader: positioned reads, or copies from the map.
/// A read past the size the file had when opened is [`Error::FileChanged`] (or an error
/// saying the range lies past the end); callers check [`SafeFile::check_unchanged`] once
/// before a series of reads rather than before each.
impl Source for SafeFile {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.file_len)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let end = offset
            .checked_add(buf.len() as u64)
            .filter(|&e| e <= self.file_len);
        let Some(end) = end else {
            return Err(Error::InvalidArgument(format!(
                "bytes {offset}..{} lie past the end of a {}-byte file",
                offset.saturating_add(buf.len() as u64),
                self.file_len
            )));
        };
        match &self.map {
            Some(map) => buf.copy_from_slice(&map[offset as usize..end as usize]),
            None => read_exact_at(&self.file, buf, offset).map_err(|e| self.short_read(e))?,
        }
        Ok(())
    }
}
