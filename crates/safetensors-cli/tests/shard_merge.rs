//! `safetensors shard` and `merge` end to end: the transformers index layout, the size limit,
//! metadata in every shard, and a byte-identical round trip.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::*;
use safetensors::source::file::{Backend, SafeFile};
use safetensors::Dtype;
use serde_json::Value;

// SAFETY: the mmap backend's contract (no in-place writer, no truncation while a file is
// open) holds for every use below: each file lives in this test's own temporary folder and
// is only replaced by rename or, in the tests of that check, shrunk before a read that the
// size check then refuses, never while bytes borrowed from the map are alive.
const MMAP: Backend = unsafe { Backend::mmap() };

fn shard(input: &Path, out: &Path, size: &str) -> Run {
    let limit = format!("--max-shard-size={size}");
    run([
        "shard".as_ref(),
        input.as_os_str(),
        out.as_os_str(),
        limit.as_ref(),
    ])
}

fn merge(input: &Path, out: &Path) -> Run {
    run(["merge".as_ref(), input.as_os_str(), out.as_os_str()])
}

/// name -> (dtype, shape, bytes) of every tensor in a file, read through the core.
fn contents(path: &Path) -> BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)> {
    let file = SafeFile::open(path, Backend::Pread).unwrap();
    file.metadata()
        .iter()
        .map(|(name, info)| {
            (
                name.to_string(),
                (
                    info.dtype,
                    info.shape.clone(),
                    file.tensor_bytes(name).unwrap().into_owned(),
                ),
            )
        })
        .collect()
}

#[test]
fn shards_follow_the_transformers_layout_and_limit() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("model.safetensors");
    // 10 tensors of 16 KiB, a 64 KiB one (over the limit), a small F16 and an I64 scalar.
    let mut tensors = sample_tensors(10, 4096);
    tensors.push(("big".into(), Dtype::F32, vec![128, 128], noise(65536, 1234)));
    write_model(
        &whole,
        &tensors,
        Some(vec![("format", "pt"), ("author", "tests")]),
    );
    let out_dir = dir.path().join("out");
    let out = shard(&whole, &out_dir, "40KiB");
    assert_eq!(out.code, 0, "{}", out.all());

    let index_text = std::fs::read_to_string(out_dir.join("model.safetensors.index.json")).unwrap();
    assert!(
        index_text.starts_with("{\n  \"metadata\": {\n    \"total_size\": "),
        "{index_text}"
    );
    assert!(index_text.ends_with("}\n"));
    let index: Value = serde_json::from_str(&index_text).unwrap();
    let weight_map = index["weight_map"].as_object().unwrap();
    assert_eq!(weight_map.len(), tensors.len());
    let total: usize = tensors.iter().map(|t| t.3.len()).sum();
    assert_eq!(index["metadata"]["total_size"].as_u64(), Some(total as u64));

    let mut files: Vec<&str> = weight_map.values().map(|v| v.as_str().unwrap()).collect();
    files.sort();
    files.dedup();
    let count = files.len();
    assert!(count >= 5, "{files:?}");
    for (i, file) in files.iter().enumerate() {
        assert_eq!(
            *file,
            format!("model-{:05}-of-{count:05}.safetensors", i + 1)
        );
        let path = out_dir.join(file);
        let safe = SafeFile::open(&path, MMAP).unwrap();
        let meta = safe.metadata();
        // __metadata__ kept, in order, in every shard.
        assert_eq!(
            meta.metadata_ordered().unwrap(),
            [
                ("format".to_string(), "pt".to_string()),
                ("author".to_string(), "tests".to_string())
            ]
        );
        let bytes: usize = meta
            .iter()
            .map(|(_, info)| info.data_offsets.1 - info.data_offsets.0)
            .sum();
        let names: Vec<&str> = meta.iter().map(|(n, _)| n).collect();
        if names.contains(&"big") {
            assert_eq!(names, ["big"], "an oversized tensor is alone in its shard");
        } else {
            assert!(bytes <= 40 * 1024, "{file} holds {bytes} bytes");
        }
        for name in names {
            assert_eq!(
                weight_map[name], *file,
                "weight_map points at the shard holding {name}"
            );
        }
    }
    // Nothing besides the shards and the index (no temporary files left).
    let mut listing: Vec<String> = std::fs::read_dir(&out_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    listing.sort();
    let mut expected: Vec<String> = files.iter().map(|f| f.to_string()).collect();
    expected.push("model.safetensors.index.json".into());
    expected.sort();
    assert_eq!(listing, expected);
}

#[test]
fn shard_then_merge_round_trips_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("model.safetensors");
    let mut tensors = sample_tensors(7, 2048);
    tensors.push((
        "mask".into(),
        Dtype::BOOL,
        vec![3, 3],
        vec![1, 0, 1, 0, 1, 0, 1, 0, 1],
    ));
    tensors.push(("empty".into(), Dtype::BF16, vec![0, 5], vec![]));
    tensors.push((
        "ünïcode.name".into(),
        Dtype::U8,
        vec![5],
        vec![9, 8, 7, 6, 5],
    ));
    write_model(&whole, &tensors, Some(vec![("format", "pt")]));

    for (size, folder) in [("10KB", "small"), ("1GB", "one"), ("1", "each")] {
        let shards = dir.path().join(folder);
        let out = shard(&whole, &shards, size);
        assert_eq!(out.code, 0, "{}", out.all());
        assert_eq!(out.stderr, "", "no progress bar when not on a terminal");
        let merged = dir.path().join(format!("merged-{folder}.safetensors"));
        let out = merge(&shards, &merged);
        assert_eq!(out.code, 0, "{}", out.all());
        assert_eq!(out.stderr, "", "no progress bar when not on a terminal");
        assert_eq!(contents(&merged), contents(&whole), "{folder}");
        // The core lays tensors out canonically, so the whole file comes back identical.
        assert_eq!(
            std::fs::read(&merged).unwrap(),
            std::fs::read(&whole).unwrap(),
            "{folder}"
        );
        // The index file itself is accepted too.
        let again = dir.path().join(format!("again-{folder}.safetensors"));
        let out = merge(&shards.join("model.safetensors.index.json"), &again);
        assert_eq!(out.code, 0, "{}", out.all());
        assert_eq!(
            std::fs::read(&again).unwrap(),
            std::fs::read(&whole).unwrap()
        );
    }
    let one: Vec<_> = std::fs::read_dir(dir.path().join("one")).unwrap().collect();
    assert_eq!(one.len(), 2, "1GB: a single shard plus the index");
    let each = std::fs::read_dir(dir.path().join("each")).unwrap().count();
    assert_eq!(
        each,
        tensors.len() + 1,
        "a 1-byte limit: one shard per tensor, plus the index"
    );
}

#[test]
fn shard_refuses_bad_sizes_and_sharded_input() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("m.safetensors");
    write_model(&whole, &sample_tensors(2, 16), None);
    for bad in ["0", "5XB", "-1GB", "lots"] {
        let out = shard(&whole, &dir.path().join("x"), bad);
        assert_eq!(out.code, 2, "{bad}: {}", out.all());
        assert!(out.stderr.contains(&format!("'{bad}'")), "{}", out.stderr);
        assert_eq!(out.stderr.lines().count(), 1, "{}", out.stderr);
    }
    let shards = dir.path().join("s");
    assert_eq!(shard(&whole, &shards, "70").code, 0);
    // Re-sharding into the same folder with another count warns about the old shards.
    let out = shard(&whole, &shards, "5GB");
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr.contains("shards from an earlier run")
            && out.stderr.contains("model-00004-of-00004.safetensors"),
        "{}",
        out.stderr
    );
    let out = shard(&shards, &dir.path().join("t"), "5GB");
    assert_one_line_error(&out, "already sharded");
    let out = shard(
        &vectors().join("invalid/overlap.safetensors"),
        &dir.path().join("u"),
        "5GB",
    );
    assert_one_line_error(&out, "overlap.safetensors");
    assert!(
        !dir.path().join("u").exists(),
        "nothing written for an invalid input"
    );
}

#[test]
fn merge_refuses_an_index_that_disagrees_with_its_shards() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("m.safetensors");
    write_model(&whole, &sample_tensors(3, 16), None);
    let shards = dir.path().join("s");
    assert_eq!(shard(&whole, &shards, "70").code, 0);
    let index_path = shards.join("model.safetensors.index.json");
    let mut index: Value =
        serde_json::from_str(&std::fs::read_to_string(&index_path).unwrap()).unwrap();
    let first = index["weight_map"]["layer.0.weight"].clone();
    assert!(first.as_str().unwrap().starts_with("model-0000"), "{first}");
    index["weight_map"]["missing.tensor"] = first;
    std::fs::write(&index_path, index.to_string()).unwrap();
    let out_file = dir.path().join("merged.safetensors");
    let out = merge(&shards, &out_file);
    assert_one_line_error(&out, "`missing.tensor`");
    assert!(!out_file.exists());

    let out = merge(&whole, &out_file);
    assert_one_line_error(&out, "not a sharded model");
    let out = merge(&dir.path().join("nowhere"), &out_file);
    assert_eq!(out.code, 2);
}

#[test]
fn merge_warns_when_shards_carry_different_metadata() {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        &dir.path().join("a.safetensors"),
        &[("x".into(), Dtype::U8, vec![1], vec![1])],
        Some(vec![("format", "pt")]),
    );
    write_model(
        &dir.path().join("b.safetensors"),
        &[("y".into(), Dtype::U8, vec![1], vec![2])],
        Some(vec![("format", "np")]),
    );
    let index = r#"{"metadata": {"total_size": 2}, "weight_map": {"x": "a.safetensors", "y": "b.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let merged = dir.path().join("merged.safetensors");
    let out = merge(dir.path(), &merged);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stderr
            .contains("keeping the __metadata__ of a.safetensors; it differs in b.safetensors"),
        "{}",
        out.stderr
    );
    let file = SafeFile::open(&merged, Backend::Pread).unwrap();
    assert_eq!(
        file.metadata().metadata_ordered().unwrap(),
        [("format".to_string(), "pt".to_string())]
    );
    assert_eq!(file.metadata().len(), 2);
}

/// On a terminal (a pseudo-terminal from util-linux `script`) the progress bar is drawn.
#[test]
fn progress_bar_is_drawn_on_a_terminal() {
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("note: `script` (util-linux) not found, skipping the terminal progress bar test");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("m.safetensors");
    write_model(&whole, &sample_tensors(4, 4096), None);
    let command = format!(
        "{} shard {} {} --max-shard-size 20KB",
        env!("CARGO_BIN_EXE_safetensors"),
        whole.display(),
        dir.path().join("s").display()
    );
    let out = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(
        text.contains("writing model-0000"),
        "no progress bar drawn: {text:?}"
    );
    assert!(text.contains("wrote 4 shards"), "{text}");
}
