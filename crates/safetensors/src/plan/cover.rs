//! Which spans to read for the runs of a selection: the pure half of reading a slice
//! without a mapping, from a local file or a file object ([`near_spans`]) or from a server
//! ([`far_spans`]).
//!
//! Many short runs (a step along an inner dimension, a rank's part of short rows) cost one
//! system call (or one Python `read`) each. Runs less than a page apart are read as one span
//! and gathered from it: the bytes between them cost no extra I/O, since a gap shorter than
//! a page cannot hold a whole page the storage would not read anyway. Runs a page or more
//! apart stay apart, so a selection never costs pages it does not touch (a rank's part of a
//! split tensor reads only that part's pages). Over HTTP each read is a round trip, so runs
//! closer than [`REMOTE_GAP`] share a span.

use alloc::vec::Vec;
use core::ops::Range;

use crate::plan::coalesce::{coalesce, REMOTE_GAP};
use crate::plan::slice::ByteRanges;

/// Runs shorter than this on average are candidates for covering reads; longer ones are read
/// as they are.
pub const COVER_BELOW: usize = 1 << 12;

/// The page: runs closer than this share a span.
pub const PAGE: usize = 1 << 12;

/// The spans to read from a near source (a local file, a file object) for the runs of
/// `plan`, relative to the tensor's first byte; `None` when the runs are read as they are
/// (one run, long runs, or no two runs less than a page apart).
///
/// ```
/// use safetensors::plan::cover::near_spans;
/// use safetensors::slice::{byte_ranges, DimIndexer};
/// use safetensors::Dtype;
///
/// // Every other element of a 256 x 2 F32 tensor's rows: 256 runs of 4 bytes in 2 KiB.
/// let every_other = [(..).into(), DimIndexer::Strided { start: 0, step: 2, len: 1 }];
/// let plan = byte_ranges(Dtype::F32, &[256, 2], &every_other).unwrap();
/// assert_eq!(near_spans(&plan), Some(vec![0..2044]));
///
/// // Two rows 64 KiB apart: each run is read alone, the pages between are skipped.
/// let rows = [DimIndexer::Strided { start: 0, step: 16, len: 2 }];
/// let plan = byte_ranges(Dtype::F32, &[17, 1024], &rows).unwrap();
/// assert_eq!(near_spans(&plan), None);
/// ```
pub fn near_spans(plan: &ByteRanges) -> Option<Vec<Range<usize>>> {
    let runs = plan.len();
    if runs <= 1 || plan.remaining_byte_len() / runs >= COVER_BELOW {
        return None;
    }
    let spans = merged(plan, PAGE - 1);
    (spans.len() < runs).then_some(spans)
}

/// The spans to fetch from a far source (a server) for the runs of `plan`: runs closer than
/// [`REMOTE_GAP`] share one; `None` when that merges nothing.
pub fn far_spans(plan: &ByteRanges) -> Option<Vec<Range<usize>>> {
    let runs = plan.len();
    if runs <= 1 {
        return None;
    }
    let spans = merged(plan, REMOTE_GAP);
    (spans.len() < runs).then_some(spans)
}

/// The spans covering the runs of `plan`, runs at most `max_gap` apart sharing one, in file
/// order. Worked out row by row ([`ByteRanges::rows`]): the runs of a row are equally spaced,
/// so a row is one span or its runs stay apart, and a selection of millions of short runs
/// (a step along the last dimension) costs a few operations per row, not per run.
fn merged(plan: &ByteRanges, max_gap: usize) -> Vec<Range<usize>> {
    let n = plan.run_len();
    let mut spans: Vec<Range<usize>> = Vec::new();
    for (start, count, step) in plan.rows() {
        let gap = step.unsigned_abs().saturating_sub(n);
        if count <= 1 || gap <= max_gap {
            let last = (start as isize + (count as isize - 1).max(0) * step) as usize;
            spans.push(start.min(last)..start.max(last) + n);
        } else {
            let mut at = start as isize;
            for _ in 0..count {
                spans.push(at as usize..at as usize + n);
                at += step;
            }
        }
    }
    // A negative step lists rows (and runs) backwards: coalescing wants them in file order.
    spans.sort_unstable_by_key(|s| s.start);
    coalesce(spans, max_gap)
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a list of one span is what is expected
mod tests {
    use super::*;
    use crate::format::dtype::Dtype;
    use crate::plan::slice::{byte_ranges, DimIndexer};

    #[test]
    fn long_runs_and_single_runs_are_read_as_they_are() {
        let rows = byte_ranges(Dtype::F32, &[8, 2048], &[(1..3).into()]).unwrap();
        assert_eq!(near_spans(&rows), None);
        assert_eq!(far_spans(&rows), None);
        let column = byte_ranges(Dtype::F32, &[8, 2048], &[(..).into(), (0..1024).into()]).unwrap();
        assert_eq!(near_spans(&column), None);
    }

    #[test]
    fn no_span_holds_a_whole_page_that_no_run_touches() {
        // A quarter of each 8 KiB row (2 KiB runs, 6 KiB apart): every run alone near, all
        // in one span far.
        let quarter = [(..).into(), (0..512).into()];
        let plan = byte_ranges(Dtype::F32, &[64, 2048], &quarter).unwrap();
        assert_eq!(near_spans(&plan), None);
        assert_eq!(far_spans(&plan), Some(vec![0..63 * 8192 + 2048]));
        // Runs 3 KiB apart share spans; the gaps are never a page long.
        let plan = byte_ranges(Dtype::U8, &[64, 4096], &[(..).into(), (0..1024).into()]).unwrap();
        let spans = near_spans(&plan).unwrap();
        assert_eq!(spans, vec![0..63 * 4096 + 1024]);
        let strided = [DimIndexer::Strided {
            start: 5,
            step: 3,
            len: 100,
        }];
        let plan = byte_ranges(Dtype::F32, &[400], &strided).unwrap();
        for pair in near_spans(&plan).unwrap().windows(2) {
            assert!(pair[1].start - pair[0].end >= PAGE);
        }
    }

    #[test]
    fn backward_runs_give_sorted_spans() {
        let back = [
            (..).into(),
            DimIndexer::Strided {
                start: 5,
                step: -2,
                len: 3,
            },
        ];
        let plan = byte_ranges(Dtype::F32, &[2, 6], &back).unwrap();
        assert_eq!(near_spans(&plan), Some(vec![4..48]));
        assert_eq!(far_spans(&plan), Some(vec![4..48]));
    }
}
