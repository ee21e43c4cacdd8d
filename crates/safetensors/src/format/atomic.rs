//! Replacing a file safely ([`write_atomically`], and the writer's own files): write everything to a temporary file in the same folder,
//! then rename it over the target. A failure or crash midway leaves the old file
//! intact, and a reader that memory-mapped the old file never sees it truncated.
//!
//! The temporary file is named `.<target name>.<pid>.<counter>.tmp`. A process killed
//! mid-write leaves one behind; the next save to the same target removes those whose
//! writer is gone (on Linux: no `/proc/<pid>`; elsewhere: untouched for an hour).

use std::fs::{self, File, OpenOptions};
use std::io::{self, IoSlice, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

/// Replaces `path` with `bytes` the way [`serialize_to_file`](crate::format::serialize::serialize_to_file) replaces files: through
/// a temporary file in the same folder renamed into place, so readers see the old content or
/// the new, never a partial file. For the small files that travel with models (index JSON).
pub fn write_atomically(path: impl AsRef<Path>, bytes: &[u8]) -> io::Result<()> {
    let mut file = AtomicFile::create(path.as_ref())?;
    file.write_all(bytes)?;
    file.commit()
}

/// A temporary file that is removed unless [`AtomicFile::commit`] renames it into place.
pub(crate) struct AtomicFile {
    target: PathBuf,
    temp: PathBuf,
    writer: Option<File>,
}

impl AtomicFile {
    /// Creates the temporary file beside `target`.
    pub fn create(target: &Path) -> io::Result<Self> {
        if target.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("{} is a directory", target.display()),
            ));
        }
        let dir = match target.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = target
            .file_name()
            .ok_or_else(|| {
                io::Error::new(
                    io::ErrorKind::InvalidInput,
                    format!("{} names no file", target.display()),
                )
            })?
            .to_string_lossy();
        remove_stale_temps(&dir, &name);
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let mut attempt = 0;
        loop {
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let temp = dir.join(format!(".{name}.{}.{n}.tmp", std::process::id()));
            match OpenOptions::new().write(true).create_new(true).open(&temp) {
                Ok(file) => {
                    return Ok(AtomicFile {
                        target: target.to_path_buf(),
                        temp,
                        // Unbuffered: the serializer hands over large vectored writes.
                        writer: Some(file),
                    });
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
                Err(e) => return Err(e),
            }
        }
    }

    /// Overwrites the file's first `bytes.len()` bytes (a header laid out before the data it
    /// describes was known), then goes on writing where it was.
    pub fn rewrite_start(&mut self, bytes: &[u8]) -> io::Result<()> {
        use std::io::{Seek, SeekFrom};
        let file = self.writer.as_mut().expect("not committed yet");
        let end = file.stream_position()?;
        file.seek(SeekFrom::Start(0))?;
        file.write_all(bytes)?;
        file.seek(SeekFrom::Start(end))?;
        Ok(())
    }

    /// Writes all of `bytes` at `offset`, wherever the file position is: the streaming
    /// writer puts each tensor at its planned place, in whatever order they come.
    pub fn write_all_at(&self, bytes: &[u8], offset: u64) -> io::Result<()> {
        let file = self.writer.as_ref().expect("not committed yet");
        #[cfg(unix)]
        {
            std::os::unix::fs::FileExt::write_all_at(file, bytes, offset)
        }
        #[cfg(windows)]
        {
            let (mut bytes, mut offset) = (bytes, offset);
            while !bytes.is_empty() {
                match std::os::windows::fs::FileExt::seek_write(file, bytes, offset) {
                    Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                    Ok(n) => {
                        bytes = &bytes[n..];
                        offset += n as u64;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(())
        }
    }

    /// Sets the file's length (a file written out of order gets its final size first).
    pub fn set_len(&self, len: u64) -> io::Result<()> {
        self.writer
            .as_ref()
            .expect("not committed yet")
            .set_len(len)
    }

    /// The path the file is renamed to on [`AtomicFile::commit`].
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// Flushes and renames the temporary file over the target, keeping the target's
    /// permissions if it existed.
    pub fn commit(mut self) -> io::Result<()> {
        let file = self.writer.take().expect("commit is called once");
        if let Ok(old) = fs::metadata(&self.target) {
            file.set_permissions(old.permissions())?;
        }
        drop(file);
        fs::rename(&self.temp, &self.target)
    }
}

/// The writer's process id when `file_name` is a temporary file of target `name`.
fn temp_owner(file_name: &str, name: &str) -> Option<u32> {
    let rest = file_name
        .strip_prefix('.')?
        .strip_prefix(name)?
        .strip_prefix('.')?
        .strip_suffix(".tmp")?;
    let (pid, counter) = rest.split_once('.')?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (digits(pid) && digits(counter)).then(|| pid.parse().ok())?
}

/// Whether the process that wrote a temporary file may still be writing it.
fn writer_may_be_alive(pid: u32, path: &Path) -> bool {
    if pid == std::process::id() {
        return true; // another thread of this process
    }
    if cfg!(target_os = "linux") {
        return Path::new("/proc").join(pid.to_string()).exists();
    }
    let age = fs::symlink_metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.elapsed().ok());
    !matches!(age, Some(age) if age.as_secs() > 3600)
}

/// Removes temporary files of `name` in `dir` left by writers that died mid-save.
/// Best effort: a folder that cannot be listed is left alone.
fn remove_stale_temps(dir: &Path, name: &str) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|f| temp_owner(f, name)) else {
            continue;
        };
        let path = entry.path();
        if entry.file_type().is_ok_and(|t| t.is_file()) && !writer_may_be_alive(pid, &path) {
            let _ = fs::remove_file(&path);
        }
    }
}

impl Write for AtomicFile {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.writer.as_mut().expect("not committed").write(buf)
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.writer
            .as_mut()
            .expect("not committed")
            .write_vectored(bufs)
    }
    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").write_all(buf)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.writer.as_mut().expect("not committed").flush()
    }
}

impl Drop for AtomicFile {
    fn drop(&mut self) {
        if self.writer.take().is_some() {
            // Not committed: an error happened. Remove the partial file; the target is untouched.
            let _ = fs::remove_file(&self.temp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_its_own_temporary_files() {
        assert_eq!(
            temp_owner(".m.safetensors.123.4.tmp", "m.safetensors"),
            Some(123)
        );
        for other in [
            ".m.safetensors.123.4.tmp.x",
            ".m.safetensors.abc.4.tmp",
            ".m.safetensors.123.tmp",
            "m.safetensors.123.4.tmp",
            ".n.safetensors.123.4.tmp",
            ".m.safetensors.1.2.3.tmp",
        ] {
            assert_eq!(temp_owner(other, "m.safetensors"), None, "{other}");
        }
    }

    #[test]
    fn the_next_save_removes_stale_temporaries_only() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("m.safetensors");
        // pid 0 never names a user process (and has no /proc entry).
        let stale = dir.path().join(".m.safetensors.0.7.tmp");
        let live = dir
            .path()
            .join(format!(".m.safetensors.{}.99.tmp", std::process::id()));
        let foreign = dir.path().join(".other.safetensors.0.1.tmp");
        for p in [&stale, &live, &foreign] {
            fs::write(p, b"partial").unwrap();
        }
        if cfg!(not(target_os = "linux")) {
            return; // the age rule needs an hour-old file
        }
        let mut f = AtomicFile::create(&target).unwrap();
        f.write_all(b"new").unwrap();
        f.commit().unwrap();
        assert_eq!(fs::read(&target).unwrap(), b"new");
        assert!(!stale.exists());
        assert!(live.exists() && foreign.exists());
    }
}
