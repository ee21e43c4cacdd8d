//! `safetensors convert`: PyTorch checkpoints (`torch.save` files, or a folder with
//! `pytorch_model.bin.index.json`) to safetensors, through the `safetensors-convert` crate,
//! which reads pickles without ever executing them.

use std::path::PathBuf;
use std::process::ExitCode;

use safetensors_convert::{convert_file, convert_folder, ConvertOptions};

use crate::error::Error;
use crate::output::say;
use crate::progress::Progress;
use crate::size::{counted, format_bytes};
use crate::table::printable;

/// Arguments of `safetensors convert`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Convert a PyTorch checkpoint to safetensors without running pickle code",
    long_about = "Convert a PyTorch checkpoint to safetensors without running any pickle code. IN is \
        a torch.save file (.bin/.pt/.pth) and OUT the .safetensors file to write; or IN is a folder \
        holding pytorch_model.bin.index.json (or pytorch_model.bin) and OUT the folder for \
        model-0000K-of-0000N.safetensors shards and model.safetensors.index.json. Checkpoints \
        that would run code other than rebuilding tensors are refused, and nothing is written. \
        Tensors sharing storage are written once; the dropped names are listed."
)]
pub struct ConvertArgs {
    /// The checkpoint file, or a folder of a sharded checkpoint.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// The safetensors file (or, for a folder, the output folder) to write.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Re-read what was written and compare every tensor with the checkpoint.
    #[arg(long)]
    pub verify: bool,
    /// Record each tensor's digest in the written files' __metadata__ (`sha256`, or
    /// `xxh3-64`: much faster, not cryptographic); `safetensors verify` checks them.
    #[arg(long, value_name = "ALGORITHM", value_parser = crate::write::parse_algorithm)]
    pub checksum: Option<safetensors::format::checksum::Algorithm>,
}

/// Runs `convert`.
pub fn run(args: &ConvertArgs) -> Result<ExitCode, Error> {
    let progress = Progress::bytes(0, "converting");
    let on_progress = |done: u64, total: u64| progress.set(done, total);
    let options = ConvertOptions {
        verify: args.verify,
        progress: Some(&on_progress),
        checksum: args.checksum,
    };
    let result = if args.input.is_dir() {
        convert_folder(&args.input, &args.output, &options)
    } else {
        convert_file(&args.input, &args.output, &options)
    };
    progress.finish();
    let report = result.map_err(|source| Error::Convert {
        input: args.input.display().to_string(),
        source: Box::new(source),
    })?;
    for (dropped, kept) in &report.dropped_shared {
        say!(
            "shared storage: wrote `{}`, dropped `{}` (same bytes)",
            printable(kept),
            printable(dropped)
        );
    }
    let files: Vec<String> = report
        .files_written
        .iter()
        .map(|p| p.display().to_string())
        .collect();
    say!(
        "converted {} into {} ({}){}",
        counted(report.tensors_written as u64, "tensor"),
        files.join(", "),
        format_bytes(report.bytes_written),
        if args.verify { ", verified" } else { "" }
    );
    Ok(ExitCode::SUCCESS)
}
