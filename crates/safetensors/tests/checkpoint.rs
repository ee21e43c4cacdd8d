//! `Checkpoint` over one file, a folder and an index: names, lazy shards, metadata, and the
//! errors for an index that disagrees with its shards.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::checkpoint::shard_index::{shard_file_name, write_index_json};
use safetensors::checkpoint::Checkpoint;
use safetensors::tensor::TensorView;
use safetensors::{serialize_to_file, Dtype, Error};

/// Writes a shard holding F32 tensors `names` (each 2 values: its index, then -index),
/// with `__metadata__` `meta`.
fn write_shard(path: &Path, names: &[&str], meta: &[(&str, &str)]) {
    let bytes: Vec<Vec<u8>> = (0..names.len())
        .map(|i| {
            [i as f32, -(i as f32)]
                .iter()
                .flat_map(|v| v.to_le_bytes())
                .collect()
        })
        .collect();
    let views: Vec<(&str, TensorView<'_>)> = names
        .iter()
        .zip(&bytes)
        .map(|(n, b)| (*n, TensorView::new(Dtype::F32, vec![2], b).unwrap()))
        .collect();
    let meta: Vec<(String, String)> = meta
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    if meta.is_empty() {
        serialize_to_file(
            views,
            None::<std::collections::HashMap<String, String>>,
            path,
        )
    } else {
        serialize_to_file(views, meta, path)
    }
    .unwrap();
}

/// A two-shard folder: shard 1 holds `b`, `c`, shard 2 holds `a` (so shard order is not
/// name order).
fn two_shards(dir: &Path) {
    write_shard(
        &dir.join(shard_file_name(1, 2)),
        &["b", "c"],
        &[("format", "pt")],
    );
    write_shard(&dir.join(shard_file_name(2, 2)), &["a"], &[("shard", "2")]);
    let mut map = BTreeMap::new();
    map.insert("a", shard_file_name(2, 2));
    map.insert("b", shard_file_name(1, 2));
    map.insert("c", shard_file_name(1, 2));
    std::fs::write(
        dir.join("model.safetensors.index.json"),
        write_index_json(24, &map),
    )
    .unwrap();
}

#[test]
fn opens_a_sharded_folder_lazily() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    assert!(ckpt.is_sharded());
    assert_eq!(ckpt.names().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert_eq!(ckpt.shard_count(), 2);
    assert_eq!(ckpt.shard_of("a"), Some(1));
    assert_eq!(ckpt.shard_name(1), shard_file_name(2, 2));

    let (file, info) = ckpt.tensor("a").unwrap();
    assert_eq!((info.dtype, info.shape.clone()), (Dtype::F32, vec![2]));
    let bytes = file.tensor_bytes("a").unwrap();
    assert_eq!(&bytes[..4], &0f32.to_le_bytes());

    assert_eq!(ckpt.offset_keys().unwrap(), ["b", "c", "a"]);
    let meta = ckpt.metadata().unwrap().unwrap();
    assert_eq!(
        meta,
        [
            ("total_size".to_string(), "24".to_string()),
            ("format".to_string(), "pt".to_string()),
            ("shard".to_string(), "2".to_string()),
        ]
    );
    assert!(matches!(ckpt.tensor("nope"), Err(Error::TensorNotFound(_))));
}

#[test]
fn a_checkpoint_read_in_parts_reads_the_same_bytes() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let whole = Checkpoint::open(dir.path()).unwrap();
    let parts = Checkpoint::open(dir.path()).unwrap();
    // Declared before any shard is open, and again once one is: both are fine.
    parts.for_parts();
    let (file, _) = parts.tensor("b").unwrap();
    let b = file.tensor_bytes("b").unwrap().into_owned();
    parts.for_parts();
    for name in ["a", "b", "c"] {
        let (w, _) = whole.tensor(name).unwrap();
        let (p, _) = parts.tensor(name).unwrap();
        assert_eq!(w.tensor_bytes(name).unwrap(), p.tensor_bytes(name).unwrap());
    }
    assert_eq!(
        b,
        whole
            .tensor("b")
            .unwrap()
            .0
            .tensor_bytes("b")
            .unwrap()
            .into_owned()
    );
}

#[test]
fn opens_the_index_path_and_a_single_file_folder() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let renamed = dir.path().join("custom.safetensors.index.json");
    std::fs::rename(dir.path().join("model.safetensors.index.json"), &renamed).unwrap();
    // The folder's one *.safetensors.index.json, and the index path itself.
    for location in [dir.path().to_path_buf(), renamed.clone()] {
        let ckpt = Checkpoint::open(&location).unwrap();
        assert!(ckpt.is_sharded());
        assert_eq!(ckpt.len(), 3);
    }

    let single = tempfile::tempdir().unwrap();
    write_shard(&single.path().join("weights.safetensors"), &["x"], &[]);
    for location in [
        single.path().to_path_buf(),
        single.path().join("weights.safetensors"),
    ] {
        let ckpt = Checkpoint::open(&location).unwrap();
        assert!(!ckpt.is_sharded());
        assert_eq!(ckpt.names().collect::<Vec<_>>(), ["x"]);
        assert_eq!(ckpt.offset_keys().unwrap(), ["x"]);
        assert_eq!(ckpt.metadata().unwrap(), None);
    }
}

#[test]
fn a_folder_with_two_files_and_no_index_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    write_shard(&dir.path().join("a.safetensors"), &["x"], &[]);
    write_shard(&dir.path().join("b.safetensors"), &["y"], &[]);
    let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("several *.safetensors files (a.safetensors, b.safetensors)"),
        "{err}"
    );
    let empty = tempfile::tempdir().unwrap();
    let err = Checkpoint::open(empty.path()).unwrap_err().to_string();
    assert!(err.contains("holds neither"), "{err}");
}

#[test]
fn a_missing_shard_names_the_file_and_a_tensor() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    std::fs::remove_file(dir.path().join(shard_file_name(2, 2))).unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err();
    let Error::IoError(io) = &err else {
        panic!("{err:?}")
    };
    assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
    let text = err.to_string();
    assert!(
        text.contains("maps tensor `a` to model-00002-of-00002.safetensors")
            && text.contains("does not exist"),
        "{text}"
    );
}

#[test]
fn a_shard_that_disagrees_with_the_index_is_refused_on_first_use() {
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    // Shard 2 now lacks `a` and holds an unlisted `d`.
    write_shard(&dir.path().join(shard_file_name(2, 2)), &["d"], &[]);
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    // Shard 1 is fine and readable.
    ckpt.tensor("c").unwrap();
    let err = ckpt.tensor("a").unwrap_err().to_string();
    assert!(
        err.contains("model-00002-of-00002.safetensors disagrees with the index"),
        "{err}"
    );
    assert!(
        err.contains(
            "tensor `d` in model-00002-of-00002.safetensors is not in the index's weight_map"
        ),
        "{err}"
    );
    assert!(
        err.contains(
            "the index maps tensor `a` to model-00002-of-00002.safetensors which does not hold it"
        ),
        "{err}"
    );
    assert!(ckpt.offset_keys().is_err());

    // A shard that is not safetensors at all.
    std::fs::write(dir.path().join(shard_file_name(2, 2)), b"junk").unwrap();
    let ckpt = Checkpoint::open(dir.path()).unwrap();
    let err = ckpt.tensor("a").unwrap_err().to_string();
    assert!(
        err.contains("model-00002-of-00002.safetensors is not a valid safetensors file"),
        "{err}"
    );
}

#[test]
fn a_bad_index_names_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let index = dir.path().join("model.safetensors.index.json");
    std::fs::write(&index, b"{\"weight_map\": {\"a\": \"../x.safetensors\"}}").unwrap();
    let err = Checkpoint::open(&index).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors.index.json") && err.contains("must be a relative path"),
        "{err}"
    );
}

/// A sharded checkpoint at an http:// URL, through the core's client (feature `http`):
/// opening fetches the index only, a tensor costs its shard's two header requests and one
/// Range request, and the `headers` option reaches the server on every request.
#[cfg(feature = "http")]
mod over_http {
    use super::*;
    use safetensors::checkpoint::ShardFile;
    use safetensors::reader::{read_into, Read, ReaderOptions};
    use safetensors::source::http::{Client, HttpOptions};
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::sync::{Arc, Mutex};

    /// Each request: (path, Range header, Authorization header).
    type Log = Arc<Mutex<Vec<(String, String, String)>>>;

    /// Serves the files of `dir` with Range support on 127.0.0.1, keep-alive, logging each
    /// request as (path, range, authorization). Ends with the test process.
    fn serve(dir: &Path) -> (String, Log) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let log: Log = Arc::new(Mutex::new(Vec::new()));
        let (dir, seen) = (dir.to_path_buf(), log.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().take(64) {
                let Ok(stream) = stream else { return };
                let (dir, seen) = (dir.clone(), seen.clone());
                std::thread::spawn(move || {
                    let mut out = stream.try_clone().unwrap();
                    let mut reader = BufReader::new(stream);
                    // At most 1000 requests per connection: the loop ends by itself.
                    for _ in 0..1000 {
                        let mut lines = Vec::new();
                        loop {
                            let mut line = String::new();
                            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                                return;
                            }
                            if line == "\r\n" {
                                break;
                            }
                            lines.push(line.trim_end().to_string());
                        }
                        let path = lines[0].split(' ').nth(1).unwrap_or("/").to_string();
                        let header = |name: &str| {
                            lines
                                .iter()
                                .find_map(|l| l.strip_prefix(name).map(str::to_string))
                                .unwrap_or_default()
                        };
                        let (range, auth) = (header("Range: "), header("Authorization: "));
                        seen.lock()
                            .unwrap()
                            .push((path.clone(), range.clone(), auth));
                        let Ok(body) = std::fs::read(dir.join(&path[1..])) else {
                            let _ = out
                                .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                            continue;
                        };
                        let (start, end) = match range.strip_prefix("bytes=") {
                            Some(r) => {
                                let (a, b) = r.split_once('-').unwrap();
                                let end = b.parse::<usize>().unwrap().min(body.len() - 1);
                                (a.parse::<usize>().unwrap(), end)
                            }
                            None => (0, body.len() - 1),
                        };
                        let head = format!(
                            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {start}-{end}/{}\r\nContent-Length: {}\r\n\r\n",
                            body.len(),
                            end + 1 - start
                        );
                        let _ = out.write_all(head.as_bytes());
                        let _ = out.write_all(&body[start..=end]);
                    }
                });
            }
        });
        (base, log)
    }

    #[test]
    fn a_sharded_checkpoint_at_a_url() {
        let dir = tempfile::tempdir().unwrap();
        two_shards(dir.path());
        let (base, log) = serve(dir.path());
        let options = HttpOptions {
            headers: vec![("Authorization".into(), "Bearer xyz".into())],
            ..HttpOptions::default()
        };
        let client = Client::new(&options).unwrap();
        let url = format!("{base}/model.safetensors.index.json");
        let ckpt = Checkpoint::open_url(&url, &client).unwrap();
        assert!(ckpt.is_sharded() && ckpt.is_remote());
        assert_eq!(ckpt.names().collect::<Vec<_>>(), ["a", "b", "c"]);
        assert_eq!(log.lock().unwrap().len(), 1);

        let (file, info) = ckpt.tensor_file("a").unwrap();
        let offset = file.data_start() + info.data_offsets.0 as u64;
        let mut bytes = vec![0u8; info.byte_len()];
        match file {
            ShardFile::Remote(remote) => {
                let reads = vec![Read {
                    offset,
                    dst: &mut bytes,
                }];
                read_into(remote.source(), reads, &ReaderOptions::default()).unwrap();
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(bytes, [0f32.to_le_bytes(), (-0f32).to_le_bytes()].concat());
        {
            let log = log.lock().unwrap();
            let shard = format!("/{}", shard_file_name(2, 2));
            let ranges: Vec<&str> = log[1..]
                .iter()
                .map(|(p, r, _)| {
                    assert_eq!(p, &shard);
                    r.as_str()
                })
                .collect();
            assert_eq!(ranges.len(), 3, "{log:?}");
            assert_eq!(ranges[0], "bytes=0-7");
            assert!(
                log.iter().all(|(_, _, auth)| auth == "Bearer xyz"),
                "{log:?}"
            );
        }
        assert_eq!(ckpt.offset_keys().unwrap(), ["b", "c", "a"]);
        assert!(ckpt.shard(0).is_err(), "a remote shard is not a local file");

        // Through Checkpoint::open with a plain client, and a missing file names its URL.
        assert_eq!(Checkpoint::open(&url).unwrap().len(), 3);
        let missing = format!("{base}/absent.safetensors");
        let err = Checkpoint::open_url(&missing, &client).unwrap_err();
        match err {
            Error::IoError(io) => {
                assert_eq!(io.kind(), std::io::ErrorKind::NotFound);
                assert!(
                    io.to_string().contains("absent.safetensors: HTTP 404"),
                    "{io}"
                );
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn backend_auto_is_resolved_at_open_by_the_filesystem() {
    use safetensors::checkpoint::{Backend, Filesystem};
    let dir = tempfile::tempdir().unwrap();
    two_shards(dir.path());
    let single = dir.path().join(shard_file_name(2, 2));
    // SAFETY: the mmap contract holds: nothing writes to these files while they are open.
    let auto = unsafe { Backend::auto() };
    assert!(auto.is_auto() && !auto.is_mmap());
    let seen = Filesystem::of_path(dir.path());
    let local = !seen.is_some_and(Filesystem::is_remote);

    for location in [single.as_path(), dir.path()] {
        let ckpt = Checkpoint::open_with(location, auto).unwrap();
        let choice = ckpt.auto_choice().expect("auto reports its choice");
        assert_eq!(choice.filesystem, seen);
        assert!(!choice.overridden);
        // A local disk (or a filesystem the table does not know) is mapped; a network or
        // FUSE one is read with pread. Never "auto" once open.
        assert_eq!(ckpt.backend().is_mmap(), local, "{location:?}: {choice}");
        assert_eq!(ckpt.backend().name(), choice.backend_name());
        // Every shard is opened with what the checkpoint resolved.
        let (file, _) = ckpt.tensor("a").unwrap();
        assert_eq!(file.backend(), ckpt.backend());
        assert_eq!(&file.tensor_bytes("a").unwrap()[..4], &0f32.to_le_bytes());
    }
    // Another backend is used as asked, with no choice to report.
    let plain = Checkpoint::open(&single).unwrap();
    assert_eq!(
        (plain.backend(), plain.auto_choice()),
        (Backend::Pread, None)
    );
}
