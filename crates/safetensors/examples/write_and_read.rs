//! Writes a small model file, reads it back through both file backends, and slices it.
//!
//! `cargo run -p safetensors --example write_and_read -- [PATH]`

use safetensors::slice::{byte_ranges, DimIndexer};
use safetensors::source::file::{Backend, SafeFile};
use safetensors::tensor::TensorView;
use safetensors::{serialize_to_file, Dtype};

// SAFETY: the mmap backend's contract (no in-place writer, no truncation while a file is
// open) holds for every use below: the files are
// written by this program into its own folder and not touched by anything else while open.
const MMAP: Backend = unsafe { Backend::mmap() };

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "demo.safetensors".into());

    // A tiny two-layer "model": F32 weights, F16 biases, an I64 step counter.
    let w1: Vec<u8> = (0..32 * 16)
        .flat_map(|i| (i as f32 * 0.01).to_le_bytes())
        .collect();
    let w2: Vec<u8> = (0..16 * 4)
        .flat_map(|i| (-(i as f32)).to_le_bytes())
        .collect();
    let b1 = vec![0u8; 16 * 2];
    let step = 1234i64.to_le_bytes();
    let tensors = vec![
        (
            "layer1.weight",
            TensorView::new(Dtype::F32, vec![32, 16], &w1)?,
        ),
        ("layer1.bias", TensorView::new(Dtype::F16, vec![16], &b1)?),
        (
            "layer2.weight",
            TensorView::new(Dtype::F32, vec![16, 4], &w2)?,
        ),
        ("step", TensorView::new(Dtype::I64, vec![], &step)?),
    ];
    serialize_to_file(
        tensors,
        vec![("format", "pt"), ("written_by", "write_and_read example")],
        path.as_ref(),
    )?;
    println!("wrote {path} ({} bytes)", std::fs::metadata(&path)?.len());

    for backend in [MMAP, Backend::Pread] {
        let file = SafeFile::open(&path, backend)?;
        println!(
            "\n{backend:?}: {} tensors, metadata {:?}",
            file.metadata().len(),
            file.metadata().metadata_ordered()
        );
        for (name, info) in file.metadata().iter() {
            println!(
                "  {name:<14} {:<4} {:?} bytes {:?}",
                info.dtype, info.shape, info.data_offsets
            );
        }
        // Rows 2..4 of layer2.weight, read without touching the rest of the tensor.
        let info = file.metadata().info("layer2.weight").unwrap();
        let rows = [DimIndexer::from(2..4)];
        let ranges = byte_ranges(info.dtype, &info.shape, &rows)?;
        let shape = ranges.newshape();
        let mut out = vec![0u8; ranges.remaining_byte_len()];
        let mut at = 0;
        for r in ranges {
            let len = r.len();
            file.read_into("layer2.weight", r, &mut out[at..at + len])?;
            at += len;
        }
        let values: Vec<f32> = out
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        println!("  layer2.weight[2:4] shape {shape:?} = {values:?}");
        assert_eq!(values[0], -8.0);
    }
    Ok(())
}
