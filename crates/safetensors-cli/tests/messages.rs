//! The wording a user reads: counts agree with their nouns, each error names its subject
//! once, a usage error points at `--help` once, and a path that cannot be read is an error
//! (exit 2) in every subcommand, never an "invalid file" (exit 1).

mod common;

use std::io::{Read, Write};
use std::net::TcpListener;

use common::*;
use safetensors::Dtype;

#[test]
fn one_tensor_is_not_tensors() {
    let scalar = vectors().join("valid/scalar.safetensors");
    let out = run(["validate".as_ref(), scalar.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("OK (1 tensor, 4 bytes of tensor data)"),
        "{}",
        out.stdout
    );

    let out = run(["inspect".as_ref(), scalar.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains(", 1 tensor)"), "{}", out.stdout);

    let out = run(["diff".as_ref(), scalar.as_os_str(), scalar.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("identical: 1 tensor,"),
        "{}",
        out.stdout
    );

    let none = vectors().join("valid/no_tensors.safetensors");
    let out = run(["validate".as_ref(), none.as_os_str()]);
    assert!(
        out.stdout
            .contains("OK (0 tensors, 0 bytes of tensor data)"),
        "{}",
        out.stdout
    );
}

#[test]
fn shard_and_merge_count_in_words() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("one.safetensors");
    let one = ("w".to_string(), Dtype::F32, vec![4], vec![0u8; 16]);
    write_model(&whole, &[one], None);
    let shards = dir.path().join("shards");
    let out = run([
        "shard".as_ref(),
        whole.as_os_str(),
        shards.as_os_str(),
        "--max-shard-size".as_ref(),
        "1KB".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("wrote 1 shard and "), "{}", out.stdout);
    assert!(out.stdout.contains("(1 tensor, 16 B)"), "{}", out.stdout);

    let merged = dir.path().join("merged.safetensors");
    let out = run(["merge".as_ref(), shards.as_os_str(), merged.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("merged 1 shard into "),
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("(1 tensor, 16 B)"), "{}", out.stdout);
}

#[test]
fn a_missing_file_is_an_error_not_an_invalid_file() {
    for args in [
        &["validate", "/nonexistent/model.safetensors"][..],
        &["inspect", "/nonexistent/model.safetensors"][..],
        &[
            "diff",
            "/nonexistent/model.safetensors",
            "/nonexistent/model.safetensors",
        ][..],
        &[
            "merge",
            "/nonexistent/model.safetensors",
            "/tmp/merged.safetensors",
        ][..],
    ] {
        let out = run(args);
        assert_one_line_error(&out, "/nonexistent/model.safetensors");
        assert!(
            out.stderr.starts_with("safetensors: error: cannot ")
                && out.stderr.contains("No such file"),
            "{args:?}: {}",
            out.stderr
        );
        assert!(!out.all().contains("INVALID"), "{args:?}: {}", out.all());
    }
}

#[test]
fn validate_reports_every_path_and_an_error_wins_over_invalid() {
    let good = vectors().join("valid/scalar.safetensors");
    let bad = vectors().join("invalid/overlap.safetensors");
    let out = run([
        "validate".as_ref(),
        good.as_os_str(),
        "/nonexistent.safetensors".as_ref(),
        bad.as_os_str(),
    ]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert!(
        out.stdout.contains("scalar.safetensors: OK"),
        "{}",
        out.all()
    );
    assert!(
        out.stderr.contains("overlap.safetensors: INVALID"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("safetensors: error: cannot open /nonexistent.safetensors: "),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("1 of 3 given paths invalid"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_bad_size_points_at_help_once() {
    let out = run(["shard", "in", "out", "--max-shard-size", "12 parsecs"]);
    assert_one_line_error(&out, "unknown unit `parsecs`");
    assert_eq!(
        out.stderr.matches("12 parsecs").count(),
        1,
        "{}",
        out.stderr
    );
    assert_eq!(out.stderr.matches("help").count(), 1, "{}", out.stderr);
    assert!(out
        .stderr
        .trim_end()
        .ends_with("(see `safetensors --help`)"));
}

/// A server on 127.0.0.1 that answers `connections` requests with `status` and stops.
fn serve(status: &'static str, connections: usize) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming().take(connections) {
            let Ok(mut stream) = stream else { continue };
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
        }
    });
    format!("http://127.0.0.1:{port}/model.safetensors")
}

#[test]
fn an_http_error_names_the_url_once() {
    let url = serve("404 Not Found", 1);
    let out = run(["inspect", &url]);
    assert_one_line_error(&out, "HTTP 404");
    assert_eq!(out.stderr.matches(&url).count(), 1, "{}", out.stderr);

    // Nothing listens on this port once the listener is dropped: the connection is refused.
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        format!(
            "http://127.0.0.1:{}/model.safetensors",
            listener.local_addr().unwrap().port()
        )
    };
    let out = run(["inspect", &closed]);
    assert_eq!(out.code, 2, "{}", out.all());
    assert_eq!(out.stderr.matches(&closed).count(), 1, "{}", out.stderr);
}
