//! Raw memory handed over by Python: the one module of this crate that turns addresses into
//! slices.
//!
//! Saving passes each tensor's own memory (address + length, as the framework reports it) to
//! the core writer, and loading copies file bytes straight into the memory of a tensor the
//! framework has just allocated. Both need a slice over memory that Rust did not allocate;
//! the invariants that make that sound are stated on each constructor and upheld by callers.

use pyo3::buffer::PyUntypedBuffer;
use safetensors::{Dtype, View};
use std::borrow::Cow;

/// A tensor to serialize, viewed in place: dtype, shape and the address/length of its bytes.
///
/// The address is stored as `usize` so the view can cross into code that runs detached from
/// the Python interpreter (raw pointers are not `Send`).
pub struct RawView {
    dtype: Dtype,
    shape: Vec<usize>,
    addr: usize,
    len: usize,
}

impl RawView {
    /// A view over `len` bytes at `addr`.
    ///
    /// # Safety
    /// For as long as this view (or anything borrowed from it) lives, `addr..addr + len` must
    /// be readable memory that nothing writes to and nothing frees. `addr` may be anything
    /// when `len == 0`. Callers keep the owning Python objects alive for the whole write.
    pub unsafe fn new(dtype: Dtype, shape: Vec<usize>, addr: usize, len: usize) -> Self {
        RawView {
            dtype,
            shape,
            addr,
            len,
        }
    }
}

impl View for RawView {
    fn dtype(&self) -> Dtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        if self.len == 0 {
            return Cow::Borrowed(&[]);
        }
        // SAFETY: `RawView::new`'s contract: `addr..addr+len` is live, readable and unchanged
        // while `self` lives, and `len > 0` here so `addr` is a real (non-null) address.
        Cow::Borrowed(unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) })
    }

    fn data_len(&self) -> usize {
        self.len
    }
}

/// Memory a framework allocated for a tensor being loaded, to be filled with file bytes.
pub struct RawDst {
    addr: usize,
    len: usize,
}

impl RawDst {
    /// Destination memory of `len` bytes at `addr`.
    ///
    /// # Safety
    /// `addr..addr + len` must be writable memory owned by an object the caller keeps alive
    /// until it is done with the slice from [`RawDst::as_mut_slice`], and nothing else may
    /// read or write it meanwhile (a tensor just allocated and not yet handed to Python code).
    /// `addr` may be anything when `len == 0`.
    pub unsafe fn new(addr: usize, len: usize) -> Self {
        RawDst { addr, len }
    }

    /// The destination as a byte slice.
    pub fn as_mut_slice(&mut self) -> &mut [u8] {
        if self.len == 0 {
            return &mut [];
        }
        // SAFETY: `RawDst::new`'s contract: the memory is live, writable and exclusively ours
        // while `self` is borrowed; `len > 0` so `addr` is a real address.
        unsafe { std::slice::from_raw_parts_mut(self.addr as *mut u8, self.len) }
    }
}

/// The bytes of a C-contiguous Python buffer (bytes, bytearray, memoryview, numpy array...).
/// Panics on a buffer that is not C-contiguous (callers check first).
///
/// The buffer export keeps the memory pinned (a `bytearray` cannot be resized while
/// exported), so the returned slice is valid for as long as `buf` is borrowed.
pub fn buffer_bytes(buf: &PyUntypedBuffer) -> &[u8] {
    let len = buf.len_bytes();
    if len == 0 {
        return &[];
    }
    // Checked in release builds too: the slice below is only sound for a contiguous export.
    // Every caller checks first and reports a clear error, so this never fires in practice.
    assert!(
        buf.is_c_contiguous(),
        "buffer_bytes needs a C-contiguous buffer; callers check before calling"
    );
    // SAFETY: a C-contiguous buffer export covers `len_bytes()` bytes from `buf_ptr()`,
    // pinned until the export is released, which happens no earlier than when `buf` drops.
    unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const u8, len) }
}
