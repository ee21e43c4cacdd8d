//! `safetensors inspect`: what a model holds (tensors, dtypes, shapes, parameter counts,
//! byte offsets, totals per dtype and the `__metadata__`), read from the headers alone, for
//! one file, a sharded folder, or an http(s) URL fetched with Range requests.

use std::process::ExitCode;

use crate::error::Error;
use crate::output::say;
use crate::remote;
use crate::size::{counted, format_bytes, format_count};
use crate::table::{printable, shape, Align, Table};

/// Arguments of `safetensors inspect`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Show the tensors, dtypes, shapes, parameter counts and metadata of a model (headers only)",
    long_about = "Show the tensors, dtypes, shapes, parameter counts and metadata of a model.\n\n\
        Only headers are read: the 8-byte length and the JSON header of each file, never the tensor \
        data. LOCATION is a .safetensors file, a folder holding model.safetensors.index.json (sharded) \
        or model.safetensors, an index json file, or an http:// or https:// URL of a .safetensors \
        file or of an index json (fetched with HTTP Range requests)."
)]
pub struct InspectArgs {
    /// File, folder, index json, or http(s) URL of a file or index json.
    #[arg(value_name = "LOCATION")]
    pub location: String,
    /// Print machine-readable JSON instead of tables.
    #[arg(long)]
    pub json: bool,
}

pub use safetensors::checkpoint::inspect::{parameters, totals, Model, Pairs};

/// Runs `inspect`.
pub fn run(args: &InspectArgs) -> Result<ExitCode, Error> {
    let model = load(&args.location)?;
    if args.json {
        say!("{}", safetensors::checkpoint::inspect::json_report(&model));
    } else {
        crate::output::write_stdout(&render(&model));
    }
    for warning in &model.warnings {
        eprintln!("safetensors: warning: {warning}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Reads the headers behind `location` (path or URL).
pub fn load(location: &str) -> Result<Model, Error> {
    if remote::is_url(location) {
        return load_url(location);
    }
    safetensors::checkpoint::inspect::inspect_local(location)
        .map_err(|e| Error::from_core(location, e))
}

fn load_url(url: &str) -> Result<Model, Error> {
    safetensors::checkpoint::inspect::inspect_url(url, &remote::client()?)
        .map_err(|(at, e)| remote::url_error(&at, e))
}

/// The metadata entries to list, and how many recorded checksums (`__checksum__:NAME`)
/// were left out of them: a checkpoint with digests has one per tensor.
fn shown_pairs(pairs: Pairs<'_>) -> (Vec<(&str, &str)>, usize) {
    let is_digest = |k: &str| safetensors::format::checksum::tensor_of_key(k).is_some();
    let shown: Vec<(&str, &str)> = pairs.iter().filter(|(k, _)| !is_digest(k)).collect();
    let digests = pairs.iter().filter(|(k, _)| is_digest(k)).count();
    (shown, digests)
}

/// The human-readable report.
pub fn render(model: &Model) -> String {
    let mut out = String::new();
    if let Some(index) = &model.index {
        out.push_str(&format!(
            "Sharded model: {} ({}, {} in weight_map",
            printable(&model.source),
            counted(model.files.len() as u64, "file"),
            counted(index.weight_map.len() as u64, "tensor")
        ));
        if let Some(total) = index.total_size() {
            out.push_str(&format!(
                ", total_size {} = {}",
                format_count(total),
                format_bytes(total)
            ));
        }
        out.push_str(")\n\n");
    }
    for shard in &model.files {
        let header = &shard.header;
        out.push_str(&format!(
            "File: {} ({} = {}, header {}, {})\n",
            printable(&shard.name),
            counted(header.file_len, "byte"),
            format_bytes(header.file_len),
            counted(header.header_len as u64, "byte"),
            counted(header.metadata.len() as u64, "tensor")
        ));
        if !header.metadata.is_empty() {
            let mut table = Table::new(&[
                ("NAME", Align::Left),
                ("DTYPE", Align::Left),
                ("SHAPE", Align::Left),
                ("PARAMETERS", Align::Right),
                ("BYTES", Align::Right),
                ("OFFSETS", Align::Left),
            ]);
            for (name, info) in header.metadata.entries() {
                let (begin, end) = info.data_offsets;
                table.row(vec![
                    printable(name),
                    info.dtype.to_string(),
                    shape(&info.shape),
                    format_count(parameters(&info.shape)),
                    format_count((end - begin) as u64),
                    format!("{begin}..{end}"),
                ]);
            }
            out.push('\n');
            out.push_str(&table.render());
        }
        out.push('\n');
    }

    let (by_dtype, all) = totals(model);
    out.push_str("Parameters by dtype:\n");
    let mut table = Table::new(&[
        ("DTYPE", Align::Left),
        ("TENSORS", Align::Right),
        ("PARAMETERS", Align::Right),
        ("BYTES", Align::Right),
        ("SIZE", Align::Right),
    ]);
    for (dtype, t) in &by_dtype {
        table.row(vec![
            dtype.to_string(),
            format_count(t.tensors),
            format_count(t.parameters),
            format_count(t.bytes),
            format_bytes(t.bytes),
        ]);
    }
    table.row(vec![
        "total".into(),
        format_count(all.tensors),
        format_count(all.parameters),
        format_count(all.bytes),
        format_bytes(all.bytes),
    ]);
    out.push_str(&table.render());

    // One metadata section when every file carries the same __metadata__ (each shard's own
    // checksums aside), else one per file.
    let all_same = model.files.windows(2).all(|pair| {
        let a = pair[0].header.metadata.metadata_ordered();
        let b = pair[1].header.metadata.metadata_ordered();
        a.map(|p| shown_pairs(p).0) == b.map(|p| shown_pairs(p).0)
    });
    let sections: Vec<(Option<&str>, Option<Pairs<'_>>)> = if all_same {
        vec![(
            None,
            model
                .files
                .first()
                .and_then(|s| s.header.metadata.metadata_ordered()),
        )]
    } else {
        model
            .files
            .iter()
            .map(|s| (Some(s.name.as_str()), s.header.metadata.metadata_ordered()))
            .collect()
    };
    for (file, metadata) in sections {
        out.push('\n');
        match file {
            Some(file) => out.push_str(&format!("Metadata (__metadata__) of {}:", printable(file))),
            None => out.push_str("Metadata (__metadata__):"),
        }
        match metadata {
            None => out.push_str(" none\n"),
            Some(pairs) if pairs.is_empty() => out.push_str(" {} (empty)\n"),
            Some(pairs) => {
                out.push('\n');
                let (shown, mut digests) = shown_pairs(pairs);
                for (key, value) in shown {
                    out.push_str(&format!("  {}: {}\n", printable(key), printable(value)));
                }
                if file.is_none() {
                    // One section for every file: count every file's digests.
                    digests = model
                        .files
                        .iter()
                        .filter_map(|s| s.header.metadata.metadata_ordered())
                        .map(|p| shown_pairs(p).1)
                        .sum();
                }
                if digests > 0 {
                    out.push_str(&format!(
                        "  (and {} recorded: `safetensors verify` checks them)\n",
                        counted(digests as u64, "tensor checksum")
                    ));
                }
            }
        }
    }
    if !model.warnings.is_empty() {
        out.push_str(&format!(
            "\n{}, see stderr\n",
            counted(model.warnings.len() as u64, "warning")
        ));
    }
    out
}
