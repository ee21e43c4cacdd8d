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
/// or widened, e.g. U16 -> U32, so they cannot round-trip byte for byte), and whether candle
/// can read their values back out (it cannot for the sub-byte and E8M0 types: its `save`
/// panics on them, whichever safetensors crate is underneath).
const CANDLE_DTYPES: [(&str, DType, bool); 14] = [
    ("U8", DType::U8, true),
    ("U32", DType::U32, true),
    ("I16", DType::I16, true),
    ("I32", DType::I32, true),
    ("I64", DType::I64, true),
    ("BF16", DType::BF16, true),
    ("F16", DType::F16, true),
    ("F32", DType::F32, true),
    ("F64", DType::F64, true),
    ("F8_E4M3", DType::F8E4M3, true),
    ("F6_E2M3", DType::F6E2M3, false),
    ("F6_E3M2", DType::F6E3M2, false),
    ("F4", DType::F4, false),
    ("F8_E8M0", DType::F8E8M0, false),
];

/// candle's `DType` for a header dtype, and whether candle can write it back.
fn candle_dtype(header: &Value) -> Option<(DType, bool)> {
    CANDLE_DTYPES
        .iter()
        .find(|(name, _, _)| header == *name)
        .map(|(_, dtype, savable)| (*dtype, *savable))
}

/// Whether a vector was made by hand rather than by the reference writer: its tensors are
/// listed out of data order, or its header is not padded so that the data starts 8-byte
/// aligned (a writer always pads). `save` writes a canonical file for those, not their bytes.
fn hand_made(name: &str, file: &[u8]) -> bool {
    let header_len = u64::from_le_bytes(file[..8].try_into().expect("8 bytes"));
    name == "unsorted_header" || (8 + header_len) % 8 != 0
}

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
    saved: usize,
    /// Vectors whose candle-saved file equals the reference's bytes.
    identical_saves: Vec<String>,
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
fn check_mmaped(
    report: &mut Report,
    name: &str,
    path: &Path,
    tensors: &serde_json::Map<String, Value>,
) {
    // SAFETY: the vectors are read-only test files that nothing modifies while mapped.
    let mmaped = match unsafe { MmapedSafetensors::new(path) } {
        Ok(m) => m,
        Err(e) => {
            return report
                .failures
                .push(format!("{name}: MmapedSafetensors::new: {e}"))
        }
    };
    report.check(mmaped.tensors().len() == tensors.len(), || {
        format!(
            "{name}: {} tensors listed, manifest has {}",
            mmaped.tensors().len(),
            tensors.len()
        )
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
        report.check(dtype == entry["dtype"], || {
            format!(
                "{name}/{tensor}: dtype {dtype}, manifest {}",
                entry["dtype"]
            )
        });
        report.check(view.shape() == shape_of(entry), || {
            format!("{name}/{tensor}: shape {:?}", view.shape())
        });
        report.check(sha256(view.data()) == entry["sha256"], || {
            format!("{name}/{tensor}: bytes differ from the manifest")
        });
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
    report.check(loaded.len() == tensors.len(), || {
        format!("{name}: load gave {} tensors", loaded.len())
    });
    for (tensor, entry) in tensors {
        let Some(t) = loaded.get(tensor) else {
            report
                .failures
                .push(format!("{name}/{tensor}: missing after load"));
            continue;
        };
        let Some((expected, savable)) = candle_dtype(&entry["dtype"]) else {
            unreachable!("only vectors of candle dtypes are loaded")
        };
        report.check(t.dtype() == expected, || {
            format!("{name}/{tensor}: candle dtype {:?}", t.dtype())
        });
        report.check(t.dims() == shape_of(entry), || {
            format!("{name}/{tensor}: candle shape {:?}", t.dims())
        });
        if !savable {
            continue;
        }
        // The tensor's values as candle writes them back out (its own conversion path).
        let bytes = View::data(t);
        report.check(sha256(&bytes) == entry["sha256"], || {
            format!("{name}/{tensor}: candle values differ from the manifest")
        });
    }
    let savable = tensors
        .values()
        .all(|t| candle_dtype(&t["dtype"]).is_some_and(|(_, savable)| savable));
    if !savable {
        report.loaded += 1;
        return;
    }
    report.loaded += 1;
    report.saved += 1;

    if let Err(e) = save(&loaded, out) {
        return report.failures.push(format!("{name}: save: {e}"));
    }
    let saved = std::fs::read(out).expect("read the saved file");
    match load(out, &Device::Cpu) {
        Ok(again) => report.check(again.len() == loaded.len(), || {
            format!(
                "{name}: reloading the saved file gave {} tensors",
                again.len()
            )
        }),
        Err(e) => report
            .failures
            .push(format!("{name}: reloading the saved file: {e}")),
    }
    // candle's `save` writes no metadata, so only metadata-free vectors can match byte for byte.
    let original = std::fs::read(path).expect("read the vector");
    if vector["metadata"].is_null() && !hand_made(name, &original) {
        report.check(sha256(&saved) == vector["file_sha256"], || {
            format!(
                "{name}: saved file differs from the reference's bytes ({} vs {} bytes)",
                saved.len(),
                vector["file_size"]
            )
        });
        if sha256(&saved) == vector["file_sha256"] {
            report.identical_saves.push(name.to_string());
        }
    }
}

fn main() {
    let dir = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| {
        eprintln!("usage: candle-client <tests/data/vectors>");
        std::process::exit(2)
    }));
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("manifest.json")).expect("read manifest.json"),
    )
    .expect("parse manifest.json");
    let out_dir = std::env::temp_dir().join(format!("candle-client-{}", std::process::id()));
    std::fs::create_dir_all(&out_dir).expect("create a temporary folder");
    let mut report = Report::default();

    for (name, vector) in manifest["valid"].as_object().expect("manifest valid") {
        let path = dir.join("valid").join(format!("{name}.safetensors"));
        let tensors = vector["tensors"].as_object().expect("manifest tensors");
        check_mmaped(&mut report, name, &path, tensors);
        let candle_can_hold = tensors
            .values()
            .all(|t| candle_dtype(&t["dtype"]).is_some());
        if candle_can_hold {
            check_round_trip(
                &mut report,
                name,
                &path,
                vector,
                &out_dir.join(format!("{name}.safetensors")),
            );
        }
    }
    for name in manifest["invalid"]
        .as_object()
        .expect("manifest invalid")
        .keys()
    {
        let path = dir.join("invalid").join(format!("{name}.safetensors"));
        // SAFETY: as above, a read-only test file.
        let mapped = unsafe { MmapedSafetensors::new(&path) };
        report.check(
            load(&path, &Device::Cpu).is_err() && mapped.is_err(),
            || format!("invalid/{name}: accepted"),
        );
        report.refused += 1;
    }
    let _ = std::fs::remove_dir_all(&out_dir);

    // The vectors that matter most went through the whole round trip, not around it.
    for must in [
        "gpt2_block",
        "mixed_align",
        "many",
        "unicode_names",
        "scalar",
        "empty",
        "dtype_bf16",
        "dtype_f8_e4m3",
    ] {
        report.check(report.identical_saves.iter().any(|n| n == must), || {
            format!("{must}: not loaded and saved byte-identically")
        });
    }
    println!(
        "candle-core client: {} files read through MmapedSafetensors, {} loaded and {} saved with \
         candle ({} saved byte-identical to the reference), {} invalid files refused",
        report.mmaped,
        report.loaded,
        report.saved,
        report.identical_saves.len(),
        report.refused
    );
    if !report.failures.is_empty() {
        for failure in &report.failures {
            eprintln!("FAIL: {failure}");
        }
        eprintln!(
            "candle-core client: {} failed checks",
            report.failures.len()
        );
        std::process::exit(1);
    }
}
