//! `safetensors inspect URL` against servers that lie, stall or never stop talking: each
//! gets a one-line error (or, where the bytes asked for did arrive, the right answer) in
//! bounded time, and the reader never reads much more than it asked for. The servers are
//! scripted here on 127.0.0.1; `SAFETENSORS_HTTP_TIMEOUT` shortens the CLI's time limits.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::*;

/// A valid file: one U8 tensor "w" of 4 bytes.
fn model() -> Vec<u8> {
    let header = br#"{"w":{"dtype":"U8","shape":[4],"data_offsets":[0,4]}}"#;
    let mut h = header.to_vec();
    while (8 + h.len()) % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(&[1, 2, 3, 4]);
    out
}

/// What a handler learns of one request.
struct Request {
    /// The index of this connection (0 for the first).
    n: usize,
    /// `Range: bytes=A-B`, parsed.
    range: Option<(u64, u64)>,
}

/// How long any handler may keep a connection open: a stalling server gives up after it.
const HANDLER_LIMIT: Duration = Duration::from_secs(20);

/// A scripted HTTP server on 127.0.0.1; stops accepting when dropped.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
    /// Body bytes the handlers managed to write, over all connections.
    written: Arc<AtomicU64>,
}

type Handler = dyn Fn(&Request, &mut Out) -> std::io::Result<()> + Send + Sync;

/// The connection as handlers see it: writes are counted and limited in time.
struct Out {
    stream: TcpStream,
    written: Arc<AtomicU64>,
    started: Instant,
}

impl Out {
    fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        if self.started.elapsed() > HANDLER_LIMIT {
            return Err(std::io::Error::other("handler time limit"));
        }
        self.stream.write_all(bytes)?;
        self.written
            .fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(())
    }

    fn head(&mut self, status: &str, headers: &[String]) -> std::io::Result<()> {
        let mut text = format!("HTTP/1.1 {status}\r\nConnection: close\r\n");
        for h in headers {
            text.push_str(h);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        self.stream.write_all(text.as_bytes())
    }

    /// Sends `bytes`, then junk forever (until the client hangs up or time runs out).
    fn endless(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.send(bytes)?;
        let junk = vec![b'#'; 64 * 1024];
        loop {
            self.send(&junk)?;
        }
    }

    fn stall(&mut self) -> std::io::Result<()> {
        while self.started.elapsed() < HANDLER_LIMIT {
            thread::sleep(Duration::from_millis(50));
            // Stop early once the client is gone.
            let mut probe = [0u8; 1];
            self.stream.set_nonblocking(true)?;
            let gone = matches!(self.stream.peek(&mut probe), Ok(0));
            self.stream.set_nonblocking(false)?;
            if gone {
                break;
            }
        }
        Ok(())
    }
}

impl Server {
    fn start(
        handler: impl Fn(&Request, &mut Out) -> std::io::Result<()> + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(AtomicBool::new(false));
        let written = Arc::new(AtomicU64::new(0));
        let handler: Arc<Handler> = Arc::new(handler);
        {
            let stop = stop.clone();
            let written = written.clone();
            thread::spawn(move || {
                // At most 64 connections: a client in a loop cannot keep the test going.
                for (n, stream) in listener.incoming().take(64).enumerate() {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let Ok(stream) = stream else { continue };
                    let handler = handler.clone();
                    let written = written.clone();
                    thread::spawn(move || serve(n, stream, &*handler, written));
                }
            });
        }
        Server {
            port,
            stop,
            written,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/m.safetensors", self.port)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(("127.0.0.1", self.port)); // wakes the accept loop
    }
}

fn serve(n: usize, stream: TcpStream, handler: &Handler, written: Arc<AtomicU64>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let _ = stream.set_write_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream.try_clone().unwrap()).take(64 * 1024);
    let mut range = None;
    loop {
        let mut line = String::new();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        if let Some(value) = line
            .to_ascii_lowercase()
            .strip_prefix("range: bytes=")
            .map(str::to_owned)
        {
            range = value
                .split_once('-')
                .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)));
        }
    }
    let mut out = Out {
        stream,
        written,
        started: Instant::now(),
    };
    let _ = handler(&Request { n, range }, &mut out);
    let _ = out.stream.shutdown(Shutdown::Both);
}

/// Runs `safetensors inspect URL` with a short HTTP time limit, killing it (and failing the
/// test) if it outlives `limit`. Returns the run and how long it took.
fn inspect_within(url: &str, limit: Duration) -> (Run, Duration) {
    let start = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_safetensors"))
        .args(["inspect", url])
        .env("SAFETENSORS_HTTP_TIMEOUT", "2")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            panic!("inspect {url} still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(20));
    }
    let took = start.elapsed();
    (child.wait_with_output().unwrap().into(), took)
}

const LIMIT: Duration = Duration::from_secs(15);

/// Answers Range requests for `file` honestly.
fn honest(file: &[u8], req: &Request, out: &mut Out) -> std::io::Result<()> {
    let (a, b) = req.range.unwrap_or((0, file.len() as u64 - 1));
    let b = b.min(file.len() as u64 - 1);
    out.head(
        "206 Partial Content",
        &[
            format!("Content-Range: bytes {a}-{b}/{}", file.len()),
            format!("Content-Length: {}", b - a + 1),
        ],
    )?;
    out.send(&file[a as usize..=b as usize])
}

#[test]
fn an_honest_scripted_server_works() {
    let file = model();
    let server = Server::start(move |req, out| honest(&file, req, out));
    let (run, _) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains('w'), "{}", run.stdout);
}

#[test]
fn content_range_that_disagrees_with_the_request() {
    let file = model();
    let server = Server::start(move |req, out| {
        if req.n == 0 {
            return honest(&file, req, out);
        }
        let (a, b) = req.range.unwrap();
        out.head(
            "206 Partial Content",
            &[format!("Content-Range: bytes {a}-{}/{}", b - 3, file.len())],
        )?;
        out.send(&file[a as usize..=(b - 3) as usize])
    });
    let (run, _) = inspect_within(&server.url(), LIMIT);
    assert_one_line_error(&run, "the server sent");
}

#[test]
fn a_file_that_changes_size_between_requests() {
    let file = model();
    let server = Server::start(move |req, out| {
        if req.n == 0 {
            return honest(&file, req, out);
        }
        let (a, b) = req.range.unwrap();
        out.head(
            "206 Partial Content",
            &[format!("Content-Range: bytes {a}-{b}/{}", file.len() * 2)],
        )?;
        out.send(&file[a as usize..=b as usize])
    });
    let (run, _) = inspect_within(&server.url(), LIMIT);
    assert_one_line_error(&run, "changed size");
}

#[test]
fn content_length_larger_than_the_bytes_sent() {
    let file = model();
    let server = Server::start(move |req, out| {
        if req.n == 0 {
            return honest(&file, req, out);
        }
        let (a, b) = req.range.unwrap();
        out.head(
            "206 Partial Content",
            &[
                format!("Content-Range: bytes {a}-{b}/{}", file.len()),
                format!("Content-Length: {}", b - a + 1),
            ],
        )?;
        out.send(&file[a as usize..a as usize + 5]) // then hang up
    });
    let (run, _) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains(&server.url()), "{}", run.stderr);
}

#[test]
fn a_header_length_past_the_file_size() {
    // The 8-byte prefix claims a 1 GB header in a 1000-byte file.
    let server = Server::start(|req, out| {
        let (a, b) = req.range.unwrap();
        out.head(
            "206 Partial Content",
            &[format!("Content-Range: bytes {a}-{b}/1000")],
        )?;
        out.endless(&1_000_000_000u64.to_le_bytes())
    });
    let (run, _) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains("1000000000"), "{}", run.stderr);
}

#[test]
fn endless_bodies_are_cut_off_after_what_was_asked() {
    // Every answer is right for what was asked, followed by junk that never ends.
    let file = model();
    let server = Server::start(move |req, out| {
        let (a, b) = req.range.unwrap();
        out.head(
            "206 Partial Content",
            &[format!("Content-Range: bytes {a}-{b}/{}", file.len())],
        )?;
        out.endless(&file[a as usize..=b as usize])
    });
    let (run, took) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 0, "{}", run.all());
    assert!(run.stdout.contains('w'), "{}", run.stdout);
    assert!(took < Duration::from_secs(10), "{took:?}");
    // The client hung up long before the server ran out of time: bounded reading.
    assert!(server.written.load(Ordering::Relaxed) < 64 << 20);
}

#[test]
fn a_200_answer_far_larger_than_asked() {
    // Range ignored; the whole "file" claims 10 GB and streams forever.
    let file = model();
    let server = Server::start(move |_, out| {
        out.head("200 OK", &["Content-Length: 10000000000".into()])?;
        out.endless(&file)
    });
    let (run, took) = inspect_within(&server.url(), LIMIT);
    // Header and prefix arrive; the data section the server claims does not tile.
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(server.written.load(Ordering::Relaxed) < 64 << 20);
}

#[test]
fn a_redirect_loop() {
    let server = Arc::new(std::sync::OnceLock::<String>::new());
    let url_cell = server.clone();
    let s = Server::start(move |_, out| {
        let url = url_cell.get().cloned().unwrap_or_default();
        out.head(
            "302 Found",
            &[format!("Location: {url}"), "Content-Length: 0".into()],
        )
    });
    server.set(s.url()).unwrap();
    let (run, _) = inspect_within(&s.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(
        run.stderr.to_lowercase().contains("redirect"),
        "{}",
        run.stderr
    );
}

#[test]
fn a_server_that_never_answers() {
    let server = Server::start(|_, out| out.stall());
    let (run, took) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(run.stderr.contains(&server.url()), "{}", run.stderr);
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_server_that_stalls_mid_body() {
    let file = model();
    let server = Server::start(move |req, out| {
        if req.n == 0 {
            return honest(&file, req, out);
        }
        let (a, b) = req.range.unwrap();
        out.head(
            "206 Partial Content",
            &[format!("Content-Range: bytes {a}-{b}/{}", file.len())],
        )?;
        out.send(&file[a as usize..a as usize + 3])?;
        out.stall()
    });
    let (run, took) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn a_server_that_drips_one_byte_at_a_time() {
    // Never silent long enough for a stall timeout: the overall time limit ends it.
    let server = Server::start(|_, out| {
        out.head(
            "206 Partial Content",
            &["Content-Range: bytes 0-7/1000".into()],
        )?;
        out.send(&64u64.to_le_bytes())?;
        loop {
            thread::sleep(Duration::from_millis(100));
            out.send(b" ")?;
        }
    });
    let (run, took) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[test]
fn headers_that_never_end() {
    let server = Server::start(|_, out| {
        out.stream.write_all(b"HTTP/1.1 206 Partial Content\r\n")?;
        let line =
            b"X-Padding: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";
        loop {
            out.send(line)?;
        }
    });
    let (run, took) = inspect_within(&server.url(), LIMIT);
    assert_eq!(run.code, 2, "{}", run.all());
    assert!(took < Duration::from_secs(10), "{took:?}");
    assert!(server.written.load(Ordering::Relaxed) < 64 << 20);
}

#[test]
fn answers_other_than_206_or_200() {
    for (status, needle) in [
        ("500 Internal Server Error", "500"),
        ("404 Not Found", "404"),
        ("416 Range Not Satisfiable", "416"),
        ("204 No Content", "204"),
        ("304 Not Modified", "304"),
        ("301 Moved Permanently", "301"),
    ] {
        let server = Server::start(move |_, out| out.head(status, &["Content-Length: 0".into()]));
        let (run, took) = inspect_within(&server.url(), LIMIT);
        assert_one_line_error(&run, needle);
        assert!(took < Duration::from_secs(10), "{status}: {took:?}");
    }
}

#[test]
fn a_206_without_or_with_a_broken_content_range() {
    for range in [
        None,
        Some("bytes 0-7/*"),
        Some("bytes 0-7"),
        Some("bytes 5-2/10"),
        Some("nonsense"),
    ] {
        let server = Server::start(move |_, out| {
            let headers: Vec<String> = range
                .map(|r| format!("Content-Range: {r}"))
                .into_iter()
                .collect();
            out.head("206 Partial Content", &headers)?;
            out.send(&8u64.to_le_bytes())
        });
        let (run, _) = inspect_within(&server.url(), LIMIT);
        assert_one_line_error(&run, "Content-Range");
    }
}
