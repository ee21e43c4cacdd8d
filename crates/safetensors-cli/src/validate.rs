//! `safetensors validate`: checks files against every acceptance rule of the format (through
//! the core's reader) and, for a sharded folder, that the index agrees with its shards.
//! Exit status 0 only when everything given is valid.

use std::path::Path;
use std::process::ExitCode;

use safetensors::source::file::{Backend, SafeFile};
use safetensors::tensor::Metadata;

use crate::error::{chain, Error};
use crate::index::{locate, read_index, Layout};
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
        let problems = match locate(Path::new(path)) {
            Ok(Layout::Single(file)) => match check_file(&file) {
                Ok((_, summary)) => {
                    say!("{}: OK ({summary})", printable(path));
                    continue;
                }
                Err(problem) => vec![problem],
            },
            Ok(Layout::Sharded { index, folder }) => check_sharded(path, &index, &folder),
            Err(err) => vec![chain(&err)],
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

/// Opens a file through the core, which enforces the whole specification (the tensors
/// tile the data section, which ends where the file ends), so no tensor needs a second
/// look. Returns the open file and a one-line summary, or the problem.
fn check_file(path: &Path) -> Result<(SafeFile, String), String> {
    // SAFETY: as in `model::open_file`: the command accepts the mmap contract for the files
    // the user names (no in-place modification while it reads them).
    let file = SafeFile::open(path, unsafe { Backend::mmap() }).map_err(|e| chain(&e))?;
    let metadata = file.metadata();
    let bytes = metadata.data_len() as u64;
    let summary = format!(
        "{}, {} of tensor data",
        counted(metadata.len() as u64, "tensor"),
        counted(bytes, "byte")
    );
    Ok((file, summary))
}

/// Checks every shard of an index and the index against them.
fn check_sharded(shown: &str, index_path: &Path, folder: &Path) -> Vec<String> {
    let index = match read_index(index_path) {
        Ok(index) => index,
        Err(err) => return vec![chain(&err)],
    };
    let mut problems = Vec::new();
    let mut opened: Vec<(&str, SafeFile)> = Vec::new();
    for file in index.files() {
        let shard = folder.join(file);
        match check_file(&shard) {
            Ok((safe, summary)) => {
                say!("{}: {}: OK ({summary})", printable(shown), printable(file));
                opened.push((file, safe));
            }
            Err(problem) => problems.push(format!("{}: {problem}", printable(file))),
        }
    }
    if problems.is_empty() {
        let headers: Vec<(&str, &Metadata)> =
            opened.iter().map(|(f, s)| (*f, s.metadata())).collect();
        problems.extend(index.problems(&headers).iter().map(ToString::to_string));
    }
    problems
}
