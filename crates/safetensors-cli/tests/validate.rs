//! `safetensors validate` end to end: every valid vector passes, every invalid vector fails
//! with a message naming the file and the problem, and sharded folders are cross-checked.

mod common;

use common::*;
use safetensors::Dtype;

#[test]
fn every_valid_vector_is_valid() {
    let files = vector_files("valid");
    let out =
        run(std::iter::once("validate".into())
            .chain(files.iter().map(|p| p.as_os_str().to_owned())));
    assert_eq!(out.code, 0, "{}", out.all());
    assert_eq!(
        out.stdout.lines().filter(|l| l.contains(": OK (")).count(),
        files.len(),
        "{}",
        out.stdout
    );
    assert_eq!(out.stderr, "");
}

/// What each invalid vector's message must mention (any one of the alternatives, case
/// insensitive) and the tensor it must name, if the problem is in one tensor.
fn expectation(stem: &str) -> (&'static [&'static str], Option<&'static str>) {
    match stem {
        "empty_file" => (&["too small", "0 bytes"], None),
        "short_len" => (&["too small", "3 bytes"], None),
        "header_len_huge" => (&["too large", "9223372036854775808"], None),
        "header_len_over_limit" => (&["too large", "100000001"], None),
        "header_len_past_eof" => (&["past the end", "header length"], None),
        "not_json" => (&["json"], None),
        "not_utf8" => (&["utf-8", "utf8"], None),
        "json_array" => (&["object"], None),
        "hole" => (&["hole", "gap"], Some("b")),
        "overlap" => (&["overlap"], Some("b")),
        "trailing_bytes" => (&["trailing", "not fully covered"], None),
        "offset_past_eof" => (
            &["past the end", "end of the data", "not fully covered"],
            Some("a"),
        ),
        "size_mismatch" => (&["12"], Some("a")),
        "begin_after_end" => (&["offset"], Some("a")),
        "unknown_dtype" => (&["F128"], Some("a")),
        "lowercase_dtype" => (&["f32"], Some("a")),
        "negative_dim" => (&["-1"], Some("a")),
        "float_dim" => (&["1.5"], Some("a")),
        "shape_overflow" => (&["overflow"], Some("a")),
        "missing_offsets" => (&["data_offsets"], Some("a")),
        "metadata_not_string" => (&["metadata"], None),
        "metadata_not_object" => (&["metadata"], None),
        "duplicate_key" => (&["more than once", "duplicate", "twice"], Some("a")),
        "f4_odd_bytes" => (&["F4"], Some("a")),
        other => panic!("no expectation written for invalid vector {other}: add one"),
    }
}

#[test]
fn every_invalid_vector_is_rejected_naming_file_and_problem() {
    let files = vector_files("invalid");
    assert!(files.len() >= 20);
    for path in &files {
        let stem = path.file_stem().unwrap().to_str().unwrap();
        let out = run(["validate".as_ref(), path.as_os_str()]);
        assert_eq!(out.code, 1, "{stem}: {}", out.all());
        let line = out.stderr.lines().next().unwrap_or_default();
        assert!(
            line.contains(&format!("{stem}.safetensors: INVALID: ")),
            "{stem}: {line}"
        );
        let (words, tensor) = expectation(stem);
        let lower = line.to_lowercase();
        assert!(
            words.iter().any(|w| lower.contains(&w.to_lowercase())),
            "{stem}: none of {words:?} in: {line}"
        );
        if let Some(t) = tensor {
            let named = [format!("\"{t}\""), format!("`{t}`"), format!("'{t}'")];
            assert!(
                named.iter().any(|n| line.contains(n.as_str())),
                "{stem}: tensor {t} not named in: {line}"
            );
        }
    }
}

#[test]
fn one_invalid_file_among_valid_ones_fails_the_run() {
    let good = vectors().join("valid/scalar.safetensors");
    let bad = vectors().join("invalid/overlap.safetensors");
    let bad2 = vectors().join("invalid/hole.safetensors");
    let out = run([
        "validate".as_ref(),
        good.as_os_str(),
        bad.as_os_str(),
        bad2.as_os_str(),
    ]);
    assert_eq!(out.code, 1);
    assert!(
        out.stdout.contains("scalar.safetensors: OK"),
        "{}",
        out.stdout
    );
    assert!(
        out.stderr.contains("overlap.safetensors: INVALID"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hole.safetensors: INVALID"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("2 of 3 given paths invalid"),
        "{}",
        out.stderr
    );
}

#[test]
fn sharded_folder_checks_shards_and_index() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.safetensors");
    write_model(&whole, &sample_tensors(4, 1024), None);
    let shards = dir.path().join("shards");
    let out = run([
        "shard".as_ref(),
        whole.as_os_str(),
        shards.as_os_str(),
        "--max-shard-size".as_ref(),
        "5000".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let out = run(["validate".as_ref(), shards.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("index consistent"), "{}", out.stdout);

    // A tensor the index does not know about, in a shard: invalid.
    let index_path = shards.join("model.safetensors.index.json");
    let index = std::fs::read_to_string(&index_path).unwrap();
    write_model(
        &shards.join("model-00001-of-00004.safetensors"),
        &[("intruder".into(), Dtype::U8, vec![1], vec![0])],
        None,
    );
    let out = run(["validate".as_ref(), shards.as_os_str()]);
    assert_eq!(out.code, 1, "{}", out.all());
    assert!(out.stderr.contains("`intruder`"), "{}", out.stderr);

    // An index that is not JSON: invalid, named.
    std::fs::write(&index_path, &index[..index.len() / 2]).unwrap();
    let out = run(["validate".as_ref(), shards.as_os_str()]);
    assert_eq!(out.code, 1);
    assert!(
        out.stderr.contains("not a valid safetensors index"),
        "{}",
        out.stderr
    );
}
