//! `safetensors verify`: the structure check of `validate`, the index held against its
//! shards (its `total_size` included), and every checksum the files record held against the
//! tensors' bytes, through the core's `Checkpoint::verify`. The core reads each shard once,
//! with a few threads; this module draws the progress bar and prints the findings.

use std::process::ExitCode;

use safetensors::checkpoint::verify::{VerifyProgress, VerifyReport};
use safetensors::checkpoint::{Backend, Checkpoint};
use safetensors::Error as CoreError;

use crate::error::{chain, Error};
use crate::output::say;
use crate::progress::Progress;
use crate::remote;
use crate::size::{counted, format_bytes};
use crate::table::printable;

/// Arguments of `safetensors verify`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Check files, their index and their recorded checksums",
    long_about = "Check a safetensors file, a sharded model's folder or index json, or an http(s) \
        URL: every rule of the format (as `validate`), the index against the shards (each tensor \
        in the shard it names and nowhere else, the total_size it records), and every per-tensor \
        checksum the files record in __metadata__ (written with `save_file(..., checksum=...)` or \
        `--checksum`) against the tensor's bytes. Each shard is read once.\n\nExits 0 when \
        everything holds, 1 when anything does not (each problem names the shard and tensor), 2 \
        when a path cannot be read at all."
)]
pub struct VerifyArgs {
    /// Files, sharded-model folders, index json files or URLs to verify.
    #[arg(value_name = "PATH|URL", required = true)]
    pub paths: Vec<String>,
    /// Also fail when a tensor has no recorded checksum (its bytes could not be checked).
    #[arg(long)]
    pub require_checksums: bool,
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs) -> Result<ExitCode, Error> {
    let (mut failed, mut errors) = (0usize, 0usize);
    for path in &args.paths {
        match verify_one(path, args.require_checksums) {
            Ok(true) => {}
            Ok(false) => failed += 1,
            Err(err) => {
                errors += 1;
                eprintln!("safetensors: error: {}", chain(&err));
            }
        }
    }
    if failed > 0 {
        eprintln!(
            "safetensors: {failed} of {} failed verification",
            counted(args.paths.len() as u64, "given path")
        );
    }
    Ok(match (errors, failed) {
        (0, 0) => ExitCode::SUCCESS,
        (0, _) => ExitCode::from(1),
        _ => ExitCode::from(crate::EXIT_ERROR),
    })
}

/// Verifies one location; `Ok(false)` when it does not hold, `Err` when it cannot be read.
fn verify_one(path: &str, require_checksums: bool) -> Result<bool, Error> {
    let shown = printable(path);
    let checkpoint = match open(path) {
        Ok(checkpoint) => checkpoint,
        Err(Opened::Unreadable(err)) => return Err(err),
        Err(Opened::Invalid(message)) => {
            eprintln!("{shown}: FAILED: {message}");
            return Ok(false);
        }
    };
    let progress = Bar(Progress::bytes(0, "verifying"));
    let report = checkpoint.verify(&progress);
    progress.0.finish();
    let mut lines = report.lines();
    if require_checksums && report.unrecorded > 0 {
        let n = report.unrecorded;
        let has = if n == 1 { "tensor has" } else { "tensors have" };
        lines.push(format!(
            "{n} {has} no recorded checksum (--require-checksums)"
        ));
    }
    if lines.is_empty() {
        say!("{shown}: OK ({})", summary(&checkpoint, &report));
        return Ok(true);
    }
    for line in lines {
        eprintln!("{shown}: FAILED: {}", printable(&line));
    }
    Ok(false)
}

/// Why a location could not be opened: it cannot be read at all (exit 2), or what was read
/// is not a valid checkpoint (a verification failure).
enum Opened {
    Unreadable(Error),
    Invalid(String),
}

fn open(path: &str) -> Result<Checkpoint, Opened> {
    if remote::is_url(path) {
        let client = remote::client().map_err(Opened::Unreadable)?;
        return Checkpoint::open_url(path, &client).map_err(|e| match e {
            CoreError::IoError(_) => Opened::Unreadable(remote::url_error(path, e)),
            other => Opened::Invalid(chain(&other)),
        });
    }
    // A path that cannot be read at all is an error, not a failed verification.
    std::fs::metadata(path).map_err(|e| Opened::Unreadable(Error::io("open", path, e)))?;
    // Positioned reads: every byte is read once anyway, and a file changed underneath gives
    // an error rather than a fault. The path itself reads, so anything wrong past it (a
    // shard the index names that is missing, a header that is not one) fails verification,
    // as `validate` reports it.
    Checkpoint::open_with(path, Backend::Pread).map_err(|e| Opened::Invalid(chain(&e)))
}

/// What held, in one line: tensors, bytes hashed and with which algorithms.
fn summary(checkpoint: &Checkpoint, report: &VerifyReport) -> String {
    let shards = match checkpoint.shard_count() {
        1 if !checkpoint.is_sharded() => String::new(),
        n => format!("{}, index consistent, ", counted(n as u64, "shard")),
    };
    let tensors = report.verified + report.unrecorded;
    let checked = match (report.verified, report.unrecorded) {
        (0, _) => "no recorded checksums".to_owned(),
        (_, 0) => "every checksum matches".to_owned(),
        (v, u) => format!("{v} checksums match, {u} tensors have none"),
    };
    let bytes: u64 = report
        .check
        .shards
        .iter()
        .filter_map(|(_, f)| f.as_ref().ok())
        .map(|f| f.metadata().data_len() as u64)
        .sum();
    format!(
        "{shards}{}, {}, {checked}",
        counted(tensors as u64, "tensor"),
        format_bytes(bytes)
    )
}

/// The progress bar, told by the core's hashing threads.
struct Bar(Progress);

impl VerifyProgress for Bar {
    fn start(&self, total_bytes: u64) {
        self.0.set(0, total_bytes);
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}
