//! Real checkpoints written by torch (generated at test time by tests/torch_helper.py), converted
//! and compared tensor by tensor against `torch.load(weights_only=True)`; plus the malicious
//! ones torch can write (an object whose `__reduce__` calls `os.system`, an unknown global).

mod common;

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use safetensors_convert::{
    convert_file, convert_folder, read_checkpoint, ConvertError, ConvertOptions,
};

/// Generates the torch checkpoints once per test binary; panics when torch is unavailable
/// (these tests are `#[ignore]`d, so they run only when asked for).
fn generated() -> &'static (PathBuf, PathBuf) {
    static DIR: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    DIR.get_or_init(|| {
        let python = common::torch_python();
        let dir = common::scratch("torch");
        common::run_helper(&python, &[OsStr::new("make"), dir.as_os_str()]);
        (python, dir)
    })
}

fn compare(python: &Path, dir: &Path, pairs: &[(PathBuf, PathBuf)]) -> serde_json::Value {
    let list: Vec<[String; 2]> = pairs
        .iter()
        .map(|(a, b)| [a.display().to_string(), b.display().to_string()])
        .collect();
    let file = dir.join(format!("pairs-{}.json", pairs.len()));
    std::fs::write(&file, serde_json::to_string(&list).unwrap()).unwrap();
    let out = common::run_helper(python, &[OsStr::new("compare"), file.as_os_str()]);
    serde_json::from_str(out.trim()).unwrap()
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn torch_checkpoints_convert_exactly() {
    let (python, dir) = generated();
    let out = common::scratch("torch-out");
    let opts = ConvertOptions {
        checksum: None,
        verify: true,
        progress: None,
    };
    let mut pairs = Vec::new();
    let mut expected_written = 0;
    for name in [
        "all_dtypes.bin",
        "shared.pt",
        "proto5.pt",
        "legacy.pth",
        "training.pt",
        "nested.pt",
    ] {
        let src = dir.join(name);
        let dst = out.join(format!("{name}.safetensors"));
        let report = convert_file(&src, &dst, &opts).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(report.files_written, vec![dst.clone()]);
        assert_eq!(report.bytes_written, std::fs::metadata(&dst).unwrap().len());
        expected_written += report.tensors_written;
        if name == "shared.pt" {
            let dropped: Vec<(&str, &str)> = report
                .dropped_shared
                .iter()
                .map(|(a, b)| (a.as_str(), b.as_str()))
                .collect();
            assert_eq!(
                dropped,
                [
                    ("embed.weight", "alias.weight"),
                    ("lm_head.weight", "alias.weight"),
                    ("row3", "alias.weight")
                ]
            );
        }
        pairs.push((src, dst));
    }

    // The sharded folder.
    let shard_out = out.join("sharded");
    let seen = std::cell::Cell::new((0u64, 0u64));
    let progress = |done: u64, total: u64| {
        assert!(done <= total && done >= seen.get().0);
        seen.set((done, total));
    };
    let report = convert_folder(
        &dir.join("sharded"),
        &shard_out,
        &ConvertOptions {
            checksum: None,
            verify: true,
            progress: Some(&progress),
        },
    )
    .unwrap();
    assert_eq!(seen.get().0, seen.get().1, "progress ends at the total");
    assert_eq!(report.tensors_written, 6);
    assert_eq!(
        report.dropped_shared,
        vec![("tied.a".to_owned(), "layers.4.weight".to_owned())]
    );
    let index: serde_json::Value = serde_json::from_slice(
        &std::fs::read(shard_out.join("model.safetensors.index.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(index["metadata"]["total_size"], 5 * 16 * 4 + 4 * 8);
    let map = index["weight_map"].as_object().unwrap();
    assert_eq!(map.len(), 6);
    assert_eq!(map["layers.0.bias"], "model-00001-of-00002.safetensors");
    assert_eq!(map["layers.4.weight"], "model-00002-of-00002.safetensors");
    for i in 1..=2 {
        pairs.push((
            dir.join(format!("sharded/pytorch_model-{i:05}-of-00002.bin")),
            shard_out.join(format!("model-{i:05}-of-00002.safetensors")),
        ));
    }
    expected_written += report.tensors_written;

    let result = compare(python, &out, &pairs);
    assert_eq!(result["errors"], serde_json::json!([]), "{result}");
    assert_eq!(result["checked"], expected_written as u64);
    assert!(result["dropped"].as_u64().unwrap() >= 4);
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn read_checkpoint_reports_torch_geometry() {
    let (_, dir) = generated();
    let ck = read_checkpoint(&dir.join("shared.pt")).unwrap();
    let t = ck.get("transposed").unwrap();
    assert_eq!(
        (t.torch_shape(), t.torch_stride(), t.is_contiguous()),
        (&[5, 3][..], &[1, 5][..], false)
    );
    let s = ck.get("scalar").unwrap();
    assert_eq!((s.shape(), s.byte_len()), (&[][..], 4));
    assert_eq!(ck.tensor_bytes(s).as_ref(), 3.5f32.to_le_bytes());
    let e = ck.get("empty").unwrap();
    assert_eq!((e.shape(), e.byte_len()), (&[0, 3][..], 0));
    let f4 = read_checkpoint(&dir.join("all_dtypes.bin")).unwrap();
    if let Some(f4) = f4.get("f4") {
        assert_eq!(f4.shape(), &[3, 8]);
        assert_eq!(f4.dtype().to_string(), "F4");
    }
}

fn assert_refused(err: ConvertError, what: &str, out: &Path) {
    let msg = err.to_string();
    assert!(msg.contains(what), "error should name {what}: {msg}");
    assert!(!msg.contains('\n'), "one line: {msg}");
    assert!(!out.exists(), "no output may be left behind");
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn os_system_reduce_is_refused_and_never_runs() {
    let (_, dir) = generated();
    let out = common::scratch("evil");
    for name in ["evil.pt", "evil_legacy.pt"] {
        let dst = out.join("evil.safetensors");
        let err = convert_file(&dir.join(name), &dst, &ConvertOptions::default()).unwrap_err();
        assert!(
            matches!(&err, ConvertError::ForbiddenGlobal { module, name, .. } if module == "posix" && name == "system"),
            "{err}"
        );
        assert_refused(err, "posix.system", &dst);
        assert!(!dir.join("PWNED").exists(), "the payload must never run");
    }
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn unknown_global_is_named() {
    let (_, dir) = generated();
    let dst = common::scratch("unknown").join("x.safetensors");
    let err = convert_file(
        &dir.join("unknown_global.pt"),
        &dst,
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert_refused(err, "collections.deque", &dst);
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn complex128_is_refused_naming_the_tensor() {
    let (_, dir) = generated();
    let dst = common::scratch("c128").join("x.safetensors");
    let err =
        convert_file(&dir.join("complex128.pt"), &dst, &ConvertOptions::default()).unwrap_err();
    assert!(matches!(err, ConvertError::UnsupportedDtype { .. }));
    assert_refused(err, "`z`", &dst);
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn truncated_torch_archive_is_refused() {
    let (_, dir) = generated();
    let bytes = std::fs::read(dir.join("all_dtypes.bin")).unwrap();
    let work = common::scratch("trunc");
    for cut in [
        0,
        1,
        10,
        100,
        bytes.len() / 3,
        bytes.len() / 2,
        bytes.len() - 30,
        bytes.len() - 1,
    ] {
        let src = work.join("cut.bin");
        std::fs::write(&src, &bytes[..cut]).unwrap();
        let dst = work.join("cut.safetensors");
        let err = convert_file(&src, &dst, &ConvertOptions::default()).unwrap_err();
        assert!(!err.to_string().is_empty());
        assert!(!dst.exists(), "cut at {cut}: no output");
    }
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn torchscript_and_sparse_are_refused_with_what_they_are() {
    let (_, dir) = generated();
    let out = common::scratch("ts");
    let dst = out.join("ts.safetensors");
    let err = convert_file(
        &dir.join("torchscript.pt"),
        &dst,
        &ConvertOptions::default(),
    )
    .unwrap_err();
    assert!(matches!(err, ConvertError::NotACheckpoint { .. }));
    assert_refused(err, "TorchScript", &dst);
    let err = convert_file(&dir.join("sparse.pt"), &dst, &ConvertOptions::default()).unwrap_err();
    assert_refused(err, "torch._utils._rebuild_sparse_tensor", &dst);
}
