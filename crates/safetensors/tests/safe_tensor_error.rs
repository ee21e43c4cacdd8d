//! The reference's error enum as the crates.io 0.8.0 crate has it (written from its public
//! documentation and behaviour): every variant constructed, matched exhaustively (no
//! wildcard: a variant added or missing breaks this file as it would break clients),
//! displayed, with `source()` and the `From` impls; and the conversion from the crate's
//! detailed `Error`, variant by variant.

mod common;

use std::error::Error as _;

use common::file_with_header;
use safetensors::slice::SliceError;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use safetensors::{serialize, Error, SafeTensorError};

/// An exhaustive match, as clients write them.
fn name(e: &SafeTensorError) -> &'static str {
    match e {
        SafeTensorError::InvalidHeader(_) => "InvalidHeader",
        SafeTensorError::InvalidHeaderDeserialization(_) => "InvalidHeaderDeserialization",
        SafeTensorError::HeaderTooLarge => "HeaderTooLarge",
        SafeTensorError::HeaderTooSmall => "HeaderTooSmall",
        SafeTensorError::InvalidHeaderLength => "InvalidHeaderLength",
        SafeTensorError::TensorNotFound(_) => "TensorNotFound",
        SafeTensorError::TensorInvalidInfo => "TensorInvalidInfo",
        SafeTensorError::InvalidOffset(_) => "InvalidOffset",
        SafeTensorError::IoError(_) => "IoError",
        SafeTensorError::JsonError(_) => "JsonError",
        SafeTensorError::InvalidTensorView(_, _, _) => "InvalidTensorView",
        SafeTensorError::MetadataIncompleteBuffer => "MetadataIncompleteBuffer",
        SafeTensorError::ValidationOverflow => "ValidationOverflow",
        SafeTensorError::MisalignedSlice => "MisalignedSlice",
    }
}

fn utf8_error() -> std::str::Utf8Error {
    let bytes: Vec<u8> = vec![b'{', 0xff];
    std::str::from_utf8(&bytes).unwrap_err()
}

fn json_error() -> serde_json::Error {
    serde_json::from_str::<u8>("x").unwrap_err()
}

#[test]
fn every_variant_constructed_matched_and_displayed() {
    let io = || std::io::Error::new(std::io::ErrorKind::NotFound, "gone");
    let cases: Vec<(SafeTensorError, &str, &str, Option<String>)> = vec![
        (
            SafeTensorError::InvalidHeader(utf8_error()),
            "InvalidHeader",
            "invalid UTF-8 in header: invalid utf-8 sequence of 1 bytes from index 1",
            Some("invalid utf-8 sequence of 1 bytes from index 1".into()),
        ),
        (
            SafeTensorError::InvalidHeaderDeserialization(json_error()),
            "InvalidHeaderDeserialization",
            "invalid JSON in header: expected value at line 1 column 1",
            Some("expected value at line 1 column 1".into()),
        ),
        (SafeTensorError::HeaderTooLarge, "HeaderTooLarge", "header too large", None),
        (SafeTensorError::HeaderTooSmall, "HeaderTooSmall", "header too small", None),
        (
            SafeTensorError::InvalidHeaderLength,
            "InvalidHeaderLength",
            "invalid header length",
            None,
        ),
        (
            SafeTensorError::TensorNotFound("w".into()),
            "TensorNotFound",
            "tensor `w` not found",
            None,
        ),
        (
            SafeTensorError::TensorInvalidInfo,
            "TensorInvalidInfo",
            "invalid shape, data type, or offset for tensor",
            None,
        ),
        (
            SafeTensorError::InvalidOffset("w".into()),
            "InvalidOffset",
            "invalid offset for tensor `w`",
            None,
        ),
        (
            SafeTensorError::IoError(io()),
            "IoError",
            "I/O error: gone",
            Some("gone".into()),
        ),
        (
            SafeTensorError::JsonError(json_error()),
            "JsonError",
            "JSON error: expected value at line 1 column 1",
            Some("expected value at line 1 column 1".into()),
        ),
        (
            SafeTensorError::InvalidTensorView(Dtype::F32, vec![2, 3], 7),
            "InvalidTensorView",
            "tensor of type F32 and shape (2, 3) can't be created from 7 bytes",
            None,
        ),
        (
            SafeTensorError::MetadataIncompleteBuffer,
            "MetadataIncompleteBuffer",
            "incomplete metadata, file not fully covered",
            None,
        ),
        (
            SafeTensorError::ValidationOverflow,
            "ValidationOverflow",
            "overflow computing buffer size from shape and/or element type",
            None,
        ),
        (
            SafeTensorError::MisalignedSlice,
            "MisalignedSlice",
            "The slice is slicing for subbytes dtypes, and the slice does not end up at a byte boundary, this is invalid.",
            None,
        ),
    ];
    assert_eq!(cases.len(), 14, "one case per variant");
    for (error, variant, message, source) in cases {
        assert_eq!(name(&error), variant);
        assert_eq!(error.to_string(), message, "{variant}");
        assert_eq!(error.source().map(|s| s.to_string()), source, "{variant}");
        // Debug names the variant, as derived.
        assert!(format!("{error:?}").starts_with(variant), "{error:?}");
    }
}

#[test]
fn from_impls_and_auto_traits() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<SafeTensorError>();
    assert!(matches!(
        SafeTensorError::from(json_error()),
        SafeTensorError::JsonError(_)
    ));
    let io = std::io::Error::other("x");
    assert!(matches!(
        SafeTensorError::from(io),
        SafeTensorError::IoError(_)
    ));
    // `?` into a boxed error, as applications write.
    fn boxed() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
        SafeTensors::deserialize(&[1, 2])?;
        Ok(())
    }
    assert_eq!(boxed().unwrap_err().to_string(), "header too small");
}

/// The reference's functions return the reference's enum (these annotations are the test).
#[test]
fn reference_functions_return_the_reference_enum() {
    let data = [0u8; 4];
    let view: Result<TensorView<'_>, SafeTensorError> = TensorView::new(Dtype::F32, vec![1], &data);
    let view = view.unwrap();
    let bytes: Result<Vec<u8>, SafeTensorError> = serialize([("a", view)], None);
    let bytes = bytes.unwrap();
    let st: Result<SafeTensors<'_>, SafeTensorError> = SafeTensors::deserialize(&bytes);
    let st = st.unwrap();
    let found: Result<TensorView<'_>, SafeTensorError> = st.tensor("b");
    assert!(matches!(found, Err(SafeTensorError::TensorNotFound(n)) if n == "b"));
    let meta: Result<(usize, _), SafeTensorError> = SafeTensors::read_metadata(&bytes);
    assert!(meta.is_ok());
    let dir = tempfile::tempdir().unwrap();
    let written: Result<(), SafeTensorError> = safetensors::serialize_to_file(
        [("a", st.tensor("a").unwrap())],
        None,
        &dir.path().join("a"),
    );
    written.unwrap();
    assert!(matches!(
        TensorView::new(Dtype::F32, vec![2, 3], &data),
        Err(SafeTensorError::InvalidTensorView(Dtype::F32, shape, 4)) if shape == [2, 3]
    ));
}

/// The detailed twins say more about the same problems; converting gives what the
/// reference's functions give.
#[test]
fn detailed_twins_agree_with_the_reference_functions() {
    let f = file_with_header(
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[12,16]}}"#,
        &[0u8; 16],
    );
    let detailed = SafeTensors::parse(&f).unwrap_err();
    assert!(detailed.to_string().contains("leave a hole"), "{detailed}");
    let reference = SafeTensors::deserialize(&f).unwrap_err();
    assert!(matches!(&reference, SafeTensorError::InvalidOffset(n) if n == "b"));
    assert_eq!(
        SafeTensorError::from(detailed).to_string(),
        reference.to_string()
    );
}

#[test]
fn conversion_from_the_detailed_error() {
    let cases: Vec<(Error, &str, &str)> = vec![
        (Error::HeaderTooSmall { len: 3 }, "HeaderTooSmall", "header too small"),
        (
            Error::HeaderTooLarge { header_len: 1 << 40 },
            "HeaderTooLarge",
            "header too large",
        ),
        (
            Error::InvalidHeaderLength {
                header_len: 9,
                file_len: 10,
            },
            "InvalidHeaderLength",
            "invalid header length",
        ),
        (
            Error::InvalidHeader {
                valid_up_to: 1,
                error: utf8_error(),
            },
            "InvalidHeader",
            "invalid UTF-8 in header: invalid utf-8 sequence of 1 bytes from index 1",
        ),
        (
            Error::InvalidHeaderStart,
            "InvalidHeaderDeserialization",
            "invalid JSON in header: header does not start with '{': not a JSON object",
        ),
        (
            Error::InvalidHeaderDeserialization("EOF while parsing".into()),
            "InvalidHeaderDeserialization",
            "invalid JSON in header: EOF while parsing",
        ),
        (
            Error::DuplicateTensor("a".into()),
            "InvalidOffset",
            "invalid offset for tensor `a`",
        ),
        (
            Error::InvalidTensorEntry {
                tensor: "a".into(),
                reason: "missing field `shape`".into(),
            },
            "InvalidHeaderDeserialization",
            "invalid JSON in header: tensor \"a\": missing field `shape`",
        ),
        (
            Error::UnknownDtype {
                tensor: Some("a".into()),
                dtype: "F128".into(),
            },
            "InvalidHeaderDeserialization",
            "invalid JSON in header: tensor \"a\": unknown dtype \"F128\"",
        ),
        (
            Error::InvalidMetadata("value of \"k\" is not a string".into()),
            "InvalidHeaderDeserialization",
            "invalid JSON in header: invalid __metadata__: value of \"k\" is not a string",
        ),
        (
            Error::ValidationOverflow {
                tensor: "a".into(),
                shape: vec![usize::MAX, 2],
                ndim: 2,
            },
            "ValidationOverflow",
            "overflow computing buffer size from shape and/or element type",
        ),
        (
            Error::MisalignedSubByte {
                tensor: "a".into(),
                dtype: Dtype::F4,
                shape: vec![3],
                ndim: 1,
            },
            "MisalignedSlice",
            "The slice is slicing for subbytes dtypes, and the slice does not end up at a byte boundary, this is invalid.",
        ),
        (
            Error::TensorInvalidInfo {
                tensor: "a".into(),
                expected: 8,
                data_offsets: (0, 7),
            },
            "TensorInvalidInfo",
            "invalid shape, data type, or offset for tensor",
        ),
        (
            Error::TensorInvalidInfo {
                tensor: "a".into(),
                expected: 8,
                data_offsets: (8, 0),
            },
            "InvalidOffset",
            "invalid offset for tensor `a`",
        ),
        (
            Error::InvalidOffset {
                tensor: "b".into(),
                data_offsets: (12, 16),
                expected_begin: 8,
                data_len: 16,
            },
            "InvalidOffset",
            "invalid offset for tensor `b`",
        ),
        (
            Error::InvalidOffset {
                tensor: "b".into(),
                data_offsets: (8, 24),
                expected_begin: 8,
                data_len: 16,
            },
            "MetadataIncompleteBuffer",
            "incomplete metadata, file not fully covered",
        ),
        (
            Error::MetadataIncompleteBuffer {
                covered: 8,
                data_len: 12,
            },
            "MetadataIncompleteBuffer",
            "incomplete metadata, file not fully covered",
        ),
        (
            Error::TensorNotFound("w".into()),
            "TensorNotFound",
            "tensor `w` not found",
        ),
        (
            Error::InvalidTensorView {
                dtype: Dtype::BF16,
                shape: vec![3],
                data_len: 5,
            },
            "InvalidTensorView",
            "tensor of type BF16 and shape (3) can't be created from 5 bytes",
        ),
        (
            Error::InvalidSlice(SliceError::SplitsSubByteElement { dtype: Dtype::F4 }),
            "MisalignedSlice",
            "The slice is slicing for subbytes dtypes, and the slice does not end up at a byte boundary, this is invalid.",
        ),
        (
            Error::IoError(std::io::Error::other("disk on fire")),
            "IoError",
            "I/O error: disk on fire",
        ),
    ];
    for (detailed, variant, message) in cases {
        let shown = format!("{detailed:?}");
        let converted = SafeTensorError::from(detailed);
        assert_eq!(name(&converted), variant, "{shown}");
        assert_eq!(converted.to_string(), message, "{shown}");
    }
}

/// What the reference has no variant for travels whole inside `IoError`: the message is the
/// detailed one, and the detailed error comes back by downcasting.
#[test]
fn errors_the_reference_lacks_travel_inside_io_error() {
    let cases = [
        Error::InvalidWrite("metadata key \"k\" given twice".into()),
        Error::InvalidIndex("index.json: tensor \"a\" listed twice".into()),
        Error::InvalidArgument("range 0..9 past the tensor's 8 bytes".into()),
        Error::FileChanged {
            expected_len: 10,
            actual_len: 8,
        },
        Error::InvalidSlice(SliceError::MultipleEllipsis),
    ];
    for detailed in cases {
        let message = detailed.to_string();
        let converted = SafeTensorError::from(detailed);
        let SafeTensorError::IoError(io) = converted else {
            panic!("{converted:?}");
        };
        assert_eq!(io.to_string(), message);
        let back = io.into_inner().unwrap().downcast::<Error>().unwrap();
        assert_eq!(back.to_string(), message);
    }
}

/// Writing refuses a header the readers would refuse (over 100 MB), instead of writing a
/// file nobody can open.
#[test]
fn serialize_refuses_a_header_over_the_limit() {
    let data = [0u8; 1];
    let view = TensorView::new(Dtype::U8, vec![1], &data).unwrap();
    let huge = "x".repeat(safetensors::MAX_HEADER_SIZE);
    let e = serialize([("a", view.clone())], vec![("k", huge.as_str())]).unwrap_err();
    assert!(matches!(e, SafeTensorError::HeaderTooLarge), "{e:?}");
    let e = safetensors::write::to_bytes([("a", view)], vec![("k", huge.as_str())]).unwrap_err();
    assert!(matches!(e, Error::HeaderTooLarge { .. }), "{e:?}");
}
