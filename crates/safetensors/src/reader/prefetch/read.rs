//! The background half of a [`super::Prefetch`]: its thread takes batches of queued tensors
//! and reads each batch with [`crate::reader::read_into`], straight into the tensors' buffers
//! (or, for many short runs, their covering spans into scratch memory, then gathered).

use std::sync::atomic::{AtomicBool, Ordering};

use super::{closed_error, PlannedTensor, Shared, Slot};
use crate::format::error::{excerpt, Error};
use crate::plan::cover::{far_spans, near_spans};
use crate::reader::gather::gather_spans;
use crate::reader::{read_into, Read, ReaderOptions};
use crate::source::Source;

/// A source that fails every read once the loader is stopping, so that `read_into` ends at
/// its next block.
struct Stoppable<'a> {
    inner: &'a (dyn Source + Send + Sync),
    stop: &'a AtomicBool,
}

impl Source for Stoppable<'_> {
    fn size(&self) -> Result<u64, Error> {
        self.inner.size()
    }

    fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<(), Error> {
        if self.stop.load(Ordering::Relaxed) {
            return Err(closed_error());
        }
        self.inner.read_at(offset, buf)
    }
}

/// The background reader: batches of queued tensors (those a `take` waits for first), about
/// `threads` blocks each, read with `read_into`.
pub(super) fn work<B: AsMut<[u8]> + Send>(shared: &Shared<B>) {
    let cap = shared
        .options
        .threads
        .max(1)
        .saturating_mul(shared.options.block_size.max(1));
    // Covering spans land here before they are gathered: one buffer for the thread's life,
    // so its pages are faulted in once, not once a tensor.
    let mut scratch: Vec<u8> = Vec::new();
    loop {
        let mut batch: Vec<(usize, B)> = Vec::new();
        {
            let mut state = shared.lock();
            while !state.closed && state.urgent.is_empty() && state.queue.is_empty() {
                state = shared.wait(state);
            }
            if state.closed {
                return;
            }
            let mut bytes = 0;
            while bytes < cap {
                let Some(i) = state.urgent.pop_front().or_else(|| state.queue.pop_front()) else {
                    break;
                };
                if let Slot::Queued(buf) = std::mem::replace(&mut state.slots[i], Slot::Reading) {
                    bytes += shared.plan.tensors[i].nbytes;
                    batch.push((i, buf));
                }
            }
        }
        let results = read_batch(shared, &mut batch, &mut scratch);
        let mut state = shared.lock();
        for ((i, buf), result) in batch.into_iter().zip(results) {
            state.pending -= 1;
            if state.closed {
                state.slots[i] = Slot::Taken;
                continue;
            }
            state.slots[i] = match result {
                Ok(()) => Slot::Landed(buf),
                Err(e) => Slot::Failed(e),
            };
            state.landed.push_back(i);
        }
        shared.changed.notify_all();
    }
}

/// Reads a batch, file by file; one result per tensor. Tensors read straight into their
/// buffers go in one parallel read per file; a tensor read through covering spans is read
/// on its own and gathered at once, while its spans are still in the CPU's cache (reading a
/// whole batch of spans first, then gathering, made every gather a trip to main memory).
fn read_batch<B: AsMut<[u8]>>(
    shared: &Shared<B>,
    batch: &mut [(usize, B)],
    scratch: &mut Vec<u8>,
) -> Vec<Result<(), Error>> {
    let mut results: Vec<Result<(), Error>> = batch.iter().map(|_| Ok(())).collect();
    let options = ReaderOptions {
        threads: shared.options.threads.max(1),
        block_size: shared.options.block_size.max(1),
    };
    let remote = shared.options.remote;
    for file in 0..shared.sources.len() {
        let source = Stoppable {
            inner: shared.sources[file].as_ref(),
            stop: &shared.stop,
        };
        let mut direct: Vec<usize> = Vec::new();
        let mut reads: Vec<Read<'_>> = Vec::new();
        for (k, (i, buf)) in batch.iter_mut().enumerate() {
            let t = &shared.plan.tensors[*i];
            if t.file != file {
                continue;
            }
            match covering_spans(t, remote) {
                None => {
                    direct.push(k);
                    let mut rest = buf.as_mut();
                    for run in t.runs() {
                        let (head, tail) = rest.split_at_mut(run.len());
                        reads.push(Read {
                            offset: t.offset + run.start as u64,
                            dst: head,
                        });
                        rest = tail;
                    }
                }
                Some(spans) => {
                    results[k] = read_covered(&source, t, &spans, scratch, buf.as_mut(), &options)
                        .map_err(|e| failed(&t.name, &e, shared.stop.load(Ordering::Relaxed)));
                }
            }
        }
        if direct.is_empty() {
            continue;
        }
        reads.sort_by_key(|r| r.offset);
        if let Err(e) = read_into(&source, reads, &options) {
            for &k in &direct {
                let name = &shared.plan.tensors[batch[k].0].name;
                results[k] = Err(failed(name, &e, shared.stop.load(Ordering::Relaxed)));
            }
        }
    }
    results
}

/// Reads tensor `t`'s covering `spans` into `scratch` (grown as needed, kept for the next
/// tensor) and gathers its runs into `dst`.
fn read_covered(
    source: &Stoppable<'_>,
    t: &PlannedTensor,
    spans: &[core::ops::Range<usize>],
    scratch: &mut Vec<u8>,
    dst: &mut [u8],
    options: &ReaderOptions,
) -> Result<(), Error> {
    let len: usize = spans.iter().map(|s| s.len()).sum();
    if scratch.len() < len {
        scratch.resize(len, 0);
    }
    let mut reads = Vec::with_capacity(spans.len());
    let mut rest = &mut scratch[..len];
    for span in spans {
        let (head, tail) = rest.split_at_mut(span.len());
        reads.push(Read {
            offset: t.offset + span.start as u64,
            dst: head,
        });
        rest = tail;
    }
    read_into(source, reads, options)?;
    gather(t, spans, &scratch[..len], dst)
}

/// The covering spans the plan layer gives for the tensor's runs, or None to read the runs
/// as they are (the rule `get_slice` follows too: `plan::cover`).
fn covering_spans(t: &PlannedTensor, remote: bool) -> Option<Vec<core::ops::Range<usize>>> {
    let runs = t.runs();
    match remote {
        true => far_spans(&runs),
        false => near_spans(&runs),
    }
}

/// Copies each run of `t` out of the spans read into `scratch`, one after the other into
/// `dst` (the reader's `gather_spans`, its error naming the tensor).
fn gather(
    t: &PlannedTensor,
    spans: &[core::ops::Range<usize>],
    scratch: &[u8],
    dst: &mut [u8],
) -> Result<(), Error> {
    gather_spans(scratch, spans, t.runs(), dst)
        .map_err(|e| Error::InvalidArgument(format!("tensor {}: {e}", excerpt(&t.name))))
}

/// The error of one tensor of a failed group read: the reader reports one error for the
/// group, each tensor gets its own copy naming it.
fn failed(name: &str, error: &Error, stopped: bool) -> Error {
    if stopped {
        return closed_error();
    }
    let message = format!("reading tensor {}: {error}", excerpt(name));
    match error {
        Error::IoError(io) => Error::IoError(std::io::Error::new(io.kind(), message)),
        _ => Error::InvalidArgument(message),
    }
}
