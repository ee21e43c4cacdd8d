//! Executes a plan of reads: copies byte ranges of a [`Source`] straight into memory the
//! caller owns, with a bounded pool of threads.
//!
//! This is the one place where reading is concurrent. Deciding *which* bytes a request
//! needs (a whole tensor, a slice, one rank's part) happens elsewhere and yields plain
//! `(offset, destination)` pairs; [`read_into`] only executes them. Each read is cut into
//! blocks of at most [`ReaderOptions::block_size`] bytes so that one large tensor still
//! keeps every thread busy, and the blocks are handed out in file order so that a disk or
//! a server sees mostly sequential requests. The result does not depend on the number of
//! threads: every destination byte is written exactly once, and when reads fail the error
//! reported is the one of the earliest failing block, as a single thread would report it.

pub mod batch;
pub mod gather;
pub mod prefetch;
pub mod selection;
pub mod staging;
pub mod whole;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use crate::format::error::Error;
use crate::source::Source;

/// One read: fill `dst` with the source's bytes at `offset..offset + dst.len()`.
#[derive(Debug)]
pub struct Read<'a> {
    /// Absolute position in the source.
    pub offset: u64,
    /// Where the bytes go; its length is the number of bytes read.
    pub dst: &'a mut [u8],
}

/// How [`read_into`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReaderOptions {
    /// The most threads reading at once (at least 1; 1 reads on the calling thread).
    pub threads: usize,
    /// The largest single read, in bytes (at least 1).
    pub block_size: usize,
}

impl Default for ReaderOptions {
    /// Up to 8 threads (fewer on a smaller machine, at least 4 since reads wait on the
    /// device rather than the CPU), 16 MiB blocks.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        ReaderOptions {
            threads: cores.clamp(4, 8),
            block_size: 16 << 20,
        }
    }
}

/// A block of work: the index gives the order a single thread would use.
struct Block<'a> {
    index: usize,
    offset: u64,
    dst: &'a mut [u8],
}

/// Fills every `read.dst` from `source`, with up to `options.threads` threads.
///
/// On error, some destinations may be partly written; the error returned is the one of
/// the earliest block (in the order of `reads`, then by offset) that failed.
///
/// ```
/// use safetensors::reader::{read_into, Read, ReaderOptions};
///
/// let file: &[u8] = b"0123456789";
/// let (mut a, mut b) = ([0u8; 3], [0u8; 4]);
/// let reads = vec![
///     Read { offset: 1, dst: &mut a },
///     Read { offset: 6, dst: &mut b },
/// ];
/// let options = ReaderOptions { threads: 2, block_size: 2 };
/// read_into(file, reads, &options).unwrap();
/// assert_eq!((&a, &b), (b"123", b"6789"));
/// ```
pub fn read_into<S: Source + Sync + ?Sized>(
    source: &S,
    reads: Vec<Read<'_>>,
    options: &ReaderOptions,
) -> Result<(), Error> {
    let block_size = options.block_size.max(1);
    let mut blocks = Vec::new();
    for read in reads {
        let mut offset = read.offset;
        for dst in read.dst.chunks_mut(block_size) {
            let len = dst.len() as u64;
            blocks.push(Block {
                index: blocks.len(),
                offset,
                dst,
            });
            offset = offset.checked_add(len).ok_or_else(|| {
                Error::InvalidArgument(format!(
                    "a read at offset {} of {} bytes ends past 2^64",
                    read.offset, len
                ))
            })?;
        }
    }
    let threads = options.threads.max(1).min(blocks.len());
    if threads <= 1 {
        for block in blocks {
            source.read_at(block.offset, block.dst)?;
        }
        return Ok(());
    }

    let queue = Mutex::new(blocks.into_iter());
    let failed = AtomicBool::new(false);
    let first_error: Mutex<Option<(usize, Error)>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                if failed.load(Ordering::Relaxed) {
                    return;
                }
                // A poisoned lock means another worker panicked; the scope re-raises it.
                let Some(block) = queue.lock().ok().and_then(|mut q| q.next()) else {
                    return;
                };
                if let Err(error) = source.read_at(block.offset, block.dst) {
                    failed.store(true, Ordering::Relaxed);
                    if let Ok(mut slot) = first_error.lock() {
                        if slot.as_ref().map_or(true, |(i, _)| block.index < *i) {
                            *slot = Some((block.index, error));
                        }
                    }
                }
            });
        }
    });
    // Blocks are taken in order, so once one fails every earlier block has been taken;
    // the earliest failure among those taken is the one a single thread would report.
    match first_error.into_inner() {
        Ok(Some((_, error))) => Err(error),
        Ok(None) => Ok(()),
        Err(_) => Err(Error::InvalidArgument("a reader thread panicked".into())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A source that logs every read and fails reads that touch `bad`.
    struct Logged<'a> {
        bytes: &'a [u8],
        bad: Option<u64>,
        log: Mutex<Vec<(u64, usize)>>,
    }

    impl Source for Logged<'_> {
        fn size(&self) -> Result<u64, Error> {
            Ok(self.bytes.len() as u64)
        }

        fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
            self.log.lock().unwrap().push((offset, buf.len()));
            if let Some(bad) = self.bad {
                if (offset..offset + buf.len() as u64).contains(&bad) {
                    return Err(Error::InvalidArgument(format!("bad byte {bad}")));
                }
            }
            self.bytes.read_at(offset, buf)
        }
    }

    fn logged(bytes: &[u8], bad: Option<u64>) -> Logged<'_> {
        Logged {
            bytes,
            bad,
            log: Mutex::new(Vec::new()),
        }
    }

    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i * 7 + i / 251) as u8).collect()
    }

    #[test]
    fn every_thread_count_and_block_size_gives_the_same_bytes() {
        let bytes = pattern(10_000);
        let ranges = [
            (0usize, 1usize),
            (5, 4000),
            (4100, 0),
            (4100, 5900),
            (17, 3),
        ];
        for threads in [1, 2, 3, 8, 64] {
            for block_size in [1, 7, 512, 4096, 1 << 20] {
                let mut outs: Vec<Vec<u8>> = ranges.iter().map(|&(_, n)| vec![0; n]).collect();
                let reads = ranges
                    .iter()
                    .zip(outs.iter_mut())
                    .map(|(&(offset, _), dst)| Read {
                        offset: offset as u64,
                        dst,
                    })
                    .collect();
                let options = ReaderOptions {
                    threads,
                    block_size,
                };
                read_into(&bytes[..], reads, &options).unwrap();
                for (&(offset, n), out) in ranges.iter().zip(&outs) {
                    assert_eq!(out[..], bytes[offset..offset + n], "{threads} {block_size}");
                }
            }
        }
    }

    #[test]
    fn reads_are_cut_into_blocks_no_larger_than_asked() {
        let bytes = pattern(1000);
        let source = logged(&bytes, None);
        let mut out = vec![0u8; 1000];
        let options = ReaderOptions {
            threads: 3,
            block_size: 300,
        };
        let reads = vec![Read {
            offset: 0,
            dst: &mut out,
        }];
        read_into(&source, reads, &options).unwrap();
        let mut log = source.log.into_inner().unwrap();
        log.sort();
        assert_eq!(log, [(0, 300), (300, 300), (600, 300), (900, 100)]);
        assert_eq!(out, bytes);
    }

    #[test]
    fn one_thread_reads_in_file_order_on_the_calling_thread() {
        let bytes = pattern(100);
        let source = logged(&bytes, None);
        let (mut a, mut b) = (vec![0u8; 50], vec![0u8; 20]);
        let options = ReaderOptions {
            threads: 1,
            block_size: 16,
        };
        let reads = vec![
            Read {
                offset: 0,
                dst: &mut a,
            },
            Read {
                offset: 60,
                dst: &mut b,
            },
        ];
        read_into(&source, reads, &options).unwrap();
        let log = source.log.into_inner().unwrap();
        assert_eq!(
            log,
            [(0, 16), (16, 16), (32, 16), (48, 2), (60, 16), (76, 4)]
        );
    }

    #[test]
    fn the_earliest_failure_is_reported_whatever_the_thread_count() {
        let bytes = pattern(4096);
        for threads in [1, 2, 4, 16] {
            let source = logged(&bytes, Some(1000));
            let mut out = vec![0u8; 4096];
            let options = ReaderOptions {
                threads,
                block_size: 100,
            };
            let reads = vec![Read {
                offset: 0,
                dst: &mut out,
            }];
            let err = read_into(&source, reads, &options).unwrap_err();
            assert_eq!(err.to_string(), "bad byte 1000", "{threads}");
        }
    }

    #[test]
    fn a_read_past_the_end_is_an_error_not_a_short_read() {
        let bytes = pattern(10);
        let mut out = vec![0u8; 8];
        let reads = vec![Read {
            offset: 5,
            dst: &mut out,
        }];
        assert!(read_into(&bytes[..], reads, &ReaderOptions::default()).is_err());
    }
}
