//! `safetensors convert` end to end on checkpoints written by real `torch.save` (the Python
//! interpreter comes from SAFETENSORS_TEST_PYTHON, else `<repo>/.venv/bin/python`, else
//! `python3`), and a malicious pickle refused with nothing written. The torch tests are
//! `#[ignore]`d (reported as ignored by a plain `cargo test`); `make test-rust` runs them, and
//! there a missing torch fails them.
//! The conversion library has the deep tests; these check the command's wiring.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use common::*;
use safetensors::source::file::{Backend, SafeFile};
use serde_json::Value;

fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("SAFETENSORS_TEST_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo_root().join(".venv/bin/python");
    if venv.is_file() {
        return venv;
    }
    PathBuf::from("python3")
}

/// Saves a state dict with every common dtype, a tied weight, a non-contiguous tensor and a
/// scalar; prints the expected dtype, shape and bytes of each tensor as JSON.
const SAVE_STATE_DICT: &str = r#"
import json, os, sys, torch
torch.manual_seed(0)
embed = torch.randn(10, 4)
sd = {
    "embed.weight": embed,
    "lm_head.weight": embed,                       # tied: same storage
    "layer.bias": torch.arange(6, dtype=torch.float16),
    "layer.weight": torch.randn(4, 3).t(),         # non-contiguous
    "counts": torch.tensor([1, -2, 3], dtype=torch.int64),
    "mask": torch.tensor([True, False, True]),
    "bf": torch.randn(3, 2).to(torch.bfloat16),
    "step": torch.tensor(7, dtype=torch.int32),    # scalar
    "u8": torch.arange(5, dtype=torch.uint8),
    "f64": torch.randn(2, 2, dtype=torch.float64),
}
torch.save(sd, os.path.join(sys.argv[1], "state_dict.bin"))
names = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16", torch.float64: "F64",
         torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8", torch.bool: "BOOL"}
print(json.dumps({k: {"dtype": names[v.dtype], "shape": list(v.shape),
                      "hex": v.contiguous().flatten().view(torch.uint8).numpy().tobytes().hex()}
                  for k, v in sd.items()}))
"#;

/// Runs a Python script with arguments; panics when Python or torch is missing.
fn python_run(script: &str, args: &[&Path]) -> String {
    let python = python();
    let out = Command::new(&python)
        .arg("-c")
        .arg(script)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", python.display()));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || !stderr.contains("No module named 'torch'"),
        "torch is not importable by {} (set SAFETENSORS_TEST_PYTHON, or run `make setup`)",
        python.display()
    );
    assert!(out.status.success(), "python failed: {stderr}");
    String::from_utf8(out.stdout).unwrap()
}

/// Checkpoints written by torch, made once per test run (importing torch takes seconds):
/// `state_dict.bin` (+ `expected.json`), `sharded/`, and `evil.bin`.
fn torch_fixtures() -> &'static Path {
    static FIXTURES: OnceLock<tempfile::TempDir> = OnceLock::new();
    FIXTURES
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let script = format!("{SAVE_STATE_DICT}\n{SAVE_SHARDED}\n{SAVE_MALICIOUS_TORCH}");
            let expected = python_run(&script, &[dir.path()]);
            std::fs::write(dir.path().join("expected.json"), expected).unwrap();
            dir
        })
        .path()
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn converts_a_real_torch_checkpoint_and_verifies_it() {
    let fixtures = torch_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = fixtures.join("state_dict.bin");
    let expected: Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("expected.json")).unwrap())
            .unwrap();
    let output = dir.path().join("model.safetensors");
    let out = run([
        "convert".as_ref(),
        checkpoint.as_os_str(),
        output.as_os_str(),
        "--verify".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(out.stdout.contains("verified"), "{}", out.stdout);

    let file = SafeFile::open(&output, Backend::Pread).unwrap();
    let meta = file.metadata();
    // The tied pair is written once; the report names the dropped one.
    let tied = ["embed.weight", "lm_head.weight"];
    let present: Vec<&str> = tied
        .iter()
        .copied()
        .filter(|n| meta.info(n).is_some())
        .collect();
    assert_eq!(
        present.len(),
        1,
        "one of the tied names is kept: {present:?}"
    );
    let dropped = tied.iter().find(|n| **n != present[0]).unwrap();
    assert!(
        out.stdout.contains(&format!("dropped `{dropped}`")),
        "{}",
        out.stdout
    );
    assert_eq!(meta.len(), expected.as_object().unwrap().len() - 1);

    for (name, want) in expected.as_object().unwrap() {
        if name == dropped {
            continue;
        }
        let info = meta.info(name).unwrap_or_else(|| panic!("{name} missing"));
        assert_eq!(
            info.dtype.to_string(),
            want["dtype"].as_str().unwrap(),
            "{name}"
        );
        let shape: Vec<usize> = want["shape"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d.as_u64().unwrap() as usize)
            .collect();
        assert_eq!(info.shape, shape, "{name}");
        let bytes = file.tensor_bytes(name).unwrap();
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, want["hex"].as_str().unwrap(), "{name}: bytes");
    }

    // The result passes validate and inspect.
    assert_eq!(run(["validate".as_ref(), output.as_os_str()]).code, 0);
    // With --checksum, every tensor's digest is recorded, and verify checks them all.
    let checked = dir.path().join("checked.safetensors");
    let out = run([
        "convert".as_ref(),
        checkpoint.as_os_str(),
        checked.as_os_str(),
        "--checksum=sha256".as_ref(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    let out = run([
        "verify".as_ref(),
        "--require-checksums".as_ref(),
        checked.as_os_str(),
    ]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(
        out.stdout.contains("every checksum matches"),
        "{}",
        out.stdout
    );
    let out = run(["inspect".as_ref(), output.as_os_str()]);
    assert!(
        out.stdout.contains("layer.weight") && out.stdout.contains("[3, 4]"),
        "{}",
        out.stdout
    );
}

/// Saves two shards and a `pytorch_model.bin.index.json`, as `transformers` does.
const SAVE_SHARDED: &str = r#"
folder = os.path.join(sys.argv[1], "sharded")
os.mkdir(folder)
a = {"a.weight": torch.ones(3, 3), "a.bias": torch.zeros(3)}
b = {"b.weight": torch.full((2, 5), 2.0, dtype=torch.float16)}
torch.save(a, os.path.join(folder, "pytorch_model-00001-of-00002.bin"))
torch.save(b, os.path.join(folder, "pytorch_model-00002-of-00002.bin"))
wm = {k: "pytorch_model-00001-of-00002.bin" for k in a}
wm.update({k: "pytorch_model-00002-of-00002.bin" for k in b})
json.dump({"metadata": {"total_size": 9 * 4 + 3 * 4 + 10 * 2}, "weight_map": wm},
          open(os.path.join(folder, "pytorch_model.bin.index.json"), "w"))
"#;

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn converts_a_sharded_checkpoint_folder() {
    let fixtures = torch_fixtures();
    let dir = tempfile::tempdir().unwrap();
    let input = fixtures.join("sharded");
    let output = dir.path().join("out");
    let out = run(["convert".as_ref(), input.as_os_str(), output.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    assert!(output.join("model.safetensors.index.json").is_file());
    let out = run(["validate".as_ref(), output.as_os_str()]);
    assert_eq!(out.code, 0, "{}", out.all());
    let out = run(["inspect".as_ref(), output.as_os_str(), "--json".as_ref()]);
    let report: Value = serde_json::from_str(&out.stdout).unwrap();
    let mut names: Vec<&str> = report["tensors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    names.sort();
    assert_eq!(names, ["a.bias", "a.weight", "b.weight"]);
    assert_eq!(report["totals"]["bytes"], 9 * 4 + 3 * 4 + 10 * 2);
}

/// A `torch.save` checkpoint whose pickle would run `os.system` when loaded by `torch.load`.
const SAVE_MALICIOUS_TORCH: &str = r#"
class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + os.path.join(sys.argv[1], "pwned"),))
torch.save({"weight": Payload(), "real": torch.zeros(2)}, os.path.join(sys.argv[1], "evil.bin"))
"#;

/// The same attack in torch's legacy (non-zip) format, written with plain `pickle` so that
/// this test needs no torch: magic number, protocol version, system info, then the object.
const SAVE_MALICIOUS_LEGACY: &str = r#"
import os, pickle, sys
class Payload:
    def __reduce__(self):
        return (os.system, ("touch " + sys.argv[2],))
with open(sys.argv[1], "wb") as f:
    for part in (0x1950a86a20f9469cfc6c, 1001,
                 {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}},
                 {"weight": Payload()}):
        pickle.dump(part, f, protocol=2)
"#;

/// Converting `checkpoint` fails with one line naming it and the forbidden global, runs
/// nothing, and leaves nothing in `dir` but `keep`.
fn assert_refused(checkpoint: &Path, marker: &Path, dir: &Path, keep: &[&str]) {
    let output = dir.join("evil.safetensors");
    let out = run([
        "convert".as_ref(),
        checkpoint.as_os_str(),
        output.as_os_str(),
    ]);
    assert_one_line_error(&out, "evil.bin");
    assert!(
        out.stderr.contains("system"),
        "the refused global is named: {}",
        out.stderr
    );
    assert!(!marker.exists(), "the payload ran");
    let mut left: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, keep, "no output (not even a temporary file) is left");
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn malicious_torch_checkpoint_is_refused_without_output() {
    let fixtures = torch_fixtures();
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixtures.join("evil.bin"), dir.path().join("evil.bin")).unwrap();
    assert!(
        !fixtures.join("pwned").exists(),
        "saving must not run the payload"
    );
    assert_refused(
        &dir.path().join("evil.bin"),
        &fixtures.join("pwned"),
        dir.path(),
        &["evil.bin"],
    );
}

#[test]
#[ignore = "needs torch: runs under `make test-rust` (cargo test -- --include-ignored)"]
fn malicious_legacy_pickle_is_refused_without_output() {
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("evil.bin");
    let marker = dir.path().join("pwned");
    python_run(SAVE_MALICIOUS_LEGACY, &[&checkpoint, &marker]);
    assert_refused(&checkpoint, &marker, dir.path(), &["evil.bin"]);
}
