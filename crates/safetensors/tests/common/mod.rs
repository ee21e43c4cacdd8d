//! Helpers shared by the integration tests: hand-built files with any header.

#![allow(dead_code)]

/// A file made of `header` (padded to 8 bytes) followed by `data`.
pub fn file_with_header(header: &str, data: &[u8]) -> Vec<u8> {
    let mut h = header.as_bytes().to_vec();
    while (8 + h.len()) % 8 != 0 {
        h.push(b' ');
    }
    let mut out = (h.len() as u64).to_le_bytes().to_vec();
    out.extend_from_slice(&h);
    out.extend_from_slice(data);
    out
}
