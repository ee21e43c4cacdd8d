//! Code written against the reference crate's public API compiles and runs unchanged:
//! the paths, call shapes and trait impls users rely on (SPEC 4).

use std::borrow::Cow;
use std::collections::HashMap;

use safetensors::slice::IndexOp;
use safetensors::tensor::{Dtype, Metadata, SafeTensorError, SafeTensors, TensorInfo, TensorView};
use safetensors::{serialize, serialize_to_file, View};

/// A user's own tensor type, serialized through the `View` trait (as candle does).
struct MyTensor {
    shape: Vec<usize>,
    values: Vec<f32>,
}

impl View for &MyTensor {
    fn dtype(&self) -> Dtype {
        Dtype::F32
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Owned(self.values.iter().flat_map(|v| v.to_le_bytes()).collect())
    }
    fn data_len(&self) -> usize {
        self.values.len() * Dtype::F32.size()
    }
}

#[test]
// The borrowed forms are the point: they are how code written for older releases calls.
#[allow(clippy::needless_borrows_for_generic_args)]
fn reference_call_shapes_compile_and_agree() -> Result<(), SafeTensorError> {
    let raw: Vec<u8> = (0..6u8).collect();
    let mut data: HashMap<String, TensorView> = HashMap::new();
    data.insert(
        "a".to_string(),
        TensorView::new(Dtype::U8, vec![2, 3], &raw)?,
    );

    // 0.4-style (&Option), 0.5+-style (Option by value), with and without a map.
    let by_ref = serialize(&data, &None)?;
    let by_value = serialize(data.clone(), None)?;
    assert_eq!(by_ref, by_value);
    let mut map = HashMap::new();
    map.insert("format".to_string(), "pt".to_string());
    let with_meta = serialize(&data, Some(map.clone()))?;
    let with_meta_ref = serialize(&data, &Some(map.clone()))?;
    assert_eq!(with_meta, with_meta_ref);

    let st = SafeTensors::deserialize(&with_meta)?;
    let view = st.tensor("a")?;
    assert!(view.dtype().to_string() == "U8");
    assert_eq!(view.shape(), &[2, 3]);
    assert_eq!(st.names(), vec!["a"]);
    assert_eq!(st.len(), 1);
    assert!(!st.is_empty());
    for (name, tensor) in st.tensors() {
        assert_eq!(name, "a");
        assert_eq!(tensor.data(), &raw[..]);
    }

    // Re-serialize what was read, with the metadata map, as users do.
    let again = serialize(st.tensors(), Some(map))?;
    assert_eq!(again, with_meta);

    let (n, metadata): (usize, Metadata) = SafeTensors::read_metadata(&with_meta)?;
    assert_eq!(n % 8, 0);
    let infos: HashMap<String, &TensorInfo> = metadata.tensors();
    assert_eq!(infos["a"].data_offsets, (0, 6));
    assert_eq!(metadata.metadata().as_ref().unwrap()["format"], "pt");

    // 0.8.0's generic parameters, named with a turbofish as some clients do.
    let named =
        serialize::<&str, TensorView, Vec<(&str, TensorView)>>(vec![("a", st.tensor("a")?)], None)?;
    assert_eq!(named, serialize(st.tensors(), None)?);
    let dir = tempfile::tempdir().unwrap();
    serialize_to_file::<String, TensorView, Vec<(String, TensorView)>>(
        st.tensors(),
        None,
        &dir.path().join("named.safetensors"),
    )?;

    // Numpy-like slicing through IndexOp.
    // (0.8.0 has no `From<InvalidSlice> for SafeTensorError`: slicing errors are their own.)
    let column: Vec<u8> = view.slice((.., 1..2)).unwrap().flatten().copied().collect();
    assert_eq!(column, [1, 4]);

    // A user type through View, to a file.
    let mine = MyTensor {
        shape: vec![2],
        values: vec![1.0, 2.0],
    };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mine.safetensors");
    serialize_to_file(vec![("w", &mine)], &None, &path)?;
    let bytes = std::fs::read(&path).unwrap();
    let st = SafeTensors::deserialize(&bytes)?;
    assert_eq!(
        st.tensor("w")?.data(),
        &[1.0f32.to_le_bytes(), 2.0f32.to_le_bytes()].concat()[..]
    );
    Ok(())
}

#[test]
fn error_converts_into_boxed_error_with_question_mark() {
    fn load(bytes: &[u8]) -> Result<usize, Box<dyn std::error::Error>> {
        Ok(SafeTensors::deserialize(bytes)?.len())
    }
    let e = load(&[0u8; 3]).unwrap_err();
    assert!(e.to_string().contains("too small"));
}
