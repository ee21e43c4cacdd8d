//! A batch of reads across the files of a checkpoint: pieces of any tensors, grouped by the
//! file that holds them and each group read the way its kind of file reads best.
//!
//! - a local file: the parallel reader in file order, after checking the file kept its size,
//!   with the kernel's sequential hint for a whole load ([`read_local`]);
//! - a URL: the parallel reader's Range requests, several at once;
//! - a file over a caller's source (a buffer, a Python file object): one piece at a time,
//!   since a buffer is memory already and a file object reads under its own lock.

use crate::checkpoint::ShardFile;
use crate::format::error::Error;
use crate::reader::whole::read_local;
use crate::reader::{read_into, Read, ReaderOptions};

/// One piece of a batch: `dst.len()` bytes of `file` from absolute `offset` on.
#[derive(Debug)]
pub struct Piece<'a> {
    /// The file holding the bytes.
    pub file: &'a ShardFile,
    /// Absolute position in the file.
    pub offset: u64,
    /// Where the bytes go.
    pub dst: &'a mut [u8],
}

/// Fills every piece's destination, file by file in order of first appearance.
/// `sequential`: tell the kernel a local file is read from start to end (a whole load);
/// false leaves its readahead as it is (parts of tensors, where it would fetch past each).
///
/// ```
/// use safetensors::checkpoint::Checkpoint;
/// use safetensors::reader::batch::{read_pieces, Piece};
/// use safetensors::reader::ReaderOptions;
///
/// let bytes: Vec<u8> = b"\x02\0\0\0\0\0\0\0{}".to_vec();
/// let checkpoint = Checkpoint::from_source("buffer", bytes).unwrap();
/// let file = checkpoint.shard_file(0).unwrap();
/// let mut dst = [0u8; 2];
/// let pieces = vec![Piece { file, offset: 8, dst: &mut dst }];
/// read_pieces(pieces, &ReaderOptions::default(), false).unwrap();
/// assert_eq!(&dst, b"{}");
/// ```
pub fn read_pieces(
    pieces: Vec<Piece<'_>>,
    options: &ReaderOptions,
    sequential: bool,
) -> Result<(), Error> {
    let mut groups: Vec<(&ShardFile, Vec<Read<'_>>)> = Vec::new();
    for piece in pieces {
        let read = Read {
            offset: piece.offset,
            dst: piece.dst,
        };
        match groups.iter_mut().find(|(f, _)| same_file(f, piece.file)) {
            Some((_, reads)) => reads.push(read),
            None => groups.push((piece.file, vec![read])),
        }
    }
    for (file, reads) in groups {
        match file {
            ShardFile::Local(local) => read_local(local, reads, options, sequential)?,
            #[cfg(feature = "http")]
            ShardFile::Remote(remote) => read_into(remote.source(), reads, options)?,
            other => {
                let one = ReaderOptions {
                    threads: 1,
                    ..options.clone()
                };
                read_into(other, reads, &one)?
            }
        }
    }
    Ok(())
}

/// Whether two handles are the same open file.
fn same_file(a: &ShardFile, b: &ShardFile) -> bool {
    match (a, b) {
        (ShardFile::Local(a), ShardFile::Local(b)) => std::sync::Arc::ptr_eq(a, b),
        #[cfg(feature = "http")]
        (ShardFile::Remote(a), ShardFile::Remote(b)) => std::sync::Arc::ptr_eq(a, b),
        (ShardFile::Other(a), ShardFile::Other(b)) => std::sync::Arc::ptr_eq(a, b),
        _ => false,
    }
}
