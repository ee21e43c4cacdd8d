//! Opens each file given, validates its header and walks the names and metadata, printing
//! one JSON line per file: seconds taken and the peak heap bytes allocated meanwhile
//! (counted by a wrapping global allocator). Used by `make bench-headers`.
//!
//! `cargo run --release -p safetensors --example read_header -- FILE...`

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use safetensors::source::file::{Backend, SafeFile};

/// The system allocator, counting live and peak bytes.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to the system allocator; only counters change.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as the caller's.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as the caller's.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            let live = LIVE.fetch_add(new_size, Ordering::Relaxed) + new_size;
            PEAK.fetch_max(live, Ordering::Relaxed);
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

fn main() {
    for path in std::env::args().skip(1) {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        let result = SafeFile::open(&path, Backend::Pread).map(|file| {
            let meta = file.metadata();
            let names = meta.names_sorted().len();
            let entries = meta.metadata_ordered().map_or(0, |m| m.len());
            (names, entries)
        });
        let seconds = start.elapsed().as_secs_f64();
        let peak = PEAK.load(Ordering::Relaxed) - base;
        let outcome = match result {
            Ok((tensors, metadata)) => format!("\"tensors\":{tensors},\"metadata\":{metadata}"),
            Err(e) => format!("\"error\":{:?}", e.to_string()),
        };
        println!("{{\"file\":{path:?},\"seconds\":{seconds:.4},\"peak_bytes\":{peak},{outcome}}}");
    }
}
