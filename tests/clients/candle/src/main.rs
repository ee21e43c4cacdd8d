//! A candle-core client run against this repository's `safetensors` crate (patched in with
//! one `[patch.crates-io]` line). For every conformance vector it checks what a candle user
//! sees: `MmapedSafetensors` views carry the manifest's dtypes, shapes and bytes;
//! `candle_core::safetensors::load` builds tensors with those values; `save` writes the same
//! bytes the reference implementation wrote; and every invalid vector is refused.
//!
//! Usage: `candle-client <vectors dir>` (the folder holding `manifest.json`). Exits non-zero
//! with one line per failed check.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::safetensors::{load, save, MmapedSafetensors};
use candle_core::{DType, Device, Tensor};
use safetensors::tensor::View;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// Element types candle-core 0.11 maps one to one onto its own `DType` (others are refused
/// or widened, e.g. U16 -> U32, so they cannot round-trip byte for byte).
const CANDLE_DTYPES: [(&str, DType); 14] = [
    ("U8", DType::U8),
    ("U32", DType::U32),
    ("I16", DType::I16),
    ("I32", DType::I32),
    ("I64", DType::I64),
    ("BF16", DType::BF16),
    ("F16", DType::F16),
    ("F32", DType::F32),
    ("F64", DType::F64),
    ("F8_E4M3", DType::F8E4M3),
    ("F6_E2M3", DType::F6E2M3),
    ("F6_E3M2", DType::F6E3M2),
    ("F4", DType::F4),
    ("F8_E8M0", DType::F8E8M0),
];

/// Vectors that were crafted by hand (not by the reference writer): their layout is not the
/// one a writer produces, so `save` is not expected to reproduce their bytes.
const HAND_MADE: [&str; 3] = ["unsorted_header", "padded_unaligned", "metadata_last_spaces"];

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn shape_of(entry: &Value) -> Vec<usize> {
    entry["shape"]
        .as_array()
        .expect("manifest shape")
        .iter()
        .map(|d| d.as_u64().expect("manifest dim") as usize)
        .collect()
}

#[derive(Default)]
struct Report {
    failures: Vec<String>,
    mmaped: usize,
    loaded: usize,
    identical_saves: usize,
    refused: usize,
}

impl Report {
    fn check(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }
}

/// `MmapedSafetensors`: every tensor's view has the manifest's dtype, shape and bytes.
fn check_mmaped(report: &mut Report, name: &str, path: &Path, tensors: &serde_json::Map<String, Value>) {
    // SAFETY: the vectors are read-only test files that nothing modifies while mapped.
    let mmaped = match unsafe { MmapedSafetensors::new(path) } {
        Ok(m) => m,
        Err(e) => return report.failures.push(format!("{name}: MmapedSafetensors::new: {e}")),
    };
    report.check(mmaped.tensors().len() == tensors.len(), || {
        format!("{name}: {} tensors listed, manifest has {}", mmaped.tensors().len(), tensors.len())
    });
    for (tensor, entry) in tensors {
        let view = match mmaped.get(tensor) {
            Ok(v) => v,
            Err(e) => {
                report.failures.push(format!("{name}/{tensor}: get: {e}"));
                continue;
            }
        };
        let dtype = format!("{:?}", view.dtype());
        report.check(dtype == entry["dtype"], || format!("{name}/{tensor}: dtype {dtype}, manifest {}", entry["dtype"]));
        report.check(view.shape() == shape_of(entry), || format!("{name}/{tensor}: shape {:?}", view.shape()));
        report.check(sha256(view.data()) == entry["sha256"], || format!("{name}/{tensor}: bytes differ from the manifest"));
    }
    report.mmaped += 1;
}

/// `load` then `save`: candle tensors hold the manifest's values, and the saved file is the
/// reference's own output byte for byte (when the vector came from the reference writer).
fn check_round_trip(report: &mut Report, name: &str, path: &Path, vector: &Value, out: &Path) {
    let tensors = vector["tensors"].as_object().expect("manifest tensors");
    let loaded: HashMap<String, Tensor> = match load(path, &Device::Cpu) {
        Ok(t) => t,
        Err(e) => return report.failures.push(format!("{name}: load: {e}")),
    };
    report.check(loaded.len() == tensors.len(), || format!("{name}: load gave {} tensors", loaded.len()));
    for (tensor, entry) in tensors {
        let Some(t) = loaded.get(tensor) else {
            report.failures.push(format!("{name}/{tensor}: missing after load"));
            continue;
        };
        let expected = CANDLE_DTYPES.iter().find(|(n, _)| entry["dtype"] == *n).map(|(_, d)| *d);
        report.check(Some(t.dtype()) == expected, || format!("{name}/{tensor}: candle dtype {:?}", t.dtype()));
        report.check(t.dims() == shape_of(entry), || format!("{name}/{tensor}: candle shape {:?}", t.dims()));
        // The tensor's values as candle writes them back out (its own conversion path).
        let bytes = View::data(t);
        report.check(sha256(&bytes) == entry["sha256"], || format!("{name}/{tensor}: candle values differ from the manifest"));
    }
    report.loaded += 1;

    if let Err(e) = save(&loaded, out) {
        return report.failures.push(format!("{name}: save: {e}"));
    }
    let saved = std::fs::read(out).expect("read the saved file");
    match load(out, &Device::Cpu) {
        Ok(again) => report.check(again.len() == loaded.len(), || format!("{name}: reloading the saved file gave {} tensors", again.len())),
        Err(e) => report.failures.push(format!("{name}: reloading the saved file: {e}")),
    }
    // candle's `save` writes no metadata, so only metadata-free vectors can match byte for byte.
    if vector["metadata"].is_null() && !HAND_MADE.contains(&name) {
        report.check(sha256(&saved) == vector["file_sha256"], || {
            format!("{name}: saved file differs from the reference's bytes ({} vs {} bytes)", saved.len(), vector["file_size"])
        });
        report.identical_saves += 1;
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: candle-client <tests/data/vectors>");
        std::process::exit(2)
    }));
    let manifest: Value = serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).expect("read manifest.json"))
        .expect("parse manifest.json");
    let out_dir = std::env::temp_dir().join(format!("candle-client-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("create a temporary folder");
    let mut report = Report::default();

    for (name, vector) in manifest["valid"].as_object().expect("manifest valid") {
        let path = dir.join("valid").join(format!("{name}.safetensors"));
        let tensors = vector["tensors"].as_object().expect("manifest tensors");
        check_mmaped(&mut report, name, &path, tensors);
        let candle_can_hold = tensors.values().all(|t| CANDLE_DTYPES.iter().any(|(n, _)| t["dtype"] == *n));
        if candle_can_hold {
            check_round_trip(&mut report, name, &path, vector, &out_dir.join(format!("{name}.safetensors")));
        }
    }
    for name in manifest["invalid"].as_object().expect("manifest invalid").keys() {
        let path = dir.join("invalid").join(format!("{name}.safetensors"));
        // SAFETY: as above, a read-only test file.
        let mapped = unsafe { MmapedSafetensors::new(&path) };
        report.check(load(&path, &Device::Cpu).is_err() && mapped.is_err(), || format!("invalid/{name}: accepted"));
        report.refused += 1;
    }
    let _ = std::fs::remove_dir_all(&out_dir);

    // The vectors that matter most must have been exercised, not skipped.
    for must in ["gpt2_block", "mixed_align", "many", "unicode_names", "scalar", "empty"] {
        report.check(manifest["valid"].get(must).is_some(), || format!("vector {must} missing from the manifest"));
    }
    println!(
        "candle-core client: {} files read through MmapedSafetensors, {} loaded and saved with candle \
         ({} saved byte-identical to the reference), {} invalid files refused",
        report.mmaped, report.loaded, report.identical_saves, report.refused
    );
    if report.identical_saves < 10 || !report.failures.is_empty() {
        for failure in &report.failures {
            eprintln!("FAIL: {failure}");
        }
        eprintln!("candle-core client: {} failure(s)", report.failures.len().max(1));
        std::process::exit(1);
    }
}
