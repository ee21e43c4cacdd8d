//! Conversion proper: choosing one name per shared storage region, streaming tensors into the
//! core crate's atomic `write::to_file`, sharded folders, and the optional verification pass.

use std::borrow::Cow;
use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::path::{Path, PathBuf};

use safetensors::checkpoint::shard_index::{
    shard_file_name, write_index_json, IndexProblem, ShardContents, ShardIndex,
};
use safetensors::checkpoint::Checkpoint;
use safetensors::write::{to_file_with, WriteOptions};
use safetensors::{Dtype, View};

use crate::error::ConvertError;
use crate::torch_checkpoint::{read_checkpoint, TensorEntry, TorchCheckpoint};

/// Metadata key recording the tensors dropped because they share storage with a kept one.
pub const SHARED_METADATA_KEY: &str = "shared_tensors";

/// How to convert.
#[derive(Default)]
pub struct ConvertOptions<'a> {
    /// Re-read every written file and compare each tensor's dtype, shape and bytes with the source.
    pub verify: bool,
    /// Called as tensor bytes are written, with (bytes done, bytes total) over the whole job.
    pub progress: Option<&'a dyn Fn(u64, u64)>,
    /// Record each tensor's digest in the written files' `__metadata__`
    /// (see `safetensors::format::checksum`).
    pub checksum: Option<safetensors::format::checksum::Algorithm>,
}

/// What a conversion wrote.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConvertReport {
    /// Tensors written, over all files.
    pub tensors_written: usize,
    /// `(dropped, kept)`: names not written because their bytes lie inside the kept tensor's.
    pub dropped_shared: Vec<(String, String)>,
    /// Size in bytes of all files written (headers and index included).
    pub bytes_written: u64,
    /// Every file written, in order (for a folder: the shards, then the index).
    pub files_written: Vec<PathBuf>,
}

/// Which tensors of a checkpoint get written, and which are dropped as duplicates.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct SharePlan {
    /// Indices into `TorchCheckpoint::tensors()` of the tensors to write.
    pub(crate) kept: Vec<usize>,
    /// `(dropped, kept)` names, sorted by dropped name.
    pub(crate) dropped: Vec<(String, String)>,
}

/// Groups tensors whose byte ranges in the same storage overlap, and in each group keeps as few
/// names as possible without losing a byte:
///
/// 1. the kept tensor is the first by name among the contiguous tensors spanning the whole
///    group; failing that, the contiguous tensor spanning the most bytes (ties: first by name);
///    failing that (no member is contiguous), the first by name;
/// 2. a member is dropped (and recorded) when its bytes lie inside a contiguous kept tensor's
///    bytes, or when it is the very same view as the kept tensor;
/// 3. members not dropped go round again among themselves, so nothing is ever lost: a strided
///    kept tensor never swallows a tensor whose bytes it does not actually contain.
pub(crate) fn plan_shared(tensors: &[TensorEntry]) -> SharePlan {
    let mut by_storage: HashMap<usize, Vec<usize>> = HashMap::new();
    for (i, t) in tensors.iter().enumerate() {
        if t.byte_len() > 0 {
            by_storage.entry(t.storage_index()).or_default().push(i);
        }
    }
    let mut dropped_idx = vec![false; tensors.len()];
    let mut dropped = Vec::new();
    let mut pending: Vec<Vec<usize>> = by_storage.into_values().collect();
    while let Some(mut members) = pending.pop() {
        members.sort_by_key(|&i| (tensors[i].span().start, tensors[i].span().end));
        let mut groups: Vec<Vec<usize>> = Vec::new();
        let mut group_end = 0usize;
        for i in members {
            let span = tensors[i].span();
            match groups.last_mut() {
                Some(g) if span.start < group_end => {
                    g.push(i);
                    group_end = group_end.max(span.end);
                }
                _ => {
                    groups.push(vec![i]);
                    group_end = span.end;
                }
            }
        }
        for g in groups.into_iter().filter(|g| g.len() > 1) {
            let lo = g
                .iter()
                .map(|&i| tensors[i].span().start)
                .min()
                .unwrap_or(0);
            let hi = g.iter().map(|&i| tensors[i].span().end).max().unwrap_or(0);
            let name = |i: usize| tensors[i].name();
            let dense = |i: usize| tensors[i].is_contiguous();
            let by_name = |a: &usize, b: &usize| name(*a).cmp(name(*b));
            let kept = g
                .iter()
                .copied()
                .filter(|&i| dense(i) && tensors[i].span() == (lo..hi))
                .min_by(by_name)
                .or_else(|| {
                    g.iter().copied().filter(|&i| dense(i)).min_by(|&a, &b| {
                        let (sa, sb) = (tensors[a].span(), tensors[b].span());
                        (sb.end - sb.start)
                            .cmp(&(sa.end - sa.start))
                            .then_with(|| by_name(&a, &b))
                    })
                })
                .or_else(|| g.iter().copied().min_by(by_name))
                .expect("group is not empty");
            let ks = tensors[kept].span();
            let mut rest = Vec::new();
            for &i in &g {
                if i == kept {
                    continue;
                }
                let s = tensors[i].span();
                let inside = dense(kept) && ks.start <= s.start && s.end <= ks.end;
                if inside || tensors[i].same_view(&tensors[kept]) {
                    dropped_idx[i] = true;
                    dropped.push((name(i).to_owned(), name(kept).to_owned()));
                } else {
                    rest.push(i);
                }
            }
            if rest.len() > 1 {
                pending.push(rest);
            }
        }
    }
    dropped.sort();
    let kept = (0..tensors.len()).filter(|&i| !dropped_idx[i]).collect();
    SharePlan { kept, dropped }
}

/// Progress over a whole job.
struct Progress<'a> {
    done: Cell<u64>,
    total: u64,
    callback: Option<&'a dyn Fn(u64, u64)>,
}

impl Progress<'_> {
    fn advance(&self, n: usize) {
        let done = self.done.get() + n as u64;
        self.done.set(done);
        if let Some(cb) = self.callback {
            cb(done, self.total);
        }
    }
}

/// A checkpoint tensor as the writer sees it: bytes are produced when written.
struct SourceView<'c> {
    ck: &'c TorchCheckpoint,
    entry: &'c TensorEntry,
    progress: &'c Progress<'c>,
}

impl View for SourceView<'_> {
    fn dtype(&self) -> Dtype {
        self.entry.dtype()
    }
    fn shape(&self) -> &[usize] {
        self.entry.shape()
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let d = self.ck.tensor_bytes(self.entry);
        self.progress.advance(d.len());
        d
    }
    fn data_len(&self) -> usize {
        self.entry.byte_len()
    }
}

fn metadata(plan: &SharePlan) -> Vec<(String, String)> {
    let mut meta = vec![("format".to_owned(), "pt".to_owned())];
    if !plan.dropped.is_empty() {
        let map: BTreeMap<&str, &str> = plan
            .dropped
            .iter()
            .map(|(d, k)| (d.as_str(), k.as_str()))
            .collect();
        let json = serde_json::to_string(&map).expect("a map of strings serializes");
        meta.push((SHARED_METADATA_KEY.to_owned(), json));
    }
    meta
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ConvertError + '_ {
    move |source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Refuses to write over the input itself.
fn check_distinct(input: &Path, output: &Path) -> Result<(), ConvertError> {
    if let (Ok(a), Ok(b)) = (fs::canonicalize(input), fs::canonicalize(output)) {
        if a == b {
            return Err(ConvertError::Io {
                path: output.to_path_buf(),
                source: std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    "output is the input checkpoint itself",
                ),
            });
        }
    }
    Ok(())
}

/// Writes one checkpoint's kept tensors to `output`; returns the output's size.
fn write_one(
    ck: &TorchCheckpoint,
    plan: &SharePlan,
    output: &Path,
    progress: &Progress<'_>,
    checksum: Option<safetensors::format::checksum::Algorithm>,
) -> Result<u64, ConvertError> {
    let tensors = ck.tensors();
    let views = plan.kept.iter().map(|&i| {
        (
            tensors[i].name(),
            SourceView {
                ck,
                entry: &tensors[i],
                progress,
            },
        )
    });
    let options = WriteOptions::default().with_checksum(checksum);
    to_file_with(views, metadata(plan), output, &options).map_err(|source| {
        ConvertError::Safetensors {
            path: output.to_path_buf(),
            source,
        }
    })?;
    Ok(fs::metadata(output).map_err(io_err(output))?.len())
}

/// Re-reads `output` and compares it, tensor by tensor, with the checkpoint.
fn verify_one(ck: &TorchCheckpoint, plan: &SharePlan, output: &Path) -> Result<(), ConvertError> {
    let st_err = |source| ConvertError::Safetensors {
        path: output.to_path_buf(),
        source,
    };
    let written = Checkpoint::open(output).map_err(st_err)?;
    let file = written.shard(0).map_err(st_err)?;
    let verify = |tensor: &str, message: String| ConvertError::Verify {
        path: output.to_path_buf(),
        tensor: crate::error::excerpt(tensor),
        message,
    };
    let meta = file.metadata();
    if meta.len() != plan.kept.len() {
        return Err(verify(
            "*",
            format!(
                "file holds {} tensors, expected {}",
                meta.len(),
                plan.kept.len()
            ),
        ));
    }
    let want_meta = metadata(plan);
    if meta.metadata_ordered().map(|m| m.to_vec()).as_deref() != Some(&want_meta[..]) {
        return Err(verify(
            "__metadata__",
            format!("is {:?}, expected {want_meta:?}", meta.metadata_ordered()),
        ));
    }
    for &i in &plan.kept {
        let t = &ck.tensors()[i];
        let Some(info) = meta.entry(t.name()) else {
            return Err(verify(t.name(), "missing from the output".to_owned()));
        };
        if info.dtype != t.dtype() || info.shape != t.shape() {
            return Err(verify(
                t.name(),
                format!(
                    "is {} {:?}, expected {} {:?}",
                    info.dtype,
                    info.shape,
                    t.dtype(),
                    t.shape()
                ),
            ));
        }
        let got = file.tensor_bytes(t.name()).map_err(st_err)?;
        if *got != *ck.tensor_bytes(t) {
            return Err(verify(t.name(), "bytes differ from the source".to_owned()));
        }
    }
    Ok(())
}

/// Converts one `torch.save` checkpoint (`.bin`/`.pt`/`.pth`, zip or legacy format) to a
/// safetensors file. No pickle code is executed. The output is written atomically: on any
/// error, including a failed verification, no output file is left behind (an existing file at
/// `output` is left untouched unless the conversion fully succeeded).
pub fn convert_file(
    input: &Path,
    output: &Path,
    opts: &ConvertOptions,
) -> Result<ConvertReport, ConvertError> {
    check_distinct(input, output)?;
    let ck = read_checkpoint(input)?;
    let plan = plan_shared(ck.tensors());
    let total = plan
        .kept
        .iter()
        .map(|&i| ck.tensors()[i].byte_len() as u64)
        .sum();
    let progress = Progress {
        done: Cell::new(0),
        total,
        callback: opts.progress,
    };
    let bytes = write_one(&ck, &plan, output, &progress, opts.checksum)?;
    if opts.verify {
        if let Err(e) = verify_one(&ck, &plan, output) {
            let _ = fs::remove_file(output);
            return Err(e);
        }
    }
    Ok(ConvertReport {
        tensors_written: plan.kept.len(),
        dropped_shared: plan.dropped,
        bytes_written: bytes,
        files_written: vec![output.to_path_buf()],
    })
}

/// Name of the index file of a sharded PyTorch checkpoint.
pub const PT_INDEX: &str = "pytorch_model.bin.index.json";
/// Name of the index file written for sharded safetensors output.
pub const ST_INDEX: &str = safetensors::checkpoint::shard_index::INDEX_FILE;

fn index_err(path: &Path, message: impl Into<String>) -> ConvertError {
    ConvertError::Index {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Reads `pytorch_model.bin.index.json` with the core's index rules (the same as for
/// safetensors indexes: a tensor listed twice or a shard name outside the folder is refused).
fn read_index(path: &Path) -> Result<ShardIndex, ConvertError> {
    let text = fs::read(path).map_err(io_err(path))?;
    ShardIndex::parse(&text).map_err(|e| index_err(path, e.to_string()))
}

/// A PyTorch shard, as the core's index check sees it: tensor names and sizes.
impl ShardContents for &TorchCheckpoint {
    fn tensor_sizes(&self) -> impl Iterator<Item = (&str, u64)> {
        TorchCheckpoint::tensors(self)
            .iter()
            .map(|t| (t.name(), t.byte_len() as u64))
    }

    fn holds(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

/// Writes `bytes` to `path` through a temporary file renamed into place (the core's mechanism).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), ConvertError> {
    safetensors::write::write_atomically(path, bytes).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Converts a folder holding a sharded checkpoint (`pytorch_model.bin.index.json` plus its
/// shards) into `model-0000i-of-0000N.safetensors` shards and `model.safetensors.index.json`
/// in `output_dir` (created if needed). A folder with a single `pytorch_model.bin` and no
/// index converts to `model.safetensors`.
///
/// Every shard is read and validated before anything is written; if writing or verification
/// fails midway, the files this call already wrote are removed.
pub fn convert_folder(
    input_dir: &Path,
    output_dir: &Path,
    opts: &ConvertOptions,
) -> Result<ConvertReport, ConvertError> {
    let index_path = input_dir.join(PT_INDEX);
    if !index_path.exists() {
        let single = input_dir.join("pytorch_model.bin");
        if single.is_file() {
            fs::create_dir_all(output_dir).map_err(io_err(output_dir))?;
            return convert_file(&single, &output_dir.join("model.safetensors"), opts);
        }
        return Err(index_err(
            input_dir,
            format!("no {PT_INDEX} or pytorch_model.bin in this folder"),
        ));
    }
    let index = read_index(&index_path)?;
    let shard_files = index.files();
    let n = shard_files.len();

    // Read and plan every shard before writing anything.
    let mut checkpoints = Vec::with_capacity(n);
    for file in &shard_files {
        checkpoints.push(read_checkpoint(&input_dir.join(file))?);
    }
    let contents: Vec<(&str, &TorchCheckpoint)> =
        shard_files.iter().copied().zip(&checkpoints).collect();
    // A wrong total_size is not an error: PyTorch writers count shared storage differently.
    if let Some(IndexProblem::Tensor(problem)) = index
        .problems(&contents)
        .into_iter()
        .find(|p| matches!(p, IndexProblem::Tensor(_)))
    {
        return Err(index_err(
            &index_path,
            format!("index and shards disagree: {problem}"),
        ));
    }
    let shards: Vec<(&TorchCheckpoint, SharePlan)> = checkpoints
        .iter()
        .map(|ck| (ck, plan_shared(ck.tensors())))
        .collect();

    fs::create_dir_all(output_dir).map_err(io_err(output_dir))?;
    let total = shards
        .iter()
        .flat_map(|(ck, plan)| plan.kept.iter().map(|&i| ck.tensors()[i].byte_len() as u64))
        .sum();
    let progress = Progress {
        done: Cell::new(0),
        total,
        callback: opts.progress,
    };
    let mut report = ConvertReport::default();
    let mut new_map: BTreeMap<&str, String> = BTreeMap::new();
    let result = (|| {
        for (si, (ck, plan)) in shards.iter().enumerate() {
            let out_name = shard_file_name(si + 1, n);
            let out = output_dir.join(&out_name);
            check_distinct(ck.path(), &out)?;
            report.bytes_written += write_one(ck, plan, &out, &progress, opts.checksum)?;
            report.files_written.push(out.clone());
            if opts.verify {
                verify_one(ck, plan, &out)?;
            }
            report.tensors_written += plan.kept.len();
            report.dropped_shared.extend(plan.dropped.iter().cloned());
            for &i in &plan.kept {
                new_map.insert(ck.tensors()[i].name(), out_name.clone());
            }
        }
        let text = write_index_json(total, &new_map);
        let index_out = output_dir.join(ST_INDEX);
        write_atomic(&index_out, text.as_bytes())?;
        report.bytes_written += text.len() as u64;
        report.files_written.push(index_out);
        Ok(())
    })();
    if let Err(e) = result {
        for f in &report.files_written {
            let _ = fs::remove_file(f);
        }
        return Err(e);
    }
    report.dropped_shared.sort();
    Ok(report)
}
