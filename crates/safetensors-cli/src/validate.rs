//! `safetensors validate`: checks files against every acceptance rule of the format (through
//! the core's reader) and, for a sharded folder, that the index agrees with its shards.
//! Exit status 0 only when everything given is valid.

use std::process::ExitCode;

use safetensors::checkpoint::Backend;
use safetensors::checkpoint::Checkpoint;
use safetensors::tensor::Metadata;

use crate::error::{chain, Error};
use crate::output::say;
use crate::size::counted;
use crate::table::printable;

/// Arguments of `safetensors validate`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check files against every rule of the safetensors format",
    long_about = "Check files against every rule of the safetensors format: the header length, the \
        JSON, each tensor's dtype, shape and offsets, and that the tensors tile the data section \
        exactly. A folder (or index json) of a sharded model is checked shard by shard, and its \
        index against the shards.\n\nPrints one line per file; exits 0 only when all are valid, 1 \
        when any is not, 2 when a path cannot be read (missing file, no permission)."
)]
pub struct ValidateArgs {
    /// Files, sharded-model folders or index json files to check.
    #[arg(value_name = "PATH", required = true)]
    pub paths: Vec<String>,
}

/// Runs `validate`.
pub fn run(args: &ValidateArgs) -> Result<ExitCode, Error> {
    let mut invalid = 0usize;
    let mut errors = 0usize;
    for path in &args.paths {
        // A path that cannot be read at all is an error (exit 2), not an invalid file.
        if let Err(err) = std::fs::metadata(path) {
            errors += 1;
            eprintln!(
                "safetensors: error: {}",
                chain(&Error::io("open", path, err))
            );
            continue;
        }
        let problems = match check(path) {
            Ok(Checked::File(summary)) => {
                say!("{}: OK ({summary})", printable(path));
                continue;
            }
            Ok(Checked::Sharded(problems)) => problems,
            Err(problem) => vec![problem],
        };
        if problems.is_empty() {
            say!("{}: OK (sharded model, index consistent)", printable(path));
        } else {
            invalid += 1;
            for problem in problems {
                eprintln!("{}: INVALID: {problem}", printable(path));
            }
        }
    }
    if invalid > 0 {
        eprintln!(
            "safetensors: {invalid} of {} invalid",
            counted(args.paths.len() as u64, "given path")
        );
    }
    if errors > 0 {
        return Ok(ExitCode::from(crate::EXIT_ERROR));
    }
    if invalid > 0 {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// What checking one path found.
enum Checked {
    /// A valid single file, with its one-line summary.
    File(String),
    /// A sharded model's problems (none when it is valid); each valid shard is printed.
    Sharded(Vec<String>),
}

/// Opens `path` through the core's `Checkpoint`, which enforces the whole specification on
/// every file (the tensors tile the data section, which ends where the file ends) and holds an
/// index against its shards, so no tensor needs a second look. A single file that fails is the
/// error.
fn check(path: &str) -> Result<Checked, String> {
    // SAFETY: as in `model::OpenModel::open`: the command accepts the mmap contract for the
    // files the user names (no in-place modification while it reads them).
    let checkpoint =
        Checkpoint::open_with(path, unsafe { Backend::mmap() }).map_err(|e| chain(&e))?;
    let report = checkpoint.check();
    if !checkpoint.is_sharded() {
        let (_, file) = report.shards.into_iter().next().expect("one file");
        return file
            .map(|f| Checked::File(summary(f.metadata())))
            .map_err(|e| chain(&e));
    }
    let mut problems = Vec::new();
    for (name, file) in &report.shards {
        match file {
            Ok(file) => say!(
                "{}: {}: OK ({})",
                printable(path),
                printable(name),
                summary(file.metadata())
            ),
            Err(e) => problems.push(format!("{}: {}", printable(name), chain(e))),
        }
    }
    problems.extend(report.index_problems.iter().map(ToString::to_string));
    Ok(Checked::Sharded(problems))
}

/// One line about a valid file: its tensors and bytes of data.
fn summary(metadata: &Metadata) -> String {
    format!(
        "{}, {} of tensor data",
        counted(metadata.len() as u64, "tensor"),
        counted(metadata.data_len() as u64, "byte")
    )
}
