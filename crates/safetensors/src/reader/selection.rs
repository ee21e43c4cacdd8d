//! Reading a selection of one tensor (a slice, a rank's part, the whole of it) from a source
//! without a mapping, straight into the destination: the plan's runs, read as the plan layer
//! advises for the kind of source.
//!
//! - A [`Reach::Near`] source (a local file, a file object) reads short runs less than a page
//!   apart as the spans covering them ([`near_spans`]), then gathers; other runs one by one.
//! - A [`Reach::Far`] source (a URL) fetches runs closer than
//!   [`REMOTE_GAP`](crate::plan::coalesce::REMOTE_GAP) as one span ([`far_spans`]), several
//!   spans at once with the parallel reader; runs with no gap between them go straight into
//!   the destination.

use crate::format::error::Error;
use crate::plan::cover::{far_spans, near_spans};
use crate::plan::slice::ByteRanges;
use crate::reader::gather::gather_spans;
use crate::reader::{read_into, Read, ReaderOptions};
use crate::source::Source;

/// How far a source is: what a read costs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    /// A local file or a file object: a read costs a system call, pages come whole.
    Near,
    /// A server: a read costs a round trip.
    Far,
}

/// Fills `dst` (exactly `plan.remaining_byte_len()` bytes) with the runs of `plan`, whose
/// offsets count from the tensor's first byte at absolute offset `at` in `source`.
///
/// ```
/// use safetensors::reader::selection::{read_selection, Reach};
/// use safetensors::slice::byte_ranges;
/// use safetensors::Dtype;
///
/// let file: Vec<u8> = (0..20).collect(); // 8 bytes of something, then a 3x4 U8 tensor
/// let plan = byte_ranges(Dtype::U8, &[3, 4], &[(..).into(), (1..3).into()]).unwrap();
/// let mut out = [0u8; 6];
/// read_selection(&file[..], 8, plan, &mut out, Reach::Near).unwrap();
/// assert_eq!(out, [9, 10, 13, 14, 17, 18]);
/// ```
pub fn read_selection<S: Source + Sync + ?Sized>(
    source: &S,
    at: u64,
    plan: ByteRanges,
    dst: &mut [u8],
    reach: Reach,
) -> Result<(), Error> {
    if dst.len() != plan.remaining_byte_len() {
        return Err(Error::InvalidArgument(format!(
            "destination holds {} bytes but the selection has {}",
            dst.len(),
            plan.remaining_byte_len()
        )));
    }
    match reach {
        Reach::Near => read_near(source, at, plan, dst),
        Reach::Far => read_far(source, at, plan, dst),
    }
}

fn read_near<S: Source + ?Sized>(
    source: &S,
    at: u64,
    plan: ByteRanges,
    dst: &mut [u8],
) -> Result<(), Error> {
    if let Some(spans) = near_spans(&plan) {
        let mut buf = vec![0u8; spans.iter().map(|s| s.len()).sum()];
        let mut off = 0;
        for span in &spans {
            source.read_at(at + span.start as u64, &mut buf[off..off + span.len()])?;
            off += span.len();
        }
        return gather_spans(&buf, &spans, plan, dst);
    }
    let mut off = 0;
    for run in plan {
        source.read_at(at + run.start as u64, &mut dst[off..off + run.len()])?;
        off += run.len();
    }
    Ok(())
}

fn read_far<S: Source + Sync + ?Sized>(
    source: &S,
    at: u64,
    plan: ByteRanges,
    dst: &mut [u8],
) -> Result<(), Error> {
    let spans = far_spans(&plan).unwrap_or_else(|| plan.clone().collect());
    let covered: usize = spans.iter().map(|s| s.len()).sum();
    let fill = |dst: &mut [u8]| {
        let mut reads = Vec::with_capacity(spans.len());
        let mut rest = dst;
        for span in &spans {
            let (head, tail) = rest.split_at_mut(span.len());
            reads.push(Read {
                offset: at + span.start as u64,
                dst: head,
            });
            rest = tail;
        }
        read_into(source, reads, &ReaderOptions::default())
    };
    if covered == dst.len() {
        return fill(dst);
    }
    let mut buf = vec![0u8; covered];
    fill(&mut buf)?;
    gather_spans(&buf, &spans, plan, dst)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::dtype::Dtype;
    use crate::plan::slice::{byte_ranges, DimIndexer};

    /// Every selection reads the same bytes near and far, covered or run by run.
    #[test]
    fn near_and_far_agree_with_gathering_from_memory() {
        let file: Vec<u8> = (0..(64 * 300 + 24)).map(|i| (i % 251) as u8).collect();
        let selections: Vec<Vec<DimIndexer>> = vec![
            vec![],
            vec![(3..9).into()],
            vec![(..).into(), (1..2).into()],
            vec![DimIndexer::Strided {
                start: 299,
                step: -7,
                len: 40,
            }],
            vec![
                (..).into(),
                DimIndexer::Strided {
                    start: 1,
                    step: 3,
                    len: 21,
                },
            ],
        ];
        for indexers in selections {
            let plan = byte_ranges(Dtype::U8, &[300, 64], &indexers).unwrap();
            let mut want = vec![0u8; plan.remaining_byte_len()];
            crate::reader::gather::gather(&file[24..], 0, plan.clone(), &mut want);
            for reach in [Reach::Near, Reach::Far] {
                let mut got = vec![0u8; want.len()];
                read_selection(&file[..], 24, plan.clone(), &mut got, reach).unwrap();
                assert_eq!(got, want, "{indexers:?} {reach:?}");
            }
        }
    }

    #[test]
    fn a_destination_of_the_wrong_size_is_refused() {
        let plan = byte_ranges(Dtype::U8, &[4], &[]).unwrap();
        let mut small = [0u8; 3];
        let file = [0u8; 12];
        assert!(read_selection(&file[..], 8, plan, &mut small, Reach::Near).is_err());
    }
}
