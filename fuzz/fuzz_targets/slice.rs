//! Arbitrary shapes and selections: slicing never panics, and the chunks it yields add
//! up to the size its shape promises and stay inside the tensor.
#![no_main]

use std::num::NonZeroUsize;
use std::ops::Bound;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use safetensors::format::dtype::ALL_DTYPES;
use safetensors::slice::{byte_ranges, DimIndexer};

#[derive(Arbitrary, Debug)]
enum Ix {
    Select(u8),
    Narrow(Option<u8>, Option<u8>, bool),
}

#[derive(Arbitrary, Debug)]
struct Input {
    dtype: u8,
    shape: Vec<u8>,
    indexers: Vec<Ix>,
}

fuzz_target!(|input: Input| {
    let dtype = ALL_DTYPES[input.dtype as usize % ALL_DTYPES.len()];
    let shape: Vec<usize> = input.shape.iter().take(5).map(|&d| d as usize % 16).collect();
    let numel: usize = shape.iter().product();
    let Some(len) = dtype.byte_len(numel) else { return };
    let indexers: Vec<DimIndexer> = input
        .indexers
        .iter()
        .take(6)
        .map(|ix| match *ix {
            Ix::Select(i) => DimIndexer::Select(i as usize),
            Ix::Narrow(s, e, inclusive) => DimIndexer::Narrow(
                s.map_or(Bound::Unbounded, |s| Bound::Included(s as usize)),
                match (e, inclusive) {
                    (None, _) => Bound::Unbounded,
                    (Some(e), true) => Bound::Included(e as usize),
                    (Some(e), false) => Bound::Excluded(e as usize),
                },
                NonZeroUsize::MIN,
            ),
        })
        .collect();
    if let Ok(ranges) = byte_ranges(dtype, &shape, &indexers) {
        let promised = dtype.byte_len(ranges.newshape().iter().product()).unwrap();
        assert_eq!(ranges.remaining_byte_len(), promised);
        let mut total = 0;
        let mut last_end = 0;
        for r in ranges {
            assert!(r.start >= last_end && r.end <= len && r.start < r.end);
            last_end = r.end;
            total += r.len();
        }
        assert_eq!(total, promised);
    }
});
