//! Arbitrary bytes as a file: parsing must return Ok or Err, never panic, and whatever
//! it accepts must be readable and re-serializable.
#![no_main]

use libfuzzer_sys::fuzz_target;
use safetensors::slice::TensorIndexer;
use safetensors::{serialize, SafeTensors};

fuzz_target!(|data: &[u8]| {
    if let Ok(st) = SafeTensors::deserialize(data) {
        for (_, view) in st.iter() {
            assert_eq!(view.data().len(), view.data_len());
            if !view.shape().is_empty() {
                let _ = view.sliced_data(&[TensorIndexer::Select(0)]).map(|it| it.count());
            }
        }
        let pairs = st.metadata().metadata_ordered().map(|p| p.to_vec()).unwrap_or_default();
        let again = serialize(st.tensors(), pairs).expect("an accepted file re-serializes");
        SafeTensors::deserialize(&again).expect("our own output is valid");
    }
});
