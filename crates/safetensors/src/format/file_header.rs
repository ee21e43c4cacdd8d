//! The first `8 + N` bytes of a file: the header length, then the header, checked against
//! the file's real size. One reading for every place bytes come from (a buffer, a file, a
//! URL): the caller says how to fetch a range, this says which ranges and what they mean.

use alloc::vec;

use crate::format::error::Error;
use crate::format::header::{read_header_len, Metadata};

/// What the first `8 + N` bytes of a file say, checked against the file's size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHeader {
    /// The whole file's size in bytes.
    pub file_len: u64,
    /// `N`, the header's length in bytes (padding included).
    pub header_len: usize,
    /// The validated header.
    pub metadata: Metadata,
}

impl FileHeader {
    /// Absolute offset of the data section (`8 + N`).
    pub fn data_start(&self) -> u64 {
        8 + self.header_len as u64
    }
}

/// Reads and validates the header of a file of `file_len` bytes, fetching bytes with
/// `read_at(offset, buf)`: the 8-byte length (at most
/// [`MAX_HEADER_SIZE`](crate::format::header::MAX_HEADER_SIZE)), the header bytes, which must
/// lie inside the file, then every rule of the format against the real size of the data
/// section.
///
/// Memory used is bounded by the real file size and the header limit, never by the length
/// the file claims.
pub fn read_file_header(
    file_len: u64,
    mut read_at: impl FnMut(u64, &mut [u8]) -> Result<(), Error>,
) -> Result<FileHeader, Error> {
    let mut prefix = [0u8; 8];
    let got = file_len.min(8) as usize;
    read_at(0, &mut prefix[..got])?;
    let header_len = read_header_len(&prefix[..got])?;
    let data_start = 8 + header_len as u64;
    let past_end = || Error::InvalidHeaderLength {
        header_len: header_len as u64,
        file_len,
    };
    if data_start > file_len {
        return Err(past_end());
    }
    // Bounded by MAX_HEADER_SIZE and by the file's real size, checked just above.
    let mut header = vec![0u8; header_len];
    read_at(8, &mut header)?;
    let data_len = usize::try_from(file_len - data_start).map_err(|_| past_end())?;
    let metadata = Metadata::from_header_vec(header, data_len)?;
    Ok(FileHeader {
        file_len,
        header_len,
        metadata,
    })
}

/// [`read_file_header`] of a whole file held in memory.
pub fn read_file_header_from_bytes(bytes: &[u8]) -> Result<FileHeader, Error> {
    read_file_header(bytes.len() as u64, |offset, buf| {
        // Offsets asked for lie inside the buffer: `read_file_header` checks them against
        // `file_len` first, which is the buffer's length.
        let start = offset as usize;
        buf.copy_from_slice(&bytes[start..start + buf.len()]);
        Ok(())
    })
}
