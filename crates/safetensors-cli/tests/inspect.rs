//! `safetensors inspect` end to end on local files: the table, `--json` against the vectors'
//! manifest, sharded folders, and errors.

mod common;

use common::*;
use safetensors::Dtype;
use serde_json::Value;

#[test]
fn table_lists_every_tensor_with_counts_and_offsets() {
    let path = vectors().join("valid/gpt2_block.safetensors");
    let out = run(["inspect".as_ref(), path.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let text = &out.stdout;
    // One row per tensor: name, dtype, shape, parameters, bytes, offsets.
    let row = text
        .lines()
        .find(|l| l.starts_with("attn.c_attn.weight"))
        .expect("row for attn.c_attn.weight");
    let cells: Vec<&str> = row
        .split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect();
    assert_eq!(
        cells,
        [
            "attn.c_attn.weight",
            "F32",
            "[768, 2304]",
            "1,769,472",
            "7,077,888",
            "9216..7087104"
        ]
    );
    assert!(text.contains("ln_1.weight"), "{text}");
    assert!(text.contains("attn.c_attn.bias"), "{text}");
    // Totals by dtype.
    let total = text
        .lines()
        .find(|l| l.starts_with("total"))
        .expect("total row");
    assert!(
        total.contains("1,772,544") && total.contains("7,090,176"),
        "{total}"
    );
    assert!(text.contains("Metadata (__metadata__): none"), "{text}");
}

#[test]
fn table_shows_metadata_and_per_dtype_totals() {
    let out = run([
        "inspect".as_ref(),
        vectors().join("valid/metadata.safetensors").as_os_str(),
    ]);
    assert_eq!(out.code, 0);
    assert!(out.stdout.contains("  format: pt\n"), "{}", out.stdout);
    assert!(out.stdout.contains("  note: héllo ✓\n"), "{}", out.stdout);

    let out = run([
        "inspect".as_ref(),
        vectors().join("valid/mixed_align.safetensors").as_os_str(),
    ]);
    assert_eq!(out.code, 0);
    let manifest = manifest();
    let tensors = manifest["valid"]["mixed_align"]["tensors"]
        .as_object()
        .unwrap();
    let mut per_dtype = std::collections::BTreeMap::<String, u64>::new();
    for info in tensors.values() {
        let params: u64 = info["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap())
            .product();
        *per_dtype
            .entry(info["dtype"].as_str().unwrap().to_string())
            .or_default() += params;
    }
    let section = out
        .stdout
        .split("Parameters by dtype:")
        .nth(1)
        .expect("totals section");
    for (dtype, params) in per_dtype {
        let line = section
            .lines()
            .find(|l| l.starts_with(&format!("{dtype} ")))
            .unwrap_or_else(|| panic!("{dtype} row"));
        let cells: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(cells[2].replace(',', ""), params.to_string(), "{line}");
    }
}

/// Every valid vector: `--json` reports exactly the manifest's tensors, sizes and metadata.
#[test]
fn json_matches_the_manifest_for_every_valid_vector() {
    let manifest = manifest();
    let files = vector_files("valid");
    assert!(files.len() >= 30, "vectors present");
    for path in files {
        let stem = path.file_stem().unwrap().to_str().unwrap().to_string();
        let expected = &manifest["valid"][&stem];
        let out = run(["inspect".as_ref(), path.as_os_str(), "--json".as_ref()]);
        assert_eq!(out.code, 0, "{stem}: {}", out.stderr);
        let report: Value =
            serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{stem}: {e}"));
        assert_eq!(report["sharded"], false);
        let file = &report["files"][0];
        assert_eq!(file["file_size"], expected["file_size"], "{stem}");
        assert_eq!(file["header_len"], expected["header_len"], "{stem}");
        assert_eq!(file["metadata"], expected["metadata"], "{stem}");
        let want = expected["tensors"].as_object().unwrap();
        let got = report["tensors"].as_array().unwrap();
        assert_eq!(got.len(), want.len(), "{stem}");
        let mut previous_end = 0;
        for tensor in got {
            let name = tensor["name"].as_str().unwrap();
            let info = &want[name];
            assert_eq!(tensor["dtype"], info["dtype"], "{stem}/{name}");
            assert_eq!(tensor["shape"], info["shape"], "{stem}/{name}");
            assert_eq!(
                tensor["data_offsets"], info["data_offsets"],
                "{stem}/{name}"
            );
            let (begin, end) = (
                info["data_offsets"][0].as_u64().unwrap(),
                info["data_offsets"][1].as_u64().unwrap(),
            );
            assert_eq!(tensor["bytes"].as_u64(), Some(end - begin), "{stem}/{name}");
            let params: u64 = info["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap())
                .product();
            assert_eq!(tensor["parameters"].as_u64(), Some(params), "{stem}/{name}");
            assert_eq!(
                begin, previous_end,
                "{stem}: tensors are listed in data order"
            );
            previous_end = end;
        }
        let total_bytes: u64 = got.iter().map(|t| t["bytes"].as_u64().unwrap()).sum();
        assert_eq!(
            report["totals"]["bytes"].as_u64(),
            Some(total_bytes),
            "{stem}"
        );
        assert_eq!(
            report["totals"]["tensors"].as_u64(),
            Some(want.len() as u64),
            "{stem}"
        );
    }
}

#[test]
fn sharded_folder_reads_every_shard_header() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole.safetensors");
    write_model(
        &whole,
        &sample_tensors(6, 4096),
        Some(vec![("format", "pt")]),
    );
    let shards = dir.path().join("sharded");
    let out = run([
        "shard".as_ref(),
        whole.as_os_str(),
        shards.as_os_str(),
        "--max-shard-size".as_ref(),
        "40KB".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);

    let single: Value = serde_json::from_str(
        &run(["inspect".as_ref(), whole.as_os_str(), "--json".as_ref()]).stdout,
    )
    .unwrap();
    for location in [shards.clone(), shards.join("model.safetensors.index.json")] {
        let out = run(["inspect".as_ref(), location.as_os_str(), "--json".as_ref()]);
        assert_eq!(out.code, 0, "{}", out.stderr);
        let report: Value = serde_json::from_str(&out.stdout).unwrap();
        assert_eq!(report["sharded"], true);
        assert_eq!(
            report["warnings"].as_array().unwrap().len(),
            0,
            "{}",
            out.stdout
        );
        let files = report["files"].as_array().unwrap();
        assert!(files.len() >= 3, "{files:?}");
        for file in files {
            assert_eq!(file["metadata"]["format"], "pt");
        }
        assert_eq!(report["totals"], single["totals"]);
        assert_eq!(
            report["index"]["metadata"]["total_size"],
            single["totals"]["bytes"]
        );
        let mut names: Vec<&str> = report["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        names.sort();
        let mut want: Vec<&str> = single["tensors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        want.sort();
        assert_eq!(names, want);
    }

    let table = run(["inspect".as_ref(), shards.as_os_str()]);
    assert_eq!(table.code, 0);
    assert!(
        table.stdout.starts_with("Sharded model: "),
        "{}",
        table.stdout
    );
    assert!(
        table.stdout.contains("File: model-00001-of-"),
        "{}",
        table.stdout
    );
}

#[test]
fn sharded_index_disagreeing_with_shards_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    write_model(
        &dir.path().join("a.safetensors"),
        &[("x".into(), Dtype::U8, vec![4], vec![1, 2, 3, 4])],
        None,
    );
    let index = r#"{"metadata": {"total_size": 999}, "weight_map": {"x": "a.safetensors", "ghost": "a.safetensors"}}"#;
    std::fs::write(dir.path().join("model.safetensors.index.json"), index).unwrap();
    let out = run([
        "inspect".as_ref(),
        dir.path().as_os_str(),
        "--json".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let warnings: Vec<&str> = report["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w.as_str().unwrap())
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:?}");
    assert!(
        warnings[0].contains("`ghost`") && warnings[0].contains("a.safetensors"),
        "{warnings:?}"
    );
    assert!(
        warnings[1].contains("total_size 999") && warnings[1].contains(" 4 bytes"),
        "{warnings:?}"
    );
    assert!(
        out.stderr
            .contains("safetensors: warning: the index maps tensor `ghost`"),
        "{}",
        out.stderr
    );
}

#[test]
fn errors_are_one_line_naming_the_file() {
    let out = run(["inspect", "/nonexistent/model.safetensors"]);
    assert_one_line_error(&out, "/nonexistent/model.safetensors");
    let bad = vectors().join("invalid/hole.safetensors");
    let out = run(["inspect".as_ref(), bad.as_os_str()]);
    assert_one_line_error(&out, "hole.safetensors");
    assert!(out.stderr.contains("b"), "{}", out.stderr);
    let dir = tempfile::tempdir().unwrap();
    let out = run(["inspect".as_ref(), dir.path().as_os_str()]);
    assert_one_line_error(
        &out,
        "neither model.safetensors.index.json nor model.safetensors",
    );
    std::fs::write(
        dir.path().join("model.safetensors.index.json"),
        "{\"weight_map\": {\"a\": \"../x.safetensors\"}}",
    )
    .unwrap();
    let out = run(["inspect".as_ref(), dir.path().as_os_str()]);
    assert_one_line_error(&out, "../x.safetensors");
}
