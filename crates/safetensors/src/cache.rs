//! The page cache, as a whole-file load sees it: whether a file's bytes are already in
//! memory (a warm load), and a hint that a range is about to be read from start to end.
//!
//! Loading picks its way of reading from [`resident_fraction`]: bytes already cached are
//! cheapest viewed in place through a mapping, while bytes still on disk are fastest read
//! by [`crate::reader::read_into`]'s threads in large blocks, with [`advise_sequential`]
//! telling the kernel to read ahead generously. Both are best-effort: where the platform
//! offers no such call they answer "unknown" or do nothing, never fail a load.

use std::fs::File;

/// Pages a range may have for [`resident_fraction`] to ask about every one of them; past
/// this, it samples.
const ALL_PAGES_UP_TO: usize = 4096;
/// Windows sampled in a larger range, evenly spread, and pages in each.
const SAMPLE_WINDOWS: usize = 128;
const PAGES_PER_WINDOW: usize = 8;

/// The fraction (0.0 to 1.0) of the pages of `bytes`, memory mapped from a file, that are
/// in the page cache now; None where it cannot be asked (not Unix, or the call failed).
///
/// The kernel answers page by page, so asking about every page of a 2 GB file costs tens of
/// milliseconds: more than a warm load of it. A range of up to 4,096 pages (16 MiB) is
/// asked about whole; a larger one through 128 windows of 8 pages spread evenly over it
/// (about 1,000 pages whatever the size), plenty to tell a warm file from a cold one or a
/// half-read one. No page is read or faulted in.
#[cfg(unix)]
pub fn resident_fraction(bytes: &[u8]) -> Option<f64> {
    if bytes.is_empty() {
        return Some(1.0);
    }
    // SAFETY: sysconf has no memory effects.
    let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    if page == 0 {
        return None;
    }
    // mincore wants a page-aligned start: round down; the extra head bytes belong to the
    // same mapping (a mapping starts on a page), so the range stays inside it.
    let start = bytes.as_ptr() as usize;
    let aligned = start - start % page;
    let pages = (bytes.len() + (start - aligned)).div_ceil(page);
    let (windows, per_window) = match pages <= ALL_PAGES_UP_TO {
        true => (1, pages),
        false => (SAMPLE_WINDOWS, PAGES_PER_WINDOW),
    };
    let mut status = vec![0u8; per_window];
    let (mut resident, mut asked) = (0, 0);
    for w in 0..windows {
        // Window w starts at page w * pages / windows: the first at the range's start,
        // the last ending at or before its end.
        let first = (w * pages / windows).min(pages - per_window);
        let addr = aligned + first * page;
        // SAFETY: pages `first..first + per_window` lie within the pages that hold `bytes`
        // (borrowed, so mapped for the whole call), `status` has one byte per page asked
        // about, as mincore requires, and mincore only reports on the pages.
        let rc = unsafe {
            libc::mincore(
                addr as *mut libc::c_void,
                per_window * page,
                status.as_mut_ptr().cast(),
            )
        };
        if rc != 0 {
            return None;
        }
        resident += status.iter().filter(|&&b| b & 1 == 1).count();
        asked += per_window;
    }
    Some(resident as f64 / asked as f64)
}

/// Not offered off Unix.
#[cfg(not(unix))]
pub fn resident_fraction(_bytes: &[u8]) -> Option<f64> {
    None
}

/// Tells the kernel that `len` bytes of `file` from `offset` on are about to be read
/// sequentially (a larger read-ahead window). Best-effort: failures are ignored, since the
/// read that follows works the same without the hint.
#[cfg(target_os = "linux")]
pub fn advise_sequential(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: posix_fadvise only records a hint about the open descriptor; no memory is
    // passed to it.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_SEQUENTIAL);
    }
}

/// No hint where `posix_fadvise` is not offered.
#[cfg(not(target_os = "linux"))]
pub fn advise_sequential(_file: &File, _offset: u64, _len: u64) {}

/// Asks the kernel to start reading `len` bytes of `file` from `offset` on into the page
/// cache now (`POSIX_FADV_WILLNEED`): the reads are queued at once, in large requests, and
/// the call returns without waiting for them, so a mapping touched afterwards finds its
/// pages arriving (or arrived) instead of faulting each one in from the disk. Best-effort,
/// like [`advise_sequential`].
#[cfg(target_os = "linux")]
pub fn advise_willneed(file: &File, offset: u64, len: u64) {
    use std::os::fd::AsRawFd;
    let (Ok(offset), Ok(len)) = (libc::off_t::try_from(offset), libc::off_t::try_from(len)) else {
        return;
    };
    // SAFETY: as in `advise_sequential`: a hint about the descriptor, no memory passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), offset, len, libc::POSIX_FADV_WILLNEED);
    }
}

/// No hint where `posix_fadvise` is not offered.
#[cfg(not(target_os = "linux"))]
pub fn advise_willneed(_file: &File, _offset: u64, _len: u64) {}

/// Tells the kernel that `file` is read at scattered places (`POSIX_FADV_RANDOM`): no
/// readahead past what each read asks for, which would fetch the bytes between the parts a
/// reader wants (another rank's). Best-effort, like [`advise_sequential`].
#[cfg(target_os = "linux")]
pub fn advise_random(file: &File) {
    use std::os::fd::AsRawFd;
    // SAFETY: as in `advise_sequential`: a hint about the descriptor, no memory passed.
    unsafe {
        libc::posix_fadvise(file.as_raw_fd(), 0, 0, libc::POSIX_FADV_RANDOM);
    }
}

/// No hint where `posix_fadvise` is not offered.
#[cfg(not(target_os = "linux"))]
pub fn advise_random(_file: &File) {}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};

    #[test]
    fn a_file_just_written_and_read_is_resident() {
        let mut tmp = tempfile::tempfile().unwrap();
        tmp.write_all(&vec![7u8; 1 << 20]).unwrap();
        let mut back = Vec::new();
        use std::io::Seek;
        tmp.rewind().unwrap();
        tmp.read_to_end(&mut back).unwrap();
        advise_sequential(&tmp, 0, back.len() as u64);
        advise_willneed(&tmp, 0, back.len() as u64);
        // SAFETY: the temporary file is ours alone and not modified while mapped.
        let map = unsafe { memmap2::Mmap::map(&tmp) }.unwrap();
        let fraction = resident_fraction(&map[..]);
        if cfg!(unix) {
            assert_eq!(fraction, Some(1.0));
        }
        assert_eq!(resident_fraction(&[]), Some(1.0).filter(|_| cfg!(unix)));
    }

    #[test]
    fn a_large_range_is_sampled_and_still_tells_warm_from_cold() {
        // An anonymous mapping: a page is resident once written, absent before. 64 MiB
        // (16,384 pages: sampled), written in alternate 1 MiB blocks, then fully.
        let size = 64 << 20;
        let mut map = memmap2::MmapMut::map_anon(size).unwrap();
        assert_eq!(
            resident_fraction(&map[..]).map(|f| f < 0.01),
            Some(true).filter(|_| cfg!(unix))
        );
        for block in (0..size).step_by(2 << 20) {
            map[block..block + (1 << 20)].fill(1);
        }
        if let Some(f) = resident_fraction(&map[..]) {
            assert!((0.4..=0.6).contains(&f), "half written, {f}");
        }
        map.fill(2);
        assert_eq!(
            resident_fraction(&map[..]),
            Some(1.0).filter(|_| cfg!(unix))
        );
        // Unaligned slices and ranges just over the sampling threshold stay inside the range.
        for len in [ALL_PAGES_UP_TO * 4096 + 1, ALL_PAGES_UP_TO * 4096 + 4095] {
            assert_eq!(
                resident_fraction(&map[3..3 + len]),
                Some(1.0).filter(|_| cfg!(unix))
            );
        }
    }

    #[test]
    fn a_written_buffer_is_resident_whatever_the_alignment_of_the_slice() {
        let buf = vec![1u8; 3 * 4096 + 5];
        for start in [0, 1, 4095, 4097] {
            if let Some(f) = resident_fraction(&buf[start..]) {
                assert!((0.0..=1.0).contains(&f), "{f}");
                assert_eq!(f, 1.0);
            }
        }
    }
}
