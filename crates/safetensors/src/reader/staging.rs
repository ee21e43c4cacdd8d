//! A staging ring: byte ranges of tensors packed in order into a few host buffers ("slots"),
//! each full buffer read with the parallel reader and then handed to a device as copies.
//!
//! A whole load to an accelerator must not hold the whole model in host memory, and should
//! keep the disk and the host-to-device link busy at the same time. [`StagingRing`] makes
//! every decision of that pipeline and executes the reads; the device side is a [`Sink`]:
//!
//! - [`StagingRing::add`] checks a range against its tensor's header entry, then packs it
//!   into the current slot from where the last range ended; a range longer than what the
//!   slot has left continues at the start of the next slot (a large tensor spans several
//!   fills). A slot that fills up is flushed at once.
//! - [`StagingRing::flush`] (also called by the caller for the last, partial slot) runs one
//!   fill of one slot: [`Sink::wait`] until the copies that last read the slot are done, read
//!   every piece packed into it with [`read_pieces`] (grouped by file, in parallel, blocks in
//!   file order) inside [`Sink::read`] (where a binding detaches its interpreter), hand each
//!   piece to [`Sink::copy`] in packing order, [`Sink::record`] the end of the slot's copies,
//!   and move on to the next slot (round robin).
//!
//! Host memory is therefore bounded by the slots, whatever the model's size. The slot memory
//! is the caller's (anything `AsMut<[u8]> + AsRef<[u8]>`: a `Vec<u8>`, pinned memory a
//! framework allocated; it is borrowed mutably only while a fill reads into it),
//! and a destination is whatever the sink understands (`D`: a device tensor, an index).
//!
//! ```
//! use safetensors::checkpoint::Checkpoint;
//! use safetensors::reader::staging::{Sink, StagingRing, Transfer};
//! use safetensors::reader::ReaderOptions;
//! use safetensors::{serialize, tensor::TensorView, Dtype};
//!
//! /// A "device" that is host memory: each copy lands at once.
//! struct Host(Vec<Vec<u8>>);
//! impl Sink<usize> for Host {
//!     type Error = std::convert::Infallible;
//!     fn wait(&mut self, _slot: usize) -> Result<(), Self::Error> { Ok(()) }
//!     fn copy(&mut self, _slot: usize, t: Transfer<usize>, bytes: &[u8]) -> Result<(), Self::Error> {
//!         self.0[t.dst][t.dst_offset..t.dst_offset + t.len].copy_from_slice(bytes);
//!         Ok(())
//!     }
//!     fn record(&mut self, _slot: usize) -> Result<(), Self::Error> { Ok(()) }
//! }
//!
//! let a = TensorView::new(Dtype::U8, vec![5], &[1, 2, 3, 4, 5]).unwrap();
//! let b = TensorView::new(Dtype::U8, vec![3], &[6, 7, 8]).unwrap();
//! let checkpoint = Checkpoint::from_source("buffer", serialize([("a", a), ("b", b)], None).unwrap()).unwrap();
//! let file = checkpoint.shard_file(0).unwrap();
//!
//! // Two slots of 4 bytes: "a" fills the first and spills into the second.
//! let mut ring = StagingRing::new(vec![vec![0u8; 4], vec![0u8; 4]], ReaderOptions::default(), true).unwrap();
//! let mut device = Host(vec![vec![0; 5], vec![0; 2]]);
//! ring.add(&mut device, file, "a", 0, 5, 0).unwrap();
//! ring.add(&mut device, file, "b", 1, 2, 1).unwrap(); // bytes 1..3 of "b"
//! ring.flush(&mut device).unwrap();
//! assert_eq!(device.0, [vec![1, 2, 3, 4, 5], vec![7, 8]]);
//! assert_eq!(ring.flushes(), 2);
//! ```

use core::fmt;

use crate::checkpoint::ShardFile;
use crate::format::error::{excerpt, Error};
use crate::reader::batch::{read_pieces, Piece};
use crate::reader::ReaderOptions;

/// One copy out of a slot: `len` bytes from `src_offset` in the slot to `dst` at `dst_offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer<D> {
    /// The destination, as the caller gave it to [`StagingRing::add`].
    pub dst: D,
    /// Where the bytes go within the destination (from the start of the added range).
    pub dst_offset: usize,
    /// Where the bytes are within the slot.
    pub src_offset: usize,
    /// How many bytes.
    pub len: usize,
}

/// The device side of a [`StagingRing`]: slots are numbered as the ring was given them.
pub trait Sink<D> {
    /// What a failed device call reports.
    type Error;

    /// Blocks until the copies [`Sink::record`] last marked for `slot` are done (the slot is
    /// then refilled); returns at once for a slot never filled.
    fn wait(&mut self, slot: usize) -> Result<(), Self::Error>;

    /// Starts one copy out of `slot`; it may still be running when this returns. `bytes` is
    /// the transfer's source (`src_offset..src_offset + len` of the slot), for sinks that copy
    /// from the slice rather than from the slot's address.
    fn copy(&mut self, slot: usize, transfer: Transfer<D>, bytes: &[u8])
        -> Result<(), Self::Error>;

    /// Marks the end of the copies out of `slot` started since its fill.
    fn record(&mut self, slot: usize) -> Result<(), Self::Error>;

    /// Runs `read`, the fill of a slot: by default right here. A binding overrides it to
    /// detach its interpreter while the reader's threads work.
    fn read<F>(&mut self, read: F) -> Result<(), Error>
    where
        F: FnOnce() -> Result<(), Error> + Send,
    {
        read()
    }
}

/// What [`StagingRing::add`] and [`StagingRing::flush`] report.
#[derive(Debug)]
pub enum StagingError<E> {
    /// The ring's own: a tensor not in the file, a range outside its tensor, a failed read,
    /// a ring that failed earlier.
    Ring(Error),
    /// The sink's.
    Sink(E),
}

impl<E: fmt::Display> fmt::Display for StagingError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StagingError::Ring(e) => e.fmt(f),
            StagingError::Sink(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> std::error::Error for StagingError<E> {}

/// A piece packed into the current slot, not read yet.
#[derive(Debug)]
struct Packed<D> {
    file: ShardFile,
    /// Absolute position of the bytes in `file`.
    offset: u64,
    transfer: Transfer<D>,
}

/// Byte ranges of tensors packed into the caller's slots, each full slot read then handed
/// to a [`Sink`] (see the module docs).
#[derive(Debug)]
pub struct StagingRing<M, D> {
    slots: Vec<M>,
    lens: Vec<usize>,
    options: ReaderOptions,
    sequential: bool,
    /// The slot being packed.
    slot: usize,
    /// Bytes of it packed so far.
    used: usize,
    pending: Vec<Packed<D>>,
    flushes: usize,
    /// A flush failed midway: the slots' state is unknown, so nothing more is done.
    failed: bool,
}

impl<M: AsMut<[u8]> + AsRef<[u8]> + Send, D> StagingRing<M, D> {
    /// A ring over `slots` (at least one, none empty), reading with `options`. `sequential`:
    /// tell the kernel a local file is read from start to end (a whole load); false leaves
    /// its readahead as it is (parts of tensors, a rank's).
    pub fn new(mut slots: Vec<M>, options: ReaderOptions, sequential: bool) -> Result<Self, Error> {
        let lens: Vec<usize> = slots.iter_mut().map(|s| s.as_mut().len()).collect();
        if lens.is_empty() || lens.contains(&0) {
            return Err(Error::InvalidArgument(format!(
                "the staging ring needs at least one buffer of at least one byte, got {} of {:?} bytes",
                lens.len(),
                lens
            )));
        }
        Ok(StagingRing {
            slots,
            lens,
            options,
            sequential,
            slot: 0,
            used: 0,
            pending: Vec::new(),
            flushes: 0,
            failed: false,
        })
    }

    /// Packs bytes `first..first + nbytes` of tensor `name` of `file`, bound for the start of
    /// `dst`, after what was added before; flushes each slot it fills. Nothing is packed when
    /// the tensor is not in `file` or the range is outside it.
    pub fn add<S: Sink<D>>(
        &mut self,
        sink: &mut S,
        file: &ShardFile,
        name: &str,
        first: usize,
        nbytes: usize,
        dst: D,
    ) -> Result<(), StagingError<S::Error>>
    where
        D: Clone,
    {
        self.usable()?;
        let info = file
            .metadata()
            .entry(name)
            .ok_or_else(|| StagingError::Ring(Error::TensorNotFound(excerpt(name))))?;
        let (begin, end) = info.data_offsets;
        if first
            .checked_add(nbytes)
            .map_or(true, |stop| stop > end - begin)
        {
            return Err(StagingError::Ring(Error::InvalidArgument(format!(
                "byte range {}..{} is outside tensor {}, which has {} bytes",
                first,
                first.saturating_add(nbytes),
                excerpt(name),
                end - begin
            ))));
        }
        let base = file.data_start() + (begin + first) as u64;
        let mut start = 0;
        while start < nbytes {
            let take = (nbytes - start).min(self.lens[self.slot] - self.used);
            self.pending.push(Packed {
                file: file.clone(),
                offset: base + start as u64,
                transfer: Transfer {
                    dst: dst.clone(),
                    dst_offset: start,
                    src_offset: self.used,
                    len: take,
                },
            });
            self.used += take;
            start += take;
            if self.used == self.lens[self.slot] {
                self.flush(sink)?;
            }
        }
        Ok(())
    }

    /// Fills the current slot with what was packed into it and hands its copies to `sink`
    /// (see the module docs); nothing when nothing is packed. After an error the ring refuses
    /// any further work.
    pub fn flush<S: Sink<D>>(&mut self, sink: &mut S) -> Result<(), StagingError<S::Error>> {
        self.usable()?;
        if self.pending.is_empty() {
            return Ok(());
        }
        self.failed = true; // until this fill is complete
        let slot = self.slot;
        sink.wait(slot).map_err(StagingError::Sink)?;
        let packed = std::mem::take(&mut self.pending);
        {
            let mut rest: &mut [u8] = &mut self.slots[slot].as_mut()[..self.used];
            let mut pieces = Vec::with_capacity(packed.len());
            for p in &packed {
                let (dst, tail) = std::mem::take(&mut rest).split_at_mut(p.transfer.len);
                pieces.push(Piece {
                    file: &p.file,
                    offset: p.offset,
                    dst,
                });
                rest = tail;
            }
            let (options, sequential) = (&self.options, self.sequential);
            sink.read(move || read_pieces(pieces, options, sequential))
                .map_err(StagingError::Ring)?;
        }
        // The copies only read the slot (a device may read it too until `wait`).
        let buffer = self.slots[slot].as_ref();
        for p in packed {
            let t = p.transfer;
            let bytes = &buffer[t.src_offset..t.src_offset + t.len];
            sink.copy(slot, t, bytes).map_err(StagingError::Sink)?;
        }
        sink.record(slot).map_err(StagingError::Sink)?;
        self.slot = (slot + 1) % self.slots.len();
        self.used = 0;
        self.flushes += 1;
        self.failed = false;
        Ok(())
    }

    /// How many slot fills were handed to the sink so far.
    pub fn flushes(&self) -> usize {
        self.flushes
    }

    /// Bytes packed into the current slot and not read yet.
    pub fn packed_bytes(&self) -> usize {
        self.used
    }

    /// The slot memory, given back.
    pub fn into_slots(self) -> Vec<M> {
        self.slots
    }

    fn usable<E>(&self) -> Result<(), StagingError<E>> {
        match self.failed {
            true => Err(StagingError::Ring(Error::InvalidArgument(
                "the staging ring failed earlier and cannot be used again".into(),
            ))),
            false => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests;
