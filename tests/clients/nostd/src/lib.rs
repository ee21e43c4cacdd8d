//! A `no_std` library reading and writing safetensors bytes with the crate's `alloc` build.
#![no_std]

extern crate alloc;

use alloc::string::String;
use alloc::vec::Vec;

use hashbrown::HashMap;
use safetensors::tensor::{Metadata, TensorInfo, TensorView};
use safetensors::{serialize, Dtype, SafeTensorError, SafeTensors};

/// The error types are `core::error::Error`s without `std`.
pub fn as_error(e: &SafeTensorError) -> &dyn core::error::Error {
    e
}

/// Every tensor's header entry, through the reference's `HashMap` (hashbrown 0.16's).
pub fn infos(metadata: &Metadata) -> HashMap<String, &TensorInfo> {
    metadata.tensors()
}

/// Writes one `F32` tensor of `values` and reads back its shape and bytes.
pub fn round_trip(values: &[f32]) -> Result<(Vec<usize>, Vec<u8>), SafeTensorError> {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let view = TensorView::new(Dtype::F32, alloc::vec![values.len()], &bytes)?;
    let mut meta = HashMap::new();
    meta.insert(String::from("format"), String::from("pt"));
    let file = serialize([("w", view)], Some(meta))?;
    let st = SafeTensors::deserialize(&file)?;
    let (_, metadata) = SafeTensors::read_metadata(&file)?;
    assert_eq!(infos(&metadata).len(), 1);
    let tensor = st.tensor("w")?;
    Ok((tensor.shape().to_vec(), tensor.data().to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_it_writes_without_std() {
        let (shape, data) = round_trip(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(shape, [3]);
        assert_eq!(data.len(), 12);
    }

    #[test]
    fn errors_are_core_errors() {
        let e = SafeTensors::deserialize(b"\x02\0\0\0").unwrap_err();
        assert!(matches!(e, SafeTensorError::HeaderTooSmall));
        let shown = alloc::format!("{}", as_error(&e));
        assert!(!shown.is_empty());
    }
}
