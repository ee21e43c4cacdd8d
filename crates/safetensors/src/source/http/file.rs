//! A file at a URL, read piecewise with Range requests.
//!
//! Opening asks for `bytes=0-7` and learns the file's size from `Content-Range`; later reads
//! ask for exactly the bytes wanted. A server that ignores `Range` (answers `200` with the
//! whole file) still works: only the bytes needed are read off the stream before the
//! connection is dropped.

use std::sync::Arc;

use super::range::Ask;
use super::{Client, HttpError};
use crate::format::error::Error;
use crate::format::header::Metadata;
use crate::source::{read_header, FileHeader, Source};

/// A remote file read piecewise with Range requests: a [`Source`]. `Send + Sync`; reads
/// from several threads go out on several connections of the client's pool.
#[derive(Debug)]
pub struct RemoteFile {
    client: Client,
    url: String,
    size: u64,
    prefix: Vec<u8>,
}

impl RemoteFile {
    /// Requests the first 8 bytes, learning the file's size. A file shorter than 8 bytes is
    /// opened too (the prefix is then the whole file) so that the format check reports it.
    pub fn open(client: &Client, url: &str) -> Result<Self, HttpError> {
        let ask = Ask {
            offset: 0,
            len: 8,
            size: None,
        };
        let (prefix, size) = client.first_range(url, ask)?;
        Ok(RemoteFile {
            client: client.clone(),
            url: url.to_string(),
            size,
            prefix,
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The file's size in bytes, as the server gave it.
    pub fn len(&self) -> u64 {
        self.size
    }

    /// True for an empty file.
    pub fn is_empty(&self) -> bool {
        self.size == 0
    }

    /// Fills `buf` with the bytes at `offset`; bytes 0..8 come from the first request, any
    /// other read is one Range request.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), HttpError> {
        let len = buf.len() as u64;
        let end = offset
            .checked_add(len)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| {
                HttpError::new(
                    &self.url,
                    format!(
                        "bytes {offset}..{} lie past the end of the file ({} bytes)",
                        offset.saturating_add(len),
                        self.size
                    ),
                )
            })?;
        if end <= self.prefix.len() as u64 {
            buf.copy_from_slice(&self.prefix[offset as usize..end as usize]);
            return Ok(());
        }
        if buf.is_empty() {
            return Ok(());
        }
        let ask = Ask {
            offset,
            len,
            size: Some(self.size),
        };
        self.client.range_into(&self.url, ask, buf)
    }
}

/// The core reads a remote file like any other; HTTP errors travel through it as
/// [`Error::IoError`] holding the [`HttpError`].
impl Source for RemoteFile {
    fn size(&self) -> Result<u64, Error> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        Ok(RemoteFile::read_at(self, offset, buf)?)
    }
}

/// An open, validated safetensors file at a URL: the remote counterpart of
/// [`crate::source::file::SafeFile`]. Opening costs two Range requests (the length, then the header).
#[derive(Debug, Clone)]
pub struct UrlFile {
    file: Arc<RemoteFile>,
    header: Arc<FileHeader>,
}

impl UrlFile {
    /// Opens `url` and validates its header.
    pub fn open(client: &Client, url: &str) -> Result<Self, Error> {
        let file = RemoteFile::open(client, url)?;
        let header = read_header(&file)?;
        Ok(UrlFile {
            file: Arc::new(file),
            header: Arc::new(header),
        })
    }

    /// The URL.
    pub fn url(&self) -> &str {
        self.file.url()
    }

    /// The validated header.
    pub fn metadata(&self) -> &Metadata {
        &self.header.metadata
    }

    /// The header as read (file size, header length, metadata).
    pub fn header(&self) -> &FileHeader {
        &self.header
    }

    /// The header, moved out when nothing else shares it (copied otherwise).
    pub fn into_header(self) -> FileHeader {
        Arc::try_unwrap(self.header).unwrap_or_else(|shared| (*shared).clone())
    }

    /// Absolute offset of the data section (`8 + N`).
    pub fn data_start(&self) -> u64 {
        self.header.data_start()
    }

    /// The file's bytes, for the parallel reader.
    pub fn source(&self) -> &RemoteFile {
        &self.file
    }
}

/// Most files opened at once by [`UrlFile::open_many`]: a model with 72 shards takes a few
/// round trips, not 144.
const PARALLEL_OPENS: usize = 8;

impl UrlFile {
    /// Opens every URL (two Range requests each), several at a time; results in the order
    /// of `urls`.
    pub fn open_many(client: &Client, urls: &[String]) -> Vec<Result<UrlFile, Error>> {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let next = AtomicUsize::new(0);
        let mut results: Vec<(usize, Result<UrlFile, Error>)> = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..PARALLEL_OPENS.min(urls.len()))
                .map(|_| {
                    scope.spawn(|| {
                        let mut done = Vec::new();
                        loop {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(url) = urls.get(i) else { break done };
                            done.push((i, UrlFile::open(client, url)));
                        }
                    })
                })
                .collect();
            workers
                .into_iter()
                .flat_map(|w| w.join().expect("a header fetch panicked"))
                .collect()
        });
        results.sort_by_key(|(i, _)| *i);
        results.into_iter().map(|(_, file)| file).collect()
    }
}
