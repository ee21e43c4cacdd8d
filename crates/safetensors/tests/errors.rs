//! One test per error kind, through the public API, checking the message names the
//! tensor and the numbers.

mod common;

use std::borrow::Cow;

use common::file_with_header;
use safetensors::slice::{byte_ranges, DimIndexer, InvalidSlice, TensorIndexer};
use safetensors::tensor::TensorView;
use safetensors::write::to_bytes;
use safetensors::{Dtype, Error, SafeTensorError, SafeTensors, View};

fn err(bytes: &[u8]) -> Error {
    SafeTensors::parse(bytes).expect_err("must be rejected")
}

fn err_for(header: &str, data_len: usize) -> Error {
    err(&file_with_header(header, &vec![0u8; data_len]))
}

#[test]
fn header_too_small() {
    let e = err(&[1, 2, 3]);
    assert!(matches!(e, Error::HeaderTooSmall { len: 3 }), "{e:?}");
    assert!(e.to_string().contains("3 bytes"));
}

#[test]
fn header_too_large() {
    let e = err(&(200_000_000u64).to_le_bytes());
    assert!(matches!(
        e,
        Error::HeaderTooLarge {
            header_len: 200_000_000
        }
    ));
    assert!(e.to_string().contains("200000000"));
}

#[test]
fn header_length_past_end() {
    let mut f = 100u64.to_le_bytes().to_vec();
    f.extend_from_slice(b"{}");
    let e = err(&f);
    assert!(
        matches!(
            e,
            Error::InvalidHeaderLength {
                header_len: 100,
                file_len: 10
            }
        ),
        "{e:?}"
    );
}

#[test]
fn header_not_utf8() {
    let mut f = 8u64.to_le_bytes().to_vec();
    f.extend_from_slice(b"{\"\xff\":1}  ");
    assert!(matches!(
        err(&f),
        Error::InvalidHeader { valid_up_to: 2, .. }
    ));
}

#[test]
fn header_not_an_object() {
    assert!(matches!(err_for("[1,2]", 0), Error::InvalidHeaderStart));
    assert!(matches!(
        err_for("{\"a\":", 0),
        Error::InvalidHeaderDeserialization(_)
    ));
}

#[test]
fn duplicate_tensor() {
    let h = r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}}"#;
    let e = err_for(h, 2);
    assert!(matches!(&e, Error::DuplicateTensor(n) if n == "a"), "{e:?}");
    assert!(e.to_string().contains("\"a\""));
}

#[test]
fn duplicate_field_or_metadata_key() {
    let h = r#"{"a":{"dtype":"U8","dtype":"U8","shape":[1],"data_offsets":[0,1]}}"#;
    assert!(matches!(err_for(h, 1), Error::InvalidTensorEntry { .. }));
    let h = r#"{"__metadata__":{"k":"1","k":"2"}}"#;
    assert!(matches!(err_for(h, 0), Error::InvalidMetadata(_)));
    let h = r#"{"__metadata__":{"k":"1"},"__metadata__":{"j":"2"}}"#;
    assert!(matches!(err_for(h, 0), Error::DuplicateTensor(ref n) if n == "__metadata__"));
}

#[test]
fn invalid_tensor_entry() {
    for (h, needle) in [
        (
            r#"{"a":{"dtype":"U8","shape":[1]}}"#,
            "missing field \"data_offsets\"",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,0]}}"#,
            "shape",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[1.0],"data_offsets":[0,1]}}"#,
            "shape",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}"#,
            "exactly 2",
        ),
        (
            r#"{"a":{"dtype":8,"shape":[1],"data_offsets":[0,1]}}"#,
            "dtype must be a string",
        ),
        (r#"{"a":[1]}"#, "must be an object"),
    ] {
        let e = err_for(h, 1);
        assert!(matches!(e, Error::InvalidTensorEntry { .. }), "{h}: {e:?}");
        assert!(
            e.to_string().contains(needle) && e.to_string().contains("\"a\""),
            "{h}: {e}"
        );
    }
}

#[test]
fn unknown_dtype() {
    let e = err_for(
        r#"{"a":{"dtype":"f32","shape":[1],"data_offsets":[0,4]}}"#,
        4,
    );
    assert!(matches!(&e, Error::UnknownDtype { dtype, .. } if dtype == "f32"));
    assert!(e.to_string().contains("\"a\""));
}

#[test]
fn invalid_metadata() {
    assert!(matches!(
        err_for(r#"{"__metadata__":"x"}"#, 0),
        Error::InvalidMetadata(_)
    ));
    let e = err_for(r#"{"__metadata__":{"k":1}}"#, 0);
    assert!(matches!(e, Error::InvalidMetadata(_)));
    assert!(e.to_string().contains("\"k\""));
}

#[test]
fn validation_overflow() {
    let h = r#"{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,4]}}"#;
    assert!(matches!(err_for(h, 4), Error::ValidationOverflow { .. }));
}

#[test]
fn misaligned_sub_byte() {
    let e = err_for(
        r#"{"a":{"dtype":"F4","shape":[3],"data_offsets":[0,2]}}"#,
        2,
    );
    assert!(
        matches!(
            e,
            Error::MisalignedSubByte {
                dtype: Dtype::F4,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn tensor_invalid_info() {
    let e = err_for(
        r#"{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#,
        8,
    );
    assert!(matches!(
        e,
        Error::TensorInvalidInfo {
            expected: 12,
            data_offsets: (0, 8),
            ..
        }
    ));
    assert!(
        e.to_string().contains("12") && e.to_string().contains("[0, 8]"),
        "{e}"
    );
    let e = err_for(
        r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[4,0]}}"#,
        4,
    );
    assert!(matches!(e, Error::TensorInvalidInfo { .. }), "{e:?}");
}

#[test]
fn invalid_offset_hole_overlap_past_end() {
    let hole = r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"b":{"dtype":"U8","shape":[2],"data_offsets":[4,6]}}"#;
    let e = err_for(hole, 6);
    assert!(matches!(&e, Error::InvalidOffset { tensor, expected_begin: 2, .. } if tensor == "b"));
    assert!(e.to_string().contains("hole"), "{e}");
    let overlap = r#"{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[2],"data_offsets":[2,4]}}"#;
    assert!(err_for(overlap, 4).to_string().contains("overlap"));
    let past = r#"{"a":{"dtype":"U8","shape":[8],"data_offsets":[0,8]}}"#;
    let e = err_for(past, 4);
    assert!(e.to_string().contains("past the end"), "{e}");
}

#[test]
fn trailing_bytes() {
    let e = err_for(
        r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}"#,
        6,
    );
    assert!(matches!(
        e,
        Error::MetadataIncompleteBuffer {
            covered: 2,
            data_len: 6
        }
    ));
    assert!(e.to_string().contains("4 trailing bytes"), "{e}");
}

#[test]
fn tensor_not_found() {
    let f = file_with_header("{}", &[]);
    let st = SafeTensors::parse(&f).unwrap();
    let e = st.tensor("missing").unwrap_err();
    assert!(matches!(&e, SafeTensorError::TensorNotFound(n) if n == "missing"));
}

#[test]
fn invalid_tensor_view() {
    let e = TensorView::new(Dtype::F32, vec![2], &[0u8; 7]).unwrap_err();
    assert!(matches!(
        e,
        SafeTensorError::InvalidTensorView(Dtype::F32, _, 7)
    ));
    // Three F4 elements do not fill whole bytes: the reference's MisalignedSlice, whatever
    // the length given.
    for len in [1, 2] {
        assert!(matches!(
            TensorView::new(Dtype::F4, vec![3], &[0u8; 2][..len]),
            Err(SafeTensorError::MisalignedSlice)
        ));
    }
    assert!(matches!(
        TensorView::new(Dtype::F4, vec![4], &[0u8; 3]),
        Err(SafeTensorError::InvalidTensorView(Dtype::F4, _, 3))
    ));
}

#[test]
fn invalid_slice() {
    let data = [0u8; 24];
    let v = TensorView::new(Dtype::F32, vec![2, 3], &data).unwrap();
    // The reference's API: the reference's enum and message.
    let e = v.sliced_data(&[TensorIndexer::Select(2)]).unwrap_err();
    assert_eq!(
        e,
        InvalidSlice::SliceOutOfRange {
            dim_index: 0,
            asked: 2,
            dim_size: 2,
        }
    );
    assert_eq!(
        e.to_string(),
        "index 2 out of bounds for tensor dimension #0 of size 2"
    );
    let e = v.sliced_data(&[0.into(), 0.into(), 0.into()]).unwrap_err();
    assert_eq!(e, InvalidSlice::TooManySlices);
    let e = v.sliced_data(&[(..).into(), (1..5).into()]).unwrap_err();
    assert!(matches!(
        e,
        InvalidSlice::SliceOutOfRange {
            dim_index: 1,
            asked: 4,
            dim_size: 3
        }
    ));
    let f4 = TensorView::new(Dtype::F4, vec![4], &data[..2]).unwrap();
    let e = f4.sliced_data(&[(1..3).into()]).unwrap_err();
    assert_eq!(e, InvalidSlice::MisalignedSlice);

    // The project's own API says more, and converts into the crate's error.
    let e = byte_ranges(Dtype::F32, &[2, 3], &[DimIndexer::Select(2)]).unwrap_err();
    assert!(e.to_string().contains("dimension 0 of size 2"), "{e}");
    assert_eq!(
        InvalidSlice::from(e.clone()),
        InvalidSlice::SliceOutOfRange {
            dim_index: 0,
            asked: 2,
            dim_size: 2
        }
    );
    let as_error: Error = e.into();
    assert!(matches!(as_error, Error::InvalidSlice(_)));
}

#[test]
fn invalid_write() {
    let data = [0u8; 4];
    let v = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
    let e = to_bytes([("__metadata__", v.clone())], None).unwrap_err();
    assert!(matches!(e, Error::InvalidWrite(_)));
    let e = to_bytes(vec![("a", v.clone()), ("a", v)], None).unwrap_err();
    assert!(matches!(e, Error::DuplicateTensor(_)));

    /// A view that claims more bytes than it has.
    struct Liar;
    impl View for Liar {
        fn dtype(&self) -> Dtype {
            Dtype::U8
        }
        fn shape(&self) -> &[usize] {
            &[4]
        }
        fn data(&self) -> Cow<'_, [u8]> {
            Cow::Borrowed(&[1, 2])
        }
        fn data_len(&self) -> usize {
            4
        }
    }
    assert!(matches!(
        to_bytes([("x", Liar)], None),
        Err(Error::InvalidWrite(_))
    ));
}

/// Every error that quotes the input (names, strings, shapes) stays small whatever the
/// input: a hostile header of millions of dimensions or a multi-megabyte name gives an error
/// of a few hundred bytes that still says what it is about.
#[test]
fn errors_stay_small_whatever_the_input() {
    let long = "n".repeat(5_000_000);
    let dims = |n: usize, d: &str| vec![d; n].join(",");
    let entry = |dtype: &str, shape: &str, offsets: &str| {
        format!(r#"{{"dtype":"{dtype}","shape":[{shape}],"data_offsets":{offsets}}}"#)
    };
    let cases: Vec<(&str, String, usize, &str)> = vec![
        (
            "a shape of 2 M dimensions that overflows",
            format!(
                r#"{{"a":{}}}"#,
                entry("F32", &dims(2_000_000, "2"), "[0,4]")
            ),
            4,
            "2000000 dimensions",
        ),
        (
            "an F4 shape of 1 M dimensions that splits a byte",
            format!(
                r#"{{"a":{}}}"#,
                entry("F4", &(dims(1_000_000, "1") + ",3"), "[0,2]")
            ),
            2,
            "1000001 dimensions",
        ),
        (
            "a long name with a bad entry",
            format!(r#"{{"{long}":{{"dtype":"F32"}}}}"#),
            0,
            "5000000 bytes",
        ),
        (
            "a long unknown dtype",
            format!(r#"{{"a":{}}}"#, entry(&long, "1", "[0,4]")),
            4,
            "5000000 bytes",
        ),
        (
            "a long name whose offsets do not match",
            format!(r#"{{"{long}":{}}}"#, entry("F32", "1", "[0,8]")),
            8,
            "5000000 bytes",
        ),
        (
            "a long name past the end of the data",
            format!(r#"{{"{long}":{}}}"#, entry("F32", "1", "[0,4]")),
            0,
            "5000000 bytes",
        ),
        (
            "a long name twice",
            format!(
                r#"{{"{long}":{0},"{long}":{0}}}"#,
                entry("U8", "0", "[0,0]")
            ),
            0,
            "5000000 bytes",
        ),
        (
            "a long string in data_offsets",
            format!(
                r#"{{"a":{}}}"#,
                entry("F32", "1", &format!(r#"["{long}",4]"#))
            ),
            4,
            "5000000 bytes",
        ),
        (
            "a long metadata key with a number",
            format!(r#"{{"__metadata__":{{"{long}":1}}}}"#),
            0,
            "5000000 bytes",
        ),
        (
            "a long metadata key twice",
            format!(r#"{{"__metadata__":{{"{long}":"x","{long}":"y"}}}}"#),
            0,
            "5000000 bytes",
        ),
    ];
    for (what, header, data_len, says) in cases {
        let e = err_for(&header, data_len);
        let (shown, debug) = (e.to_string(), format!("{e:?}"));
        assert!(
            shown.len() < 1024 && debug.len() < 1024,
            "{what}: {} bytes: {shown:.300}",
            shown.len()
        );
        assert!(shown.contains(says), "{what}: {shown}");
    }
    // The dimensions an error keeps are the shape's first ones.
    let header = format!(
        r#"{{"a":{}}}"#,
        entry("F32", &dims(40, "4294967296"), "[0,4]")
    );
    match err_for(&header, 4) {
        Error::ValidationOverflow { shape, ndim, .. } => {
            assert_eq!((shape, ndim), (vec![4294967296; 8], 40));
        }
        other => panic!("{other:?}"),
    }
    // A name asked for by the caller is kept short too.
    let file = file_with_header(
        r#"{"a":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}"#,
        &[],
    );
    let e = SafeTensors::parse(&file)
        .unwrap()
        .tensor(&long)
        .unwrap_err();
    assert!(
        e.to_string().len() < 1024 && e.to_string().contains("5000000 bytes"),
        "{e}"
    );
}
