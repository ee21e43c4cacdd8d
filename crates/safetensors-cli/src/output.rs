//! Writing to stdout without panicking: `println!` panics when the reader of a pipe goes
//! away (`safetensors inspect big.safetensors | head`). Here a closed pipe ends the process
//! quietly with status 0, as it does for other Unix tools; any other write error is reported.

use std::io::Write;

/// Writes `text` to stdout; on a closed pipe exits at once with status 0.
pub fn write_stdout(text: &str) {
    let mut stdout = std::io::stdout().lock();
    let result = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush());
    if let Err(err) = result {
        if err.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("safetensors: error: cannot write to stdout: {err}");
        std::process::exit(2);
    }
}

/// `println!` that tolerates a closed stdout pipe (see [`write_stdout`]).
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}
pub(crate) use say;
