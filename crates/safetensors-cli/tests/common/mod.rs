//! Helpers shared by the CLI's end-to-end tests: running the built `safetensors` binary,
//! locating the repository's conformance vectors, and writing test models with the core.

#![allow(dead_code)] // each test binary uses a different subset

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use safetensors::tensor::TensorView;
use safetensors::{serialize_to_file, Dtype};

/// What one run of the binary did.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// stdout and stderr together, for "the message names X" checks.
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out
                .status
                .code()
                .expect("the binary was not killed by a signal"),
            stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
            stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
        }
    }
}

/// Runs `safetensors ARGS...` (stdout/stderr captured, so never a terminal: no progress bar).
pub fn run<I, S>(args: I) -> Run
where
    I: IntoIterator<Item = S>,
    S: AsRef<std::ffi::OsStr>,
{
    Command::new(env!("CARGO_BIN_EXE_safetensors"))
        .args(args)
        .output()
        .expect("the binary runs")
        .into()
}

/// Asserts an error run: exit status 2 and exactly one line on stderr naming `needle`.
pub fn assert_one_line_error(run: &Run, needle: &str) {
    assert_eq!(
        run.code, 2,
        "stdout: {}\nstderr: {}",
        run.stdout, run.stderr
    );
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "the error is one line: {:?}", run.stderr);
    assert!(lines[0].starts_with("safetensors: error: "), "{}", lines[0]);
    assert!(lines[0].contains(needle), "`{needle}` not in: {}", lines[0]);
}

/// The repository root (two levels above this crate).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("repo root exists")
}

/// The repository's copy of the conformance vectors.
pub fn vectors() -> PathBuf {
    repo_root().join("tests/data/vectors")
}

/// The vectors' manifest.
pub fn manifest() -> serde_json::Value {
    let text = std::fs::read_to_string(vectors().join("manifest.json")).expect("manifest.json");
    serde_json::from_str(&text).expect("manifest is JSON")
}

/// Sorted `*.safetensors` paths in `vectors/<kind>`.
pub fn vector_files(kind: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(vectors().join(kind))
        .expect("vector folder")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

/// A tensor to write: name, dtype, shape, bytes.
pub type Spec = (String, Dtype, Vec<usize>, Vec<u8>);

/// F32 values as little-endian bytes.
pub fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Deterministic pseudo-random bytes (xorshift), so tests need no data files.
pub fn noise(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// Writes `tensors` with `metadata` to `path` through the core.
pub fn write_model(path: &Path, tensors: &[Spec], metadata: Option<Vec<(&str, &str)>>) {
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, dtype, shape, data)| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).expect("valid tensor"),
            )
        })
        .collect();
    match metadata {
        Some(pairs) => serialize_to_file(views, pairs, path),
        None => serialize_to_file(views, None, path),
    }
    .expect("the core writes the file");
}

/// A model of `count` F32 tensors `layer.{i}.weight` of `elements` values each, plus a small
/// F16 and an I64 tensor, with bytes from `noise`.
pub fn sample_tensors(count: usize, elements: usize) -> Vec<Spec> {
    let mut tensors: Vec<Spec> = (0..count)
        .map(|i| {
            (
                format!("layer.{i}.weight"),
                Dtype::F32,
                vec![elements / 4, 4],
                noise(elements * 4, i as u64 + 1),
            )
        })
        .collect();
    tensors.push(("norm.f16".into(), Dtype::F16, vec![8], noise(16, 99)));
    tensors.push((
        "step".into(),
        Dtype::I64,
        vec![],
        7i64.to_le_bytes().to_vec(),
    ));
    tensors
}
