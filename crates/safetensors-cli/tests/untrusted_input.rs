//! Untrusted input in every entry point of the CLI that takes a file, a folder or an index
//! json (`inspect`, `validate`, `merge`, `shard`, `convert`, `diff`): a malformed input
//! gets a one-line error naming it, nothing is written, and an existing output is left
//! byte for byte as it was.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use common::*;

/// Every file below `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.insert(path.clone(), std::fs::read(&path).unwrap());
            }
        }
    }
    out
}

/// A sharded model folder whose index is `index` (shards are valid files).
fn sharded_folder(root: &Path, index: &str) -> PathBuf {
    let dir = root.join("model");
    std::fs::create_dir_all(&dir).unwrap();
    write_model(
        &dir.join("model-00001-of-00002.safetensors"),
        &sample_tensors(2, 16)[..2],
        None,
    );
    write_model(
        &dir.join("model-00002-of-00002.safetensors"),
        &sample_tensors(3, 16)[2..3],
        None,
    );
    std::fs::write(dir.join("model.safetensors.index.json"), index).unwrap();
    dir
}

const GOOD_MAP: &str = r#""layer.0.weight":"model-00001-of-00002.safetensors","layer.1.weight":"model-00001-of-00002.safetensors","layer.2.weight":"model-00002-of-00002.safetensors""#;

/// Malformed indexes, each with a word its error must contain.
fn bad_indexes() -> Vec<(String, &'static str)> {
    let mut out: Vec<(String, &'static str)> = vec![
        ("not json at all".into(), "index"),
        ("".into(), "index"),
        ("[]".into(), "index"),
        ("{}".into(), "weight_map"),
        (r#"{"weight_map": []}"#.into(), "index"),
        (r#"{"weight_map": {"layer.0.weight": 1}}"#.into(), "index"),
        (r#"{"weight_map": {"a": "../outside.safetensors"}}"#.into(), "outside"),
        (r#"{"weight_map": {"a": "/etc/passwd"}}"#.into(), "/etc/passwd"),
        (r#"{"weight_map": {"a": "http://evil/x.safetensors"}}"#.into(), "evil"),
        (r#"{"weight_map": {"a": "missing.safetensors"}}"#.into(), "missing.safetensors"),
        (
            r#"{"weight_map": {"layer.0.weight": "model-00001-of-00002.safetensors", "layer.0.weight": "model-00002-of-00002.safetensors"}}"#.into(),
            "layer.0.weight",
        ),
        (format!(r#"{{"weight_map": {{{GOOD_MAP}, "ghost": "model-00002-of-00002.safetensors"}}}}"#), "ghost"),
        (format!(r#"{{"weight_map": {{{GOOD_MAP}}}"#), "index"),
        (format!("{}{{\"weight_map\": {{}}}}{}", "[".repeat(1000), "]".repeat(1000)), "index"),
    ];
    // A tensor the shards hold but the index forgets.
    out.push((
        r#"{"weight_map": {"layer.0.weight": "model-00001-of-00002.safetensors", "layer.2.weight": "model-00002-of-00002.safetensors"}}"#.into(),
        "layer.1.weight",
    ));
    out
}

#[test]
fn the_good_folder_is_accepted() {
    // The fixture itself is valid, so each refusal below is the malformed part's doing.
    let root = tempfile::tempdir().unwrap();
    let dir = sharded_folder(root.path(), &format!(r#"{{"weight_map": {{{GOOD_MAP}}}}}"#));
    let out = run([
        "merge".as_ref(),
        dir.as_os_str(),
        root.path().join("m.safetensors").as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(run(["inspect".as_ref(), dir.as_os_str()]).code, 0);
}

#[test]
fn malformed_indexes_are_refused_by_merge_inspect_and_validate() {
    for (index, needle) in bad_indexes() {
        let root = tempfile::tempdir().unwrap();
        let dir = sharded_folder(root.path(), &index);
        let existing = root.path().join("existing.safetensors");
        write_model(&existing, &sample_tensors(1, 8), None);
        let fresh = root.path().join("fresh.safetensors");
        let before = snapshot(root.path());

        let out = run(["merge".as_ref(), dir.as_os_str(), fresh.as_os_str()]);
        assert_one_line_error(&out, needle);
        let out = run(["merge".as_ref(), dir.as_os_str(), existing.as_os_str()]);
        assert_one_line_error(&out, needle);
        // inspect reports: an error, or (an index that disagrees with its shards) a warning.
        let out = run(["inspect".as_ref(), dir.as_os_str()]);
        let flagged = out.code == 2 || (out.code == 0 && out.stderr.contains(needle));
        assert!(flagged, "inspect {index:.80}: {}", out.all());
        let out = run(["validate".as_ref(), dir.as_os_str()]);
        assert_ne!(out.code, 0, "validate {index:.80}: {}", out.all());

        assert_eq!(snapshot(root.path()), before, "{index:.80}: files changed");
    }
}

#[test]
fn malformed_shards_are_refused_without_output() {
    for bad in vector_files("invalid") {
        let root = tempfile::tempdir().unwrap();
        let dir = sharded_folder(root.path(), &format!(r#"{{"weight_map": {{{GOOD_MAP}}}}}"#));
        std::fs::copy(&bad, dir.join("model-00002-of-00002.safetensors")).unwrap();
        let existing = root.path().join("existing.safetensors");
        write_model(&existing, &sample_tensors(1, 8), None);
        let before = snapshot(root.path());
        let out = run(["merge".as_ref(), dir.as_os_str(), existing.as_os_str()]);
        assert_one_line_error(&out, "model-00002-of-00002.safetensors");
        let out = run([
            "shard".as_ref(),
            bad.as_os_str(),
            root.path().join("s").as_os_str(),
        ]);
        assert_eq!(out.code, 2, "{}", out.all());
        let out = run(["diff".as_ref(), bad.as_os_str(), existing.as_os_str()]);
        assert_eq!(out.code, 2, "{}", out.all());
        assert_eq!(
            snapshot(root.path()),
            before,
            "{}: files changed",
            bad.display()
        );
    }
}

#[test]
fn a_shard_truncated_or_replaced_by_a_folder_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let dir = sharded_folder(root.path(), &format!(r#"{{"weight_map": {{{GOOD_MAP}}}}}"#));
    let shard = dir.join("model-00002-of-00002.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    let out_file = root.path().join("out.safetensors");
    for cut in [0, 4, 8, 20, bytes.len() - 1] {
        std::fs::write(&shard, &bytes[..cut]).unwrap();
        let out = run(["merge".as_ref(), dir.as_os_str(), out_file.as_os_str()]);
        assert_one_line_error(&out, "model-00002-of-00002.safetensors");
        assert!(!out_file.exists());
    }
    std::fs::remove_file(&shard).unwrap();
    std::fs::create_dir(&shard).unwrap();
    let out = run(["merge".as_ref(), dir.as_os_str(), out_file.as_os_str()]);
    assert_one_line_error(&out, "model-00002-of-00002.safetensors");
    assert!(!out_file.exists());
}

#[test]
fn malformed_pytorch_indexes_are_refused_by_convert() {
    for (index, _) in bad_indexes() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("pt");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("pytorch_model.bin.index.json"), &index).unwrap();
        std::fs::write(
            dir.join("model-00001-of-00002.safetensors"),
            b"not a checkpoint",
        )
        .unwrap();
        let before = snapshot(root.path());
        let out_dir = root.path().join("out");
        let out = run(["convert".as_ref(), dir.as_os_str(), out_dir.as_os_str()]);
        assert_eq!(out.code, 2, "{index:.80}: {}", out.all());
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
        assert!(
            !out_dir.exists() || snapshot(&out_dir).is_empty(),
            "{index:.80}: output written"
        );
        assert_eq!(snapshot(root.path()), before, "{index:.80}: files changed");
    }
}

#[test]
fn garbage_files_are_refused_by_every_file_command() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good.safetensors");
    write_model(&good, &sample_tensors(1, 8), None);
    let mut garbage = vec![];
    for (name, bytes) in [
        ("empty.safetensors", vec![]),
        ("noise.safetensors", noise(4096, 7)),
        ("huge_len.safetensors", u64::MAX.to_le_bytes().to_vec()),
        ("checkpoint.bin", b"\x80\x02garbage pickle".to_vec()),
        ("zip.bin", b"PK\x03\x04 truncated zip".to_vec()),
    ] {
        let p = root.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        garbage.push(p);
    }
    let before = snapshot(root.path());
    for bad in &garbage {
        let out_file = root.path().join("out.safetensors");
        for args in [
            vec!["inspect".as_ref(), bad.as_os_str()],
            vec![
                "shard".as_ref(),
                bad.as_os_str(),
                root.path().join("s").as_os_str(),
            ],
            vec!["merge".as_ref(), bad.as_os_str(), out_file.as_os_str()],
            vec!["diff".as_ref(), bad.as_os_str(), good.as_os_str()],
            vec!["convert".as_ref(), bad.as_os_str(), out_file.as_os_str()],
            vec!["convert".as_ref(), bad.as_os_str(), good.as_os_str()],
        ] {
            let out = run(&args);
            assert_eq!(out.code, 2, "{args:?}: {}", out.all());
            assert_eq!(out.stderr.lines().count(), 1, "{args:?}: {}", out.stderr);
        }
        let out = run(["validate".as_ref(), bad.as_os_str()]);
        assert_ne!(out.code, 0);
    }
    assert_eq!(snapshot(root.path()), before, "files changed");
}

/// A hostile header of millions of dimensions or a multi-megabyte name: `inspect` and
/// `validate` say what is wrong in a few hundred bytes instead of quoting the input back.
#[test]
fn errors_stay_small_whatever_the_input() {
    let dir = tempfile::tempdir().unwrap();
    let long = "n".repeat(5_000_000);
    let dims = vec!["2"; 2_000_000].join(",");
    let cases = [
        (
            format!(r#"{{"w":{{"dtype":"F32","shape":[{dims}],"data_offsets":[0,4]}}}}"#),
            "2000000 dimensions",
        ),
        (
            format!(r#"{{"{long}":{{"dtype":"F32"}}}}"#),
            "5000000 bytes",
        ),
    ];
    for (i, (header, says)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("hostile{i}.safetensors"));
        let mut raw = header.clone().into_bytes();
        raw.resize(raw.len().next_multiple_of(8), b' ');
        let mut file = (raw.len() as u64).to_le_bytes().to_vec();
        file.extend(raw);
        file.extend([0u8; 4]);
        std::fs::write(&path, file).unwrap();
        for command in ["inspect", "validate"] {
            let out = run([command, path.to_str().unwrap()]);
            assert_ne!(out.code, 0);
            assert!(
                out.all().len() < 2048,
                "{command}: {} bytes",
                out.all().len()
            );
            assert!(out.all().contains(says), "{command}: {}", out.all());
        }
    }
}
