//! `safetensors diff`: compares two models (files or sharded folders) tensor by tensor:
//! names only on one side, dtype and shape changes, whether the bytes are equal and, for
//! F16/BF16/F32/F64, the largest absolute difference. Exit 0 when identical, 1 when not,
//! 2 on error, like diff(1).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::process::ExitCode;

use crate::error::Error;
use crate::floats::{format_float, FloatDiff, FloatKind};
use crate::model::OpenModel;
use crate::output::say;
use crate::size::{counted, format_count};
use crate::table::{printable, shape};

/// Arguments of `safetensors diff`.
#[derive(Debug, clap::Args)]
#[command(
    about = "Compare two models tensor by tensor (exit 0 identical, 1 different, 2 error)",
    long_about = "Compare two models tensor by tensor: names only in A or only in B, dtype and \
        shape differences, and for tensors in both whether their bytes are equal and, for F16, \
        BF16, F32 and F64, the largest absolute difference. __metadata__ is compared too. A and B \
        are .safetensors files or sharded folders. Exit status: 0 identical, 1 different, 2 error."
)]
pub struct DiffArgs {
    /// The first model.
    #[arg(value_name = "A")]
    pub a: PathBuf,
    /// The second model.
    #[arg(value_name = "B")]
    pub b: PathBuf,
}

/// Runs `diff`.
pub fn run(args: &DiffArgs) -> Result<ExitCode, Error> {
    let a = OpenModel::open(&args.a)?;
    let b = OpenModel::open(&args.b)?;
    let mut differences = 0usize;
    let mut report = |line: String| {
        differences += 1;
        say!("{line}");
    };

    let names_a: BTreeSet<&str> = a.names().collect();
    let names_b: BTreeSet<&str> = b.names().collect();
    for name in names_a.difference(&names_b) {
        let view = a.view(name)?;
        report(format!(
            "only in A: {} ({} {})",
            printable(name),
            view.dtype(),
            shape(view.shape())
        ));
    }
    for name in names_b.difference(&names_a) {
        let view = b.view(name)?;
        report(format!(
            "only in B: {} ({} {})",
            printable(name),
            view.dtype(),
            shape(view.shape())
        ));
    }

    let mut identical = 0usize;
    let common: Vec<&&str> = names_a.intersection(&names_b).collect();
    for name in &common {
        let (va, vb) = (a.view(name)?, b.view(name)?);
        let shown = printable(name);
        if va.dtype() != vb.dtype() {
            report(format!(
                "dtype differs: {shown}: {} in A, {} in B",
                va.dtype(),
                vb.dtype()
            ));
            continue;
        }
        if va.shape() != vb.shape() {
            report(format!(
                "shape differs: {shown}: {} in A, {} in B",
                shape(va.shape()),
                shape(vb.shape())
            ));
            continue;
        }
        let (da, db) = (va.data(), vb.data());
        if da == db {
            identical += 1;
            continue;
        }
        let what = format!("{} {}", va.dtype(), shape(va.shape()));
        match FloatKind::from_dtype_name(&va.dtype().to_string()) {
            Some(kind) => {
                let mut diff = FloatDiff::default();
                diff.update(kind, da, db);
                let mut line = format!(
                    "data differs: {shown} ({what}): {} of {} elements differ, max abs diff {}",
                    format_count(diff.differing),
                    format_count(diff.elements),
                    format_float(diff.max_abs_diff)
                );
                if diff.nan_mismatches > 0 {
                    line.push_str(&format!(
                        ", {} NaN on one side only",
                        format_count(diff.nan_mismatches)
                    ));
                }
                if diff.differing == 0 {
                    line.push_str(" (only the encoding differs: NaN payloads or signed zeros)");
                }
                report(line);
            }
            None => {
                // Whole elements for byte-sized dtypes; bytes for the sub-byte ones (F4, F6).
                let (unit, width) = match va.dtype().size() {
                    0 => ("bytes", 1),
                    width => ("elements", width),
                };
                let differing = da
                    .chunks_exact(width)
                    .zip(db.chunks_exact(width))
                    .filter(|(x, y)| x != y)
                    .count();
                let total = da.len() / width;
                report(format!(
                    "data differs: {shown} ({what}): {} of {} {unit} differ",
                    format_count(differing as u64),
                    format_count(total as u64)
                ));
            }
        }
    }

    let (meta_a, meta_b) = (a.metadata_map(), b.metadata_map());
    let keys: BTreeSet<&str> = meta_a.keys().chain(meta_b.keys()).copied().collect();
    for key in keys {
        match (meta_a.get(key), meta_b.get(key)) {
            (Some(x), Some(y)) if x == y => {}
            (Some(x), Some(y)) => report(format!(
                "metadata differs: {}: {:?} in A, {:?} in B",
                printable(key),
                x,
                y
            )),
            (Some(x), None) => report(format!("metadata only in A: {}: {:?}", printable(key), x)),
            (None, Some(y)) => report(format!("metadata only in B: {}: {:?}", printable(key), y)),
            (None, None) => {}
        }
    }
    if a.metadata().0.is_some() != b.metadata().0.is_some()
        && meta_a.is_empty()
        && meta_b.is_empty()
    {
        let side = if a.metadata().0.is_some() { "A" } else { "B" };
        report(format!(
            "metadata differs: only {side} has an (empty) __metadata__"
        ));
    }

    if differences == 0 {
        say!(
            "identical: {}, equal dtypes, shapes, bytes and metadata",
            counted(identical as u64, "tensor")
        );
        Ok(ExitCode::SUCCESS)
    } else {
        say!(
            "{}; identical tensors in both: {} of {}",
            counted(differences as u64, "difference"),
            format_count(identical as u64),
            format_count(common.len() as u64)
        );
        Ok(ExitCode::from(1))
    }
}
