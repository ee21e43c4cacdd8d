//! Hostile and broken inputs built by hand (no torch needed): every one is refused with a clear
//! one-line error naming the problem, nothing runs, and no output file is left behind. Also the
//! committed torch-made fixtures, and a fuzz-style property: random mutations never panic.

mod common;

use std::path::Path;

use proptest::prelude::*;
use safetensors_convert::{
    convert_file, convert_folder, read_checkpoint, ConvertError, ConvertOptions,
};

fn refuse(bytes: &[u8], tag: &str) -> ConvertError {
    let dir = common::scratch(tag);
    let src = dir.join("input.bin");
    std::fs::write(&src, bytes).unwrap();
    let dst = dir.join("out.safetensors");
    let err = convert_file(&src, &dst, &ConvertOptions::default()).unwrap_err();
    let msg = err.to_string();
    assert!(
        !msg.contains('\n') && msg.contains("input.bin"),
        "one line naming the file: {msg}"
    );
    assert!(!dst.exists(), "no output left behind for {tag}");
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temp files left: {leftovers:?}");
    err
}

fn archive_with_pickle(pkl: &[u8], storages: &[(&str, &[u8])]) -> Vec<u8> {
    let mut entries: Vec<(String, &[u8])> = vec![
        ("archive/data.pkl".into(), pkl),
        ("archive/byteorder".into(), b"little"),
    ];
    for (k, v) in storages {
        entries.push((format!("archive/data/{k}"), v));
    }
    let refs: Vec<(&str, &[u8])> = entries.iter().map(|(n, b)| (n.as_str(), *b)).collect();
    common::stored_zip(&refs)
}

#[test]
fn hand_built_checkpoint_converts() {
    let floats: Vec<u8> = [1.0f32, 2.0, 3.0, 4.0]
        .iter()
        .flat_map(|f| f.to_le_bytes())
        .collect();
    let pkl = common::state_dict_pickle(&[("a", "0", 4, 1, 2), ("b", "1", 4, 0, 4)]);
    let zip = archive_with_pickle(&pkl, &[("0", &floats), ("1", &floats)]);
    let dir = common::scratch("hand");
    let src = dir.join("hand.pt");
    std::fs::write(&src, zip).unwrap();
    let ck = read_checkpoint(&src).unwrap();
    assert_eq!(
        ck.tensor_bytes_by_name("a").unwrap().as_ref(),
        &floats[4..12]
    );
    let report = convert_file(
        &src,
        &dir.join("o.safetensors"),
        &ConvertOptions {
            checksum: None,
            verify: true,
            progress: None,
        },
    )
    .unwrap();
    assert_eq!(report.tensors_written, 2);
}

#[test]
fn os_system_in_data_pkl_is_refused_before_running() {
    let marker = common::scratch("marker").join("PWNED");
    let mut pkl = b"\x80\x02cposix\nsystem\nq\x00".to_vec();
    pkl.extend(common::unicode(&format!("touch {}", marker.display())));
    pkl.extend_from_slice(b"\x85R.");
    let err = refuse(&archive_with_pickle(&pkl, &[]), "ossystem");
    assert!(
        matches!(&err, ConvertError::ForbiddenGlobal { module, name, offset: 2, .. } if module == "posix" && name == "system")
    );
    assert!(err.to_string().contains("posix.system"), "{err}");
    assert!(!marker.exists());

    // The same with STACK_GLOBAL (protocol 4) and builtins.eval.
    let mut pkl = b"\x80\x04\x8c\x08builtins\x8c\x04eval\x93".to_vec();
    pkl.extend(common::unicode("__import__('os').system('true')"));
    pkl.extend_from_slice(b"\x85R.");
    let err = refuse(&archive_with_pickle(&pkl, &[]), "eval");
    assert!(err.to_string().contains("builtins.eval"), "{err}");
}

#[test]
fn a_huge_global_name_gives_a_small_error() {
    // STACK_GLOBAL with a 5 MB module name (BINUNICODE8 strings): the error names the
    // global's start and length, not the whole name.
    let module = "m".repeat(5_000_000);
    let mut pkl = b"\x80\x04\x8d".to_vec();
    pkl.extend((module.len() as u64).to_le_bytes());
    pkl.extend(module.as_bytes());
    pkl.extend(b"\x8c\x04eval\x93.");
    let err = refuse(&archive_with_pickle(&pkl, &[]), "hugeglobal");
    let shown = err.to_string();
    assert!(shown.len() < 1024, "{} bytes", shown.len());
    assert!(
        shown.contains("mmmm") && shown.contains("5000000 bytes"),
        "{shown}"
    );
}

#[test]
fn legacy_stream_with_forbidden_global_is_refused() {
    // magic number, protocol, sys_info, then an object pickle calling os.system.
    let mut p = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.".to_vec();
    p.extend_from_slice(b"\x80\x02M\xe9\x03.");
    p.extend_from_slice(b"\x80\x02}.");
    p.extend_from_slice(b"\x80\x02cos\nsystem\nX\x04\x00\x00\x00true\x85R.");
    let err = refuse(&p, "legacy-evil");
    assert!(err.to_string().contains("os.system"), "{err}");
}

#[test]
fn unsupported_opcode_is_named_with_offset() {
    let err = refuse(&archive_with_pickle(b"\x80\x02\x81.", &[]), "opcode");
    assert!(matches!(
        err,
        ConvertError::UnsupportedOpcode {
            opcode: 0x81,
            offset: 2,
            ..
        }
    ));
    assert!(
        err.to_string().contains("NEWOBJ") && err.to_string().contains("byte 2"),
        "{err}"
    );
}

#[test]
fn zip_bomb_like_archives_are_refused() {
    // A "compressed" entry declaring 4 GiB: refused without inflating anything.
    let mut zip = archive_with_pickle(
        &common::state_dict_pickle(&[("a", "0", 4, 0, 4)]),
        &[("0", &[0u8; 16])],
    );
    let cd = zip.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    zip[cd + 10] = 8; // deflate
    zip[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
    let err = refuse(&zip, "bomb");
    assert!(
        err.to_string().contains("compressed") && err.to_string().contains("archive/data/0"),
        "{err}"
    );

    // A stored entry claiming far more bytes than the file has.
    let mut zip = archive_with_pickle(
        &common::state_dict_pickle(&[("a", "0", 4, 0, 4)]),
        &[("0", &[0u8; 16])],
    );
    let cd = zip.windows(4).rposition(|w| w == b"PK\x01\x02").unwrap();
    zip[cd + 20..cd + 28].copy_from_slice(&[0xf0, 0xff, 0xff, 0x7f, 0xf0, 0xff, 0xff, 0x7f]);
    let err = refuse(&zip, "huge");
    assert!(err.to_string().contains("archive/data/0"), "{err}");
}

#[test]
fn storage_shorter_than_tensor_is_refused() {
    // Tensor of 4 floats at offset 1 in a storage of 4 floats: needs 20 bytes, has 16.
    let pkl = common::state_dict_pickle(&[("w", "0", 4, 1, 4)]);
    let err = refuse(&archive_with_pickle(&pkl, &[("0", &[0u8; 16])]), "short");
    assert!(matches!(err, ConvertError::InvalidTensor { .. }));
    assert!(
        err.to_string().contains("`w`")
            && err.to_string().contains("20")
            && err.to_string().contains("16"),
        "{err}"
    );
}

#[test]
fn missing_storage_record_is_refused() {
    let pkl = common::state_dict_pickle(&[("w", "7", 4, 0, 4)]);
    let err = refuse(&archive_with_pickle(&pkl, &[]), "missing");
    assert!(matches!(err, ConvertError::MissingStorage { .. }));
    assert!(
        err.to_string().contains("`w`") && err.to_string().contains('7'),
        "{err}"
    );
}

#[test]
fn not_a_checkpoint_says_what_it_is() {
    for (bytes, what) in [
        (&b""[..], "empty"),
        (b"\x93NUMPY\x01\x00", "NumPy"),
        (b"hello world", "neither"),
    ] {
        let err = refuse(bytes, "notckpt");
        assert!(err.to_string().contains(what), "{err}");
    }
    let err = refuse(&common::stored_zip(&[("x/y.txt", b"hi")]), "plainzip");
    assert!(err.to_string().contains("data.pkl"), "{err}");
}

#[test]
fn bad_crc_in_data_pkl_is_refused() {
    let mut zip = archive_with_pickle(
        &common::state_dict_pickle(&[("a", "0", 4, 0, 4)]),
        &[("0", &[0u8; 16])],
    );
    let at = zip.windows(7).position(|w| w == b"storage").unwrap();
    zip[at] = b'S';
    assert!(refuse(&zip, "crc").to_string().contains("CRC"));
}

#[test]
fn existing_output_survives_a_failed_conversion() {
    let dir = common::scratch("keep");
    let src = dir.join("bad.pt");
    std::fs::write(&src, archive_with_pickle(b"\x80\x02cos\nsystem\n.", &[])).unwrap();
    let dst = dir.join("model.safetensors");
    std::fs::write(&dst, b"previous").unwrap();
    assert!(convert_file(&src, &dst, &ConvertOptions::default()).is_err());
    assert_eq!(std::fs::read(&dst).unwrap(), b"previous");
}

fn f32s(bytes: &[u8]) -> Vec<f32> {
    bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The committed fixtures (made by `torch_helper.py fixture`): w = arange(6).reshape(2, 3),
/// t = w.t(), tied = w, b = arange(3) int64, h = [1.5, -2.0] half.
#[test]
fn committed_fixtures_read_and_convert() {
    for name in ["small.pt", "small_legacy.pt"] {
        let path = common::fixture(name);
        let ck = read_checkpoint(&path).unwrap();
        let names: Vec<&str> = ck.names().collect();
        assert_eq!(names, ["w", "t", "tied", "b", "h"], "{name}");
        assert_eq!(
            f32s(&ck.tensor_bytes_by_name("w").unwrap()),
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
        assert_eq!(
            f32s(&ck.tensor_bytes_by_name("t").unwrap()),
            [0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
        );
        assert_eq!(ck.get("t").unwrap().shape(), &[3, 2]);
        let b: Vec<i64> = ck
            .tensor_bytes_by_name("b")
            .unwrap()
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
            .collect();
        assert_eq!(b, [0, 1, 2]);
        assert_eq!(
            ck.tensor_bytes_by_name("h").unwrap().as_ref(),
            &[0x00, 0x3e, 0x00, 0xc0]
        );
        assert_eq!(ck.get("h").unwrap().dtype().to_string(), "F16");

        let out = common::scratch("fixture").join("small.safetensors");
        let report = convert_file(
            &path,
            &out,
            &ConvertOptions {
                checksum: None,
                verify: true,
                progress: None,
            },
        )
        .unwrap();
        // w, tied and t share one storage: w/tied are the same view (one kept), t is strided
        // over the same bytes and lies inside the kept contiguous tensor.
        assert_eq!(report.tensors_written, 3, "{name}: {report:?}");
        assert_eq!(
            report.dropped_shared,
            [
                ("t".to_owned(), "tied".to_owned()),
                ("w".to_owned(), "tied".to_owned())
            ],
            "{name}"
        );
        let bytes = std::fs::read(&out).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let meta = st.metadata().metadata().clone().unwrap();
        assert_eq!(meta["format"], "pt");
        assert_eq!(meta["shared_tensors"], r#"{"t":"tied","w":"tied"}"#);
        assert_eq!(
            f32s(st.tensor("tied").unwrap().data()),
            [0.0, 1.0, 2.0, 3.0, 4.0, 5.0]
        );
    }
}

fn try_everything(bytes: &[u8], dir: &Path) {
    let src = dir.join("mutant.pt");
    std::fs::write(&src, bytes).unwrap();
    if let Ok(ck) = read_checkpoint(&src) {
        for t in ck.tensors() {
            assert_eq!(ck.tensor_bytes(t).len(), t.byte_len());
        }
    }
    let dst = dir.join("mutant.safetensors");
    match convert_file(
        &src,
        &dst,
        &ConvertOptions {
            checksum: None,
            verify: true,
            progress: None,
        },
    ) {
        Ok(_) => assert!(dst.exists()),
        Err(e) => {
            assert!(!e.to_string().is_empty());
            assert!(!dst.exists());
        }
    }
    let _ = std::fs::remove_file(&dst);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random byte edits and truncations of real checkpoints never panic, hang or leave output.
    #[test]
    fn mutations_never_panic(
        legacy in any::<bool>(),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in proptest::option::of(any::<prop::sample::Index>()),
    ) {
        let name = if legacy { "small_legacy.pt" } else { "small.pt" };
        let mut bytes = std::fs::read(common::fixture(name)).unwrap();
        for (at, v) in edits {
            let i = at.index(bytes.len());
            bytes[i] = v;
        }
        if let Some(c) = cut {
            bytes.truncate(c.index(bytes.len()));
        }
        let dir = common::scratch("fuzz");
        try_everything(&bytes, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// Mutations confined to the pickle stream (where the interesting parsing is).
    #[test]
    fn pickle_mutations_never_panic(
        edits in proptest::collection::vec((0usize..600, any::<u8>()), 1..6),
    ) {
        let mut bytes = std::fs::read(common::fixture("small.pt")).unwrap();
        // data.pkl is the first entry; torch writes sizes and CRC in the central directory
        // (the local header defers them to a data descriptor).
        let cd = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
        assert!(bytes[cd + 46..].starts_with(b"small/data.pkl"));
        let name_len = u16::from_le_bytes([bytes[26], bytes[27]]) as usize;
        let extra_len = u16::from_le_bytes([bytes[28], bytes[29]]) as usize;
        let start = 30 + name_len + extra_len;
        let len = u32::from_le_bytes(bytes[cd + 20..cd + 24].try_into().unwrap()) as usize;
        for (at, v) in edits {
            bytes[start + at % len] = v;
        }
        // Fix the CRC so the pickle itself is what gets exercised.
        let crc = common::crc32(&bytes[start..start + len]).to_le_bytes();
        bytes[cd + 16..cd + 20].copy_from_slice(&crc);
        let dir = common::scratch("fuzz-pkl");
        try_everything(&bytes, &dir);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

fn write_folder(dir: &Path, shards: &[(&str, Vec<u8>)], index: &str) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, bytes) in shards {
        std::fs::write(dir.join(name), bytes).unwrap();
    }
    std::fs::write(dir.join("pytorch_model.bin.index.json"), index).unwrap();
}

fn float_shard(names: &[(&str, &str)]) -> Vec<u8> {
    let floats: Vec<u8> = (0..4).flat_map(|i| (i as f32).to_le_bytes()).collect();
    let tensors: Vec<(&str, &str, u8, u8, u8)> =
        names.iter().map(|(n, k)| (*n, *k, 4, 0, 4)).collect();
    let keys: Vec<(&str, &[u8])> = names.iter().map(|(_, k)| (*k, &floats[..])).collect();
    archive_with_pickle(&common::state_dict_pickle(&tensors), &keys)
}

#[test]
fn sharded_folder_converts_and_writes_an_index() {
    let root = common::scratch("folder");
    let input = root.join("in");
    write_folder(
        &input,
        &[
            ("a.bin", float_shard(&[("x", "0"), ("y", "1")])),
            ("b.bin", float_shard(&[("z", "0")])),
        ],
        r#"{"metadata": {"total_size": 48}, "weight_map": {"x": "a.bin", "y": "a.bin", "z": "b.bin"}}"#,
    );
    let out = root.join("out");
    let report = convert_folder(
        &input,
        &out,
        &ConvertOptions {
            checksum: None,
            verify: true,
            progress: None,
        },
    )
    .unwrap();
    assert_eq!(report.tensors_written, 3);
    let names: Vec<String> = report
        .files_written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "model-00001-of-00002.safetensors",
            "model-00002-of-00002.safetensors",
            "model.safetensors.index.json"
        ]
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("model.safetensors.index.json")).unwrap())
            .unwrap();
    assert_eq!(
        index,
        serde_json::json!({"metadata": {"total_size": 48}, "weight_map": {
            "x": "model-00001-of-00002.safetensors", "y": "model-00001-of-00002.safetensors",
            "z": "model-00002-of-00002.safetensors"}})
    );
}

#[test]
fn broken_shard_leaves_no_output_at_all() {
    let root = common::scratch("folder-bad");
    let input = root.join("in");
    let bad = archive_with_pickle(&common::state_dict_pickle(&[("z", "9", 4, 0, 4)]), &[]);
    write_folder(
        &input,
        &[("a.bin", float_shard(&[("x", "0")])), ("b.bin", bad)],
        r#"{"weight_map": {"x": "a.bin", "z": "b.bin"}}"#,
    );
    let out = root.join("out");
    let err = convert_folder(&input, &out, &ConvertOptions::default()).unwrap_err();
    assert!(
        err.to_string().contains("b.bin") && err.to_string().contains("`z`"),
        "{err}"
    );
    assert!(
        !out.exists() || std::fs::read_dir(&out).unwrap().next().is_none(),
        "nothing written"
    );
}

#[test]
fn index_problems_are_named() {
    let root = common::scratch("folder-index");
    let cases = [
        (
            r#"{"weight_map": {"x": "../escape.bin"}}"#,
            "must be a relative path inside the index's folder",
        ),
        (
            r#"{"weight_map": {"x": "a.bin", "ghost": "a.bin"}}"#,
            "`ghost`",
        ),
        (r#"{"weight_map": 3}"#, "weight_map"),
        ("{not json", "not a valid safetensors index"),
    ];
    for (i, (index, want)) in cases.iter().enumerate() {
        let input = root.join(format!("in{i}"));
        write_folder(&input, &[("a.bin", float_shard(&[("x", "0")]))], index);
        let out = root.join(format!("out{i}"));
        let err = convert_folder(&input, &out, &ConvertOptions::default()).unwrap_err();
        assert!(
            err.to_string().contains(want) && err.to_string().contains("index.json"),
            "{err}"
        );
        assert!(!out.join("model.safetensors.index.json").exists());
    }
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = convert_folder(&empty, &root.join("o"), &ConvertOptions::default()).unwrap_err();
    assert!(err.to_string().contains("pytorch_model.bin"), "{err}");
}

#[test]
fn folder_with_single_bin_converts_to_model_safetensors() {
    let root = common::scratch("folder-single");
    let input = root.join("in");
    std::fs::create_dir_all(&input).unwrap();
    std::fs::write(input.join("pytorch_model.bin"), float_shard(&[("x", "0")])).unwrap();
    let report = convert_folder(&input, &root.join("out"), &ConvertOptions::default()).unwrap();
    assert_eq!(report.files_written, [root.join("out/model.safetensors")]);
}

#[test]
fn big_endian_archive_is_byte_swapped() {
    let be: Vec<u8> = [1.0f32, -2.5, 3.25, 8.0]
        .iter()
        .flat_map(|f| f.to_be_bytes())
        .collect();
    let pkl = common::state_dict_pickle(&[("w", "0", 4, 0, 4)]);
    let zip = common::stored_zip(&[
        ("archive/data.pkl", &pkl),
        ("archive/byteorder", b"big"),
        ("archive/data/0", &be),
    ]);
    let dir = common::scratch("be");
    let src = dir.join("be.pt");
    std::fs::write(&src, zip).unwrap();
    let ck = read_checkpoint(&src).unwrap();
    assert!(ck.is_big_endian());
    assert_eq!(
        f32s(&ck.tensor_bytes_by_name("w").unwrap()),
        [1.0, -2.5, 3.25, 8.0]
    );
    let out = dir.join("be.safetensors");
    convert_file(
        &src,
        &out,
        &ConvertOptions {
            checksum: None,
            verify: true,
            progress: None,
        },
    )
    .unwrap();
    let bytes = std::fs::read(&out).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    assert_eq!(f32s(st.tensor("w").unwrap().data()), [1.0, -2.5, 3.25, 8.0]);

    let zip = common::stored_zip(&[
        ("archive/data.pkl", &pkl),
        ("archive/byteorder", b"middle"),
        ("archive/data/0", &be),
    ]);
    let err = refuse(&zip, "byteorder");
    assert!(err.to_string().contains("byteorder"), "{err}");
}

#[test]
fn checkpoint_can_be_shared_across_threads() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<safetensors_convert::TorchCheckpoint>();
    assert_send_sync::<ConvertError>();
}

#[test]
fn missing_output_folder_is_an_error_naming_the_output() {
    let dir = common::scratch("noparent");
    let dst = dir.join("no/such/dir/out.safetensors");
    let err = convert_file(
        &common::fixture("small.pt"),
        &dst,
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("out.safetensors"), "{err}");
    let err = convert_file(
        &common::fixture("small.pt"),
        &common::fixture("small.pt"),
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert!(err.to_string().contains("input checkpoint itself"), "{err}");
}
