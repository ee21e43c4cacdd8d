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
