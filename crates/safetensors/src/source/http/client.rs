//! The HTTP client: one pool of keep-alive connections (a `ureq` agent), the headers sent on
//! every request, and the retry policy. Each request is bounded in time (a server that
//! stalls, drips bytes or redirects in a loop gets a clear error, not a hang), and each
//! answer is judged and read within bounds by `range.rs`.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::Duration;

use super::range::{self, Accepted, Ask};
use super::{HttpError, MAX_DOCUMENT_LEN};
use crate::format::error::Error;

/// How long one request may take in all (connecting, redirects, reading the body) unless
/// `SAFETENSORS_HTTP_TIMEOUT` (seconds) says otherwise.
const DEFAULT_TIMEOUT_S: u64 = 300;
/// How long a connection may stall (no byte arrives) before the read is abandoned.
const MAX_STALL_S: u64 = 30;
/// The most redirects followed for one request.
const MAX_REDIRECTS: u32 = 10;

/// How a [`Client`] talks to servers.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOptions {
    /// Extra headers sent on every request (e.g. `("Authorization", "Bearer ...")`).
    pub headers: Vec<(String, String)>,
    /// How many times a request is tried again after a 5xx answer or a dropped connection
    /// (never after a 4xx answer, a timeout or an answer that disagrees with the request).
    pub retries: u32,
    /// The wait before the first retry; each later one waits twice as long.
    pub backoff: Duration,
    /// The time limit of one request; `None`: `SAFETENSORS_HTTP_TIMEOUT` seconds, or 300.
    pub timeout: Option<Duration>,
    /// The most idle keep-alive connections kept per host (parallel reads use one each).
    pub connections: usize,
    /// The `User-Agent` header.
    pub user_agent: String,
}

impl Default for HttpOptions {
    /// No extra headers, 3 retries from 250 ms, the default time limit, 16 connections.
    fn default() -> Self {
        HttpOptions {
            headers: Vec::new(),
            retries: 3,
            backoff: Duration::from_millis(250),
            timeout: None,
            connections: 16,
            user_agent: concat!("safetensors-rs/", env!("CARGO_PKG_VERSION")).to_string(),
        }
    }
}

/// The per-request time limit: `SAFETENSORS_HTTP_TIMEOUT` seconds, or 300.
fn timeout_from_env() -> Duration {
    let seconds = std::env::var("SAFETENSORS_HTTP_TIMEOUT")
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(DEFAULT_TIMEOUT_S as f64);
    Duration::from_secs_f64(seconds.min(86_400.0))
}

/// A blocking HTTP client; cheap to clone (clones share the connection pool). `Send + Sync`.
#[derive(Clone)]
pub struct Client {
    agent: ureq::Agent,
    headers: Arc<[(String, String)]>,
    retries: u32,
    backoff: Duration,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Header values may be secrets (a bearer token): show the names only.
        let names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("Client")
            .field("headers", &names)
            .field("retries", &self.retries)
            .finish()
    }
}

/// A failed attempt, and whether trying again may help.
struct Failure {
    error: HttpError,
    retry: bool,
}

impl Failure {
    fn fatal(error: HttpError) -> Self {
        Failure {
            error,
            retry: false,
        }
    }
}

impl Client {
    /// A client with `options`. Refuses a header name that is not an HTTP token or a value
    /// holding a line break (which would let a value inject other headers).
    pub fn new(options: &HttpOptions) -> Result<Client, Error> {
        for (name, value) in &options.headers {
            let token = !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
            if !token {
                return Err(Error::InvalidArgument(format!(
                    "HTTP header name {name:?} is not valid (letters, digits and !#$%&'*+-.^_`|~ only)"
                )));
            }
            if value.bytes().any(|b| b == b'\r' || b == b'\n' || b == 0) {
                return Err(Error::InvalidArgument(format!(
                    "the value of HTTP header {name} holds a line break or NUL"
                )));
            }
        }
        let total = options.timeout.unwrap_or_else(timeout_from_env);
        let stall = total.min(Duration::from_secs(MAX_STALL_S));
        let agent = ureq::AgentBuilder::new()
            .timeout_connect(stall)
            .timeout_read(stall)
            .timeout_write(stall)
            .timeout(total)
            .user_agent(&options.user_agent)
            .redirects(MAX_REDIRECTS)
            // Keep `Authorization` on a redirect to the same host only (a CDN gets none).
            .redirect_auth_headers(ureq::RedirectAuthHeaders::SameHost)
            .max_idle_connections_per_host(options.connections.max(1))
            .max_idle_connections(options.connections.max(1) * 4)
            .build();
        Ok(Client {
            agent,
            headers: options.headers.clone().into(),
            retries: options.retries,
            backoff: options.backoff,
        })
    }

    /// A GET request for `url` with the client's headers.
    fn get(&self, url: &str) -> ureq::Request {
        let mut request = self.agent.get(url);
        for (name, value) in self.headers.iter() {
            request = request.set(name, value);
        }
        request
    }

    /// Runs `attempt` until it succeeds, fails for good, or the retries are spent; waits
    /// `backoff`, then twice that, ... between tries.
    fn retrying<T>(&self, mut attempt: impl FnMut() -> Result<T, Failure>) -> Result<T, HttpError> {
        let mut tries = 0u32;
        loop {
            match attempt() {
                Ok(value) => return Ok(value),
                Err(failure) if failure.retry && tries < self.retries => {
                    std::thread::sleep(self.backoff.saturating_mul(1 << tries.min(16)));
                    tries += 1;
                }
                Err(Failure { mut error, retry }) => {
                    if retry && tries > 0 {
                        error.message = format!("{} (after {tries} retries)", error.message);
                    }
                    return Err(error);
                }
            }
        }
    }

    /// Fetches a whole (small) document such as `model.safetensors.index.json`, at most
    /// [`MAX_DOCUMENT_LEN`] bytes.
    pub fn fetch_document(&self, url: &str) -> Result<Vec<u8>, HttpError> {
        self.retrying(|| {
            let response = self.get(url).call().map_err(|e| request_failure(url, e))?;
            let mut body = Vec::new();
            let mut watched = Watched::new(response.into_reader().take(MAX_DOCUMENT_LEN + 1));
            if let Err(e) = watched.read_to_end(&mut body) {
                return Err(Failure {
                    retry: retry_io(&e),
                    error: HttpError::new(url, format!("cannot read the response: {e}")),
                });
            }
            if body.len() as u64 > MAX_DOCUMENT_LEN {
                return Err(Failure::fatal(HttpError::new(
                    url,
                    format!("the document is larger than {MAX_DOCUMENT_LEN} bytes"),
                )));
            }
            Ok(body)
        })
    }

    /// Reads what `ask` says from `url` with one Range request (tried again as the policy
    /// allows): up to `ask.len` bytes of a file whose size is not known yet, and the file's
    /// size. An empty file answers with size 0.
    pub(crate) fn first_range(&self, url: &str, ask: Ask) -> Result<(Vec<u8>, u64), HttpError> {
        let mut out = Vec::new();
        let size = self.range(url, ask, |body, accepted| {
            out = range::read_accepted(body, accepted)?;
            Ok(())
        })?;
        Ok((out, size))
    }

    /// Reads exactly `dst.len()` bytes at `ask.offset` of a file of known size `ask.size`
    /// from `url`, straight into `dst`.
    pub(crate) fn range_into(&self, url: &str, ask: Ask, dst: &mut [u8]) -> Result<(), HttpError> {
        self.range(url, ask, |body, accepted| {
            range::read_accepted_into(body, accepted, dst)
        })
        .map(|_| ())
    }

    /// One Range request for `ask` (tried again as the policy allows), its answer judged,
    /// its body read by `read`; returns the file's size.
    fn range(
        &self,
        url: &str,
        ask: Ask,
        mut read: impl FnMut(&mut dyn Read, Accepted) -> Result<(), String>,
    ) -> Result<u64, HttpError> {
        let last = ask.offset + ask.len.max(1) - 1;
        let range = format!("bytes={}-{last}", ask.offset);
        self.retrying(|| {
            let request = self
                .get(url)
                .set("Range", &range)
                .set("Accept-Encoding", "identity");
            let response = match request.call() {
                Ok(response) => response,
                // Only an empty file cannot satisfy bytes=0-N (a shorter one gets a shorter 206).
                Err(ureq::Error::Status(416, response)) if ask.size.is_none() => {
                    let empty =
                        response.header("Content-Range").map(str::trim) == Some("bytes */0");
                    if empty {
                        return Ok(0);
                    }
                    let mut error = HttpError::new(
                        url,
                        format!("the server refused the range {range} (HTTP 416)"),
                    );
                    error.status = Some(416);
                    return Err(Failure::fatal(error));
                }
                Err(e) => return Err(request_failure(url, e)),
            };
            let accepted = judge(url, ask, &response).map_err(Failure::fatal)?;
            let full = response.status() == 206;
            let mut body = Watched::new(response.into_reader());
            match read(&mut body, accepted) {
                Ok(()) => {
                    if full {
                        // The body is exactly what was read: one more read sees its end and
                        // gives the connection back to the pool for the next request.
                        let _ = body.read(&mut [0u8; 1]);
                    }
                    Ok(accepted.size)
                }
                // A connection dropped mid-body (reset, or closed early) may work next time;
                // a stall that ran out the time limit would only stall again.
                Err(message) => Err(Failure {
                    retry: body.error.as_ref().map_or(true, retry_io),
                    error: HttpError::new(url, message),
                }),
            }
        })
    }
}

/// A body reader that remembers its last error, so that a failed read can be told apart
/// from a body that ended early (a dropped connection) without parsing messages.
struct Watched<R> {
    inner: R,
    error: Option<io::Error>,
}

impl<R> Watched<R> {
    fn new(inner: R) -> Self {
        Watched { inner, error: None }
    }
}

impl<R: Read> Read for Watched<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.inner.read(buf).inspect_err(|e| {
            self.error = Some(io::Error::new(e.kind(), e.to_string()));
        })
    }
}

/// Whether an I/O error while reading may go away on a new connection: yes for a reset or
/// closed connection, no for a timeout (it would only run out the time again).
fn retry_io(e: &io::Error) -> bool {
    !matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock | io::ErrorKind::OutOfMemory
    )
}

/// Checks an answer against what was asked (see `range::accept`).
fn judge(url: &str, ask: Ask, response: &ureq::Response) -> Result<Accepted, HttpError> {
    range::accept(
        ask,
        response.status(),
        response.header("Content-Range"),
        response.header("Content-Length"),
    )
    .map_err(|message| HttpError::new(url, message))
}

/// A request that failed: a 5xx answer or a dropped connection may be tried again.
fn request_failure(url: &str, err: ureq::Error) -> Failure {
    match err {
        ureq::Error::Status(status, response) => {
            let mut error =
                HttpError::new(url, format!("HTTP {status} {}", response.status_text()));
            error.status = Some(status);
            Failure {
                error,
                retry: status >= 500,
            }
        }
        ureq::Error::Transport(transport) => {
            let retry = match transport.kind() {
                ureq::ErrorKind::ConnectionFailed => true,
                ureq::ErrorKind::Io => std::error::Error::source(&transport)
                    .and_then(|s| s.downcast_ref::<io::Error>())
                    .map_or(true, retry_io),
                _ => false,
            };
            // ureq starts its message with the URL, which `HttpError` already shows.
            let text = transport.to_string();
            let text = match transport.url() {
                Some(u) => text.strip_prefix(&format!("{u}: ")).unwrap_or(&text),
                None => &text,
            };
            Failure {
                error: HttpError::new(url, text),
                retry,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The client against a scripted server on 127.0.0.1: each connection gets the next
    //! canned answer, and every request line and header block is kept for the test to check.

    use super::*;
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::Mutex;
    use std::thread;

    /// A server answering `answers` in order, one connection each (then it stops); returns
    /// its base URL and the requests it received.
    fn serve(answers: Vec<Vec<u8>>) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        thread::spawn(move || {
            for answer in answers {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut request = String::new();
                while reader.read_line(&mut request).is_ok_and(|n| n > 2) {}
                log.lock().unwrap().push(request);
                let mut stream = stream;
                let _ = stream.write_all(&answer);
            }
        });
        (url, seen)
    }

    fn answer(status: &str, headers: &[&str], body: &[u8]) -> Vec<u8> {
        let mut out = format!(
            "HTTP/1.1 {status}\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for h in headers {
            out += h;
            out += "\r\n";
        }
        out += "\r\n";
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }

    fn client(retries: u32) -> Client {
        Client::new(&HttpOptions {
            headers: vec![("X-Token".into(), "secret".into())],
            retries,
            backoff: Duration::from_millis(1),
            timeout: Some(Duration::from_secs(2)),
            ..HttpOptions::default()
        })
        .unwrap()
    }

    #[test]
    fn header_names_and_values_that_could_inject_headers_are_refused() {
        for (name, value) in [
            ("", "v"),
            ("X Bad", "v"),
            ("X:Bad", "v"),
            ("X-Ok", "a\r\nEvil: 1"),
            ("X-Ok", "a\0"),
        ] {
            let options = HttpOptions {
                headers: vec![(name.into(), value.into())],
                ..HttpOptions::default()
            };
            let e = Client::new(&options).unwrap_err();
            assert!(matches!(e, Error::InvalidArgument(_)), "{name:?}: {e:?}");
        }
    }

    #[test]
    fn a_document_is_fetched_with_the_clients_headers() {
        let (url, seen) = serve(vec![answer("200 OK", &[], b"{\"weight_map\":{}}")]);
        let body = client(0)
            .fetch_document(&format!("{url}/model.safetensors.index.json"))
            .unwrap();
        assert_eq!(body, b"{\"weight_map\":{}}");
        let request = seen.lock().unwrap()[0].to_ascii_lowercase();
        assert!(
            request.starts_with("get /model.safetensors.index.json http/1.1"),
            "{request}"
        );
        assert!(request.contains("x-token: secret"), "{request}");
    }

    #[test]
    fn a_5xx_answer_is_tried_again_and_a_4xx_answer_is_not() {
        let unavailable = answer("503 Service Unavailable", &[], b"busy");
        let (url, seen) = serve(vec![unavailable.clone(), answer("200 OK", &[], b"ok")]);
        assert_eq!(client(2).fetch_document(&url).unwrap(), b"ok");
        assert_eq!(seen.lock().unwrap().len(), 2);

        let (url, seen) = serve(vec![unavailable.clone(), unavailable]);
        let e = client(1).fetch_document(&url).unwrap_err();
        assert_eq!(e.status, Some(503), "{e:?}");
        assert!(e.message.contains("after 1 retries"), "{}", e.message);

        let (url, seen_404) = serve(vec![
            answer("404 Not Found", &[], b""),
            answer("200 OK", &[], b""),
        ]);
        let e = client(3).fetch_document(&url).unwrap_err();
        assert_eq!((e.status, e.kind()), (Some(404), io::ErrorKind::NotFound));
        assert_eq!(seen_404.lock().unwrap().len(), 1, "a 404 is final");
        drop(seen);
    }

    #[test]
    fn a_range_lands_in_the_callers_buffer_and_an_empty_file_has_size_zero() {
        let (url, seen) = serve(vec![answer(
            "206 Partial Content",
            &["Content-Range: bytes 4-7/10"],
            b"4567",
        )]);
        let mut dst = [0u8; 4];
        let ask = Ask {
            offset: 4,
            len: 4,
            size: Some(10),
        };
        client(0).range_into(&url, ask, &mut dst).unwrap();
        assert_eq!(&dst, b"4567");
        assert!(seen.lock().unwrap()[0]
            .to_ascii_lowercase()
            .contains("range: bytes=4-7"));

        let (url, _) = serve(vec![answer(
            "416 Range Not Satisfiable",
            &["Content-Range: bytes */0"],
            b"",
        )]);
        let ask = Ask {
            offset: 0,
            len: 8,
            size: None,
        };
        assert_eq!(client(0).first_range(&url, ask).unwrap(), (Vec::new(), 0));
    }

    #[test]
    fn an_answer_that_disagrees_with_the_request_is_refused_not_retried() {
        // Asked for bytes 4-7, told about bytes 0-3.
        let wrong = answer(
            "206 Partial Content",
            &["Content-Range: bytes 0-3/10"],
            b"0123",
        );
        let (url, seen) = serve(vec![wrong.clone(), wrong]);
        let mut dst = [0u8; 4];
        let ask = Ask {
            offset: 4,
            len: 4,
            size: Some(10),
        };
        let e = client(3).range_into(&url, ask, &mut dst).unwrap_err();
        assert!(e.message.contains("sent 0-3"), "{}", e.message);
        assert_eq!(seen.lock().unwrap().len(), 1);
    }

    #[test]
    fn a_server_that_stalls_is_an_error_within_the_time_limit() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        // Accepts, then says nothing until the test is over.
        let held = thread::spawn(move || {
            listener.accept().map(|(s, _)| {
                thread::sleep(Duration::from_secs(5));
                drop(s)
            })
        });
        let started = std::time::Instant::now();
        let e = client(0).fetch_document(&url).unwrap_err();
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert!(!e.message.is_empty());
        drop(held);
    }
}
