//! Reading parts of a file over HTTP(S) with Range requests, so that `inspect URL` fetches
//! the 8-byte length and the header and never the tensor data.
//!
//! The first request asks for `bytes=0-7` and learns the file size from `Content-Range`;
//! later reads ask for exactly the bytes wanted. A server that ignores `Range` (answers
//! `200` with the whole file) still works: only the bytes needed are read off the stream
//! before the connection is dropped.

use std::io::Read;
use std::time::Duration;

use safetensors::SafeTensorError;

use crate::error::Error;
use crate::http_range::{self, Ask, Plan};

/// The most bytes read off one response when fetching a whole small document (index json).
pub const MAX_DOCUMENT_LEN: u64 = 100_000_000;

/// True when `location` is an `http://` or `https://` URL.
pub fn is_url(location: &str) -> bool {
    let lower = location.get(..8).unwrap_or(location).to_ascii_lowercase();
    lower.starts_with("http://") || lower.starts_with("https://")
}

/// How long one request may take in all (connecting, redirects, reading the body) unless
/// `SAFETENSORS_HTTP_TIMEOUT` (seconds) says otherwise.
const DEFAULT_TIMEOUT_S: u64 = 300;
/// How long a connection may stall (no byte arrives) before the read is abandoned.
const MAX_STALL_S: u64 = 30;

/// The per-request time limit: `SAFETENSORS_HTTP_TIMEOUT` seconds, or 300.
fn request_timeout() -> Duration {
    let seconds = std::env::var("SAFETENSORS_HTTP_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(DEFAULT_TIMEOUT_S as f64);
    Duration::from_secs_f64(seconds.min(86_400.0))
}

/// A blocking HTTP client with the timeouts and user agent the CLI uses. Every request is
/// bounded in time: a server that stalls, drips bytes or redirects in a loop gets a clear
/// error, not a hang.
pub fn agent() -> ureq::Agent {
    let total = request_timeout();
    let stall = total.min(Duration::from_secs(MAX_STALL_S));
    ureq::AgentBuilder::new()
        .timeout_connect(stall)
        .timeout_read(stall)
        .timeout_write(stall)
        .timeout(total)
        .user_agent(concat!("safetensors-cli/", env!("CARGO_PKG_VERSION")))
        .redirects(10)
        .build()
}

/// Resolves `name` (a shard file name from an index json) against the URL of the index.
///
/// Names are relative paths; absolute URLs, absolute paths, `..` components, queries and
/// fragments are refused so an index cannot point the reader elsewhere.
pub fn resolve_sibling(index_url: &str, name: &str) -> Result<String, Error> {
    crate::index::check_shard_name(index_url, name)?;
    let without_query = index_url.split(['?', '#']).next().unwrap_or(index_url);
    let path_start = without_query
        .find("://")
        .map(|scheme_end| scheme_end + 3)
        .and_then(|authority| without_query[authority..].find('/').map(|p| authority + p));
    let base = match (path_start, without_query.rfind('/')) {
        (Some(_), Some(slash)) => &without_query[..=slash],
        _ => {
            return Err(Error::invalid(
                index_url,
                "cannot tell the folder of this URL",
            ))
        }
    };
    let mut url = String::from(base);
    for byte in name.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                url.push(byte as char)
            }
            _ => url.push_str(&format!("%{byte:02X}")),
        }
    }
    Ok(url)
}

/// Fetches a whole (small) document such as `model.safetensors.index.json`.
pub fn fetch_document(agent: &ureq::Agent, url: &str) -> Result<Vec<u8>, Error> {
    let response = call(agent.get(url), url)?;
    let mut body = Vec::new();
    response
        .into_reader()
        .take(MAX_DOCUMENT_LEN + 1)
        .read_to_end(&mut body)
        .map_err(|e| Error::Http {
            url: url.to_string(),
            message: format!("cannot read the response: {e}"),
        })?;
    if body.len() as u64 > MAX_DOCUMENT_LEN {
        return Err(Error::Http {
            url: url.to_string(),
            message: format!("the document is larger than {MAX_DOCUMENT_LEN} bytes"),
        });
    }
    Ok(body)
}

/// A remote file read piecewise with Range requests.
pub struct RemoteFile {
    agent: ureq::Agent,
    url: String,
    size: u64,
    prefix: Vec<u8>,
}

impl RemoteFile {
    /// Requests the first 8 bytes, learning the file's size. Files shorter than 8 bytes are
    /// opened too (the prefix is then the whole file) so the caller's format check reports them.
    pub fn open(agent: &ureq::Agent, url: &str) -> Result<Self, Error> {
        let request = agent
            .get(url)
            .set("Range", "bytes=0-7")
            .set("Accept-Encoding", "identity");
        let response = match request.call() {
            Ok(response) => response,
            // Only an empty file cannot satisfy bytes=0-7 (a shorter one gets a shorter 206).
            Err(ureq::Error::Status(416, response)) => {
                let empty = response.header("Content-Range").map(str::trim) == Some("bytes */0");
                if empty {
                    return Ok(RemoteFile {
                        agent: agent.clone(),
                        url: url.to_string(),
                        size: 0,
                        prefix: Vec::new(),
                    });
                }
                return Err(http_error(
                    url,
                    "the server refused the range bytes=0-7 (HTTP 416)",
                ));
            }
            Err(err) => return Err(request_error(url, err)),
        };
        let ask = Ask {
            offset: 0,
            len: 8,
            size: None,
        };
        let plan = judge(url, ask, &response)?;
        let prefix = read_body(url, response, plan)?;
        let size = plan.size;
        Ok(RemoteFile {
            agent: agent.clone(),
            url: url.to_string(),
            size,
            prefix,
        })
    }

    /// Reads `len` bytes at `offset`; bytes 0..8 come from the first request.
    fn read_at(&self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        let end = offset
            .checked_add(len as u64)
            .filter(|&end| end <= self.size)
            .ok_or_else(|| {
                http_error(
                    &self.url,
                    format!(
                        "bytes {offset}..{} lie past the end of the file ({} bytes)",
                        offset.saturating_add(len as u64),
                        self.size
                    ),
                )
            })?;
        if end <= self.prefix.len() as u64 {
            return Ok(self.prefix[offset as usize..end as usize].to_vec());
        }
        if len == 0 {
            return Ok(Vec::new());
        }
        self.fetch(offset, len)
    }

    fn fetch(&self, offset: u64, len: usize) -> Result<Vec<u8>, Error> {
        let last = offset + len as u64 - 1;
        let request = self
            .agent
            .get(&self.url)
            .set("Range", &format!("bytes={offset}-{last}"))
            .set("Accept-Encoding", "identity");
        let response = request
            .call()
            .map_err(|err| request_error(&self.url, err))?;
        let ask = Ask {
            offset,
            len: len as u64,
            size: Some(self.size),
        };
        let plan = judge(&self.url, ask, &response)?;
        read_body(&self.url, response, plan)
    }
}

/// The core reads a remote file like any other; HTTP errors travel through it wrapped in its
/// I/O error and come out unchanged (`Error::from_core`).
impl safetensors::source::Source for RemoteFile {
    fn size(&self) -> Result<u64, SafeTensorError> {
        Ok(self.size)
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), SafeTensorError> {
        let bytes = RemoteFile::read_at(self, offset, buf.len())
            .map_err(|e| SafeTensorError::IoError(std::io::Error::other(e)))?;
        buf.copy_from_slice(&bytes);
        Ok(())
    }
}

/// Checks an answer against what was asked (see [`http_range::plan`]).
fn judge(url: &str, ask: Ask, response: &ureq::Response) -> Result<Plan, Error> {
    http_range::plan(
        ask,
        response.status(),
        response.header("Content-Range"),
        response.header("Content-Length"),
    )
    .map_err(|message| http_error(url, message))
}

/// Reads what `plan` says off the body, then drops the connection.
fn read_body(url: &str, response: ureq::Response, plan: Plan) -> Result<Vec<u8>, Error> {
    http_range::read_planned(response.into_reader(), plan).map_err(|m| http_error(url, m))
}

fn call(request: ureq::Request, url: &str) -> Result<ureq::Response, Error> {
    request.call().map_err(|err| request_error(url, err))
}

fn request_error(url: &str, err: ureq::Error) -> Error {
    match err {
        ureq::Error::Status(status, response) => {
            http_error(url, format!("HTTP {status} {}", response.status_text()))
        }
        ureq::Error::Transport(transport) => {
            // ureq starts its message with the URL, which `Error::Http` already shows.
            let text = transport.to_string();
            let text = match transport.url() {
                Some(u) => text.strip_prefix(&format!("{u}: ")).unwrap_or(&text),
                None => &text,
            };
            http_error(url, text)
        }
    }
}

fn http_error(url: &str, message: impl Into<String>) -> Error {
    Error::Http {
        url: url.to_string(),
        message: message.into(),
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
    fn resolves_shards_next_to_the_index() {
        let index = "https://host/org/model/resolve/main/model.safetensors.index.json";
        assert_eq!(
            resolve_sibling(index, "model-00001-of-00002.safetensors").unwrap(),
            "https://host/org/model/resolve/main/model-00001-of-00002.safetensors"
        );
        assert_eq!(
            resolve_sibling("http://h/a/index.json?download=1", "sub dir/x.safetensors").unwrap(),
            "http://h/a/sub%20dir/x.safetensors"
        );
        for bad in [
            "../x.safetensors",
            "/etc/passwd",
            "http://evil/x",
            "a/../../b",
            "x?y",
            "",
        ] {
            assert!(resolve_sibling(index, bad).is_err(), "{bad}");
        }
    }
}
