//! The reference's serde face of a header: `Metadata`, `TensorInfo` and `Dtype` to and from
//! the header's JSON, a deserialized `Metadata` validated as a header is, and
//! `Metadata::new` (written from the 0.8.0 crate's documentation and behaviour).

mod common;

use std::collections::HashMap;

use safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors, TensorInfo};

fn info(dtype: Dtype, shape: &[usize], begin: usize, end: usize) -> TensorInfo {
    TensorInfo {
        dtype,
        shape: shape.to_vec(),
        data_offsets: (begin, end),
    }
}

#[test]
fn json_forms() {
    let i = info(Dtype::F32, &[2], 0, 8);
    assert_eq!(
        serde_json::to_string(&i).unwrap(),
        r#"{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#
    );
    assert_eq!(
        serde_json::to_string(&Dtype::F8_E4M3).unwrap(),
        r#""F8_E4M3""#
    );
    assert_eq!(
        serde_json::from_str::<Dtype>(r#""BF16""#).unwrap(),
        Dtype::BF16
    );
    assert!(serde_json::from_str::<Dtype>(r#""f32""#).is_err());
    let m = Metadata::new(
        Some(HashMap::from([("k".to_string(), "v".to_string())])),
        vec![
            ("b".to_string(), info(Dtype::U8, &[], 8, 9)),
            ("a".to_string(), i.clone()),
        ],
    )
    .unwrap();
    assert_eq!(
        serde_json::to_string(&m).unwrap(),
        concat!(
            r#"{"__metadata__":{"k":"v"},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"#,
            r#""b":{"dtype":"U8","shape":[],"data_offsets":[8,9]}}"#
        )
    );
}

/// How anamnesis reads a header: `serde_json::from_slice::<Metadata>` on the header bytes.
#[test]
fn header_bytes_round_trip_through_serde() {
    let data = [0u8; 12];
    let a = safetensors::tensor::TensorView::new(Dtype::F32, vec![2], &data[..8]).unwrap();
    let b = safetensors::tensor::TensorView::new(Dtype::I16, vec![2], &data[8..]).unwrap();
    let bytes = safetensors::serialize([("a", a), ("b", b)], vec![("format", "pt")]).unwrap();
    let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let from_serde: Metadata = serde_json::from_slice(&bytes[8..8 + n]).unwrap();
    let (_, from_reader) = SafeTensors::read_metadata(&bytes).unwrap();
    assert_eq!(from_serde, from_reader);
    assert_eq!(from_serde.info("b").unwrap().data_offsets, (8, 12));
    assert_eq!(from_serde.metadata().as_ref().unwrap()["format"], "pt");
    // And back: the same JSON as the file's header (minus its padding).
    let again = serde_json::to_string(&from_serde).unwrap();
    assert_eq!(
        again,
        std::str::from_utf8(&bytes[8..8 + n]).unwrap().trim_end()
    );
    let back: Metadata = serde_json::from_str(&again).unwrap();
    assert_eq!(back, from_serde);
}

#[test]
fn deserialized_metadata_is_validated_as_a_header() {
    let cases = [
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#,
            "invalid offset for tensor `a`",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,7]}}"#,
            "invalid shape, data type, or offset for tensor",
        ),
        (
            r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#,
            "invalid offset for tensor `",
        ),
    ];
    for (json, message) in cases {
        let e = serde_json::from_str::<Metadata>(json).unwrap_err();
        assert!(e.to_string().starts_with(message), "{json}: {e}");
    }
    assert!(serde_json::from_str::<Metadata>("[]").is_err());
    assert!(serde_json::from_str::<Metadata>(
        r#"{"a":{"dtype":"F128","shape":[],"data_offsets":[0,1]}}"#
    )
    .is_err());
    // What the reference accepts: a null __metadata__, a field beyond the three.
    let ok: Metadata = serde_json::from_str(
        r#"{"__metadata__":null,"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8],"x":1}}"#,
    )
    .unwrap();
    assert_eq!(ok.metadata(), &None);
    assert_eq!(
        serde_json::to_string(&ok).unwrap(),
        r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#
    );
}

#[test]
fn metadata_new_validates() {
    let e = Metadata::new(None, vec![("a".into(), info(Dtype::F32, &[2], 0, 7))]).unwrap_err();
    assert!(matches!(e, SafeTensorError::TensorInvalidInfo), "{e:?}");
    let e = Metadata::new(None, vec![("a".into(), info(Dtype::F32, &[2], 4, 12))]).unwrap_err();
    assert!(
        matches!(&e, SafeTensorError::InvalidOffset(n) if n == "a"),
        "{e:?}"
    );
    let e = Metadata::new(None, vec![("a".into(), info(Dtype::F4, &[3], 0, 2))]).unwrap_err();
    assert!(matches!(e, SafeTensorError::MisalignedSlice), "{e:?}");
    let e = Metadata::new(
        None,
        vec![("a".into(), info(Dtype::F32, &[usize::MAX, 2], 0, 8))],
    )
    .unwrap_err();
    assert!(matches!(e, SafeTensorError::ValidationOverflow), "{e:?}");
    let empty = Metadata::new(None, Vec::new()).unwrap();
    assert!(empty.tensors().is_empty());
}

proptest::proptest! {
    /// Any valid header survives serde_json both ways unchanged.
    #[test]
    fn serde_round_trip(shapes in proptest::collection::vec(proptest::collection::vec(0usize..4, 0..3), 0..6),
                        keys in proptest::collection::vec("[a-z\"\\\\é]{0,5}", 0..3)) {
        let mut offset = 0;
        let tensors: Vec<(String, TensorInfo)> = shapes.iter().enumerate().map(|(i, shape)| {
            let len = shape.iter().product::<usize>() * 2;
            let t = (format!("t{i}"), info(Dtype::BF16, shape, offset, offset + len));
            offset += len;
            t
        }).collect();
        let metadata = (!keys.is_empty()).then(|| keys.iter().map(|k| (k.clone(), k.repeat(2))).collect::<HashMap<_, _>>());
        let m = Metadata::new(metadata.clone(), tensors).unwrap();
        let json = serde_json::to_vec(&m).unwrap();
        let back: Metadata = serde_json::from_slice(&json).unwrap();
        proptest::prop_assert_eq!(&back, &m);
        proptest::prop_assert_eq!(back.metadata(), &metadata);
    }
}
