//! `safetensors inspect URL` against a real HTTP server: nginx on 127.0.0.1, started by the
//! test with its own config in a temporary folder. The access log proves that only the
//! length prefix and the header were transferred, with Range requests, never tensor data.
//!
//! The nginx tests are `#[ignore]`d (reported as ignored by a plain `cargo test`); `make
//! test-rust` runs them, and there a missing nginx fails them.

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use safetensors::Dtype;
use serde_json::Value;

/// A running nginx; killed (and reaped) when dropped, also when a test panics.
struct Nginx {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Nginx {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// The access log: one entry per request.
    fn log(&self) -> Vec<LogEntry> {
        let text = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        text.lines().map(LogEntry::parse).collect()
    }
}

/// One access-log line: `METHOD URI STATUS "RANGE" BYTES_SENT BODY_BYTES_SENT`.
#[derive(Debug)]
struct LogEntry {
    method: String,
    uri: String,
    status: u16,
    range: String,
    bytes_sent: u64,
    body_bytes_sent: u64,
}

impl LogEntry {
    fn parse(line: &str) -> Self {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 6, "log line {line:?}");
        LogEntry {
            method: fields[0].into(),
            uri: fields[1].into(),
            status: fields[2].parse().unwrap(),
            range: fields[3].into(),
            bytes_sent: fields[4].parse().unwrap(),
            body_bytes_sent: fields[5].parse().unwrap(),
        }
    }
}

fn find_nginx() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).map(|d| d.join("nginx")).collect())
        .unwrap_or_default();
    candidates.extend(
        [
            "/usr/sbin/nginx",
            "/usr/local/sbin/nginx",
            "/usr/local/nginx/sbin/nginx",
        ]
        .map(PathBuf::from),
    );
    candidates.into_iter().find(|p| p.is_file())
}

/// Starts nginx serving `root`; panics when nginx is not installed (the tests that need it
/// are `#[ignore]`d, so they run only when asked for).
fn start_nginx(root: &Path) -> Nginx {
    let binary = find_nginx().expect("nginx is not installed (apt-get install nginx)");
    // The port is picked free then released, so another process may grab it first: retry.
    for _attempt in 0..5 {
        let dir = tempfile::tempdir().unwrap();
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let d = dir.path().display();
        let config = format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             events {{ worker_connections 64; }}\n\
             http {{\n\
               default_type application/octet-stream;\n\
               log_format ranges \"$request_method\\t$uri\\t$status\\t$http_range\\t$bytes_sent\\t$body_bytes_sent\";\n\
               access_log {d}/access.log ranges;\n\
               client_body_temp_path {d}/client_body;\n proxy_temp_path {d}/proxy;\n fastcgi_temp_path {d}/fastcgi;\n\
               uwsgi_temp_path {d}/uwsgi;\n scgi_temp_path {d}/scgi;\n\
               server {{ listen 127.0.0.1:{port}; root {root}; location / {{ }}\n\
                 location = /moved.safetensors {{ return 302 /single/model.safetensors; }} }}\n\
             }}\n",
            root = root.display()
        );
        let conf = dir.path().join("nginx.conf");
        std::fs::write(&conf, config).unwrap();
        let child = Command::new(&binary)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&conf)
            .arg("-e")
            .arg(dir.path().join("error.log"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("nginx starts");
        let mut nginx = Nginx { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return nginx;
            }
            if let Some(status) = nginx.child.try_wait().unwrap() {
                let log =
                    std::fs::read_to_string(nginx.dir.path().join("error.log")).unwrap_or_default();
                eprintln!("nginx exited ({status}) on port {port}, retrying: {log}");
                break; // dropping the guard cleans up
            }
            assert!(
                Instant::now() < deadline,
                "nginx did not listen on port {port} within 10 s"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    panic!("nginx could not start in 5 attempts");
}

/// The JSON report of `inspect --json` with the location-dependent fields removed.
fn normalized(report: &Value) -> Value {
    let mut report = report.clone();
    report["source"] = Value::Null;
    for tensor in report["tensors"].as_array_mut().unwrap() {
        tensor["file"] = Value::Null;
    }
    for file in report["files"].as_array_mut().unwrap() {
        file["file"] = Value::Null;
    }
    report
}

fn inspect_json(location: &str) -> Value {
    let out = run(["inspect", location, "--json"]);
    assert_eq!(out.code, 0, "{location}: {}", out.all());
    serde_json::from_str(&out.stdout).unwrap()
}

#[test]
#[ignore = "needs nginx: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn inspect_over_http_transfers_only_headers() {
    let root = tempfile::tempdir().unwrap();
    // A multi-megabyte single file...
    let single_dir = root.path().join("single");
    std::fs::create_dir(&single_dir).unwrap();
    let single = single_dir.join("model.safetensors");
    let mut tensors = sample_tensors(8, 256 * 1024); // 8 x 1 MiB of F32
    tensors.push((
        "embed".into(),
        Dtype::BF16,
        vec![1024, 512],
        noise(1024 * 1024, 77),
    ));
    write_model(&single, &tensors, Some(vec![("format", "pt")]));
    let file_size = std::fs::metadata(&single).unwrap().len();
    assert!(file_size > 9_000_000);
    // ...and a sharded copy of it.
    let sharded = root.path().join("sharded");
    let out = run([
        "shard".as_ref(),
        single.as_os_str(),
        sharded.as_os_str(),
        "--max-shard-size=3MiB".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());

    let nginx = start_nginx(root.path());

    // Single file: the same report as reading it locally, from two small Range requests.
    let remote = inspect_json(&nginx.url("single/model.safetensors"));
    let local = inspect_json(single.to_str().unwrap());
    assert_eq!(normalized(&remote), normalized(&local));
    let header_len = local["files"][0]["header_len"].as_u64().unwrap();
    let log = nginx.log();
    assert_eq!(log.len(), 2, "{log:?}");
    assert_eq!(
        (log[0].method.as_str(), log[0].status, log[0].range.as_str()),
        ("GET", 206, "bytes=0-7")
    );
    assert_eq!(log[0].body_bytes_sent, 8);
    assert_eq!(log[1].status, 206);
    assert_eq!(log[1].range, format!("bytes=8-{}", 7 + header_len));
    assert_eq!(log[1].body_bytes_sent, header_len);
    let transferred: u64 = log.iter().map(|e| e.bytes_sent).sum();
    assert!(
        transferred < 4096 && transferred * 1000 < file_size,
        "{transferred} bytes sent for a {file_size}-byte file"
    );

    // The table form works over HTTP too.
    let out = run(["inspect", &nginx.url("single/model.safetensors")]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("layer.7.weight") && out.stdout.contains("format: pt"),
        "{}",
        out.stdout
    );

    // A redirect (as the Hub answers with) is followed, and the Range header with it.
    let before = nginx.log().len();
    let moved = inspect_json(&nginx.url("moved.safetensors"));
    assert_eq!(normalized(&moved), normalized(&local));
    let log: Vec<LogEntry> = nginx.log().into_iter().skip(before).collect();
    let statuses: Vec<(u16, &str)> = log.iter().map(|e| (e.status, e.uri.as_str())).collect();
    assert_eq!(
        statuses,
        [
            (302, "/moved.safetensors"),
            (206, "/single/model.safetensors"),
            (302, "/moved.safetensors"),
            (206, "/single/model.safetensors")
        ]
    );
    assert!(
        log.iter()
            .all(|e| e.body_bytes_sent <= header_len.max(1024)),
        "{log:?}"
    );

    // Sharded: the index in full, then two Range requests per shard.
    let before = nginx.log().len();
    let remote = inspect_json(&nginx.url("sharded/model.safetensors.index.json"));
    let local = inspect_json(sharded.to_str().unwrap());
    assert_eq!(normalized(&remote), normalized(&local));
    assert_eq!(remote["sharded"], true);
    let shard_count = remote["files"].as_array().unwrap().len();
    assert!(shard_count >= 3, "{remote}");
    let log: Vec<LogEntry> = nginx.log().into_iter().skip(before).collect();
    assert_eq!(log.len(), 1 + 2 * shard_count, "{log:?}");
    assert_eq!(
        (log[0].uri.as_str(), log[0].status),
        ("/sharded/model.safetensors.index.json", 200)
    );
    for entry in &log[1..] {
        assert!(entry.uri.starts_with("/sharded/model-0000"), "{entry:?}");
        assert_eq!(entry.status, 206, "{entry:?}");
        assert!(entry.range.starts_with("bytes="), "{entry:?}");
        assert!(
            entry.body_bytes_sent <= 1024,
            "{entry:?}: more than a header"
        );
    }
    let shard_bytes: u64 = log[1..].iter().map(|e| e.body_bytes_sent).sum();
    assert!(
        shard_bytes * 1000 < file_size,
        "{shard_bytes} body bytes for {file_size} bytes of shards"
    );
}

#[test]
#[ignore = "needs nginx: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn http_errors_are_one_line() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("tiny.safetensors"), b"abc").unwrap();
    std::fs::write(root.path().join("empty.safetensors"), b"").unwrap();
    let bad = std::fs::read(vectors().join("invalid/overlap.safetensors")).unwrap();
    std::fs::write(root.path().join("overlap.safetensors"), bad).unwrap();
    std::fs::write(
        root.path().join("broken.index.json"),
        b"{\"weight_map\": {\"a\": \"missing.safetensors\"}}",
    )
    .unwrap();
    let nginx = start_nginx(root.path());

    let out = run(["inspect", &nginx.url("nothing-here.safetensors")]);
    assert_one_line_error(&out, "404");
    let out = run(["inspect", &nginx.url("tiny.safetensors")]);
    assert_one_line_error(&out, "tiny.safetensors");
    let out = run(["inspect", &nginx.url("empty.safetensors")]);
    assert_one_line_error(&out, "empty.safetensors");
    let out = run(["inspect", &nginx.url("overlap.safetensors")]);
    assert_one_line_error(&out, "overlap");
    let out = run(["inspect", &nginx.url("broken.index.json")]);
    assert_one_line_error(&out, "missing.safetensors");
    // Nothing listens on a port we just released.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = run(["inspect", &format!("http://127.0.0.1:{port}/x.safetensors")]);
    assert_one_line_error(&out, &format!("127.0.0.1:{port}"));
}

/// A server that ignores Range and always sends the whole file with `200 OK`: the reader
/// still gets the right header, reading only what it needs off the stream.
#[test]
fn servers_without_range_support_still_work() {
    use std::io::{Read, Write};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    write_model(
        &path,
        &sample_tensors(4, 65536),
        Some(vec![("format", "pt")]),
    );
    let body = std::fs::read(&path).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = std::thread::spawn(move || {
        // Exactly two requests are expected: the prefix and the header.
        // Non-blocking accept with a deadline, so a client making fewer requests cannot hang the test.
        listener.set_nonblocking(true).unwrap();
        for _ in 0..2 {
            let deadline = Instant::now() + Duration::from_secs(20);
            let mut stream = loop {
                match listener.accept() {
                    Ok((stream, _)) => break stream,
                    Err(e)
                        if e.kind() == std::io::ErrorKind::WouldBlock
                            && Instant::now() < deadline =>
                    {
                        std::thread::sleep(Duration::from_millis(10))
                    }
                    Err(e) => panic!("expected another request: {e}"),
                }
            };
            stream.set_nonblocking(false).unwrap();
            let mut request = Vec::new();
            let mut byte = [0u8; 1];
            while !request.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap() == 1 {
                request.push(byte[0]);
            }
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            // The client hangs up early; a failed write is expected then.
            let _ = stream
                .write_all(head.as_bytes())
                .and_then(|()| stream.write_all(&body));
        }
    });
    let remote = inspect_json(&format!("http://127.0.0.1:{port}/m.safetensors"));
    server.join().unwrap();
    let local = inspect_json(path.to_str().unwrap());
    assert_eq!(normalized(&remote), normalized(&local));
}

#[test]
#[ignore = "needs nginx: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn verify_over_http_checks_every_digest() {
    let root = tempfile::tempdir().unwrap();
    let single = root.path().join("single.safetensors");
    write_model(&single, &sample_tensors(4, 64 * 1024), None);
    let sharded = root.path().join("sharded");
    let out = run([
        "shard".as_ref(),
        single.as_os_str(),
        sharded.as_os_str(),
        "--max-shard-size=300KB".as_ref(),
        "--checksum=sha256".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let nginx = start_nginx(root.path());

    let url = nginx.url("sharded/model.safetensors.index.json");
    let out = run(["verify", "--require-checksums", url.as_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("every checksum matches"),
        "{}",
        out.stdout
    );

    // A byte flipped on the server: the shard and the tensor are named.
    let shard = sharded.join("model-00002-of-00004.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 1;
    std::fs::write(&shard, bytes).unwrap();
    let out = run(["verify", url.as_str()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(
        out.stderr
            .contains("model-00002-of-00004.safetensors: tensor")
            && out.stderr.contains("checksum mismatch"),
        "{}",
        out.stderr
    );

    // A URL that is not there is an error, not a failed verification.
    let out = run(["verify", nginx.url("nothing.safetensors").as_str()]);
    assert_eq!(out.code, 2, "{}", out.all());
}
