//! `safetensors diff` end to end: identical files (exit 0), every kind of difference
//! (exit 1), the max absolute difference per float dtype, and errors (exit 2).

mod common;

use std::path::Path;

use common::*;
use safetensors::Dtype;

fn diff(a: &Path, b: &Path) -> Run {
    run(["diff".as_ref(), a.as_os_str(), b.as_os_str()])
}

#[test]
fn identical_models_exit_zero() {
    let path = vectors().join("valid/all_dtypes.safetensors");
    let out = diff(&path, &path);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.starts_with("identical: "), "{}", out.stdout);

    // Same tensors and metadata written in a different header order: still identical.
    let out = diff(
        &vectors().join("valid/unsorted_header.safetensors"),
        &vectors().join("valid/unsorted_header.safetensors"),
    );
    assert_eq!(out.code, 0);

    // A sharded copy of a file is identical to it.
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("m.safetensors");
    write_model(&whole, &sample_tensors(5, 64), Some(vec![("format", "pt")]));
    let shards = dir.path().join("shards");
    let limit = "--max-shard-size=300";
    assert_eq!(
        run([
            "shard".as_ref(),
            whole.as_os_str(),
            shards.as_os_str(),
            limit.as_ref()
        ])
        .code,
        0
    );
    let out = diff(&whole, &shards);
    assert_eq!(out.code, 0, "{}", out.all());
}

#[test]
fn reports_names_dtypes_shapes_and_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.safetensors");
    let b = dir.path().join("b.safetensors");
    write_model(
        &a,
        &[
            ("same".into(), Dtype::U8, vec![2], vec![1, 2]),
            ("only_a".into(), Dtype::U8, vec![1], vec![0]),
            ("retyped".into(), Dtype::I16, vec![1], vec![0, 0]),
            ("reshaped".into(), Dtype::U8, vec![2, 2], vec![0; 4]),
            (
                "counts".into(),
                Dtype::I32,
                vec![3],
                [1i32, 2, 3].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ],
        Some(vec![("format", "pt"), ("gone", "x")]),
    );
    write_model(
        &b,
        &[
            ("same".into(), Dtype::U8, vec![2], vec![1, 2]),
            ("only_b".into(), Dtype::F32, vec![2, 1], vec![0; 8]),
            ("retyped".into(), Dtype::U16, vec![1], vec![0, 0]),
            ("reshaped".into(), Dtype::U8, vec![4], vec![0; 4]),
            (
                "counts".into(),
                Dtype::I32,
                vec![3],
                [1i32, 5, 6].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ],
        Some(vec![("format", "np"), ("new", "y")]),
    );
    let out = diff(&a, &b);
    assert_eq!(out.code, 1, "{}", out.all());
    let lines: Vec<&str> = out.stdout.lines().collect();
    for expected in [
        "only in A: only_a (U8 [1])",
        "only in B: only_b (F32 [2, 1])",
        "dtype differs: retyped: I16 in A, U16 in B",
        "shape differs: reshaped: [2, 2] in A, [4] in B",
        "data differs: counts (I32 [3]): 2 of 3 elements differ",
        "metadata differs: format: \"pt\" in A, \"np\" in B",
        "metadata only in A: gone: \"x\"",
        "metadata only in B: new: \"y\"",
        "8 differences; identical tensors in both: 1 of 4",
    ] {
        assert!(
            lines.contains(&expected),
            "missing `{expected}` in:\n{}",
            out.stdout
        );
    }
    assert_eq!(lines.len(), 9, "{}", out.stdout);
}

#[test]
fn max_abs_diff_for_every_float_dtype() {
    let dir = tempfile::tempdir().unwrap();
    let a = dir.path().join("a.safetensors");
    let b = dir.path().join("b.safetensors");
    let f16 = |v: &[u16]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    let f64s = |v: &[f64]| -> Vec<u8> { v.iter().flat_map(|x| x.to_le_bytes()).collect() };
    write_model(
        &a,
        &[
            (
                "f32".into(),
                Dtype::F32,
                vec![4],
                f32_bytes(&[1.0, -2.0, 3.5, 0.0]),
            ),
            // 1.0, 2.0, 0.5 in half precision.
            (
                "f16".into(),
                Dtype::F16,
                vec![3],
                f16(&[0x3c00, 0x4000, 0x3800]),
            ),
            // 1.0, -3.0 in bfloat16.
            ("bf16".into(), Dtype::BF16, vec![2], f16(&[0x3f80, 0xc040])),
            ("f64".into(), Dtype::F64, vec![2], f64s(&[0.25, 1e300])),
            (
                "nan".into(),
                Dtype::F32,
                vec![2],
                f32_bytes(&[f32::NAN, 1.0]),
            ),
            ("signed_zero".into(), Dtype::F32, vec![1], f32_bytes(&[0.0])),
        ],
        None,
    );
    write_model(
        &b,
        &[
            (
                "f32".into(),
                Dtype::F32,
                vec![4],
                f32_bytes(&[1.0, -2.25, 3.5, 0.125]),
            ),
            // 1.0, 2.5, -0.5
            (
                "f16".into(),
                Dtype::F16,
                vec![3],
                f16(&[0x3c00, 0x4100, 0xb800]),
            ),
            // 1.5, -3.0
            ("bf16".into(), Dtype::BF16, vec![2], f16(&[0x3fc0, 0xc040])),
            ("f64".into(), Dtype::F64, vec![2], f64s(&[0.25, -1e300])),
            ("nan".into(), Dtype::F32, vec![2], f32_bytes(&[2.0, 1.0])),
            (
                "signed_zero".into(),
                Dtype::F32,
                vec![1],
                f32_bytes(&[-0.0]),
            ),
        ],
        None,
    );
    let out = diff(&a, &b);
    assert_eq!(out.code, 1, "{}", out.all());
    let text = &out.stdout;
    for expected in [
        "data differs: f32 (F32 [4]): 2 of 4 elements differ, max abs diff 0.25\n",
        "data differs: f16 (F16 [3]): 2 of 3 elements differ, max abs diff 1\n",
        "data differs: bf16 (BF16 [2]): 1 of 2 elements differ, max abs diff 0.5\n",
        "data differs: f64 (F64 [2]): 1 of 2 elements differ, max abs diff 2e300\n",
        "data differs: nan (F32 [2]): 1 of 2 elements differ, max abs diff 0, 1 NaN on one side only\n",
        "data differs: signed_zero (F32 [1]): 0 of 1 elements differ, max abs diff 0 (only the encoding differs",
    ] {
        assert!(text.contains(expected), "missing `{expected}` in:\n{text}");
    }
}

#[test]
fn errors_exit_two() {
    let good = vectors().join("valid/scalar.safetensors");
    let out = diff(&good, Path::new("/nonexistent/x.safetensors"));
    assert_one_line_error(&out, "/nonexistent/x.safetensors");
    let out = diff(&vectors().join("invalid/trailing_bytes.safetensors"), &good);
    assert_one_line_error(&out, "trailing_bytes.safetensors");
}
