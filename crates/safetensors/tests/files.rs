//! Files on disk: writing through a temporary file that replaces the target only when
//! complete, and reading through mmap or pread, refusing files that change under us.

use std::borrow::Cow;
use std::panic::{catch_unwind, AssertUnwindSafe};

use safetensors::source::file::{Backend, SafeFile};
use safetensors::tensor::TensorView;
use safetensors::{serialize, serialize_to_file, Dtype, Error, SafeTensors, View};

// SAFETY: the mmap backend's contract (no in-place writer, no truncation while a file is
// open) holds for every use below: each file lives in this test's own temporary folder and
// is only replaced by rename or, in the tests of that check, shrunk before a read that the
// size check then refuses, never while bytes borrowed from the map are alive.
const MMAP: Backend = unsafe { Backend::mmap() };

fn f32_bytes(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

#[test]
fn write_then_read_both_backends() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let a = f32_bytes(12);
    let b = vec![7u8; 5];
    let tensors = vec![
        ("a", TensorView::new(Dtype::F32, vec![3, 4], &a).unwrap()),
        ("b", TensorView::new(Dtype::U8, vec![5], &b).unwrap()),
    ];
    serialize_to_file(tensors.clone(), vec![("format", "pt")], &path).unwrap();
    let on_disk = std::fs::read(&path).unwrap();
    assert_eq!(on_disk, serialize(tensors, vec![("format", "pt")]).unwrap());

    for backend in [MMAP, Backend::Pread] {
        let f = SafeFile::open(&path, backend).unwrap();
        assert_eq!(f.backend(), backend);
        assert_eq!(f.metadata().offset_keys(), ["a", "b"]);
        assert_eq!(&f.tensor_bytes("a").unwrap()[..], &a[..]);
        let mut row = [0u8; 16];
        f.read_into("a", 16..32, &mut row).unwrap();
        assert_eq!(&row, &a[16..32]);
        assert!(f.read_into("a", 40..56, &mut row).is_err());
        assert!(matches!(
            f.tensor_bytes("zzz"),
            Err(Error::TensorNotFound(_))
        ));
        assert_eq!(f.data_start(), 8 + f.header_len() as u64);
    }
    let mapped = SafeFile::open(&path, MMAP).unwrap();
    assert_eq!(mapped.tensor("b").unwrap().data(), &b[..]);
    assert!(SafeFile::open(&path, Backend::Pread)
        .unwrap()
        .tensor("b")
        .is_err());
    // Every view at once, in data order: the same as one at a time.
    let views: Vec<_> = mapped
        .views()
        .unwrap()
        .map(|(name, view)| (name, view.unwrap()))
        .collect();
    assert_eq!(views.len(), 2);
    for (name, view) in views {
        assert_eq!(view, mapped.tensor(name).unwrap(), "{name}");
    }
    assert!(SafeFile::open(&path, Backend::Pread)
        .unwrap()
        .views()
        .is_err());
}

#[test]
fn views_of_a_shrunk_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = f32_bytes(1024);
    serialize_to_file(
        [("a", TensorView::new(Dtype::F32, vec![1024], &a).unwrap())],
        None,
        &path,
    )
    .unwrap();
    let f = SafeFile::open(&path, MMAP).unwrap();
    let full = std::fs::read(&path).unwrap();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(100)
        .unwrap();
    let e = f.views().err().unwrap();
    assert!(
        matches!(
            e,
            Error::FileChanged {
                actual_len: 100,
                ..
            }
        ),
        "{e:?}"
    );
    std::fs::write(&path, full).unwrap();
}

#[test]
fn missing_file_is_an_io_error() {
    let e = SafeFile::open("/nonexistent/x.safetensors", MMAP).unwrap_err();
    assert!(matches!(e, Error::IoError(ref io) if io.kind() == std::io::ErrorKind::NotFound));
}

#[test]
fn shrunk_file_is_refused_not_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = f32_bytes(1024);
    serialize_to_file(
        [("a", TensorView::new(Dtype::F32, vec![1024], &a).unwrap())],
        None,
        &path,
    )
    .unwrap();
    for backend in [MMAP, Backend::Pread] {
        let f = SafeFile::open(&path, backend).unwrap();
        let full = std::fs::read(&path).unwrap();
        std::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(100)
            .unwrap();
        let mut buf = vec![0u8; 4096];
        let e = f.read_into("a", 0..4096, &mut buf).unwrap_err();
        assert!(
            matches!(
                e,
                Error::FileChanged {
                    actual_len: 100,
                    ..
                }
            ),
            "{backend:?}: {e:?}"
        );
        assert!(f.tensor_bytes("a").is_err());
        std::fs::write(&path, full).unwrap();
    }
}

/// A tensor whose bytes cannot be produced: simulates a failure in the middle of a write.
struct Exploding;
impl View for Exploding {
    fn dtype(&self) -> Dtype {
        Dtype::U8
    }
    fn shape(&self) -> &[usize] {
        &[3]
    }
    fn data(&self) -> Cow<'_, [u8]> {
        panic!("the tensor's memory went away mid-write")
    }
    fn data_len(&self) -> usize {
        3
    }
}

/// Either a real tensor or one that fails when written.
enum Maybe<'a> {
    Real(TensorView<'a>),
    Fails(Exploding),
}
impl View for Maybe<'_> {
    fn dtype(&self) -> Dtype {
        match self {
            Maybe::Real(v) => v.dtype(),
            Maybe::Fails(v) => v.dtype(),
        }
    }
    fn shape(&self) -> &[usize] {
        match self {
            Maybe::Real(v) => v.shape(),
            Maybe::Fails(v) => v.shape(),
        }
    }
    fn data(&self) -> Cow<'_, [u8]> {
        match self {
            Maybe::Real(v) => View::data(v),
            Maybe::Fails(v) => v.data(),
        }
    }
    fn data_len(&self) -> usize {
        match self {
            Maybe::Real(v) => v.data_len(),
            Maybe::Fails(v) => v.data_len(),
        }
    }
}

fn only_entry(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

#[test]
fn interrupted_write_leaves_old_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"the old file").unwrap();
    let a = f32_bytes(300_000);
    // F32 is laid out before U8, so the big tensor is already written when the U8 one fails.
    let tensors = vec![
        (
            "big",
            Maybe::Real(TensorView::new(Dtype::F32, vec![300_000], &a).unwrap()),
        ),
        ("boom", Maybe::Fails(Exploding)),
    ];
    let result = catch_unwind(AssertUnwindSafe(|| serialize_to_file(tensors, None, &path)));
    assert!(result.is_err(), "the write was interrupted by a panic");
    assert_eq!(std::fs::read(&path).unwrap(), b"the old file");
    assert_eq!(
        only_entry(dir.path()),
        ["model.safetensors"],
        "no temporary file left behind"
    );
}

#[test]
fn failed_write_leaves_old_file_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    std::fs::write(&path, b"the old file").unwrap();
    let a = f32_bytes(4);
    let bad = vec![
        ("x", TensorView::new(Dtype::F32, vec![4], &a).unwrap()),
        ("x", TensorView::new(Dtype::F32, vec![4], &a).unwrap()),
    ];
    assert!(serialize_to_file(bad, None, &path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), b"the old file");
    assert_eq!(only_entry(dir.path()), ["model.safetensors"]);
    // A directory as target is refused too.
    assert!(serialize_to_file(
        [("x", TensorView::new(Dtype::F32, vec![4], &a).unwrap())],
        None,
        dir.path()
    )
    .is_err());
}

#[test]
fn replacing_a_mapped_file_keeps_the_old_mapping_valid() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = f32_bytes(1000);
    serialize_to_file(
        [("a", TensorView::new(Dtype::F32, vec![1000], &a).unwrap())],
        None,
        &path,
    )
    .unwrap();
    let reader = SafeFile::open(&path, MMAP).unwrap();
    let b = vec![1u8; 10];
    serialize_to_file(
        [("b", TensorView::new(Dtype::U8, vec![10], &b).unwrap())],
        None,
        &path,
    )
    .unwrap();
    // The old reader still sees the old, complete file; a new one sees the new file.
    assert_eq!(&reader.tensor_bytes("a").unwrap()[..], &a[..]);
    let again = std::fs::read(&path).unwrap();
    assert_eq!(SafeTensors::deserialize(&again).unwrap().names(), ["b"]);
}

#[cfg(unix)]
#[test]
fn replacing_keeps_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    std::fs::write(&path, b"old").unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
    let b = vec![1u8; 10];
    serialize_to_file(
        [("b", TensorView::new(Dtype::U8, vec![10], &b).unwrap())],
        None,
        &path,
    )
    .unwrap();
    assert_eq!(
        std::fs::metadata(&path).unwrap().permissions().mode() & 0o777,
        0o640
    );
}

#[test]
fn concurrent_reads_from_many_threads() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let a = f32_bytes(10_000);
    serialize_to_file(
        [(
            "a",
            TensorView::new(Dtype::F32, vec![100, 100], &a).unwrap(),
        )],
        None,
        &path,
    )
    .unwrap();
    for backend in [MMAP, Backend::Pread] {
        let f = SafeFile::open(&path, backend).unwrap();
        std::thread::scope(|s| {
            for t in 0..8 {
                let (f, a) = (&f, &a);
                s.spawn(move || {
                    for row in (t..100).step_by(8) {
                        let mut buf = [0u8; 400];
                        f.read_into("a", row * 400..row * 400 + 400, &mut buf)
                            .unwrap();
                        assert_eq!(&buf[..], &a[row * 400..row * 400 + 400]);
                    }
                });
            }
        });
    }
}

#[test]
fn write_atomically_replaces_whole_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors.index.json");
    std::fs::write(&path, b"old").unwrap();
    safetensors::write::write_atomically(&path, b"{\"weight_map\":{}}").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"{\"weight_map\":{}}");
    assert_eq!(only_entry(dir.path()), ["model.safetensors.index.json"]);
    // A target that cannot be written (a folder) leaves nothing behind.
    assert!(safetensors::write::write_atomically(dir.path(), b"x").is_err());
    assert_eq!(only_entry(dir.path()), ["model.safetensors.index.json"]);
}
