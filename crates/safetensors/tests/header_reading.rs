//! SPEC section 1, header reading: JSON whitespace before the header object is accepted,
//! a tensor-entry field beyond `dtype`, `shape` and `data_offsets` is ignored (as the
//! reference does), and repeated names stay refused. Also: a header with many metadata
//! entries is read in well under quadratic time (the duplicate check sorts).

mod common;

use common::file_with_header;
use safetensors::{Dtype, Error, SafeTensors};

const ENTRY: &str = r#""a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}"#;

fn read(header: &str, data_len: usize) -> Result<Vec<(String, Dtype, Vec<usize>)>, Error> {
    let file = file_with_header(header, &vec![7u8; data_len]);
    let st = SafeTensors::parse(&file)?;
    let mut out: Vec<_> = st
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.dtype(), view.shape().to_vec()))
        .collect();
    out.sort();
    Ok(out)
}

#[test]
fn leading_json_whitespace_is_accepted() {
    for lead in [" ", "\n", "\t", "\r\n", " \t\r\n  \n"] {
        let header = format!("{lead}{{{ENTRY}}}");
        let got = read(&header, 2).unwrap_or_else(|e| panic!("{lead:?}: {e}"));
        assert_eq!(got, [("a".to_string(), Dtype::U8, vec![2])], "{lead:?}");
    }
    // With metadata too, and through the file reader's padding rules.
    let header = format!("\n  {{\"__metadata__\":{{\"k\":\"v\"}},{ENTRY}}}");
    let file = file_with_header(&header, &[1, 2]);
    let st = SafeTensors::parse(&file).unwrap();
    assert_eq!(st.metadata().metadata_ordered().unwrap(), [("k", "v")]);
}

#[test]
fn whitespace_that_is_not_json_whitespace_is_refused() {
    // Form feed, vertical tab, NUL and a no-break space are not JSON whitespace.
    for lead in ["\x0c", "\x0b", "\0", "\u{a0}"] {
        let header = format!("{lead}{{{ENTRY}}}");
        let e = read(&header, 2).expect_err(lead);
        assert!(matches!(e, Error::InvalidHeaderStart), "{lead:?}: {e:?}");
    }
    // Whitespace followed by something other than an object is still not a header.
    for header in ["  [1]", "\n\"x\"", "   ", "\t"] {
        let e = read(header, 0).expect_err(header);
        assert!(matches!(e, Error::InvalidHeaderStart), "{header:?}: {e:?}");
    }
}

#[test]
fn extra_tensor_fields_are_ignored() {
    for extra in [
        r#""x":1"#,
        r#""note":"from a newer writer""#,
        r#""nested":{"a":[1,{"b":null}],"c":true}"#,
        r#""x":1,"y":[],"x":2"#,
        r#""dtypes":"F32","offsets":[9,9]"#,
    ] {
        for header in [
            format!(r#"{{"a":{{{extra},"dtype":"U8","shape":[2],"data_offsets":[0,2]}}}}"#),
            format!(r#"{{"a":{{"dtype":"U8","shape":[2],{extra},"data_offsets":[0,2]}}}}"#),
            format!(r#"{{"a":{{"dtype":"U8","shape":[2],"data_offsets":[0,2],{extra}}}}}"#),
        ] {
            let got = read(&header, 2).unwrap_or_else(|e| panic!("{header}: {e}"));
            assert_eq!(got, [("a".to_string(), Dtype::U8, vec![2])], "{header}");
        }
    }
}

#[test]
fn an_extra_field_does_not_excuse_a_missing_or_bad_one() {
    for (header, needle) in [
        (
            r#"{"a":{"dtype":"U8","shape":[2],"x":[0,2]}}"#,
            "missing field \"data_offsets\"",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"data_offsets":[0,2],"x":1}}"#,
            "appears twice",
        ),
        (
            r#"{"a":{"dtype":"U8","shape":[2.5],"data_offsets":[0,2],"x":1}}"#,
            "shape",
        ),
        // An extra field's value must still be valid JSON.
        (
            r#"{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2],"x":}}"#,
            "",
        ),
    ] {
        let e = read(header, 2).expect_err(header);
        assert!(e.to_string().contains(needle), "{header}: {e}");
    }
}

#[test]
fn repeated_names_stay_refused() {
    let header = format!("  {{{ENTRY},{ENTRY}}}");
    let e = read(&header, 4).unwrap_err();
    assert!(matches!(&e, Error::DuplicateTensor(n) if n == "a"), "{e:?}");

    let header = r#"{"__metadata__":{"k":"1","j":"2","k":"3"}}"#;
    let e = read(header, 0).unwrap_err();
    assert!(
        matches!(e, Error::InvalidMetadata(ref m) if m.contains("\"k\" appears twice")),
        "{e:?}"
    );
}

#[test]
fn many_metadata_entries_read_and_their_duplicates_are_found() {
    // 50,000 entries: a quadratic duplicate check made this slow (1.25e9 comparisons).
    let n = 50_000;
    let mut header = String::from(r#"{"__metadata__":{"#);
    for i in 0..n {
        header.push_str(&format!("\"key{i}\":\"v\","));
    }
    let unique = format!("{}}}}}", header.trim_end_matches(','));
    let file = file_with_header(&unique, &[]);
    let st = SafeTensors::parse(&file).unwrap();
    assert_eq!(st.metadata().metadata_ordered().unwrap().len(), n);
    assert_eq!(st.metadata().metadata().as_ref().unwrap()["key123"], "v");

    let repeated = format!("{header}\"key{}\":\"w\"}}}}", n / 2);
    let e = read(&repeated, 0).unwrap_err();
    let expected = format!("\"key{}\" appears twice", n / 2);
    assert!(e.to_string().contains(&expected), "{e}");
}

/// Entries are validated as the parser reads them; what is reported must not depend on
/// that: a JSON syntax error anywhere wins over a bad entry, and among bad entries the
/// first in file order is named.
#[test]
fn first_problem_in_file_order_after_syntax_errors() {
    let bad_dtype = r#""x":{"dtype":"Q7","shape":[1],"data_offsets":[0,1]}"#;
    let bad_shape = r#""y":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}"#;
    // A syntax error after a bad entry.
    let e = read(&format!("{{{bad_dtype},{ENTRY},}}"), 3).unwrap_err();
    assert!(matches!(e, Error::InvalidHeaderDeserialization(_)), "{e:?}");
    let e = read(&format!("{{{bad_dtype},{ENTRY}"), 3).unwrap_err();
    assert!(matches!(e, Error::InvalidHeaderDeserialization(_)), "{e:?}");
    // Two bad entries: the first named, whichever kind.
    let e = read(&format!("{{{bad_dtype},{bad_shape}}}"), 2).unwrap_err();
    assert!(
        matches!(&e, Error::UnknownDtype { tensor: Some(t), dtype } if t == "x" && dtype == "Q7"),
        "{e:?}"
    );
    let e = read(&format!("{{{bad_shape},{bad_dtype}}}"), 2).unwrap_err();
    assert!(
        matches!(&e, Error::InvalidTensorEntry { tensor, .. } if tensor == "y"),
        "{e:?}"
    );
    // Bad metadata before a bad entry, and a second `__metadata__` after one.
    let e = read(&format!(r#"{{"__metadata__":{{"k":1}},{bad_dtype}}}"#), 1).unwrap_err();
    assert!(matches!(e, Error::InvalidMetadata(_)), "{e:?}");
    let e = read(
        &format!(r#"{{"__metadata__":{{}},{ENTRY},"__metadata__":{{}},{bad_dtype}}}"#),
        2,
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::DuplicateTensor(name) if name == "__metadata__"),
        "{e:?}"
    );
    // Entry problems come before the checks that need every entry (names, tiling).
    let e = read(&format!("{{{ENTRY},{ENTRY},{bad_dtype}}}"), 2).unwrap_err();
    assert!(matches!(e, Error::UnknownDtype { .. }), "{e:?}");
}

/// Shapes are kept at their exact length whether short (gathered on the stack) or long.
#[test]
fn shapes_of_every_length_are_kept_exactly() {
    for rank in [0usize, 1, 7, 8, 9, 17, 1000] {
        let shape = vec![1usize; rank];
        let dims: Vec<String> = shape.iter().map(ToString::to_string).collect();
        let header = format!(
            r#"{{"a":{{"dtype":"U8","shape":[{}],"data_offsets":[0,1]}}}}"#,
            dims.join(",")
        );
        let got = read(&header, 1).unwrap_or_else(|e| panic!("rank {rank}: {e}"));
        assert_eq!(got, [("a".to_string(), Dtype::U8, shape)], "rank {rank}");
    }
}

#[test]
fn null_metadata_is_read_as_no_metadata() {
    // SPEC section 1, as the reference reads it; the key still counts once.
    let entry = r#""a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}"#;
    for header in [
        format!(r#"{{"__metadata__":null,{entry}}}"#),
        format!(r#"{{{entry},"__metadata__" : null }}"#),
    ] {
        let file = file_with_header(&header, &[1, 2]);
        let st = SafeTensors::parse(&file).unwrap();
        assert_eq!(st.tensor("a").unwrap().data(), &[1, 2]);
        let (_, metadata) = SafeTensors::read_metadata(&file).unwrap();
        assert!(metadata.metadata().is_none(), "{header}");
    }
    for header in [
        r#"{"__metadata__":null,"__metadata__":{"k":"v"}}"#,
        r#"{"__metadata__":{"k":"v"},"__metadata__":null}"#,
        r#"{"__metadata__":null,"__metadata__":null}"#,
    ] {
        let e = SafeTensors::parse(&file_with_header(header, &[])).unwrap_err();
        assert!(matches!(e, Error::DuplicateTensor(_)), "{header}: {e:?}");
    }
}
