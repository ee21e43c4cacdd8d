//! Merging byte runs into few reads: the pure half of reading a slice over a network.
//!
//! A slice of a tensor is a list of byte runs (see [`crate::plan::slice::byte_ranges`]); on a disk
//! each run is a cheap positioned read, but over HTTP each read is a round trip. Runs closer
//! than a gap worth a round trip are read as one covering span and the unwanted bytes in
//! between are dropped. This module only computes the spans; reading them is
//! the reader's job.

use alloc::vec::Vec;
use core::ops::Range;

/// Over HTTP, runs closer than this are fetched in one Range request: skipping up to 1 MiB
/// costs less than another round trip.
pub const REMOTE_GAP: usize = 1 << 20;

/// The spans covering `runs`: runs (in ascending order; overlapping or out-of-order runs are
/// merged too) separated by at most `max_gap` bytes share a span. Empty runs are skipped.
///
/// ```
/// use safetensors::plan::coalesce::coalesce;
/// let runs = [0..4, 6..10, 100..104, 104..108];
/// assert_eq!(coalesce(runs.iter().cloned(), 2), vec![0..10, 100..108]);
/// assert_eq!(coalesce(runs.iter().cloned(), 0), vec![0..4, 6..10, 100..108]);
/// ```
pub fn coalesce(runs: impl IntoIterator<Item = Range<usize>>, max_gap: usize) -> Vec<Range<usize>> {
    let mut spans: Vec<Range<usize>> = Vec::new();
    for run in runs.into_iter().filter(|r| r.start < r.end) {
        match spans.last_mut() {
            Some(last)
                if run.start >= last.start && run.start <= last.end.saturating_add(max_gap) =>
            {
                last.end = last.end.max(run.end);
            }
            _ => spans.push(run),
        }
    }
    spans
}

/// The position in `spans` (sorted, as [`coalesce`] returns them for ascending runs) of the
/// span holding `run`, found by binary search; `None` when no span holds it whole.
pub fn span_of(spans: &[Range<usize>], run: &Range<usize>) -> Option<usize> {
    let at = spans
        .partition_point(|s| s.start <= run.start)
        .checked_sub(1)?;
    let span = &spans[at];
    (run.start >= span.start && run.end <= span.end).then_some(at)
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn every_run_lies_in_one_span() {
        let runs: Vec<Range<usize>> = (0..50).map(|i| i * 10..i * 10 + 3).collect();
        for gap in [0, 6, 7, 100, 1000] {
            let spans = coalesce(runs.iter().cloned(), gap);
            for run in &runs {
                let at = span_of(&spans, run).expect("covered");
                assert!(spans[at].start <= run.start && run.end <= spans[at].end);
            }
            let expected = if gap >= 7 { 1 } else { 50 };
            assert_eq!(spans.len(), expected, "gap {gap}");
        }
    }

    #[test]
    fn out_of_order_and_empty_runs() {
        assert_eq!(coalesce([5..8, 0..2, 3..3], 1), vec![5..8, 0..2]);
        let spans = coalesce([5..8, 0..2], 1);
        assert_eq!(span_of(&[0..2, 5..8], &(6..8)), Some(1));
        assert_eq!(span_of(&spans, &(9..10)), None);
        assert_eq!(span_of(&[], &(0..1)), None);
    }
}
