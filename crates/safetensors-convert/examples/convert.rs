//! Minimal driver for manual runs and measurements (the real command line lives in
//! safetensors-cli): `cargo run --release --example convert -- [--verify] INPUT OUTPUT`.
//! INPUT may be a checkpoint file or a folder with pytorch_model.bin.index.json.

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use safetensors_convert::{convert_file, convert_folder, ConvertOptions};

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let verify = args.iter().any(|a| a == "--verify");
    args.retain(|a| a != "--verify");
    let [input, output] = args.as_slice() else {
        eprintln!("usage: convert [--verify] INPUT OUTPUT");
        return ExitCode::from(2);
    };
    let opts = ConvertOptions {
        checksum: None,
        verify,
        progress: None,
    };
    let start = Instant::now();
    let result = if Path::new(input).is_dir() {
        convert_folder(Path::new(input), Path::new(output), &opts)
    } else {
        convert_file(Path::new(input), Path::new(output), &opts)
    };
    match result {
        Ok(r) => {
            println!(
                "{} tensors, {} dropped as shared, {} bytes in {} file(s), {:.3} s",
                r.tensors_written,
                r.dropped_shared.len(),
                r.bytes_written,
                r.files_written.len(),
                start.elapsed().as_secs_f64()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
