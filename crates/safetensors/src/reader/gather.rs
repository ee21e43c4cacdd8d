//! Copying the runs of a selection out of bytes already in memory (a mapping, a buffer, or a
//! covering span just read) into the destination, one after the other.

use std::ops::Range;

use crate::format::error::Error;
use crate::plan::coalesce::span_of;
use crate::plan::slice::ByteRanges;

/// Copies the runs of `plan` from `src` (which holds the tensor's bytes from offset `lo`
/// on) one after the other into `dst`, row by row (see [`ByteRanges::rows`]). Runs of one
/// small element (a step along the last dimension) are copied as fixed-size values, far
/// faster than a `memcpy` call each.
///
/// ```
/// use safetensors::reader::gather::gather;
/// use safetensors::slice::{byte_ranges, DimIndexer};
/// use safetensors::Dtype;
///
/// let tensor: Vec<u8> = (0..12).collect(); // a 3x4 U8 tensor
/// let plan = byte_ranges(Dtype::U8, &[3, 4], &[(..).into(), (1..3).into()]).unwrap();
/// let mut out = [0u8; 6];
/// gather(&tensor, 0, plan, &mut out);
/// assert_eq!(out, [1, 2, 5, 6, 9, 10]);
/// ```
pub fn gather(src: &[u8], lo: usize, plan: ByteRanges, dst: &mut [u8]) {
    match plan.run_len() {
        1 => gather_rows::<1>(src, lo, &plan, dst),
        2 => gather_rows::<2>(src, lo, &plan, dst),
        4 => gather_rows::<4>(src, lo, &plan, dst),
        8 => gather_rows::<8>(src, lo, &plan, dst),
        16 => gather_rows::<16>(src, lo, &plan, dst),
        n => {
            let mut off = 0;
            for (start, count, step) in plan.rows() {
                let mut at = start as isize - lo as isize;
                for _ in 0..count {
                    let from = at as usize;
                    dst[off..off + n].copy_from_slice(&src[from..from + n]);
                    off += n;
                    at += step;
                }
            }
        }
    }
}

/// [`gather`] for runs of exactly `N` bytes.
fn gather_rows<const N: usize>(src: &[u8], lo: usize, plan: &ByteRanges, dst: &mut [u8]) {
    let mut out = dst.chunks_exact_mut(N);
    for (start, count, step) in plan.rows() {
        let mut at = start as isize - lo as isize;
        for chunk in out.by_ref().take(count) {
            let from = at as usize;
            let bytes: [u8; N] = src[from..from + N].try_into().expect("a run of N bytes");
            chunk.copy_from_slice(&bytes);
            at += step;
        }
    }
}

/// Copies the runs of `plan` into `dst` from `spans` (sorted, covering every run, as
/// [`coalesce`](crate::plan::coalesce::coalesce) returns them) read one after the other
/// into `buf`. One span (the usual case: short runs close together) is [`gather`]'s row by
/// row copy; several are walked along with the runs, looked up only when a run is not in the
/// span of the one before (runs backwards).
pub fn gather_spans(
    buf: &[u8],
    spans: &[Range<usize>],
    plan: ByteRanges,
    dst: &mut [u8],
) -> Result<(), Error> {
    if let [span] = spans {
        let (lo, hi) = (span.start, span.end);
        let (first, end) = extent(&plan);
        if plan.len() > 0 && (first < lo || end > hi) {
            return Err(Error::InvalidArgument(format!(
                "byte runs lie outside the span {lo}..{hi} read"
            )));
        }
        gather(buf, lo, plan, dst);
        return Ok(());
    }
    // Where each span starts in `buf`.
    let starts: Vec<usize> = spans
        .iter()
        .scan(0, |at, s| {
            let here = *at;
            *at += s.len();
            Some(here)
        })
        .collect();
    let mut off = 0;
    let mut k = 0;
    for run in plan {
        let holds = |k: usize| {
            spans
                .get(k)
                .is_some_and(|s| run.start >= s.start && run.end <= s.end)
        };
        if !holds(k) {
            k = if holds(k + 1) {
                k + 1
            } else {
                span_of(spans, &run).ok_or_else(|| {
                    Error::InvalidArgument(format!("byte run {run:?} is outside the spans read"))
                })?
            };
        }
        let from = starts[k] + run.start - spans[k].start;
        dst[off..off + run.len()].copy_from_slice(&buf[from..from + run.len()]);
        off += run.len();
    }
    Ok(())
}

/// The first byte and the end of the runs of `plan`, row by row (not run by run).
fn extent(plan: &ByteRanges) -> (usize, usize) {
    let n = plan.run_len();
    plan.rows()
        .fold((usize::MAX, 0), |(lo, hi), (start, count, step)| {
            let last = (start as isize + (count as isize - 1).max(0) * step) as usize;
            (lo.min(start.min(last)), hi.max(start.max(last) + n))
        })
}
