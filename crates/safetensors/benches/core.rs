//! Criterion benchmarks of the core: header parse + validate, writing a large file
//! against a plain `std::fs::write` of the same bytes, and slicing a row block.
//!
//! Run with `make bench-rust` (or `cargo bench -p safetensors`); figures go in BENCHMARKS.md.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use safetensors::slice::TensorIndexer;
use safetensors::source::file::{Backend, SafeFile};
use safetensors::tensor::TensorView;
use safetensors::{serialize, serialize_to_file, Dtype, SafeTensors};

// SAFETY: the mmap backend's contract (no in-place writer, no truncation while a file is
// open) holds for every use below: the files are
// written by this program into its own folder and not touched by anything else while open.
const MMAP: Backend = unsafe { Backend::mmap() };

fn header_parse(c: &mut Criterion) {
    let data = vec![0u8; 1000 * 64 * 4];
    let tensors: Vec<(String, TensorView)> = (0..1000)
        .map(|i| {
            let bytes = &data[i * 256..(i + 1) * 256];
            (
                format!("model.layers.{i}.weight"),
                TensorView::new(Dtype::F32, vec![8, 8], bytes).unwrap(),
            )
        })
        .collect();
    let file = serialize(tensors, vec![("format", "pt")]).unwrap();
    let mut group = c.benchmark_group("header");
    group.throughput(Throughput::Elements(1000));
    group.bench_function("deserialize 1000 tensors", |b| {
        b.iter(|| SafeTensors::deserialize(black_box(&file)).unwrap())
    });
    group.finish();
}

fn write_large(c: &mut Criterion) {
    // ~500 MB of F32, in gpt2-like pieces.
    let numel = 124_000_000usize;
    let data: Vec<u8> = (0..numel * 4).map(|i| (i % 251) as u8).collect();
    let chunk = 768 * 768 * 4;
    let tensors: Vec<(String, TensorView)> = data
        .chunks(chunk)
        .enumerate()
        .filter(|(_, c)| c.len() == chunk)
        .map(|(i, c)| {
            (
                format!("h.{i}.weight"),
                TensorView::new(Dtype::F32, vec![768, 768], c).unwrap(),
            )
        })
        .collect();
    let total: usize = tensors.iter().map(|(_, t)| t.data_len()).sum();
    let dir =
        tempfile::tempdir_in(std::env::var("BENCH_DIR").unwrap_or_else(|_| ".".into())).unwrap();
    let path = dir.path().join("bench.safetensors");
    let plain = dir.path().join("plain.bin");

    let mut group = c.benchmark_group("write 500MB");
    group.sample_size(10);
    group.throughput(Throughput::Bytes(total as u64));
    group.bench_function("serialize_to_file", |b| {
        b.iter(|| {
            serialize_to_file(tensors.iter().map(|(n, t)| (n.as_str(), t)), None, &path).unwrap()
        })
    });
    group.bench_function("std::fs::write (same bytes)", |b| {
        b.iter(|| std::fs::write(&plain, &data[..total]).unwrap())
    });
    group.finish();
}

fn slice_rows(c: &mut Criterion) {
    let (rows, cols) = (50_257usize, 768usize);
    let data: Vec<u8> = (0..rows * cols * 4).map(|i| (i % 251) as u8).collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("wte.safetensors");
    let view = TensorView::new(Dtype::F32, vec![rows, cols], &data).unwrap();
    serialize_to_file([("wte", view.clone())], None, &path).unwrap();
    let block = [TensorIndexer::from(1000..2000)];
    let dim_block = [safetensors::slice::DimIndexer::from(1000..2000)];

    let mut group = c.benchmark_group("slice 1000 rows of 50257x768 F32");
    group.throughput(Throughput::Bytes((1000 * cols * 4) as u64));
    group.bench_function("in-memory view", |b| {
        b.iter(|| {
            let mut out = Vec::with_capacity(1000 * cols * 4);
            for chunk in view.sliced_data(black_box(&block)).unwrap() {
                out.extend_from_slice(chunk);
            }
            out
        })
    });
    for backend in [MMAP, Backend::Pread] {
        let file = SafeFile::open(&path, backend).unwrap();
        group.bench_function(format!("SafeFile {backend:?}"), |b| {
            b.iter(|| {
                let info = file.metadata().info("wte").unwrap();
                let ranges =
                    safetensors::slice::byte_ranges(info.dtype, &info.shape, &dim_block).unwrap();
                let mut out = vec![0u8; ranges.remaining_byte_len()];
                let mut at = 0;
                for r in ranges {
                    let len = r.len();
                    file.read_into("wte", r, &mut out[at..at + len]).unwrap();
                    at += len;
                }
                out
            })
        });
    }
    group.finish();
}

criterion_group!(benches, header_parse, write_large, slice_rows);
criterion_main!(benches);
