//! Whether the short runs of a selection are read as the one span covering them: the pure
//! half of reading a slice from a local file or a file object without a mapping.
//!
//! Many short runs (a step along an inner dimension, a rank's part of short rows) cost one
//! system call (or one Python `read`) each. Reading their covering span once and gathering
//! the runs from it is far cheaper, and costs no extra I/O when no page of the span lies
//! wholly between runs: storage reads whole pages in any case. When some page would be read
//! only to be dropped, the runs are read one by one, so a selection never costs pages it does
//! not touch (a rank's part of a split tensor reads only that part's pages).

use core::ops::Range;

use crate::plan::slice::ByteRanges;

/// Runs shorter than this on average are candidates for one covering read...
pub const COVER_BELOW: usize = 1 << 12;

/// ...when every page of this size in the span holds selected bytes.
pub const PAGE: usize = 1 << 12;

/// The span (relative to the tensor's first byte, at absolute offset `at` in its file) to
/// read instead of the runs of `plan`, or `None` when the runs are better read one by one.
///
/// ```
/// use safetensors::plan::cover::covering_span;
/// use safetensors::slice::{byte_ranges, DimIndexer};
/// use safetensors::Dtype;
///
/// // Every other element of a 256 x 2 F32 tensor's rows: 256 runs of 4 bytes in 2 KiB.
/// let every_other = [(..).into(), DimIndexer::Strided { start: 0, step: 2, len: 1 }];
/// let plan = byte_ranges(Dtype::F32, &[256, 2], &every_other).unwrap();
/// assert_eq!(covering_span(&plan, 0), Some(0..2044));
///
/// // Two rows 64 KiB apart: the pages between them are skipped, each run read alone.
/// let rows = [DimIndexer::Strided { start: 0, step: 16, len: 2 }];
/// let plan = byte_ranges(Dtype::F32, &[17, 1024], &rows).unwrap();
/// assert_eq!(covering_span(&plan, 0), None);
/// ```
pub fn covering_span(plan: &ByteRanges, at: u64) -> Option<Range<usize>> {
    let runs = plan.len();
    let total = plan.remaining_byte_len();
    if runs <= 1 || total / runs >= COVER_BELOW {
        return None;
    }
    let n = plan.run_len();
    let (lo, hi) = plan
        .rows()
        .fold((usize::MAX, 0), |(lo, hi), (start, count, step)| {
            let last = (start as isize + (count as isize - 1).max(0) * step) as usize;
            (lo.min(start.min(last)), hi.max(start.max(last) + n))
        });
    (!skips_a_page(plan, at, lo, hi)).then_some(lo..hi)
}

/// Whether some page of `lo..hi` holds none of the runs of `plan`, whose offsets are
/// relative to the tensor's first byte at `at` in the file: the pages the runs touch,
/// counted in the runs' order (exact for runs in file order, an over-count otherwise, which
/// only favours covering), are fewer than the span's.
fn skips_a_page(plan: &ByteRanges, at: u64, lo: usize, hi: usize) -> bool {
    // Offsets shifted by the tensor's position within its page give the file's pages.
    let shift = (at % PAGE as u64) as usize;
    let (lo, hi) = (lo + shift, hi + shift);
    let span_pages = (hi - 1) / PAGE - lo / PAGE + 1;
    let n = plan.run_len();
    let mut touched = 0;
    let mut last_page = usize::MAX;
    for (start, count, step) in plan.rows() {
        let mut at = (start + shift) as isize;
        for _ in 0..count {
            let (first, last) = (at as usize / PAGE, (at as usize + n - 1) / PAGE);
            touched += last - first + 1 - usize::from(first == last_page);
            if touched >= span_pages {
                return false;
            }
            last_page = last;
            at += step;
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dtype::Dtype;
    use crate::plan::slice::{byte_ranges, DimIndexer};

    #[test]
    fn long_runs_and_single_runs_are_read_as_they_are() {
        let rows = byte_ranges(Dtype::F32, &[8, 2048], &[(1..3).into()]).unwrap();
        assert_eq!(covering_span(&rows, 0), None);
        let column = byte_ranges(Dtype::F32, &[8, 2048], &[(..).into(), (0..1024).into()]).unwrap();
        assert_eq!(covering_span(&column, 0), None);
    }

    #[test]
    fn the_tensor_position_within_its_page_counts() {
        // Two 4-byte runs 8188 bytes apart: from offset 0 they touch both pages of their
        // 2-page span; from offset 8 the span straddles 3 pages, of which they touch 2.
        let two = [DimIndexer::Strided {
            start: 0,
            step: 2047,
            len: 2,
        }];
        let plan = byte_ranges(Dtype::F32, &[2048], &two).unwrap();
        assert_eq!(covering_span(&plan, 0), Some(0..8192));
        assert_eq!(covering_span(&plan, 8), None);
    }
}
