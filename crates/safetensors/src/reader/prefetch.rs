//! Prefetch plans: a consumer declares up front which tensors it wants (each whole, or any
//! numpy-style basic index of it), and a background reader hands each one out as soon as its
//! bytes have landed, within a memory budget.
//!
//! Two halves, as everywhere in this crate:
//!
//! - [`PrefetchPlan`] is pure planning: it resolves each request against the headers of a
//!   [`Checkpoint`] (or of one file) with [`crate::plan::numpy_index::plan_index`], and lists the
//!   tensors in file order with the byte runs each needs. Nothing is read.
//! - [`Prefetch`] executes a plan: one background thread takes the tensors whose memory the
//!   caller has provided, in batches, and reads each batch with [`crate::reader::read_into`]
//!   (a bounded pool, blocks in file order); [`Prefetch::take`] and [`Prefetch::next`] hand
//!   each tensor's buffer back once its bytes are in it.
//!
//! The destination memory is the caller's: a buffer type `B` (anything `AsMut<[u8]>`: a
//! `Vec<u8>`, a framework tensor's memory) is asked of the caller through an allocation
//! callback, for as many tensors ahead as [`PrefetchOptions::budget`] allows, counting every
//! buffer provided and not yet taken. When the budget is used up the reader waits until the
//! consumer takes something (backpressure); a tensor the consumer takes out of order is
//! read next, ahead of the others, even past the budget, since it is wanted now. One tensor
//! larger than the budget is still read (alone).
//!
//! [`Prefetch::close`] (also on drop) stops the reader: reads in progress fail at their next
//! block, the thread is joined, and every buffer not taken is dropped.
//!
//! ```
//! use safetensors::plan::numpy_index::Index;
//! use safetensors::reader::prefetch::{Prefetch, PrefetchOptions, PrefetchPlan};
//! use safetensors::{serialize, tensor::TensorView, Dtype};
//! use std::sync::Arc;
//!
//! // A file with two tensors: "a" (2x3 U8) and "b" (4 U8).
//! let a = TensorView::new(Dtype::U8, vec![2, 3], &[0, 1, 2, 3, 4, 5]).unwrap();
//! let b = TensorView::new(Dtype::U8, vec![4], &[6, 7, 8, 9]).unwrap();
//! let bytes = serialize([("a", a), ("b", b)], None).unwrap();
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("model.safetensors");
//! std::fs::write(&path, &bytes).unwrap();
//!
//! // Row 1 of "a", and every other element of "b".
//! let checkpoint = safetensors::checkpoint::Checkpoint::open(&path).unwrap();
//! let step = Index::Slice { start: None, stop: None, step: Some(2) };
//! let plan = PrefetchPlan::new(&checkpoint, [("a", Some(vec![Index::Int(1)])), ("b", Some(vec![step]))])
//!     .unwrap();
//! let sources = plan.sources(&checkpoint).unwrap();
//! let loader: Prefetch<Vec<u8>> = Prefetch::start(plan, sources, PrefetchOptions::default()).unwrap();
//!
//! // Buffers the caller owns: here plain vectors of each tensor's size.
//! let mut alloc = |_: usize, t: &safetensors::reader::prefetch::PlannedTensor| Ok(vec![0u8; t.nbytes]);
//! let mut got = Vec::new();
//! while let Some(landed) = loader.next(&mut alloc) {
//!     let (index, bytes) = landed.unwrap();
//!     got.push((loader.plan().tensors()[index].name.clone(), bytes));
//! }
//! got.sort();
//! assert_eq!(got, [("a".to_string(), vec![3, 4, 5]), ("b".to_string(), vec![6, 8])]);
//! ```

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;

use crate::checkpoint::Checkpoint;
use crate::format::dtype::Dtype;
use crate::format::error::{excerpt, Error};
use crate::format::header::Metadata;
use crate::plan::numpy_index::{plan_index, Index};
use crate::plan::slice::ByteRanges;
use crate::source::Source;

/// Host memory a [`Prefetch`] fills ahead of the consumer by default: 1 GiB. Enough to keep a
/// fast disk and its reader threads busy while the consumer works on earlier tensors, small
/// next to the model a server loads.
pub const DEFAULT_BUDGET: usize = 1 << 30;

/// One tensor of a plan: what to read and what it becomes.
#[derive(Debug, Clone)]
pub struct PlannedTensor {
    /// The tensor's name.
    pub name: String,
    /// Which of [`PrefetchPlan::files`] holds it.
    pub file: usize,
    /// Its dtype.
    pub dtype: Dtype,
    /// The shape of what is handed out (the whole tensor's, or the index's result).
    pub shape: Vec<usize>,
    /// The bytes handed out: the selected runs one after the other, in row-major order.
    pub nbytes: usize,
    /// Absolute position of the tensor's first byte in its file.
    pub offset: u64,
    /// The tensor's whole extent in bytes (the runs lie inside `offset..offset + extent`).
    pub extent: usize,
    runs: ByteRanges,
}

impl PlannedTensor {
    /// The byte runs to read, relative to [`PlannedTensor::offset`], in the order their bytes
    /// are handed out.
    pub fn runs(&self) -> ByteRanges {
        self.runs.clone()
    }

    /// The one run of bytes the tensor is, relative to [`PlannedTensor::offset`], when it is
    /// one (a whole tensor, a range of its first dimension); None for several runs.
    pub fn contiguous(&self) -> Option<core::ops::Range<usize>> {
        let mut runs = self.runs();
        match runs.len() {
            0 => Some(0..0),
            1 => runs.next(),
            _ => None,
        }
    }
}

/// Which tensors to read, resolved against the headers, in file order.
#[derive(Debug, Clone)]
pub struct PrefetchPlan {
    tensors: Vec<PlannedTensor>,
    files: Vec<usize>,
}

impl PrefetchPlan {
    /// Resolves `requests` (a tensor name, and None for the whole tensor or the entries of
    /// a numpy-style index) against a checkpoint: opens the shards holding them (headers
    /// only) and plans each one's byte runs. A name the checkpoint lacks, a name asked twice
    /// or an index numpy would refuse is an error; nothing is read.
    pub fn new<N: AsRef<str>>(
        checkpoint: &Checkpoint,
        requests: impl IntoIterator<Item = (N, Option<Vec<Index>>)>,
    ) -> Result<Self, Error> {
        let mut files: Vec<usize> = Vec::new();
        let mut tensors = Vec::new();
        for (name, index) in requests {
            let name = name.as_ref();
            let shard = checkpoint
                .shard_of(name)
                .ok_or_else(|| Error::TensorNotFound(excerpt(name)))?;
            let file = checkpoint.shard_file(shard)?;
            let at = match files.iter().position(|&f| f == shard) {
                Some(at) => at,
                None => {
                    files.push(shard);
                    files.len() - 1
                }
            };
            tensors.push(plan_one(
                file.metadata(),
                file.data_start(),
                at,
                name,
                index,
            )?);
        }
        Self::ordered(tensors, files)
    }

    /// [`PrefetchPlan::new`] over one file, given its validated header and where its data
    /// starts: the plan's one file is that one.
    pub fn for_file<N: AsRef<str>>(
        metadata: &Metadata,
        data_start: u64,
        requests: impl IntoIterator<Item = (N, Option<Vec<Index>>)>,
    ) -> Result<Self, Error> {
        let tensors = requests
            .into_iter()
            .map(|(name, index)| plan_one(metadata, data_start, 0, name.as_ref(), index))
            .collect::<Result<Vec<_>, _>>()?;
        Self::ordered(tensors, vec![0])
    }

    /// Sorts the tensors in file order and refuses a name asked twice.
    fn ordered(mut tensors: Vec<PlannedTensor>, files: Vec<usize>) -> Result<Self, Error> {
        let mut names: Vec<&str> = tensors.iter().map(|t| t.name.as_str()).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::InvalidArgument(format!(
                "tensor {} is planned twice: a plan names each tensor once",
                excerpt(twice[0])
            )));
        }
        // Shards in checkpoint order, then in data order as `offset_keys` lists them: by
        // offsets, ties (zero-sized tensors) by name.
        tensors.sort_by(|a, b| {
            let key = |t: &PlannedTensor| (files[t.file], t.offset, t.offset + t.extent as u64);
            key(a).cmp(&key(b)).then_with(|| a.name.cmp(&b.name))
        });
        Ok(PrefetchPlan { tensors, files })
    }

    /// The planned tensors, in file order: shard by shard, then by position.
    pub fn tensors(&self) -> &[PlannedTensor] {
        &self.tensors
    }

    /// The files the plan reads: checkpoint shard numbers ([`Checkpoint::shard_file`]); `[0]`
    /// for a plan made by [`PrefetchPlan::for_file`].
    pub fn files(&self) -> &[usize] {
        &self.files
    }

    /// The bytes of every planned tensor together.
    pub fn total_bytes(&self) -> usize {
        self.tensors.iter().map(|t| t.nbytes).sum()
    }

    /// Where tensor `name` is in [`PrefetchPlan::tensors`].
    pub fn position(&self, name: &str) -> Option<usize> {
        self.tensors.iter().position(|t| t.name == name)
    }

    /// The sources to read the plan's files from, in the order of [`PrefetchPlan::files`]:
    /// the checkpoint's shards, local (positioned reads) or remote (Range requests).
    pub fn sources(&self, checkpoint: &Checkpoint) -> Result<Vec<SharedSource>, Error> {
        self.files
            .iter()
            .map(|&shard| Ok(Arc::new(checkpoint.shard_file(shard)?.clone()) as SharedSource))
            .collect()
    }
}

/// A source one [`Prefetch`] reads from, shared with its background thread.
pub type SharedSource = Arc<dyn Source + Send + Sync>;

/// Plans one request against the header of the file `file` of a plan.
fn plan_one(
    metadata: &Metadata,
    data_start: u64,
    file: usize,
    name: &str,
    index: Option<Vec<Index>>,
) -> Result<PlannedTensor, Error> {
    let info = metadata
        .entry(name)
        .ok_or_else(|| Error::TensorNotFound(excerpt(name)))?;
    let runs = plan_index(info.dtype, &info.shape, index.as_deref().unwrap_or(&[]))
        .map_err(Error::InvalidSlice)?;
    Ok(PlannedTensor {
        name: name.to_owned(),
        file,
        dtype: info.dtype,
        shape: runs.newshape(),
        nbytes: runs.remaining_byte_len(),
        offset: data_start + info.data_offsets.0 as u64,
        extent: info.data_offsets.1 - info.data_offsets.0,
        runs,
    })
}

/// How a [`Prefetch`] reads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PrefetchOptions {
    /// Reader threads (at least 1).
    pub threads: usize,
    /// The largest single read, in bytes; a batch holds about `threads` blocks.
    pub block_size: usize,
    /// The most bytes provided and not yet taken (see the module docs).
    pub budget: usize,
    /// The sources are at URLs: runs of a tensor closer than 1 MiB share one Range request
    /// (locally, only runs closer than a page share a read).
    pub remote: bool,
}

impl Default for PrefetchOptions {
    /// 8 threads (the reference's default), 4 MiB blocks, [`DEFAULT_BUDGET`], local sources.
    fn default() -> Self {
        PrefetchOptions {
            threads: 8,
            block_size: 4 << 20,
            budget: DEFAULT_BUDGET,
            remote: false,
        }
    }
}

/// Where one planned tensor is.
enum Slot<B> {
    /// Nothing asked for it yet.
    Waiting,
    /// Its buffer is being allocated by the caller.
    Reserved,
    /// Its buffer waits for the reader.
    Queued(B),
    /// The reader holds its buffer.
    Reading,
    /// Its bytes are in its buffer.
    Landed(B),
    /// Reading it failed.
    Failed(Error),
    /// Handed out (or given up by a failed allocation of `take`).
    Taken,
}

struct State<B> {
    slots: Vec<Slot<B>>,
    /// Queued tensors in file order, and those a `take` waits for (read first).
    queue: VecDeque<usize>,
    urgent: VecDeque<usize>,
    /// Tensors in the order they landed (or failed); stale entries are skipped.
    landed: VecDeque<usize>,
    /// Bytes provided and not taken.
    held: usize,
    /// The first tensor `refill` has not looked at yet (file order).
    cursor: usize,
    /// Tensors reserved, queued or being read.
    pending: usize,
    closed: bool,
}

struct Shared<B> {
    plan: PrefetchPlan,
    sources: Vec<SharedSource>,
    options: PrefetchOptions,
    state: Mutex<State<B>>,
    changed: Condvar,
    stop: AtomicBool,
}

impl<B> Shared<B> {
    fn lock(&self) -> MutexGuard<'_, State<B>> {
        // Nothing panics while holding the lock; a poisoned lock still holds consistent state.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State<B>>) -> MutexGuard<'a, State<B>> {
        self.changed.wait(guard).unwrap_or_else(|p| p.into_inner())
    }
}

/// The allocation callback: memory for tensor `index` of the plan.
pub type Alloc<'a, B> = dyn FnMut(usize, &PlannedTensor) -> Result<B, Error> + 'a;

/// A plan being read in the background (see the module docs). `Sync`: any thread may take.
pub struct Prefetch<B: AsMut<[u8]> + Send + 'static> {
    shared: Arc<Shared<B>>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

fn closed_error() -> Error {
    Error::InvalidArgument("the prefetch loader is closed".into())
}

impl<B: AsMut<[u8]> + Send + 'static> Prefetch<B> {
    /// Starts the background reader of `plan` over `sources` (one per file of the plan, in
    /// the order of [`PrefetchPlan::files`]). Nothing is read until buffers are provided.
    pub fn start(
        plan: PrefetchPlan,
        sources: Vec<SharedSource>,
        options: PrefetchOptions,
    ) -> Result<Self, Error> {
        if sources.len() != plan.files.len() {
            return Err(Error::InvalidArgument(format!(
                "the plan reads {} files, {} sources given",
                plan.files.len(),
                sources.len()
            )));
        }
        let slots = (0..plan.tensors.len()).map(|_| Slot::Waiting).collect();
        let shared = Arc::new(Shared {
            plan,
            sources,
            options,
            state: Mutex::new(State {
                slots,
                queue: VecDeque::new(),
                urgent: VecDeque::new(),
                landed: VecDeque::new(),
                held: 0,
                cursor: 0,
                pending: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let worker_shared = shared.clone();
        let worker = std::thread::Builder::new()
            .name("safetensors-prefetch".into())
            .spawn(move || read::work(&worker_shared))?;
        Ok(Prefetch {
            shared,
            worker: Mutex::new(Some(worker)),
        })
    }

    /// The plan being read.
    pub fn plan(&self) -> &PrefetchPlan {
        &self.shared.plan
    }

    /// The bytes provided and not yet taken (what the budget bounds).
    pub fn held(&self) -> usize {
        self.shared.lock().held
    }

    /// Provides buffers (from `alloc`) for the next tensors in file order, as many as the
    /// budget allows; returns how many. The reader starts on them at once.
    pub fn refill(&self, alloc: &mut Alloc<'_, B>) -> Result<usize, Error> {
        let shared = &self.shared;
        let wanted: Vec<usize> = {
            let mut state = shared.lock();
            if state.closed {
                return Ok(0);
            }
            let mut wanted = Vec::new();
            while state.cursor < state.slots.len() {
                let i = state.cursor;
                if !matches!(state.slots[i], Slot::Waiting) {
                    state.cursor += 1;
                    continue;
                }
                let n = shared.plan.tensors[i].nbytes;
                if state.held > 0 && state.held + n > shared.options.budget {
                    break;
                }
                state.slots[i] = Slot::Reserved;
                state.held += n;
                state.pending += 1;
                state.cursor += 1;
                wanted.push(i);
            }
            wanted
        };
        let count = wanted.len();
        for (k, &i) in wanted.iter().enumerate() {
            match alloc(i, &shared.plan.tensors[i]) {
                Ok(buf) => self.queue(i, buf, false),
                Err(e) => {
                    let mut state = shared.lock();
                    for &j in &wanted[k..] {
                        state.slots[j] = Slot::Waiting;
                        state.held -= shared.plan.tensors[j].nbytes;
                        state.pending -= 1;
                        state.cursor = state.cursor.min(j);
                    }
                    shared.changed.notify_all();
                    return Err(e);
                }
            }
        }
        Ok(count)
    }

    /// Hands a reserved tensor's buffer to the reader.
    fn queue(&self, i: usize, mut buf: B, urgent: bool) {
        let mut state = self.shared.lock();
        if state.closed {
            state.slots[i] = Slot::Taken;
            state.pending -= 1;
            return;
        }
        if buf.as_mut().len() != self.shared.plan.tensors[i].nbytes {
            state.slots[i] = Slot::Failed(Error::InvalidArgument(format!(
                "tensor {}: a buffer of {} bytes was provided for {} bytes",
                excerpt(&self.shared.plan.tensors[i].name),
                buf.as_mut().len(),
                self.shared.plan.tensors[i].nbytes
            )));
            state.pending -= 1;
            state.landed.push_back(i);
        } else {
            state.slots[i] = Slot::Queued(buf);
            match urgent {
                true => state.urgent.push_back(i),
                false => state.queue.push_back(i),
            }
        }
        self.shared.changed.notify_all();
    }

    /// Takes tensor `index`'s buffer once its bytes have landed, waiting for them; a tensor
    /// not started yet is allocated now and read before any other. Then refills. A tensor
    /// already taken, or a closed loader, is an error; so is a failed read of this tensor.
    pub fn take(&self, index: usize, alloc: &mut Alloc<'_, B>) -> Result<B, Error> {
        let shared = &self.shared;
        let Some(tensor) = shared.plan.tensors.get(index) else {
            return Err(Error::InvalidArgument(format!(
                "tensor {index} is not in the plan"
            )));
        };
        let mut state = shared.lock();
        loop {
            if state.closed {
                return Err(closed_error());
            }
            match &state.slots[index] {
                Slot::Taken => {
                    return Err(Error::InvalidArgument(format!(
                        "tensor {} was already taken: a loader hands each tensor out once",
                        excerpt(&tensor.name)
                    )))
                }
                Slot::Waiting => {
                    state.slots[index] = Slot::Reserved;
                    state.held += tensor.nbytes;
                    state.pending += 1;
                    drop(state);
                    match alloc(index, tensor) {
                        Ok(buf) => self.queue(index, buf, true),
                        Err(e) => {
                            let mut state = shared.lock();
                            state.slots[index] = Slot::Waiting;
                            state.held -= tensor.nbytes;
                            state.pending -= 1;
                            state.cursor = state.cursor.min(index);
                            shared.changed.notify_all();
                            return Err(e);
                        }
                    }
                    state = shared.lock();
                }
                Slot::Queued(_) => {
                    if let Some(at) = state.queue.iter().position(|&i| i == index) {
                        state.queue.remove(at);
                        state.urgent.push_back(index);
                        shared.changed.notify_all();
                    }
                    state = shared.wait(state);
                }
                Slot::Reserved | Slot::Reading => state = shared.wait(state),
                Slot::Landed(_) | Slot::Failed(_) => break,
            }
        }
        let got = Self::hand_out(&mut state, shared, index);
        drop(state);
        let buf = got?;
        self.refill(alloc)?;
        Ok(buf)
    }

    /// Moves a landed (or failed) tensor out of its slot.
    fn hand_out(state: &mut State<B>, shared: &Shared<B>, index: usize) -> Result<B, Error> {
        state.held -= shared.plan.tensors[index].nbytes;
        match std::mem::replace(&mut state.slots[index], Slot::Taken) {
            Slot::Landed(buf) => Ok(buf),
            Slot::Failed(e) => Err(e),
            _ => unreachable!("only landed or failed slots are handed out"),
        }
    }

    /// The next tensor to land that nobody took yet, in the order they land: its position in
    /// the plan and its buffer. Waits; None once every tensor has been handed out.
    pub fn next(&self, alloc: &mut Alloc<'_, B>) -> Option<Result<(usize, B), Error>> {
        let shared = &self.shared;
        if let Err(e) = self.refill(alloc) {
            return Some(Err(e));
        }
        let mut state = shared.lock();
        loop {
            if state.closed {
                return Some(Err(closed_error()));
            }
            while let Some(i) = state.landed.pop_front() {
                if matches!(state.slots[i], Slot::Landed(_) | Slot::Failed(_)) {
                    let got = Self::hand_out(&mut state, shared, i);
                    drop(state);
                    if let Err(e) = self.refill(alloc) {
                        return Some(Err(e));
                    }
                    return Some(got.map(|buf| (i, buf)));
                }
            }
            if state.pending == 0 {
                // Nothing in flight and nothing landed: either all is handed out, or the
                // budget is free again (another thread took the rest) and refill starts more.
                let waiting = state.slots[state.cursor.min(state.slots.len())..]
                    .iter()
                    .any(|s| matches!(s, Slot::Waiting));
                if !waiting {
                    return None;
                }
                drop(state);
                if let Err(e) = self.refill(alloc) {
                    return Some(Err(e));
                }
                state = shared.lock();
                continue;
            }
            state = shared.wait(state);
        }
    }

    /// Stops the reader (a read in progress stops at its next block), joins its thread and
    /// drops every buffer not taken. Buffers taken stay the caller's. Idempotent.
    pub fn close(&self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        {
            let mut state = self.shared.lock();
            state.closed = true;
            self.shared.changed.notify_all();
        }
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = worker {
            // A panic in the reader has nothing left to report: its buffers are dropped below.
            let _ = worker.join();
        }
        let mut state = self.shared.lock();
        for slot in state.slots.iter_mut() {
            if !matches!(slot, Slot::Taken) {
                *slot = Slot::Taken;
            }
        }
        state.queue.clear();
        state.urgent.clear();
        state.landed.clear();
        state.held = 0;
        state.pending = 0;
    }

    /// True once [`Prefetch::close`] was called.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

impl<B: AsMut<[u8]> + Send + 'static> Drop for Prefetch<B> {
    fn drop(&mut self) {
        self.close();
    }
}

mod read;

#[cfg(test)]
mod tests;
