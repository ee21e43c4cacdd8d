//! Where a reader gets its bytes, and the one header reader over it.
//!
//! A [`Source`] is anything that knows its size and can copy bytes from a position: a
//! buffer in memory, a file on disk (positioned reads), and outside this crate a Python
//! file object or an HTTP server answering Range requests. [`read_header`] reads the
//! 8-byte length and the JSON header of any source with the same bounds checks, so every
//! entry point (buffer, file, file object, URL) refuses the same bad file with the same
//! error. Sources are `&self` so that one can serve many readers at once.

#[cfg(feature = "std")]
pub mod any;
#[cfg(feature = "std")]
pub mod cache;
#[cfg(feature = "std")]
pub mod file;
#[cfg(feature = "std")]
pub mod filesystem;
#[cfg(feature = "http")]
pub mod http;
#[cfg(feature = "std")]
mod mmap;

use alloc::format;

use crate::format::error::Error;
use crate::format::file_header::read_file_header;
pub use crate::format::file_header::FileHeader;

/// Bytes readable by position: the one thing a reader needs from where a file lives.
pub trait Source {
    /// The total size in bytes.
    fn size(&self) -> Result<u64, Error>;

    /// Fills `buf` with the bytes at `offset..offset + buf.len()`. A source that ends
    /// before filling `buf` is an error, never a short read.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error>;

    /// The whole source's bytes, when it holds them in memory (a buffer): readers then view
    /// or copy them directly instead of reading. `None` by default.
    fn as_bytes(&self) -> Option<&[u8]> {
        None
    }
}

/// A whole file held in memory.
impl Source for [u8] {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.len() as u64)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        let bytes = usize::try_from(offset)
            .ok()
            .and_then(|start| Some(start..start.checked_add(buf.len())?))
            .and_then(|range| self.get(range))
            .ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "bytes {offset}..{} lie past the end of a {}-byte buffer",
                    offset.saturating_add(buf.len() as u64),
                    self.len()
                ))
            })?;
        buf.copy_from_slice(bytes);
        Ok(())
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A whole file held in memory, owned.
#[cfg(feature = "std")]
impl Source for Vec<u8> {
    fn size(&self) -> Result<u64, Error> {
        self.as_slice().size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        self.as_slice().read_at(offset, buf)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        Some(self)
    }
}

/// A file on disk, read with positioned reads (`pread`): no shared cursor, so one open
/// file serves many threads.
#[cfg(feature = "std")]
impl Source for std::fs::File {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.metadata()?.len())
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        Ok(pread::read_exact_at(self, buf, offset)?)
    }
}

impl<S: Source + ?Sized> Source for &S {
    fn size(&self) -> Result<u64, Error> {
        (**self).size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        (**self).read_at(offset, buf)
    }

    fn as_bytes(&self) -> Option<&[u8]> {
        (**self).as_bytes()
    }
}

/// Reads and validates the header of `source`: the 8-byte length (at most
/// [`MAX_HEADER_SIZE`](crate::format::header::MAX_HEADER_SIZE)), the header bytes, which must
/// lie inside the file, then every rule of the format against the real size of the data
/// section (see [`read_file_header`]).
///
/// Memory used is bounded by the real file size and the header limit, never by the length
/// the file claims.
///
/// ```
/// use safetensors::source::read_header;
/// use safetensors::Error;
///
/// let file: &[u8] = b"\x02\0\0\0\0\0\0\0{}";
/// let header = read_header(file).unwrap();
/// assert_eq!((header.file_len, header.header_len, header.metadata.len()), (10, 2, 0));
///
/// let short: &[u8] = b"\x02\0\0\0";
/// assert!(matches!(read_header(short), Err(Error::HeaderTooSmall { len: 4 })));
/// ```
pub fn read_header<S: Source + ?Sized>(source: &S) -> Result<FileHeader, Error> {
    read_file_header(source.size()?, |offset, buf| source.read_at(offset, buf))
}

/// Positioned reads of a file, on every platform.
#[cfg(feature = "std")]
pub(crate) mod pread {
    use std::fs::File;
    use std::io;

    /// Reads up to `buf.len()` bytes at `offset`, stopping early only at end of file.
    pub(crate) fn read_at_most(file: &File, buf: &mut [u8], offset: u64) -> io::Result<usize> {
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

    /// Fills `buf` from `offset`; a file that ends first is `UnexpectedEof`.
    pub(crate) fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> io::Result<()> {
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
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_buffer_refuses_reads_past_its_end() {
        let bytes: &[u8] = b"0123";
        let mut buf = [0u8; 2];
        bytes.read_at(2, &mut buf).unwrap();
        assert_eq!(&buf, b"23");
        let err = bytes.read_at(3, &mut buf).unwrap_err().to_string();
        assert!(
            err.contains("bytes 3..5 lie past the end of a 4-byte buffer"),
            "{err}"
        );
        assert!(bytes.read_at(u64::MAX, &mut buf).is_err());
    }

    #[test]
    fn header_length_past_the_end_is_refused_before_reading_it() {
        let bytes: &[u8] = b"\x10\0\0\0\0\0\0\0{}";
        assert!(matches!(
            read_header(bytes),
            Err(Error::InvalidHeaderLength {
                header_len: 16,
                file_len: 10
            })
        ));
    }
}
