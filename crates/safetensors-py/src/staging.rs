//! `safe_open._staging_ring(...)` and `_PrefetchSource._staging_ring(...)`: the core's
//! staging ring (`safetensors::reader::staging::StagingRing`) over a handle's files, with the
//! framework's Python copier (`_staging.DeviceCopier`) as its sink. Private, for
//! `_staging.py` and `_prefetch.py`.
//!
//! The core decides everything: how ranges are packed into the host buffers, when a buffer
//! is filled, read and handed over, the order of `wait`, reads, `copy_async` and `record`.
//! This file only turns the buffers' addresses (pinned memory the copier allocated) into slot
//! memory, calls the copier with the interpreter attached, and detaches it for the reads.

use crate::container::{Container, Inner};
use crate::error::{st_err, to_pyerr};
use crate::raw::RawDst;
use pyo3::exceptions::PyValueError;
use pyo3::intern;
use pyo3::prelude::*;
use safetensors::reader::staging::{self, Sink, StagingError, Transfer};
use safetensors::reader::ReaderOptions;
use safetensors::Error as CoreError;
use std::sync::{Arc, Mutex};

/// A host buffer of the ring: memory the copier allocated, by address.
struct HostSlot(RawDst);

impl AsMut<[u8]> for HostSlot {
    fn as_mut(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }
}

impl AsRef<[u8]> for HostSlot {
    fn as_ref(&self) -> &[u8] {
        self.0.as_slice()
    }
}

/// A destination as the copier knows it (a device tensor), shared by the pieces of a range.
type Dst = Arc<Py<PyAny>>;

/// The Python copier as the core ring's sink.
struct Copier<'a, 'py>(&'a Bound<'py, PyAny>);

impl Sink<Dst> for Copier<'_, '_> {
    type Error = PyErr;

    fn wait(&mut self, slot: usize) -> PyResult<()> {
        self.0.call_method1(intern!(self.0.py(), "wait"), (slot,))?;
        Ok(())
    }

    fn copy(&mut self, slot: usize, t: Transfer<Dst>, _bytes: &[u8]) -> PyResult<()> {
        let py = self.0.py();
        let args = (t.dst.bind(py), t.dst_offset, slot, t.src_offset, t.len);
        self.0.call_method1(intern!(py, "copy_async"), args)?;
        Ok(())
    }

    fn record(&mut self, slot: usize) -> PyResult<()> {
        self.0
            .call_method1(intern!(self.0.py(), "record"), (slot,))?;
        Ok(())
    }

    fn read<F>(&mut self, read: F) -> Result<(), CoreError>
    where
        F: FnOnce() -> Result<(), CoreError> + Send,
    {
        self.0.py().detach(read)
    }
}

fn ring_err(e: StagingError<PyErr>) -> PyErr {
    match e {
        StagingError::Ring(e) => to_pyerr(e),
        StagingError::Sink(e) => e,
    }
}

/// Packs byte ranges of tensors into pinned host buffers, fills each full buffer with the
/// parallel reader and hands its copies to the copier (see `safetensors._staging`). Private.
#[pyclass(frozen, name = "_StagingRing", module = "safetensors")]
pub struct StagingRing {
    container: Arc<Container>,
    /// The handle whose recorded digests are checked (with `verify`) before a tensor's bytes
    /// are staged; None where the caller checked them already (a prefetch plan).
    digests: Option<Arc<Inner>>,
    copier: Py<PyAny>,
    ring: Mutex<staging::StagingRing<HostSlot, Dst>>,
}

impl StagingRing {
    /// A ring over `container`'s files, its buffers the `slot_bytes` bytes at each address of
    /// `slots`, handed over to `copier`. The caller guarantees that each buffer is writable
    /// memory that `copier` keeps alive as long as the ring lives, and that only the copies
    /// the ring enqueues read it (the copier's own pinned host buffers).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        container: Arc<Container>,
        digests: Option<Arc<Inner>>,
        slots: Vec<usize>,
        slot_bytes: usize,
        copier: Bound<'_, PyAny>,
        threads: Option<usize>,
        block_size: Option<usize>,
        sequential: bool,
    ) -> PyResult<Self> {
        let mut memory = Vec::with_capacity(slots.len());
        for addr in slots {
            if addr == 0 && slot_bytes > 0 {
                return Err(PyValueError::new_err("a null host buffer address"));
            }
            // SAFETY: this private constructor's contract (above): the copier owns the
            // buffer and keeps it alive while the ring (which holds the copier) lives, and
            // nothing but the copies the ring enqueues reads it. The core ring writes a
            // buffer only after the sink's `wait` for it, so never while a copy reads it.
            memory.push(HostSlot(unsafe { RawDst::new(addr, slot_bytes) }));
        }
        let options: ReaderOptions = crate::bulk::options(threads, block_size);
        let ring = staging::StagingRing::new(memory, options, sequential)
            .map_err(|e| PyValueError::new_err(e.to_string()))?;
        Ok(StagingRing {
            container,
            digests,
            copier: copier.unbind(),
            ring: Mutex::new(ring),
        })
    }

    fn locked(&self) -> PyResult<std::sync::MutexGuard<'_, staging::StagingRing<HostSlot, Dst>>> {
        // Never block with the interpreter attached on a ring another thread is filling.
        self.ring
            .try_lock()
            .map_err(|_| st_err("the staging ring is in use by another call"))
    }
}

#[pymethods]
impl StagingRing {
    /// Packs bytes `first..first + nbytes` of tensor `name`, bound for the start of `dst`
    /// (the copier's destination), after what was added before; each buffer it fills is
    /// read and its copies enqueued at once.
    fn add(
        &self,
        py: Python<'_>,
        name: &str,
        first: usize,
        nbytes: usize,
        dst: Bound<'_, PyAny>,
    ) -> PyResult<()> {
        if let Some(inner) = &self.digests {
            inner.check_digests(py, &self.container, [name])?;
        }
        let opened = self.container.for_tensor(py, name)?;
        let mut ring = self.locked()?;
        let copier = self.copier.bind(py);
        ring.add(
            &mut Copier(copier),
            &opened.origin,
            name,
            first,
            nbytes,
            Arc::new(dst.unbind()),
        )
        .map_err(ring_err)
    }

    /// Reads the partly filled buffer and enqueues its copies (nothing when it is empty).
    fn flush(&self, py: Python<'_>) -> PyResult<()> {
        let mut ring = self.locked()?;
        let copier = self.copier.bind(py);
        ring.flush(&mut Copier(copier)).map_err(ring_err)
    }

    /// How many buffers were filled and their copies enqueued so far.
    #[getter]
    fn flushes(&self) -> PyResult<usize> {
        Ok(self.locked()?.flushes())
    }
}
