//! [`Checkpoint::verify`]: the structure check, then every recorded checksum held against
//! the bytes (see [`crate::format::checksum`] for the scheme).
//!
//! Each shard is read once, front to back, by a few threads that take tensors in data order
//! from one queue: reads stay close to sequential while hashing uses every core.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::checkpoint::shard_index::IndexProblem;
use crate::checkpoint::{CheckReport, Checkpoint, ShardFile};
use crate::format::checksum;
use crate::format::error::Error;
use crate::source::Source;

/// Bytes read at a time while hashing a tensor.
const CHUNK: usize = 8 << 20;

/// At most this many threads hash (more only queue at the disk).
const MAX_THREADS: usize = 8;

/// What [`Checkpoint::verify`] found.
#[derive(Debug)]
pub struct VerifyReport {
    /// The structure check: every shard validated, the index held against the shards.
    pub check: CheckReport,
    /// Problems with recorded checksums, in shard order then data order.
    pub problems: Vec<ChecksumProblem>,
    /// Tensors whose recorded digest matched their bytes.
    pub verified: usize,
    /// Tensors with no recorded digest (valid, but their bytes could not be checked).
    pub unrecorded: usize,
}

impl VerifyReport {
    /// True when the structure holds, the index agrees with the shards (its `total_size`
    /// included) and every recorded digest matches.
    pub fn is_ok(&self) -> bool {
        self.check.shards.iter().all(|(_, file)| file.is_ok())
            && self.check.index_problems.is_empty()
            && self.problems.is_empty()
    }

    /// Every problem as one line naming the shard (and tensor), structure first.
    pub fn lines(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (shard, file) in &self.check.shards {
            if let Err(e) = file {
                lines.push(format!("{shard}: {e}"));
            }
        }
        for problem in &self.check.index_problems {
            match problem {
                IndexProblem::Tensor(m) => lines.push(format!("index: {m}")),
                IndexProblem::TotalSize(m) => lines.push(format!("index: {m}")),
            }
        }
        lines.extend(self.problems.iter().map(ToString::to_string));
        lines
    }
}

/// A recorded checksum that does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChecksumProblem {
    /// The shard, as the index names it (a single file: its path).
    pub shard: String,
    /// The tensor the checksum is recorded for.
    pub tensor: String,
    /// What is wrong: the digests differ, the value cannot be read, the tensor is not in
    /// the file, or its bytes could not be read.
    pub message: String,
}

impl std::fmt::Display for ChecksumProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: tensor {:?}: {}",
            self.shard,
            crate::format::error::excerpt(&self.tensor),
            self.message
        )
    }
}

/// One tensor to hash: its shard, name, absolute byte range and recorded value.
struct Job<'a> {
    shard: usize,
    name: &'a str,
    start: u64,
    len: u64,
    value: &'a str,
}

impl Checkpoint {
    /// Checks everything a checkpoint can be checked for: [`Checkpoint::check`]'s structure
    /// and index rules, then, for each shard that opened, every digest its `__metadata__`
    /// records, against the tensor's bytes. `progress` is told how many bytes there are to
    /// hash, then each piece hashed (from several threads); `&()` tells nobody.
    pub fn verify(&self, progress: &dyn VerifyProgress) -> VerifyReport {
        let check = self.check();
        let files: Vec<Option<&ShardFile>> = check
            .shards
            .iter()
            .map(|(_, file)| file.as_ref().ok())
            .collect();
        let mut problems = Vec::new();
        let mut jobs = Vec::new();
        let mut unrecorded = 0;
        for (i, file) in files.iter().enumerate() {
            let Some(file) = file else { continue };
            let shard = &check.shards[i].0;
            let (found, wrong, missing) = recorded_jobs(i, file);
            unrecorded += missing;
            problems.extend(wrong.into_iter().map(|(tensor, message)| ChecksumProblem {
                shard: shard.clone(),
                tensor,
                message,
            }));
            jobs.extend(found);
        }
        progress.start(jobs.iter().map(|job| job.len).sum());
        let results = in_parallel(&jobs, Vec::new, |buf, job| {
            let file = files[job.shard].expect("jobs come from opened shards");
            hash_and_check(file, None, job, buf, progress)
        });
        let failed: Vec<ChecksumProblem> = jobs
            .iter()
            .zip(results)
            .filter_map(|(job, result)| {
                Some(ChecksumProblem {
                    shard: check.shards[job.shard].0.clone(),
                    tensor: job.name.into(),
                    message: result.err()?,
                })
            })
            .collect();
        let verified = jobs.len() - failed.len();
        problems.extend(failed);
        problems.sort_by_key(|p| check.shards.iter().position(|(s, _)| *s == p.shard));
        VerifyReport {
            check,
            problems,
            verified,
            unrecorded,
        }
    }
}

/// Told how [`Checkpoint::verify`] advances (a progress bar); `()` ignores it.
pub trait VerifyProgress: Sync {
    /// The number of bytes that will be hashed, told once before the first.
    fn start(&self, total_bytes: u64) {
        let _ = total_bytes;
    }

    /// `bytes` more were hashed.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
}

impl VerifyProgress for () {}

/// A shard's tensors with a recorded digest (as jobs, in data order), the recorded values
/// that cannot be checked (`(tensor, why)`), and the number of tensors with none.
#[allow(clippy::type_complexity)]
fn recorded_jobs(shard: usize, file: &ShardFile) -> (Vec<Job<'_>>, Vec<(String, String)>, usize) {
    let metadata = file.metadata();
    let recorded: std::collections::HashMap<&str, &str> = metadata
        .metadata_ordered()
        .map(|m| checksum::recorded(m.iter()).into_iter().collect())
        .unwrap_or_default();
    let mut wrong = Vec::new();
    for (&tensor, value) in &recorded {
        if !metadata.contains(tensor) {
            wrong.push((
                tensor.to_owned(),
                "a checksum is recorded for it, but the file holds no such tensor".to_owned(),
            ));
        } else if let Err(why) = checksum::parse_value(value) {
            wrong.push((tensor.to_owned(), why));
        }
    }
    wrong.sort();
    let mut jobs = Vec::new();
    let mut missing = 0;
    for (name, info) in metadata.entries() {
        match recorded.get(name) {
            Some(value) if checksum::parse_value(value).is_ok() => {
                let (begin, end) = info.data_offsets;
                jobs.push(Job {
                    shard,
                    name,
                    start: file.data_start() + begin as u64,
                    len: (end - begin) as u64,
                    value,
                });
            }
            Some(_) => {}
            None => missing += 1,
        }
    }
    (jobs, wrong, missing)
}

/// Hashes one tensor's bytes, in chunks, from `memory` (the whole file, when the caller has
/// it mapped), from the file's own memory, or read from the file, and holds the digest
/// against the recorded one.
fn hash_and_check(
    file: &ShardFile,
    memory: Option<&[u8]>,
    job: &Job<'_>,
    buf: &mut Vec<u8>,
    progress: &dyn VerifyProgress,
) -> Result<(), String> {
    let (algorithm, expected) = checksum::parse_value(job.value)?;
    let mut hasher = algorithm.hasher();
    if let Some(bytes) = memory.or_else(|| memory_of(file)) {
        let range = job.start as usize..(job.start + job.len) as usize;
        let bytes = bytes
            .get(range)
            .ok_or("its bytes lie past the end of the file's memory")?;
        for piece in bytes.chunks(CHUNK) {
            hasher.update(piece);
            progress.advance(piece.len() as u64);
        }
    } else {
        let mut done = 0;
        while done < job.len {
            let n = (job.len - done).min(CHUNK as u64) as usize;
            buf.resize(n, 0);
            file.read_at(job.start + done, &mut buf[..n])
                .map_err(|e: Error| format!("its bytes cannot be read: {e}"))?;
            hasher.update(&buf[..n]);
            progress.advance(n as u64);
            done += n as u64;
        }
    }
    checksum::compare(algorithm, expected, &hasher.finish())
}

/// Checks tensor `name` of `file` against the digest the file's `__metadata__` records for
/// it: `Ok(true)` when it matches, `Ok(false)` when none is recorded (nothing to check),
/// [`Error::ChecksumMismatch`] when it differs or the value cannot be checked. The bytes are
/// hashed from `memory` (the whole file, when the caller has it mapped) or read from the file.
pub fn verify_tensor(file: &ShardFile, name: &str, memory: Option<&[u8]>) -> Result<bool, Error> {
    let metadata = file.metadata();
    let Some(info) = metadata.entry(name) else {
        return Err(Error::TensorNotFound(name.into()));
    };
    let key = checksum::key(name);
    let Some(value) = metadata.metadata_ordered().and_then(|m| m.get(&key)) else {
        return Ok(false);
    };
    let (begin, end) = info.data_offsets;
    let job = Job {
        shard: 0,
        name,
        start: file.data_start() + begin as u64,
        len: (end - begin) as u64,
        value,
    };
    hash_and_check(file, memory, &job, &mut Vec::new(), &()).map_err(|message| {
        Error::ChecksumMismatch {
            tensor: name.into(),
            message,
        }
    })?;
    Ok(true)
}

/// [`verify_tensor`] for many tensors `(file, name, memory)` at once, hashed by a few
/// threads; one result per item, in the items' order.
pub fn verify_tensors(items: &[(&ShardFile, &str, Option<&[u8]>)]) -> Vec<Result<bool, Error>> {
    in_parallel(
        items,
        || (),
        |_, (file, name, memory)| verify_tensor(file, name, *memory),
    )
}

/// `work` on every item, by a few threads (at most [`MAX_THREADS`], one per core) taking the
/// items in order from one queue, each with its own `state`; the results in the items' order.
fn in_parallel<T: Sync, S, R: Send>(
    items: &[T],
    state: impl Fn() -> S + Sync,
    work: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, MAX_THREADS)
        .min(items.len());
    if threads <= 1 {
        let mut one = state();
        return items.iter().map(|item| work(&mut one, item)).collect();
    }
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(items.len()));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| {
                let mut own = state();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    let result = work(&mut own, item);
                    done.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((i, result));
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_else(|e| e.into_inner());
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, result)| result).collect()
}

/// A file held in memory (a caller's buffer), read without copies.
fn memory_of(file: &ShardFile) -> Option<&[u8]> {
    match file {
        ShardFile::Other(file) => file.bytes(),
        _ => None,
    }
}
