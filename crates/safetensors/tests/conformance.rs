//! The reference implementation's conformance vectors: every valid file loads with the
//! manifest's exact values and re-serializes to the same bytes; every invalid file is
//! rejected with the right kind of error.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use safetensors::source::file::{Backend, SafeFile};
use safetensors::{serialize, Dtype, Error, SafeTensors};
use serde_json::Value;
use sha2::{Digest, Sha256};

// SAFETY: the mmap backend's contract (no in-place writer, no truncation while a file is
// open) holds for every use below: each file lives in this test's own temporary folder and
// is only replaced by rename or, in the tests of that check, shrunk before a read that the
// size check then refuses, never while bytes borrowed from the map are alive.
const MMAP: Backend = unsafe { Backend::mmap() };

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/data/vectors")
}

fn manifest() -> Value {
    let text = std::fs::read_to_string(vectors_dir().join("manifest.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn entries<'a>(m: &'a Value, kind: &str) -> Vec<(&'a String, &'a Value)> {
    let entries: Vec<_> = m[kind].as_object().unwrap().iter().collect();
    assert!(entries.len() > 10, "manifest lists too few {kind} vectors");
    entries
}

/// Files whose headers were made by hand, not by the reference writer (none is padded so
/// that `8 + N` is a multiple of 8; F6 has no framework dtype to write it from), so
/// re-serializing gives a canonical file with the same tensors, not the same bytes.
const NON_CANONICAL: &[&str] = &[
    "dtype_f6_e2m3",
    "dtype_f6_e3m2",
    "metadata_last_spaces",
    "no_tensors",
    "only_metadata",
    "padded_unaligned",
    "unsorted_header",
];

#[test]
fn non_canonical_list_is_exactly_the_unpadded_headers() {
    let m = manifest();
    for (name, _) in entries(&m, "valid") {
        let bytes = std::fs::read(vectors_dir().join(format!("valid/{name}.safetensors"))).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap());
        assert_eq!(
            (8 + n) % 8 != 0,
            NON_CANONICAL.contains(&name.as_str()),
            "{name}"
        );
    }
}

#[test]
fn valid_vectors_load_with_manifest_values() {
    let m = manifest();
    for (name, expect) in entries(&m, "valid") {
        let bytes = std::fs::read(vectors_dir().join(format!("valid/{name}.safetensors"))).unwrap();
        assert_eq!(
            sha256(&bytes),
            expect["file_sha256"].as_str().unwrap(),
            "{name}"
        );
        let st = SafeTensors::deserialize(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (n, _) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(n as u64, expect["header_len"].as_u64().unwrap(), "{name}");

        let tensors = expect["tensors"].as_object().unwrap();
        assert_eq!(st.len(), tensors.len(), "{name}");
        for (tname, t) in tensors {
            let view = st
                .tensor(tname)
                .unwrap_or_else(|e| panic!("{name}/{tname}: {e}"));
            let info = st.metadata().info(tname).unwrap();
            assert_eq!(
                view.dtype(),
                t["dtype"].as_str().unwrap().parse::<Dtype>().unwrap()
            );
            let shape: Vec<usize> = t["shape"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d.as_u64().unwrap() as usize)
                .collect();
            assert_eq!(view.shape(), &shape[..], "{name}/{tname}");
            let offs = t["data_offsets"].as_array().unwrap();
            assert_eq!(info.data_offsets.0 as u64, offs[0].as_u64().unwrap());
            assert_eq!(info.data_offsets.1 as u64, offs[1].as_u64().unwrap());
            assert_eq!(
                sha256(view.data()),
                t["sha256"].as_str().unwrap(),
                "{name}/{tname}"
            );
        }

        let meta: Option<HashMap<String, String>> = match &expect["metadata"] {
            Value::Null => None,
            Value::Object(o) => Some(
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap().into()))
                    .collect(),
            ),
            other => panic!("{name}: metadata {other}"),
        };
        assert_eq!(st.metadata().metadata(), &meta, "{name}");

        // The same file through both file backends.
        for backend in [MMAP, Backend::Pread] {
            let f = SafeFile::open(
                vectors_dir().join(format!("valid/{name}.safetensors")),
                backend,
            )
            .unwrap();
            for (tname, view) in st.iter() {
                assert_eq!(
                    &f.tensor_bytes(tname).unwrap()[..],
                    view.data(),
                    "{name}/{tname} {backend:?}"
                );
            }
        }
    }
}

#[test]
fn valid_vectors_reserialize_to_the_same_bytes() {
    let m = manifest();
    for (name, _) in entries(&m, "valid") {
        let bytes = std::fs::read(vectors_dir().join(format!("valid/{name}.safetensors"))).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let meta = st.metadata().metadata_ordered().map(|p| p.to_vec());
        let out = match meta {
            Some(pairs) => serialize(st.tensors(), pairs).unwrap(),
            None => serialize(st.tensors(), None).unwrap(),
        };
        let multi_key = st
            .metadata()
            .metadata()
            .as_ref()
            .is_some_and(|m| m.len() > 1);
        if multi_key || NON_CANONICAL.contains(&name.as_str()) {
            // Same header as JSON (offsets aside for reordered data) and the same tensors.
            let again = SafeTensors::deserialize(&out).unwrap();
            assert_eq!(
                again.metadata().metadata(),
                st.metadata().metadata(),
                "{name}"
            );
            assert_eq!(again.len(), st.len());
            for (tname, view) in st.iter() {
                let other = again.tensor(tname).unwrap();
                assert_eq!(
                    (other.dtype(), other.shape(), other.data()),
                    (view.dtype(), view.shape(), view.data())
                );
            }
            if multi_key && !NON_CANONICAL.contains(&name.as_str()) {
                let header = |b: &[u8]| -> Value {
                    let n = u64::from_le_bytes(b[..8].try_into().unwrap()) as usize;
                    serde_json::from_slice(&b[8..8 + n]).unwrap()
                };
                assert_eq!(header(&out), header(&bytes), "{name}");
                assert_eq!(out.len(), bytes.len(), "{name}");
            }
        } else {
            assert!(out == bytes, "{name}: re-serialized bytes differ");
        }
    }
}

/// The reference's API gives the reference's variant, with its payload, for each invalid
/// vector: what the reference 0.8.0 crate's `SafeTensors::deserialize` and `read_metadata`
/// return for the same files.
#[test]
fn invalid_vectors_give_the_reference_variant_through_the_reference_api() {
    use safetensors::SafeTensorError as E;
    let m = manifest();
    for (name, _) in entries(&m, "invalid") {
        let path = vectors_dir().join(format!("invalid/{name}.safetensors"));
        let bytes = std::fs::read(&path).unwrap();
        let err = SafeTensors::deserialize(&bytes).expect_err(name);
        let from_read_metadata = SafeTensors::read_metadata(&bytes).expect_err(name);
        assert_eq!(err.to_string(), from_read_metadata.to_string(), "{name}");
        let ok = match name.as_str() {
            "empty_file" | "short_len" => matches!(err, E::HeaderTooSmall),
            "header_len_huge" | "header_len_over_limit" => matches!(err, E::HeaderTooLarge),
            "header_len_past_eof" => matches!(err, E::InvalidHeaderLength),
            "not_utf8" => matches!(&err, E::InvalidHeader(e) if e.valid_up_to() == 2),
            "not_json"
            | "json_array"
            | "unknown_dtype"
            | "lowercase_dtype"
            | "negative_dim"
            | "float_dim"
            | "missing_offsets"
            | "metadata_not_string"
            | "metadata_not_object" => {
                matches!(err, E::InvalidHeaderDeserialization(_))
            }
            "hole" | "overlap" => matches!(&err, E::InvalidOffset(t) if t == "b"),
            "begin_after_end" | "duplicate_key" => matches!(&err, E::InvalidOffset(t) if t == "a"),
            "offset_past_eof" | "trailing_bytes" => matches!(err, E::MetadataIncompleteBuffer),
            "size_mismatch" => matches!(err, E::TensorInvalidInfo),
            "shape_overflow" => matches!(err, E::ValidationOverflow),
            "f4_odd_bytes" => matches!(err, E::MisalignedSlice),
            other => panic!("invalid vector {other} has no expected error here: add one"),
        };
        assert!(ok, "{name}: unexpected error {err:?} ({err})");
    }
}

#[test]
fn invalid_vectors_are_rejected_with_the_right_error() {
    let m = manifest();
    for (name, _) in entries(&m, "invalid") {
        let path = vectors_dir().join(format!("invalid/{name}.safetensors"));
        let bytes = std::fs::read(&path).unwrap();
        let err = SafeTensors::parse(&bytes).expect_err(name);
        let ok = match name.as_str() {
            "empty_file" | "short_len" => matches!(err, Error::HeaderTooSmall { .. }),
            "header_len_huge" | "header_len_over_limit" => {
                matches!(err, Error::HeaderTooLarge { .. })
            }
            "header_len_past_eof" => matches!(err, Error::InvalidHeaderLength { .. }),
            "not_json" => matches!(err, Error::InvalidHeaderDeserialization(_)),
            "json_array" => matches!(err, Error::InvalidHeaderStart),
            "not_utf8" => matches!(err, Error::InvalidHeader { .. }),
            "hole" | "overlap" | "offset_past_eof" => {
                matches!(err, Error::InvalidOffset { .. })
            }
            "trailing_bytes" => matches!(err, Error::MetadataIncompleteBuffer { .. }),
            "size_mismatch" | "begin_after_end" => {
                matches!(err, Error::TensorInvalidInfo { .. })
            }
            "unknown_dtype" | "lowercase_dtype" => {
                matches!(err, Error::UnknownDtype { .. })
            }
            "negative_dim" | "float_dim" | "missing_offsets" => {
                matches!(err, Error::InvalidTensorEntry { .. })
            }
            "shape_overflow" => matches!(err, Error::ValidationOverflow { .. }),
            "metadata_not_string" | "metadata_not_object" => {
                matches!(err, Error::InvalidMetadata(_))
            }
            "duplicate_key" => matches!(err, Error::DuplicateTensor(_)),
            "f4_odd_bytes" => matches!(err, Error::MisalignedSubByte { .. }),
            other => panic!("invalid vector {other} has no expected error here: add one"),
        };
        assert!(ok, "{name}: unexpected error kind {err:?} ({err})");
        // The file readers reject it the same way, without crashing.
        for backend in [MMAP, Backend::Pread] {
            assert!(
                SafeFile::open(&path, backend).is_err(),
                "{name} {backend:?}"
            );
        }
        println!("{name}: {err}");
    }
}
