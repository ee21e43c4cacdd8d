//! `safetensors shard`: splits one safetensors file into `model-0000K-of-0000N.safetensors`
//! files of at most `--max-shard-size` tensor bytes each, plus the
//! `model.safetensors.index.json` that `transformers` reads. Tensors are never split; one
//! larger than the limit gets a shard to itself. Bytes stream from a memory map.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use safetensors::write::write_atomically;

use crate::error::Error;
use crate::index::{locate, shard_file_name, write_index_json, Layout, INDEX_FILE};
use crate::model::OpenModel;
use crate::output::say;
use crate::progress::Progress;
use crate::size::{counted, format_bytes, parse_size};
use crate::write::write_file;

/// Arguments of `safetensors shard`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Split a safetensors file into shards plus model.safetensors.index.json",
    long_about = "Split a safetensors file into model-00001-of-0000N.safetensors files plus the \
        model.safetensors.index.json that transformers loads. Tensors keep the input's data order, \
        are never split, and a tensor larger than the limit goes in a shard of its own. The input's \
        __metadata__ is kept in every shard."
)]
pub struct ShardArgs {
    /// The safetensors file to split.
    #[arg(value_name = "IN")]
    pub input: PathBuf,
    /// Folder for the shards and the index (created if missing).
    #[arg(value_name = "OUTDIR")]
    pub output_dir: PathBuf,
    /// Most tensor bytes per shard: a byte count or a number with a unit, KB/MB/GB/TB (powers
    /// of 1000) or KiB/MiB/GiB/TiB (powers of 1024), e.g. 5GB, 500MiB, 1.5GB.
    #[arg(long, value_name = "SIZE", default_value = "5GB", value_parser = parse_size)]
    pub max_shard_size: u64,
    /// Record each tensor's digest in the output's __metadata__ (`sha256`, or `xxh3-64`: much
    /// faster, not cryptographic); `safetensors verify` and `verify=True` check them. Without
    /// it, digests the input records are kept for the tensors they cover.
    #[arg(long, value_name = "ALGORITHM", value_parser = crate::write::parse_algorithm)]
    pub checksum: Option<safetensors::format::checksum::Algorithm>,
}

/// How tensors are grouped into shards: the core's rule, shared with `save_sharded`.
pub use safetensors::checkpoint::shard_index::plan_shards;

/// Runs `shard`.
pub fn run(args: &ShardArgs) -> Result<ExitCode, Error> {
    if let Layout::Sharded { .. } = locate(&args.input)? {
        return Err(Error::invalid(
            args.input.display(),
            "is already sharded: give one .safetensors file (`merge` it first to re-shard)",
        ));
    }
    let model = OpenModel::open(&args.input)?;
    let metadata = model.metadata().0.map(|pairs| pairs.to_vec());
    let mut sized = Vec::new();
    let mut total = 0u64;
    for name in model.names_in_data_order()? {
        let bytes = model.view(&name)?.data_len() as u64;
        total += bytes;
        sized.push((name, bytes));
    }
    let plan = plan_shards(&sized, args.max_shard_size);
    let count = plan.len();

    std::fs::create_dir_all(&args.output_dir)
        .map_err(|e| Error::io("create folder", &args.output_dir, e))?;
    let progress = Progress::bytes(total, "sharding");
    let mut weight_map = BTreeMap::new();
    for (i, names) in plan.iter().enumerate() {
        let file_name = shard_file_name(i + 1, count);
        progress.label(&format!("writing {file_name}"));
        let mut views = Vec::with_capacity(names.len());
        for name in names {
            views.push((name.clone(), model.view(name)?));
            weight_map.insert(name.clone(), file_name.clone());
        }
        write_file(
            views,
            metadata.clone(),
            &args.output_dir.join(&file_name),
            &progress,
            args.checksum,
        )?;
    }
    // The index goes last: an interrupted run never leaves an index naming missing shards.
    let index_path = args.output_dir.join(INDEX_FILE);
    write_atomically(&index_path, write_index_json(total, &weight_map).as_bytes())
        .map_err(|e| Error::io("write", &index_path, e))?;
    progress.finish();
    let stale = stale_shards(&args.output_dir, count);
    if !stale.is_empty() {
        eprintln!(
            "safetensors: warning: {} also holds shards from an earlier run, not in the new index: {}",
            args.output_dir.display(),
            stale.join(", ")
        );
    }
    say!(
        "wrote {} and {INDEX_FILE} to {} ({}, {})",
        counted(count as u64, "shard"),
        args.output_dir.display(),
        counted(sized.len() as u64, "tensor"),
        format_bytes(total)
    );
    Ok(ExitCode::SUCCESS)
}

/// `model-*-of-*.safetensors` files in `folder` that are not shards of a `count`-shard split.
fn stale_shards(folder: &Path, count: usize) -> Vec<String> {
    let current = format!("-of-{count:05}.safetensors");
    let mut stale: Vec<String> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| {
            name.starts_with("model-") && name.contains("-of-") && name.ends_with(".safetensors")
        })
        .filter(|name| !name.ends_with(&current))
        .collect();
    stale.sort();
    stale
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(sizes: &[u64], limit: u64) -> Vec<Vec<String>> {
        let tensors: Vec<(String, u64)> = sizes
            .iter()
            .enumerate()
            .map(|(i, &s)| (format!("t{i}"), s))
            .collect();
        plan_shards(&tensors, limit)
    }

    fn names(groups: &[&[usize]]) -> Vec<Vec<String>> {
        groups
            .iter()
            .map(|g| g.iter().map(|i| format!("t{i}")).collect())
            .collect()
    }

    #[test]
    fn fills_shards_up_to_the_limit() {
        assert_eq!(plan(&[4, 4, 4, 4], 8), names(&[&[0, 1], &[2, 3]]));
        assert_eq!(plan(&[4, 4, 4], 100), names(&[&[0, 1, 2]]));
        assert_eq!(plan(&[5, 4, 3], 8), names(&[&[0], &[1, 2]]));
    }

    #[test]
    fn a_tensor_over_the_limit_is_alone() {
        assert_eq!(plan(&[20, 1, 1], 8), names(&[&[0], &[1, 2]]));
        assert_eq!(plan(&[1, 20, 1], 8), names(&[&[0], &[1], &[2]]));
        assert_eq!(plan(&[1, 1, 20], 8), names(&[&[0, 1], &[2]]));
    }

    #[test]
    fn empty_input_gives_one_empty_shard() {
        assert_eq!(plan(&[], 8), vec![Vec::<String>::new()]);
        assert_eq!(plan(&[0, 0], 1), names(&[&[0, 1]]));
    }
}
