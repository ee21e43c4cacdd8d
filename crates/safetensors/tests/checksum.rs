//! Writing with checksums: every tensor's digest lands in `__metadata__`, the bytes and
//! the rest of the header are what a plain write gives, and file and buffer agree.

use safetensors::format::checksum::{self, Algorithm};
use safetensors::tensor::TensorView;
use safetensors::write::{to_bytes, to_bytes_with, to_file_with, WriteOptions};
use safetensors::{Dtype, SafeTensors};

fn tensors(data: &[Vec<u8>]) -> Vec<(String, TensorView<'_>)> {
    vec![
        (
            "b".into(),
            TensorView::new(Dtype::F32, vec![2, 2], &data[0]).unwrap(),
        ),
        (
            "a".into(),
            TensorView::new(Dtype::U8, vec![3], &data[1]).unwrap(),
        ),
        (
            "empty".into(),
            TensorView::new(Dtype::F16, vec![0, 4], &data[2]).unwrap(),
        ),
    ]
}

#[test]
fn digests_are_recorded_for_every_tensor() {
    let data = vec![(0..16).collect::<Vec<u8>>(), vec![7, 8, 9], vec![]];
    for algorithm in Algorithm::ALL {
        let options = WriteOptions::checksum(algorithm);
        let bytes = to_bytes_with(tensors(&data), vec![("format", "pt")], &options).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        let meta = meta.metadata().clone().unwrap();
        assert_eq!(meta["format"], "pt");
        for name in ["a", "b", "empty"] {
            let value = &meta[&checksum::key(name)];
            assert_eq!(*value, algorithm.digest(st.tensor(name).unwrap().data()));
            assert_eq!(
                checksum::check(value, st.tensor(name).unwrap().data()),
                Ok(())
            );
        }
        assert_eq!(meta.len(), 4);

        // The data section is byte for byte a plain write's.
        let plain = to_bytes(tensors(&data), vec![("format", "pt")]).unwrap();
        let start = |b: &[u8]| 8 + u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
        assert_eq!(bytes[start(&bytes)..], plain[start(&plain)..]);

        // The file writer gives the same bytes.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        to_file_with(tensors(&data), vec![("format", "pt")], &path, &options).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), bytes);
    }
}

#[test]
fn no_metadata_gets_only_the_digests_and_reserved_keys_are_refused() {
    let data = vec![(0..16).collect::<Vec<u8>>(), vec![7, 8, 9], vec![]];
    let options = WriteOptions::checksum(Algorithm::Xxh3_64);
    let bytes = to_bytes_with(tensors(&data), None, &options).unwrap();
    let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(meta.metadata().as_ref().unwrap().len(), 3);

    let err = to_bytes_with(tensors(&data), vec![("__checksum__:a", "x")], &options).unwrap_err();
    assert!(err.to_string().contains("__checksum__:"), "{err}");
    // Without a checksum asked for, such a key is ordinary metadata.
    to_bytes_with(
        tensors(&data),
        vec![("__checksum__:a", "x")],
        &WriteOptions::default(),
    )
    .unwrap();

    // A failed write leaves an existing file as it was.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, b"old").unwrap();
    assert!(to_file_with(
        tensors(&data),
        vec![("__checksum__:a", "x")],
        &path,
        &options
    )
    .is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"old");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

mod verify {
    use super::*;
    use safetensors::checkpoint::shard_index::save_sharded_with;
    use safetensors::checkpoint::verify::VerifyProgress;
    use safetensors::checkpoint::Checkpoint;
    use std::path::Path;
    use std::sync::atomic::{AtomicU64, Ordering};

    /// Four 1 KiB tensors in shards of at most 2 KiB: two shards and an index.
    fn sharded(dir: &Path, options: &WriteOptions) {
        let data: Vec<Vec<u8>> = (0..4u8).map(|i| vec![i; 1024]).collect();
        let views: Vec<(String, TensorView<'_>)> = data
            .iter()
            .enumerate()
            .map(|(i, d)| {
                (
                    format!("w{i}"),
                    TensorView::new(Dtype::U8, vec![1024], d).unwrap(),
                )
            })
            .collect();
        save_sharded_with(views, None, dir, 2048, options).unwrap();
    }

    #[derive(Default)]
    struct Counted {
        total: AtomicU64,
        seen: AtomicU64,
    }

    impl VerifyProgress for Counted {
        fn start(&self, total: u64) {
            self.total.store(total, Ordering::Relaxed);
        }
        fn advance(&self, bytes: u64) {
            self.seen.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    fn verify(path: &Path) -> (safetensors::checkpoint::verify::VerifyReport, u64) {
        let progress = Counted::default();
        let report = Checkpoint::open(path).unwrap().verify(&progress);
        let total = progress.total.into_inner();
        assert_eq!(progress.seen.into_inner(), total);
        (report, total)
    }

    fn flip(path: &Path, from_end: u64) {
        let mut bytes = std::fs::read(path).unwrap();
        let at = bytes.len() - from_end as usize;
        bytes[at] ^= 0x10;
        std::fs::write(path, bytes).unwrap();
    }

    #[test]
    fn a_sound_checkpoint_verifies() {
        for algorithm in Algorithm::ALL {
            let dir = tempfile::tempdir().unwrap();
            sharded(dir.path(), &WriteOptions::checksum(algorithm));
            let (report, bytes) = verify(dir.path());
            assert!(report.is_ok(), "{:?}", report.lines());
            assert_eq!((report.verified, report.unrecorded, bytes), (4, 0, 4096));
        }
    }

    #[test]
    fn a_flipped_byte_names_its_tensor_and_shard() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path(), &WriteOptions::checksum(Algorithm::Sha256));
        flip(&dir.path().join("model-00002-of-00002.safetensors"), 1);
        let (report, _) = verify(dir.path());
        assert!(!report.is_ok());
        assert_eq!(report.verified, 3);
        let lines = report.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(
            lines[0].starts_with(
                "model-00002-of-00002.safetensors: tensor \"w3\": sha256 checksum mismatch"
            ),
            "{lines:?}"
        );
    }

    #[test]
    fn a_truncated_shard_and_a_missing_tensor_are_structure_problems() {
        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path(), &WriteOptions::checksum(Algorithm::Xxh3_64));
        let shard = dir.path().join("model-00001-of-00002.safetensors");
        let bytes = std::fs::read(&shard).unwrap();
        std::fs::write(&shard, &bytes[..bytes.len() - 100]).unwrap();
        let (report, _) = verify(dir.path());
        assert!(!report.is_ok());
        assert!(
            report.lines()[0].starts_with("model-00001-of-00002.safetensors: "),
            "{:?}",
            report.lines()
        );
        // The other shard is still checked.
        assert_eq!(report.verified, 2);

        let dir = tempfile::tempdir().unwrap();
        sharded(dir.path(), &WriteOptions::checksum(Algorithm::Xxh3_64));
        let index = dir.path().join("model.safetensors.index.json");
        let text = std::fs::read_to_string(&index).unwrap();
        let text = text.replace(
            "\"weight_map\": {",
            "\"weight_map\": {\n    \"ghost\": \"model-00001-of-00002.safetensors\",",
        );
        std::fs::write(&index, text).unwrap();
        let (report, _) = verify(dir.path());
        assert!(!report.is_ok());
        assert!(
            report
                .lines()
                .iter()
                .any(|l| l.starts_with("index: ") && l.contains("ghost")),
            "{:?}",
            report.lines()
        );
    }

    #[test]
    fn recorded_values_that_cannot_hold() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("m.safetensors");
        let data = vec![(0..16).collect::<Vec<u8>>(), vec![7, 8, 9], vec![]];
        let metadata = vec![
            ("__checksum__:a", "md5:00"),
            ("__checksum__:ghost", "sha256:00"),
        ];
        to_file_with(tensors(&data), metadata, &path, &WriteOptions::default()).unwrap();
        let (report, bytes) = verify(&path);
        assert_eq!((report.verified, report.unrecorded, bytes), (0, 2, 0));
        let lines = report.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"a\"") && l.contains("md5")),
            "{lines:?}"
        );
        assert!(
            lines
                .iter()
                .any(|l| l.contains("\"ghost\"") && l.contains("no such tensor")),
            "{lines:?}"
        );

        // No digests at all: valid, nothing verified.
        to_file_with(tensors(&data), None, &path, &WriteOptions::default()).unwrap();
        let (report, _) = verify(&path);
        assert!(report.is_ok());
        assert_eq!((report.verified, report.unrecorded), (0, 3));
    }
}
