//! The command line itself: `--help` for every subcommand, `--version`, and usage errors
//! reported as one line with exit status 2.

mod common;

use common::*;

#[test]
fn every_subcommand_has_help() {
    let top = run(["--help"]);
    assert_eq!(top.code, 0);
    for (sub, words) in [
        ("inspect", &["LOCATION", "--json", "Range"][..]),
        ("validate", &["PATH"][..]),
        (
            "verify",
            &["PATH|URL", "--require-checksums", "checksum"][..],
        ),
        ("convert", &["IN", "OUT", "--verify", "pickle"][..]),
        (
            "shard",
            &["IN", "OUTDIR", "--max-shard-size", "GiB", "[default: 5GB]"][..],
        ),
        ("merge", &["INDIR|INDEX", "OUT", "--checksum"][..]),
        ("diff", &["A", "B", "Exit status"][..]),
    ] {
        assert!(top.stdout.contains(sub), "{sub} listed in:\n{}", top.stdout);
        let out = run([sub, "--help"]);
        assert_eq!(out.code, 0, "{sub}: {}", out.stderr);
        for word in words {
            assert!(
                out.stdout.contains(word),
                "`{word}` in `{sub} --help`:\n{}",
                out.stdout
            );
        }
    }
}

#[test]
fn version_is_printed() {
    let out = run(["--version"]);
    assert_eq!(out.code, 0);
    assert_eq!(
        out.stdout.trim(),
        format!("safetensors {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn usage_errors_are_one_line() {
    let out = run(["frobnicate"]);
    assert_one_line_error(&out, "frobnicate");
    let out = run(["inspect"]);
    assert_one_line_error(&out, "LOCATION");
    let out = run(["diff", "a.safetensors"]);
    assert_one_line_error(&out, "<B>");
    let out = run(["shard", "in", "out", "--max-shard-size", "12 parsecs"]);
    assert_one_line_error(&out, "'12 parsecs'");
}
