//! `safetensors merge`: the reverse of `shard`. Reads a sharded model (a folder with
//! `model.safetensors.index.json`, or the index itself), checks the index against the shards,
//! and writes every tensor into one file, streaming bytes from the shards' memory maps.

use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::index::{locate, Layout, INDEX_FILE};
use crate::model::OpenModel;
use crate::output::say;
use crate::progress::Progress;
use crate::size::{counted, format_bytes};
use crate::table::printable;
use crate::write::write_file;

/// Arguments of `safetensors merge`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Join a sharded model into one safetensors file",
    long_about = "Join a sharded model into one safetensors file. INDIR is a folder holding \
        model.safetensors.index.json, or give the index json itself. The index must agree with the \
        shards (each tensor where its weight_map says, and only there). The first shard's \
        __metadata__ is kept; shards whose metadata differs are reported."
)]
pub struct MergeArgs {
    /// The sharded model: its folder or its index json.
    #[arg(value_name = "INDIR|INDEX")]
    pub input: PathBuf,
    /// The safetensors file to write.
    #[arg(value_name = "OUT")]
    pub output: PathBuf,
    /// Record each tensor's digest in the output's __metadata__ (`sha256`, or `xxh3-64`: much
    /// faster, not cryptographic); `safetensors verify` and `verify=True` check them. Without
    /// it, digests the input records are kept for the tensors they cover.
    #[arg(long, value_name = "ALGORITHM", value_parser = crate::write::parse_algorithm)]
    pub checksum: Option<safetensors::format::checksum::Algorithm>,
}

/// Runs `merge`.
pub fn run(args: &MergeArgs) -> Result<ExitCode, Error> {
    // A missing input is reported as such, not as "not a sharded model".
    std::fs::metadata(&args.input).map_err(|e| Error::io("open", &args.input, e))?;
    if let Layout::Single(_) = locate(&args.input)? {
        return Err(Error::invalid(
            args.input.display(),
            format!("not a sharded model: give a folder holding {INDEX_FILE} or the index json"),
        ));
    }
    let model = OpenModel::open(&args.input)?;
    for warning in &model.warnings {
        eprintln!("safetensors: warning: {warning}");
    }
    let (_, differing) = model.metadata();
    if !differing.is_empty() {
        let names: Vec<String> = differing.iter().map(|n| printable(n)).collect();
        eprintln!(
            "safetensors: warning: keeping the __metadata__ of {}; it differs in {}",
            printable(model.file_name(0)),
            names.join(", ")
        );
    }
    let mut views = Vec::new();
    let mut total = 0u64;
    for name in model.names() {
        let view = model.view(name)?;
        total += view.data_len() as u64;
        views.push((name.to_string(), view));
    }
    let count = views.len();
    let progress = Progress::bytes(total, "merging");
    write_file(
        views,
        model.merged_metadata(),
        &args.output,
        &progress,
        args.checksum,
    )?;
    progress.finish();
    say!(
        "merged {} into {} ({}, {})",
        counted(model.file_count() as u64, "shard"),
        args.output.display(),
        counted(count as u64, "tensor"),
        format_bytes(total)
    );
    Ok(ExitCode::SUCCESS)
}
