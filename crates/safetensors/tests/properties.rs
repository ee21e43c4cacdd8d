//! Property tests: random tensor sets of every dtype round-trip; random selections (steps
//! and negative steps included) equal a naive element-by-element slice; random corruptions of a valid file never panic.

mod common;

use proptest::prelude::*;
use safetensors::format::dtype::ALL_DTYPES;
use safetensors::slice::{byte_ranges, slice_byte_ranges, DimIndexer, TensorIndexer};
use safetensors::tensor::TensorView;
use safetensors::{serialize, Dtype, SafeTensors};
use std::num::NonZeroUsize;
use std::ops::Bound;

/// A shape whose element count makes whole bytes for `dtype`.
fn shape_for(dtype: Dtype) -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(0usize..5, 0..4).prop_map(move |mut shape| {
        // Sub-byte dtypes need numel * bits to be a multiple of 8: scale the last dim.
        let numel: usize = shape.iter().product();
        if dtype.byte_len(numel).is_none() {
            let factor = 8 / gcd(dtype.bitsize(), 8);
            match shape.last_mut() {
                Some(d) => *d *= factor,
                None => shape.push(factor),
            }
        }
        shape
    })
}

fn gcd(a: usize, b: usize) -> usize {
    if b == 0 {
        a
    } else {
        gcd(b, a % b)
    }
}

fn tensor_strategy() -> impl Strategy<Value = (String, Dtype, Vec<usize>, Vec<u8>)> {
    (
        "[a-zA-Z0-9._\u{e9}\"\\\\ ]{1,12}",
        prop::sample::select(ALL_DTYPES.to_vec()),
    )
        .prop_flat_map(|(name, dtype)| {
            shape_for(dtype).prop_flat_map(move |shape| {
                let len = dtype.byte_len(shape.iter().product()).unwrap();
                let name = name.clone();
                prop::collection::vec(any::<u8>(), len)
                    .prop_map(move |data| (name.clone(), dtype, shape.clone(), data))
            })
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn round_trip_any_tensor_set(
        tensors in prop::collection::btree_map("[a-z0-9_.]{1,8}", tensor_strategy(), 0..8),
        metadata in prop::collection::vec(("[a-z\u{e9}\"]{0,6}", "[ -~\u{2713}]{0,8}"), 0..4),
    ) {
        let mut metadata = metadata;
        metadata.sort();
        metadata.dedup_by(|a, b| a.0 == b.0);
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(name, (_, dtype, shape, data))| (name.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap()))
            .collect();
        let bytes = serialize(views.clone(), metadata.clone()).unwrap();
        let st = SafeTensors::deserialize(&bytes).unwrap();
        prop_assert_eq!(st.len(), views.len());
        for (name, view) in &views {
            let back = st.tensor(name).unwrap();
            prop_assert_eq!(back.dtype(), view.dtype());
            prop_assert_eq!(back.shape(), view.shape());
            prop_assert_eq!(back.data(), view.data());
        }
        prop_assert_eq!(st.metadata().metadata_ordered().unwrap(), &metadata[..]);
        // Writing what was read gives the same bytes again.
        let again = serialize(st.tensors(), metadata).unwrap();
        prop_assert_eq!(again, bytes);
    }

    #[test]
    fn header_is_padded_and_data_aligned(tensors in prop::collection::btree_map("[a-z]{1,6}", tensor_strategy(), 1..6)) {
        let views: Vec<(String, TensorView)> = tensors
            .iter()
            .map(|(name, (_, dtype, shape, data))| (name.clone(), TensorView::new(*dtype, shape.clone(), data).unwrap()))
            .collect();
        let bytes = serialize(views, None).unwrap();
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        prop_assert_eq!((8 + n) % 8, 0);
        let st = SafeTensors::deserialize(&bytes).unwrap();
        // Each byte-sized tensor starts at a multiple of its element size (alignment-first layout).
        for (name, info) in st.metadata().iter() {
            let size = info.dtype.size().max(1);
            prop_assert_eq!(info.data_offsets.0 % size, 0, "{} {:?}", name, info);
        }
    }

    #[test]
    fn random_strided_selections_equal_the_naive_gather(
        shape in prop::collection::vec(0usize..6, 0..4),
        picks in prop::collection::vec((0usize..6, -3isize..4, 0usize..7, 0u8..3), 0..4),
        dtype in prop::sample::select(vec![Dtype::U8, Dtype::F16, Dtype::F32]),
        rows in any::<bool>(),
    ) {
        let size = dtype.size();
        let numel: usize = shape.iter().product();
        let data: Vec<u8> = (0..numel * size).map(|i| (i * 13 % 251) as u8).collect();
        // Indexers that fit the shape: a position, or `len` positions `step` apart from
        // `start` (clamped so they stay inside), possibly backwards.
        let indexers: Vec<DimIndexer> = picks
            .iter()
            .zip(&shape)
            .filter(|(_, &dim)| dim > 0)
            .map(|(&(a, step, len, kind), &dim)| {
                let start = a % dim;
                let step = if step == 0 { 1 } else { step };
                let room = if step > 0 { (dim - 1 - start) / step as usize } else { start / (-step) as usize };
                match kind {
                    0 => DimIndexer::Select(start),
                    _ => DimIndexer::Strided { start, step, len: len.min(room + 1) },
                }
            })
            .collect();
        // Only the leading dimensions that got an indexer are indexed (filter may drop some).
        let indexed = indexers.len().min(shape.iter().take_while(|&&d| d > 0).count());
        let indexers = &indexers[..indexed];
        let plan = byte_ranges(dtype, &shape, indexers).unwrap();

        // Naive: the positions kept per dimension, walked in row-major order.
        let positions: Vec<Vec<usize>> = shape.iter().enumerate().map(|(d, &dim)| match indexers.get(d) {
            None => (0..dim).collect(),
            Some(DimIndexer::Select(i)) => vec![*i],
            Some(DimIndexer::Strided { start, step, len }) => {
                (0..*len).map(|k| (*start as isize + k as isize * step) as usize).collect()
            }
            _ => unreachable!(),
        }).collect();
        let mut expected = Vec::new();
        let mut counters = vec![0usize; shape.len()];
        let total: usize = positions.iter().map(Vec::len).product();
        for _ in 0..total {
            let flat = counters.iter().zip(&positions).zip(&shape)
                .fold(0, |acc, ((&c, pos), &dim)| acc * dim + pos[c]);
            expected.extend_from_slice(&data[flat * size..(flat + 1) * size]);
            for d in (0..shape.len()).rev() {
                counters[d] += 1;
                if counters[d] < positions[d].len() { break; }
                counters[d] = 0;
            }
        }
        let n = plan.run_len();
        let got: Vec<u8> = if rows {
            plan.rows().flat_map(|(start, count, step)| (0..count).map(move |i| (start as isize + i as isize * step) as usize))
                .flat_map(|at| data[at..at + n].to_vec()).collect()
        } else {
            plan.clone().flat_map(|r| data[r].to_vec()).collect()
        };
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn random_slices_equal_the_naive_slice(
        shape in prop::collection::vec(1usize..6, 1..4),
        picks in prop::collection::vec((0usize..6, 0usize..6, any::<bool>(), 1usize..4), 0..4),
        dtype in prop::sample::select(vec![Dtype::U8, Dtype::F16, Dtype::F32, Dtype::C64]),
    ) {
        let size = dtype.size();
        let numel: usize = shape.iter().product();
        let data: Vec<u8> = (0..numel * size).map(|i| (i * 7 % 251) as u8).collect();
        let view = TensorView::new(dtype, shape.clone(), &data).unwrap();
        // Build indexers that fit the shape.
        let indexers: Vec<TensorIndexer> = picks
            .iter()
            .zip(&shape)
            .map(|(&(a, b, select, step), &dim)| {
                if select {
                    TensorIndexer::Select(a % dim)
                } else {
                    let (s, e) = (a % (dim + 1), b % (dim + 1));
                    let (s, e) = (s.min(e), s.max(e));
                    TensorIndexer::Narrow(Bound::Included(s), Bound::Excluded(e), NonZeroUsize::new(step).unwrap())
                }
            })
            .collect();
        let got: Vec<u8> = view.sliced_data(&indexers).unwrap().flatten().copied().collect();

        // Naive: walk every element index and keep the selected ones, in order.
        let mut expected = Vec::new();
        let mut expected_shape = Vec::new();
        // Per dimension: first kept position, end, step.
        let spans: Vec<(usize, usize, usize)> = shape.iter().enumerate().map(|(d, &dim)| match indexers.get(d) {
            None => { expected_shape.push(dim); (0, dim, 1) }
            Some(TensorIndexer::Select(i)) => (*i, i + 1, 1),
            Some(TensorIndexer::Narrow(Bound::Included(s), Bound::Excluded(e), step)) => {
                expected_shape.push((e - s).div_ceil(step.get()));
                (*s, *e, step.get())
            }
            _ => unreachable!(),
        }).collect();
        for flat in 0..numel {
            let mut rem = flat;
            let mut keep = true;
            for d in (0..shape.len()).rev() {
                let i = rem % shape[d];
                rem /= shape[d];
                keep &= spans[d].0 <= i && i < spans[d].1 && (i - spans[d].0) % spans[d].2 == 0;
            }
            if keep {
                expected.extend_from_slice(&data[flat * size..(flat + 1) * size]);
            }
        }
        prop_assert_eq!(&got, &expected);
        let (ranges, sliced_shape) = slice_byte_ranges(dtype, &shape, &indexers).unwrap();
        prop_assert_eq!(sliced_shape, expected_shape);
        let listed: Vec<u8> = ranges.iter().flat_map(|&(a, b)| data[a..b].to_vec()).collect();
        prop_assert_eq!(listed, expected);
    }

    #[test]
    fn mutated_files_never_panic(
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let a: Vec<u8> = (0..64).collect();
        let b: Vec<u8> = (0..6).collect();
        let valid = serialize(
            [("alpha", TensorView::new(Dtype::F32, vec![4, 4], &a).unwrap()),
             ("beta", TensorView::new(Dtype::F4, vec![3, 4], &b).unwrap())],
            vec![("format", "pt")],
        ).unwrap();
        let mut bytes = valid.clone();
        for (at, value) in flips {
            let i = at.index(bytes.len());
            bytes[i] = value;
        }
        if truncate {
            bytes.truncate(cut.index(bytes.len() + 1));
        }
        // Must return (Ok or Err), never panic; and whatever is accepted must be readable.
        if let Ok(st) = SafeTensors::deserialize(&bytes) {
            for (_, view) in st.iter() {
                let _ = view.sliced_data(&[TensorIndexer::Select(0)]).map(|it| it.count());
            }
        }
    }
}
