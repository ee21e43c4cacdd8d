//! Which filesystem a file lives on, and so whether to map it: what [`Backend::auto`]
//! decides with.
//!
//! A memory map is the fastest way to read a file on a local disk, and a poor one on a
//! network or FUSE filesystem: every first touch of a page waits a network round trip (or
//! a user-space daemon) with the reading thread stalled in a page fault, and a file
//! changed or truncated on another machine can make the next touch of the map kill the
//! process with `SIGBUS` instead of failing a read. Positioned reads (`pread`) turn the
//! same events into ordinary I/O errors and let the reader ask for large blocks at once.
//!
//! So `auto` asks the kernel which filesystem holds the file (`fstatfs`'s `f_type`, Linux
//! and Android) and reads with `pread` on the network, cluster, FUSE and virtual-machine
//! shared-folder filesystems of [`Filesystem::is_remote`], with a map everywhere else
//! (including a filesystem the table does not know, and platforms without `f_type`).
//! The environment variable [`AUTO_BACKEND_ENV`] (`SAFETENSORS_AUTO_BACKEND=pread` or
//! `=mmap`) overrides that decision for every file `auto` opens; an explicit backend is
//! never overridden.
//!
//! [`Backend::auto`]: crate::source::file::Backend::auto

use std::fmt;
use std::fs::File;
use std::path::Path;

use crate::format::error::Error;

/// The environment variable that overrides what `auto` picks: `pread` or `mmap` for every
/// file, whatever its filesystem (`auto` or unset: decide by the filesystem).
pub const AUTO_BACKEND_ENV: &str = "SAFETENSORS_AUTO_BACKEND";

/// A filesystem, as `statfs(2)` names it: by the magic number in `f_type`.
///
/// ```
/// use safetensors::source::filesystem::Filesystem;
///
/// let nfs = Filesystem::from_magic(0x6969);
/// assert_eq!((nfs.name(), nfs.is_remote()), (Some("nfs"), true));
/// let ext4 = Filesystem::from_magic(0xEF53);
/// assert_eq!((ext4.name(), ext4.is_remote()), (Some("ext4"), false));
/// assert_eq!(Filesystem::from_magic(0x1234_5678).to_string(), "0x12345678");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Filesystem {
    magic: u32,
}

/// Where a filesystem's data lives, for the table below.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// On this machine's disks or memory: mapping is fine.
    Local,
    /// Behind a network, a cluster lock manager, a user-space daemon (FUSE) or a
    /// hypervisor: positioned reads.
    Remote,
}

/// Known `f_type` values: Linux's `include/uapi/linux/magic.h` and `statfs(2)`, and for
/// filesystems built outside the kernel tree (Lustre, GPFS, BeeGFS, PanFS, IBRIX, ACFS,
/// StorNext, the VM shared folders) the values coreutils' `stat -f` and gnulib's
/// `file_is_remote` use. FUSE covers every filesystem served through it (sshfs, s3fs,
/// gcsfuse, GlusterFS and CephFS clients in FUSE mode, virtiofs). Overlayfs counts as local:
/// container images stack it on local disks, and it maps as its lower layer does.
const TABLE: &[(u32, &str, Kind)] = &[
    // Network and cluster filesystems.
    (0x0000_6969, "nfs", Kind::Remote),
    (0x0000_517B, "smb", Kind::Remote),
    (0xFE53_4D42, "smb2", Kind::Remote),
    (0xFF53_4D42, "cifs", Kind::Remote),
    (0x0102_1997, "9p", Kind::Remote),
    (0x00C3_6400, "ceph", Kind::Remote),
    (0x5346_414F, "afs", Kind::Remote),
    (0x6B41_4653, "kafs", Kind::Remote),
    (0x7375_7245, "coda", Kind::Remote),
    (0x0000_564C, "ncp", Kind::Remote),
    (0x2003_0528, "orangefs", Kind::Remote),
    (0x7461_636F, "ocfs2", Kind::Remote),
    (0x0116_1970, "gfs2", Kind::Remote),
    (0x0BD0_0BD0, "lustre", Kind::Remote),
    (0x4750_4653, "gpfs", Kind::Remote),
    (0x1983_0326, "beegfs", Kind::Remote),
    (0xAAD7_AAEA, "panfs", Kind::Remote),
    (0x0131_11A8, "ibrix", Kind::Remote),
    (0x6163_6673, "acfs", Kind::Remote),
    (0xBEEF_DEAD, "stornext", Kind::Remote),
    // User-space filesystems.
    (0x6573_5546, "fuse", Kind::Remote),
    // Virtual machines' shared folders.
    (0x786F_4256, "vboxsf", Kind::Remote),
    (0xBACB_ACBC, "vmhgfs", Kind::Remote),
    (0x7C7C_6673, "prl_fs", Kind::Remote),
    // Local filesystems, named for reports.
    (0x0000_EF53, "ext4", Kind::Local),
    (0x5846_5342, "xfs", Kind::Local),
    (0x9123_683E, "btrfs", Kind::Local),
    (0xF2F5_2010, "f2fs", Kind::Local),
    (0x0102_1994, "tmpfs", Kind::Local),
    (0x8584_58F6, "ramfs", Kind::Local),
    (0x794C_7630, "overlay", Kind::Local),
    (0x7371_7368, "squashfs", Kind::Local),
    (0xE0F5_E1E2, "erofs", Kind::Local),
    (0x0000_4D44, "msdos", Kind::Local),
];

impl Filesystem {
    /// The filesystem whose `statfs` `f_type` is `magic` (only its low 32 bits are ever
    /// set: callers on 32-bit platforms pass a negative `f_type` cast to `u32`).
    pub const fn from_magic(magic: u32) -> Filesystem {
        Filesystem { magic }
    }

    /// The filesystem holding `file`, as the kernel reports it (`fstatfs`); `None` where
    /// the platform has no `f_type` (anything but Linux and Android) or the call failed.
    pub fn of(file: &File) -> Option<Filesystem> {
        sys::fstatfs_type(file).map(Filesystem::from_magic)
    }

    /// The filesystem holding `path` (a file or a folder; symbolic links are followed), as
    /// [`Filesystem::of`] asks it (`statfs`).
    pub fn of_path(path: &Path) -> Option<Filesystem> {
        sys::statfs_type(path).map(Filesystem::from_magic)
    }

    /// The magic number, `f_type`.
    pub const fn magic(self) -> u32 {
        self.magic
    }

    /// Its name (`"nfs"`, `"fuse"`, `"ext4"`, ...), if the table knows it.
    pub fn name(self) -> Option<&'static str> {
        self.entry().map(|&(_, name, _)| name)
    }

    /// True for the filesystems whose data lives behind a network, a cluster, a user-space
    /// daemon (FUSE) or a hypervisor, where `auto` reads with `pread` rather than a map.
    /// False for local and unknown filesystems.
    pub fn is_remote(self) -> bool {
        self.entry()
            .is_some_and(|&(_, _, kind)| kind == Kind::Remote)
    }

    fn entry(self) -> Option<&'static (u32, &'static str, Kind)> {
        TABLE.iter().find(|(magic, _, _)| *magic == self.magic)
    }
}

/// Its name, or its magic number in hexadecimal when the table does not know it.
impl fmt::Display for Filesystem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "{:#x}", self.magic),
        }
    }
}

/// What `auto` picked for one file, and what it saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AutoChoice {
    /// True for a memory map, false for positioned reads.
    pub mmap: bool,
    /// The filesystem it saw (`None`: the platform does not say).
    pub filesystem: Option<Filesystem>,
    /// True when [`AUTO_BACKEND_ENV`] made the choice rather than the filesystem.
    pub overridden: bool,
}

impl AutoChoice {
    /// The choice for a file on `filesystem`, with `overriding` the value of
    /// [`AUTO_BACKEND_ENV`] (if set). Pure: the rule itself.
    ///
    /// ```
    /// use safetensors::source::filesystem::{AutoChoice, Filesystem};
    ///
    /// let fuse = Some(Filesystem::from_magic(0x6573_5546));
    /// assert!(!AutoChoice::decide(fuse, None).unwrap().mmap);
    /// assert!(AutoChoice::decide(fuse, Some("mmap")).unwrap().mmap);
    /// assert!(AutoChoice::decide(None, None).unwrap().mmap);
    /// assert!(AutoChoice::decide(None, Some("uring")).is_err());
    /// ```
    pub fn decide(filesystem: Option<Filesystem>, overriding: Option<&str>) -> Result<Self, Error> {
        let by_filesystem = !filesystem.is_some_and(Filesystem::is_remote);
        let (mmap, overridden) = match overriding.map(str::trim) {
            None | Some("") | Some("auto") => (by_filesystem, false),
            Some("mmap") => (true, true),
            Some("pread") => (false, true),
            Some(other) => {
                return Err(Error::InvalidArgument(format!(
                    "{AUTO_BACKEND_ENV}={other:?} is not a backend: use \"mmap\", \"pread\" or \
                     \"auto\" (decide by the filesystem), or unset it"
                )))
            }
        };
        Ok(AutoChoice {
            mmap,
            filesystem,
            overridden,
        })
    }

    /// The choice for `file`: its filesystem, and [`AUTO_BACKEND_ENV`] if set.
    pub fn for_file(file: &File) -> Result<Self, Error> {
        Self::decide(Filesystem::of(file), overriding().as_deref())
    }

    /// The choice for the file or folder at `path` (a sharded checkpoint decides once, by
    /// the folder holding its index).
    pub fn for_path(path: &Path) -> Result<Self, Error> {
        Self::decide(Filesystem::of_path(path), overriding().as_deref())
    }

    /// `"mmap"` or `"pread"`.
    pub const fn backend_name(self) -> &'static str {
        if self.mmap {
            "mmap"
        } else {
            "pread"
        }
    }
}

/// `pread (nfs)`, `mmap (ext4)`, `pread (SAFETENSORS_AUTO_BACKEND)`, `mmap (filesystem unknown)`.
impl fmt::Display for AutoChoice {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let backend = self.backend_name();
        match (self.overridden, self.filesystem) {
            (true, _) => write!(f, "{backend} ({AUTO_BACKEND_ENV})"),
            (false, Some(fs)) => write!(f, "{backend} ({fs})"),
            (false, None) => write!(f, "{backend} (filesystem unknown)"),
        }
    }
}

/// The value of [`AUTO_BACKEND_ENV`], if set (a value that is not Unicode reads as itself,
/// lossily, and is refused by [`AutoChoice::decide`]).
fn overriding() -> Option<String> {
    std::env::var_os(AUTO_BACKEND_ENV).map(|v| v.to_string_lossy().into_owned())
}

/// `statfs`/`fstatfs` where they report `f_type`.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod sys {
    use std::ffi::CString;
    use std::fs::File;
    use std::mem::MaybeUninit;
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    pub(super) fn fstatfs_type(file: &File) -> Option<u32> {
        let mut buf = MaybeUninit::<libc::statfs>::uninit();
        // SAFETY: the descriptor is open for as long as `file` is borrowed, and `buf` is a
        // writable `statfs` the call fills in whole when it returns 0.
        let rc = unsafe { libc::fstatfs(file.as_raw_fd(), buf.as_mut_ptr()) };
        // SAFETY: a return of 0 means the kernel filled `buf`.
        (rc == 0).then(|| magic(unsafe { buf.assume_init() }))
    }

    pub(super) fn statfs_type(path: &Path) -> Option<u32> {
        let path = CString::new(path.as_os_str().as_bytes()).ok()?;
        let mut buf = MaybeUninit::<libc::statfs>::uninit();
        // SAFETY: `path` is a NUL-terminated string alive for the call, and `buf` is a
        // writable `statfs` the call fills in whole when it returns 0.
        let rc = unsafe { libc::statfs(path.as_ptr(), buf.as_mut_ptr()) };
        // SAFETY: a return of 0 means the kernel filled `buf`.
        (rc == 0).then(|| magic(unsafe { buf.assume_init() }))
    }

    /// `f_type`'s type differs by platform (a signed word on glibc, unsigned on musl); the
    /// magic numbers are 32 bits (a 32-bit platform reports those above `i32::MAX` as
    /// negative): keep the low 32.
    #[allow(clippy::unnecessary_cast)]
    fn magic(stat: libc::statfs) -> u32 {
        stat.f_type as u32
    }
}

/// Elsewhere the filesystem is unknown, and `auto` maps.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
mod sys {
    use std::fs::File;
    use std::path::Path;

    pub(super) fn fstatfs_type(_file: &File) -> Option<u32> {
        None
    }

    pub(super) fn statfs_type(_path: &Path) -> Option<u32> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn choice(magic: u32) -> AutoChoice {
        AutoChoice::decide(Some(Filesystem::from_magic(magic)), None).unwrap()
    }

    #[test]
    fn network_cluster_and_fuse_filesystems_are_read_with_pread() {
        for (magic, name) in [
            (0x6969, "nfs"),
            (0x517B, "smb"),
            (0xFE53_4D42, "smb2"),
            (0xFF53_4D42, "cifs"),
            (0x6573_5546, "fuse"),
            (0x0102_1997, "9p"),
            (0x00C3_6400, "ceph"),
            (0x0BD0_0BD0, "lustre"),
            (0x4750_4653, "gpfs"),
            (0x5346_414F, "afs"),
            (0x2003_0528, "orangefs"),
            (0x1983_0326, "beegfs"),
            (0x786F_4256, "vboxsf"),
        ] {
            let fs = Filesystem::from_magic(magic);
            assert_eq!(fs.name(), Some(name), "{magic:#x}");
            assert!(fs.is_remote(), "{name}");
            let c = choice(magic);
            assert!(!c.mmap, "{name}");
            assert_eq!(c.to_string(), format!("pread ({name})"));
        }
    }

    #[test]
    fn local_and_unknown_filesystems_are_mapped() {
        for (magic, name) in [
            (0xEF53, "ext4"),
            (0x5846_5342, "xfs"),
            (0x9123_683E, "btrfs"),
            (0x0102_1994, "tmpfs"),
            (0x794C_7630, "overlay"),
        ] {
            assert!(!Filesystem::from_magic(magic).is_remote(), "{name}");
            assert_eq!(choice(magic).to_string(), format!("mmap ({name})"));
        }
        let unknown = choice(0x2FC1_2FC1);
        assert!(unknown.mmap);
        assert_eq!(unknown.to_string(), "mmap (0x2fc12fc1)");
        let no_platform = AutoChoice::decide(None, None).unwrap();
        assert_eq!(no_platform.to_string(), "mmap (filesystem unknown)");
    }

    #[test]
    fn every_magic_in_the_table_appears_once() {
        for (i, (magic, name, _)) in TABLE.iter().enumerate() {
            assert!(
                TABLE[i + 1..]
                    .iter()
                    .all(|(m, n, _)| m != magic && n != name),
                "{name} ({magic:#x}) twice"
            );
        }
    }

    #[test]
    fn the_environment_overrides_the_filesystem_and_a_bad_value_is_refused() {
        let nfs = Some(Filesystem::from_magic(0x6969));
        let ext4 = Some(Filesystem::from_magic(0xEF53));
        let mapped = AutoChoice::decide(nfs, Some("mmap")).unwrap();
        assert!(mapped.mmap && mapped.overridden);
        assert_eq!(mapped.to_string(), "mmap (SAFETENSORS_AUTO_BACKEND)");
        assert!(!AutoChoice::decide(ext4, Some(" pread ")).unwrap().mmap);
        for unset in ["", "auto"] {
            let c = AutoChoice::decide(nfs, Some(unset)).unwrap();
            assert!(!c.mmap && !c.overridden);
        }
        let err = AutoChoice::decide(ext4, Some("uring"))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("SAFETENSORS_AUTO_BACKEND=\"uring\" is not a backend"),
            "{err}"
        );
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    #[test]
    fn the_kernel_names_the_filesystem_of_an_open_file_and_of_its_folder() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        std::fs::write(&path, b"x").unwrap();
        let of_file = Filesystem::of(&File::open(&path).unwrap());
        assert!(of_file.is_some());
        assert_eq!(of_file, Filesystem::of_path(dir.path()));
        assert_eq!(Filesystem::of_path(&dir.path().join("missing")), None);
    }
}
