//! The `safetensors` command: inspect, validate, verify, convert, shard, merge and diff
//! safetensors files. This file only parses arguments and turns an error into one line on stderr; each
//! subcommand lives in its own module.

mod convert;
mod diff;
mod error;
mod floats;
mod index;
mod inspect;
mod merge;
mod model;
mod output;
mod progress;
mod remote;
mod shard;
mod size;
mod table;
mod validate;
mod verify;
mod write;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit status for errors (1 is "invalid"/"different" for validate and diff).
const EXIT_ERROR: u8 = 2;

#[derive(Debug, Parser)]
#[command(
    name = "safetensors",
    version,
    about = "Inspect, validate, verify, convert, shard, merge and diff safetensors files",
    after_help = "Exit status: 0 on success; 1 when `validate` finds an invalid file, `verify` a \
        problem or `diff` a difference; 2 on any error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Inspect(inspect::InspectArgs),
    Validate(validate::ValidateArgs),
    Verify(verify::VerifyArgs),
    Convert(convert::ConvertArgs),
    Shard(shard::ShardArgs),
    Merge(merge::MergeArgs),
    Diff(diff::DiffArgs),
}

fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let code = match &cli.command {
        Command::Inspect(args) => inspect::run(args)?,
        Command::Validate(args) => validate::run(args)?,
        Command::Verify(args) => verify::run(args)?,
        Command::Convert(args) => convert::run(args)?,
        Command::Shard(args) => shard::run(args)?,
        Command::Merge(args) => merge::run(args)?,
        Command::Diff(args) => diff::run(args)?,
    };
    Ok(code)
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) if !err.use_stderr() => err.exit(), // --help, --version
        Err(err) => {
            // clap's text above its usage block says what is wrong; fold it into one line and
            // point at --help (once: clap's own "For more information" hint is dropped).
            let rendered = err.render().to_string();
            let message: Vec<&str> = rendered
                .lines()
                .take_while(|l| !l.starts_with("Usage:"))
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with("For more information"))
                .collect();
            let message = message.join(" ").replace(" tip: ", "; tip: ");
            let message = message.trim_start_matches("error: ");
            eprintln!("safetensors: error: {message} (see `safetensors --help`)");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match run(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("safetensors: error: {}", error::chain(err.as_ref()));
            ExitCode::from(EXIT_ERROR)
        }
    }
}
