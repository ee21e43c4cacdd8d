//! The streaming writers (`write::StreamingWriter`, `write::ShardedWriter`): the bytes are
//! the whole-dict writers' bytes whatever order the tensors come in, and a writer that does
//! not finish leaves nothing behind and an existing file as it was.

use std::collections::HashMap;
use std::path::Path;

use safetensors::checkpoint::shard_index::save_sharded_with;
use safetensors::format::checksum::Algorithm;
use safetensors::tensor::TensorView;
use safetensors::write::{to_file_with, ShardedWriter, Spec, StreamingWriter, WriteOptions};
use safetensors::{Dtype, Error};

/// Tensors of several dtypes and sizes (an empty one, a scalar, sub-byte F4), each with
/// distinct bytes, in an order that is not the file's.
fn tensors() -> Vec<(String, Dtype, Vec<usize>, Vec<u8>)> {
    let specs: [(&str, Dtype, &[usize]); 8] = [
        ("mlp.up", Dtype::BF16, &[3, 5]),
        ("embed", Dtype::F32, &[4, 3]),
        ("mask", Dtype::BOOL, &[7]),
        ("scale", Dtype::F64, &[]),
        ("empty", Dtype::F16, &[0, 4]),
        ("ids", Dtype::I64, &[2]),
        ("packed", Dtype::F4, &[2, 6]),
        ("a.bias", Dtype::F32, &[3]),
    ];
    specs
        .iter()
        .enumerate()
        .map(|(i, (name, dtype, shape))| {
            let len = dtype.byte_size(shape).unwrap();
            let bytes = (0..len).map(|j| (i * 31 + j * 7) as u8).collect();
            (name.to_string(), *dtype, shape.to_vec(), bytes)
        })
        .collect()
}

fn views(t: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<(String, TensorView<'_>)> {
    t.iter()
        .map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap()))
        .collect()
}

fn specs(t: &[(String, Dtype, Vec<usize>, Vec<u8>)]) -> Vec<(String, Spec)> {
    t.iter()
        .map(|(n, d, s, _)| (n.clone(), Spec::new(*d, s.clone())))
        .collect()
}

/// Every entry of `dir`, sorted (temporary files included).
fn listing(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

fn options() -> [WriteOptions; 3] {
    [
        WriteOptions::default(),
        WriteOptions::checksum(Algorithm::Sha256),
        WriteOptions::checksum(Algorithm::Xxh3_64),
    ]
}

#[test]
fn tensors_written_in_any_order_give_the_whole_writer_bytes() {
    let t = tensors();
    let dir = tempfile::tempdir().unwrap();
    let orders: [Vec<usize>; 3] = [
        (0..t.len()).collect(),
        (0..t.len()).rev().collect(),
        vec![3, 7, 0, 5, 1, 6, 2, 4],
    ];
    for options in options() {
        for metadata in [None, Some(vec![("z", "1"), ("format", "pt"), ("a", "2")])] {
            let whole = dir.path().join("whole.safetensors");
            match &metadata {
                None => to_file_with(views(&t), None::<HashMap<String, String>>, &whole, &options)
                    .unwrap(),
                Some(m) => to_file_with(views(&t), m.clone(), &whole, &options).unwrap(),
            }
            let want = std::fs::read(&whole).unwrap();
            for order in &orders {
                let path = dir.path().join("streamed.safetensors");
                let mut writer = match &metadata {
                    None => StreamingWriter::create(
                        &path,
                        specs(&t),
                        None::<HashMap<String, String>>,
                        &options,
                    ),
                    Some(m) => StreamingWriter::create(&path, specs(&t), m.clone(), &options),
                }
                .unwrap();
                assert_eq!(writer.file_len(), want.len() as u64);
                for &i in order {
                    let (name, dtype, shape, bytes) = &t[i];
                    // Each tensor's bytes live only while it is written.
                    let copy = bytes.clone();
                    let view = TensorView::new(*dtype, shape.clone(), &copy).unwrap();
                    writer.write(name, &view).unwrap();
                }
                assert!(writer.is_complete());
                writer.finish().unwrap();
                assert_eq!(
                    std::fs::read(&path).unwrap(),
                    want,
                    "{options:?} {metadata:?} {order:?}"
                );
            }
        }
    }
    assert_eq!(
        listing(dir.path()),
        ["streamed.safetensors", "whole.safetensors"]
    );
}

#[test]
fn a_missing_tensor_fails_finish_and_leaves_the_old_file() {
    let t = tensors();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    let mut writer =
        StreamingWriter::create(&path, specs(&t), None, &WriteOptions::default()).unwrap();
    for (name, view) in views(&t).iter().filter(|(n, _)| n != "mask" && n != "ids") {
        writer.write(name, view).unwrap();
    }
    assert_eq!(writer.missing().collect::<Vec<_>>(), ["ids", "mask"]);
    let err = writer.finish().unwrap_err();
    assert!(matches!(err, Error::InvalidWrite(_)));
    let msg = err.to_string();
    assert!(
        msg.contains("2 of the 8 planned tensors were never written: \"ids\", \"mask\""),
        "{msg}"
    );
    assert!(msg.contains("nothing was written to"), "{msg}");
    assert_eq!(std::fs::read(&path).unwrap(), b"old contents");
    assert_eq!(listing(dir.path()), ["m.safetensors"]);
}

#[test]
fn a_dropped_writer_removes_its_temporary_file() {
    let t = tensors();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut writer =
        StreamingWriter::create(&path, specs(&t), None, &WriteOptions::default()).unwrap();
    let (name, view) = &views(&t)[0];
    writer.write(name, view).unwrap();
    assert_eq!(listing(dir.path()).len(), 1, "the temporary file");
    assert!(!path.exists());
    drop(writer);
    assert!(listing(dir.path()).is_empty());
}

#[test]
fn refused_writes_name_the_tensor_and_change_nothing() {
    let t = tensors();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let mut writer =
        StreamingWriter::create(&path, specs(&t), None, &WriteOptions::default()).unwrap();
    let f16 = [0u8; 24];
    let err = writer
        .write(
            "embed",
            &TensorView::new(Dtype::F16, vec![4, 3], &f16).unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor \"embed\" was planned as F32 [4, 3] but is F16 [4, 3]"),
        "{err}"
    );
    let f32 = [0u8; 48];
    let err = writer
        .write(
            "embed",
            &TensorView::new(Dtype::F32, vec![3, 4], &f32).unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("planned as F32 [4, 3] but is F32 [3, 4]"),
        "{err}"
    );
    let err = writer
        .write(
            "nope",
            &TensorView::new(Dtype::F32, vec![4, 3], &f32).unwrap(),
        )
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("tensor \"nope\" is not one of the 8 planned tensors"),
        "{err}"
    );
    let embed = TensorView::new(Dtype::F32, vec![4, 3], &f32).unwrap();
    writer.write("embed", &embed).unwrap();
    let err = writer.write("embed", &embed).unwrap_err().to_string();
    assert!(
        err.contains("tensor \"embed\" was already written"),
        "{err}"
    );
    assert_eq!(writer.missing().count(), 7);
    assert_eq!(writer.spec("embed"), Some(&Spec::new(Dtype::F32, [4, 3])));
}

#[test]
fn plans_the_whole_writer_refuses_are_refused_before_any_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let create = |specs: Vec<(&str, Spec)>| {
        StreamingWriter::create(&path, specs, None, &WriteOptions::default()).unwrap_err()
    };
    let err = create(vec![
        ("a", Spec::new(Dtype::F32, [1])),
        ("a", Spec::new(Dtype::F32, [1])),
    ]);
    assert!(
        matches!(err, Error::DuplicateTensor(ref n) if n == "a"),
        "{err}"
    );
    let err = create(vec![("__metadata__", Spec::new(Dtype::F32, [1]))]);
    assert!(err.to_string().contains("reserved"), "{err}");
    let err = create(vec![("odd", Spec::new(Dtype::F4, [3]))]);
    assert!(matches!(err, Error::MisalignedSubByte { .. }), "{err}");
    assert!(err.to_string().contains("\"odd\""), "{err}");
    let err = create(vec![("huge", Spec::new(Dtype::F64, [usize::MAX, 2]))]);
    assert!(matches!(err, Error::ValidationOverflow { .. }), "{err}");
    let err = StreamingWriter::create(
        &path,
        [("a", Spec::new(Dtype::F32, [1]))],
        vec![("__checksum__:a", "x")],
        &WriteOptions::checksum(Algorithm::Sha256),
    )
    .unwrap_err();
    assert!(err.to_string().contains("__checksum__:"), "{err}");
    assert!(listing(dir.path()).is_empty());
}

/// Every file of `dir` with its bytes, sorted by name.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    listing(dir)
        .into_iter()
        .map(|n| {
            let bytes = std::fs::read(dir.join(&n)).unwrap();
            (n, bytes)
        })
        .collect()
}

#[test]
fn the_sharded_writer_writes_what_save_sharded_writes() {
    let t = tensors();
    let meta = Some(vec![("format".to_string(), "pt".to_string())]);
    for options in options() {
        for limit in [1u64, 40, 64, 1 << 20] {
            let whole = tempfile::tempdir().unwrap();
            let index =
                save_sharded_with(views(&t), meta.clone(), whole.path(), limit, &options).unwrap();
            let streamed = tempfile::tempdir().unwrap();
            // An earlier save of another shape, which both writers replace.
            std::fs::write(streamed.path().join("model.safetensors"), b"old").unwrap();
            std::fs::write(
                streamed.path().join("model-00001-of-00009.safetensors"),
                b"old",
            )
            .unwrap();
            let mut writer =
                ShardedWriter::create(streamed.path(), specs(&t), meta.clone(), limit, &options)
                    .unwrap();
            for (name, view) in views(&t).iter().rev() {
                writer.write(name, view).unwrap();
            }
            assert_eq!(writer.finish().unwrap(), index, "limit {limit}");
            assert_eq!(
                files(streamed.path()),
                files(whole.path()),
                "{options:?} limit {limit}"
            );
        }
    }
}

#[test]
fn a_sharded_writer_missing_a_tensor_renames_nothing() {
    let t = tensors();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("model.safetensors"), b"old").unwrap();
    let mut writer =
        ShardedWriter::create(dir.path(), specs(&t), None, 40, &WriteOptions::default()).unwrap();
    let planned = writer.weight_map().clone();
    // 30, 48, 7 + 8 + 0 + 16 + 6 and 12 bytes: four shards of at most 40 (or one tensor).
    assert_eq!(planned["embed"], "model-00002-of-00004.safetensors");
    assert_eq!(planned["a.bias"], "model-00004-of-00004.safetensors");
    for (name, view) in views(&t).iter().filter(|(n, _)| n != "scale") {
        writer.write(name, view).unwrap();
    }
    let err = writer
        .write("other", &views(&t)[0].1)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("\"other\" is not one of the 8 planned"),
        "{err}"
    );
    let err = writer.finish().unwrap_err().to_string();
    assert!(
        err.contains("1 of the 8 planned tensors was never written: \"scale\""),
        "{err}"
    );
    assert_eq!(
        files(dir.path()),
        [("model.safetensors".into(), b"old".to_vec())]
    );

    // A name given twice is refused before any file is made.
    let empty = tempfile::tempdir().unwrap();
    let twice = [
        ("a", Spec::new(Dtype::U8, [1])),
        ("a", Spec::new(Dtype::U8, [2])),
    ];
    let err =
        ShardedWriter::create(empty.path(), twice, None, 1, &WriteOptions::default()).unwrap_err();
    assert!(matches!(err, Error::DuplicateTensor(_)), "{err}");
    assert!(listing(empty.path()).is_empty());
}
