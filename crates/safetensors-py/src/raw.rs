//! Raw memory handed over by Python: the one module of this crate that turns addresses into
//! slices.
//!
//! Saving passes each tensor's own memory (address + length, as the framework reports it) to
//! the core writer, and loading copies file bytes straight into the memory of a tensor the
//! framework has just allocated. Both need a slice over memory that Rust did not allocate;
//! the invariants that make that sound are stated on each constructor and upheld by callers.

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyMemoryView};
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
/// The default is zero bytes (nothing to fill).
#[derive(Default)]
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

    /// Its length in bytes.
    pub fn len(&self) -> usize {
        self.len
    }

    /// The destination's bytes, to read them back (a filled staging buffer's).
    pub fn as_slice(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: `RawDst::new`'s contract: the memory is live and nothing else writes it
        // while `self` is borrowed; `len > 0` so `addr` is a real address.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
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

/// A bytes-like Python object (bytes, bytearray, memoryview, numpy array...) held still while
/// Rust reads it, possibly with the interpreter detached.
///
/// A `bytes` object is used in place: it is immutable and lives as long as this value holds
/// it. Anything else is copied once into a new `bytes`. The package is built for the stable
/// ABI from Python 3.9 on (abi3, one wheel for every CPython), and the buffer protocol that
/// could pin a bytearray's memory in place is only part of that ABI from 3.11.
pub struct PinnedBytes {
    /// Holds the bytes object alive (and so `addr..addr + len` readable and unchanged).
    _owner: Option<Py<PyBytes>>,
    addr: usize,
    len: usize,
    contiguous: bool,
}

impl PinnedBytes {
    /// Pins `obj`'s bytes; a `TypeError` when it is not bytes-like. A non-contiguous buffer
    /// (e.g. a strided memoryview) is not copied: [`PinnedBytes::is_c_contiguous`] says so.
    pub fn get(obj: &Bound<'_, PyAny>) -> PyResult<Self> {
        let bytes = match obj.cast::<PyBytes>() {
            Ok(bytes) => bytes.clone(),
            Err(_) => {
                let view = PyMemoryView::from(obj)?;
                let contiguous: bool = view.getattr("c_contiguous")?.extract()?;
                if !contiguous {
                    return Ok(PinnedBytes {
                        _owner: None,
                        addr: 0,
                        len: 0,
                        contiguous: false,
                    });
                }
                let copy = view.call_method0("tobytes")?.cast_into::<PyBytes>()?;
                view.call_method0("release")?;
                copy
            }
        };
        let slice = bytes.as_bytes();
        Ok(PinnedBytes {
            addr: slice.as_ptr() as usize,
            len: slice.len(),
            contiguous: true,
            _owner: Some(bytes.unbind()),
        })
    }

    /// False for a buffer whose bytes are not one C-ordered run (nothing was pinned).
    pub fn is_c_contiguous(&self) -> bool {
        self.contiguous
    }
}

/// The bytes pinned by `buf` (empty for a non-contiguous buffer), valid while `buf` lives.
pub fn buffer_bytes(buf: &PinnedBytes) -> &[u8] {
    if buf.len == 0 {
        return &[];
    }
    // SAFETY: `addr..addr + len` is the storage of the `bytes` object `buf` owns: a bytes
    // object never changes or moves its contents, and it is not freed while `buf` holds it.
    unsafe { std::slice::from_raw_parts(buf.addr as *const u8, buf.len) }
}

/// The memory of a writable Python buffer (the private `mmap.mmap` of a file), pinned without
/// the buffer protocol's C API, which the stable ABI only offers from Python 3.11 on: a ctypes
/// array made with `from_buffer` holds a buffer export of the object for as long as it lives,
/// and an exported `mmap` can be neither closed nor resized.
pub struct PinnedWritable {
    /// The ctypes array: keeps the export (and so the object and its memory) alive.
    _owner: Py<PyAny>,
    addr: usize,
    len: usize,
}

impl PinnedWritable {
    /// Pins the first `len` bytes of `obj` (a `ValueError`/`TypeError` from ctypes when `obj`
    /// is not a writable buffer of at least `len` bytes).
    pub fn get(obj: &Bound<'_, PyAny>, len: usize) -> PyResult<Self> {
        let py = obj.py();
        let ctypes = py.import("ctypes")?;
        let array_type = py
            .import("operator")?
            .getattr("mul")?
            .call1((ctypes.getattr("c_char")?, len))?;
        let array = array_type.call_method1("from_buffer", (obj,))?;
        let addr: usize = ctypes.getattr("addressof")?.call1((&array,))?.extract()?;
        Ok(PinnedWritable {
            _owner: array.unbind(),
            addr,
            len,
        })
    }

    /// The pinned bytes, valid while `self` lives.
    pub fn bytes(&self) -> &[u8] {
        if self.len == 0 {
            return &[];
        }
        // SAFETY: ctypes' `from_buffer` checked that the object exports at least `len`
        // bytes at `addr`, and the export is held until `_owner` drops with `self`, so the
        // memory is neither freed nor moved while the slice is borrowed. Python code may write
        // through a tensor view into the same (copy-on-write, process-private) pages; callers
        // only copy bytes out of the slice, as the reference's loaders do from their maps.
        unsafe { std::slice::from_raw_parts(self.addr as *const u8, self.len) }
    }
}
