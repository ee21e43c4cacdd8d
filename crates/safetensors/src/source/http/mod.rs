//! Safetensors files at `http://` and `https://` URLs, read with Range requests (cargo
//! feature `http`).
//!
//! This is the one HTTP client of the project: the CLI (`inspect URL`) and the Python
//! package (`safe_open(url)`, `load_file(url)`, `inspect(url)`) both read URLs through it,
//! the same way they read local files, because a URL differs from a file only in its
//! [`Source`](crate::source::Source):
//!
//! - [`Client`]: a pool of keep-alive connections with time limits, bounded redirects,
//!   bounded retries with backoff (on 5xx answers and dropped connections, never on 4xx),
//!   and extra headers sent on every request (`Authorization: Bearer ...`).
//! - [`RemoteFile`]: a file read piecewise, one Range request per read; a
//!   [`Source`](crate::source::Source), so the core's header reader and the parallel reader
//!   work on it unchanged.
//! - [`UrlFile`]: a remote safetensors file whose header has been read and validated
//!   (two Range requests), what a checkpoint holds per remote shard.
//!
//! Nothing a server says can make the reader allocate or read more than it asked for: every
//! answer is judged against the request and every body read within bounds (`range.rs`, which
//! the fuzz target `http_response` compiles on its own).
//!
//! Errors are [`HttpError`]s (naming the URL) carried in [`Error::IoError`], with
//! the I/O error kind of the cause: `NotFound` for a 404, `PermissionDenied` for 401/403.

mod client;
mod file;
mod range;

pub use client::{Client, HttpOptions};
pub use file::{RemoteFile, UrlFile};

use std::fmt;
use std::io;

use crate::format::error::Error;

/// The most bytes read off one response when fetching a whole small document (index JSON).
pub const MAX_DOCUMENT_LEN: u64 = 100_000_000;

/// True when `location` is an `http://` or `https://` URL (any letter case).
///
/// ```
/// use safetensors::source::http::is_url;
/// assert!(is_url("HTTPS://example.org/model.safetensors"));
/// assert!(!is_url("model.safetensors"));
/// ```
pub fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// A failed request, or an answer that cannot be used, naming the URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpError {
    /// The URL requested.
    pub url: String,
    /// What went wrong, e.g. `HTTP 404 Not Found`.
    pub message: String,
    /// The HTTP status of the final answer, when the failure is one.
    pub status: Option<u16>,
}

impl HttpError {
    pub(crate) fn new(url: &str, message: impl Into<String>) -> Self {
        HttpError {
            url: url.to_string(),
            message: message.into(),
            status: None,
        }
    }

    /// The I/O error kind a caller can act on: a 404 or 410 is `NotFound`, a 401 or 403
    /// `PermissionDenied`, anything else `Other`.
    pub fn kind(&self) -> io::ErrorKind {
        match self.status {
            Some(404 | 410) => io::ErrorKind::NotFound,
            Some(401 | 403) => io::ErrorKind::PermissionDenied,
            _ => io::ErrorKind::Other,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.url, self.message)
    }
}

impl std::error::Error for HttpError {}

impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        Error::IoError(io::Error::new(e.kind(), e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_urls() {
        assert!(is_url("http://127.0.0.1:8080/model.safetensors"));
        assert!(is_url("HTTPS://example.org/x"));
        assert!(!is_url("model.safetensors"));
        assert!(!is_url("ftp://example.org/x"));
        assert!(!is_url("http"));
    }

    #[test]
    fn status_errors_keep_their_kind() {
        let mut e = HttpError::new("http://h/x", "HTTP 404 Not Found");
        e.status = Some(404);
        let core: Error = e.into();
        match core {
            Error::IoError(io) => {
                assert_eq!(io.kind(), io::ErrorKind::NotFound);
                assert_eq!(io.to_string(), "http://h/x: HTTP 404 Not Found");
            }
            other => panic!("{other:?}"),
        }
    }
}
