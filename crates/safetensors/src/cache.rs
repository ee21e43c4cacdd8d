//! The page cache, as a whole-file load sees it: whether a file's bytes are already in
//! memory (a warm load), and a hint that a range is about to be read from start to end.
//!
//! Loading picks its way of reading from [`resident_fraction`]: bytes already cached are
//! cheapest viewed in place through a mapping, while bytes still on disk are fastest read
//! by [`crate::reader::read_into`]'s threads in large blocks, with [`advise_sequential`]
//! telling the kernel to read ahead generously. Both are best-effort: where the platform
//! offers no such call they answer "unknown" or do nothing, never fail a load.

use std::fs::File;

/// The fraction (0.0 to 1.0) of the pages of `bytes`, memory mapped from a file, that are
/// in the page cache now; None where it cannot be asked (not Unix, or the call failed).
///
/// Asking costs one system call and one byte per 4 KiB page (512 KiB for a 2 GiB file);
/// no page is read or faulted in.
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
    let len = bytes.len() + (start - aligned);
    let pages = len.div_ceil(page);
    let mut vec = vec![0u8; pages];
    // SAFETY: `aligned..aligned + len` lies within the pages that hold `bytes` (borrowed,
    // so mapped for the whole call); `vec` has one byte per page of that range, as
    // mincore requires. mincore only reports on the pages, it never touches them.
    let rc = unsafe { libc::mincore(aligned as *mut libc::c_void, len, vec.as_mut_ptr().cast()) };
    if rc != 0 {
        return None;
    }
    let resident = vec.iter().filter(|&&b| b & 1 == 1).count();
    Some(resident as f64 / pages as f64)
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
