//! Shared test helpers: scratch folders, a stored-zip writer for hand-made archives, and the
//! Python (torch) discovery rule.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh empty folder under cargo's per-target temp dir.
pub fn scratch(tag: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "convert-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The committed fixture `tests/data/<name>`.
pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data")
        .join(name)
}

pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

/// A zip archive of stored entries, as `torch.save` writes them.
pub fn stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, body) in entries {
        let off = out.len() as u32;
        let crc = crc32(body);
        let len = (body.len() as u32).to_le_bytes();
        out.extend_from_slice(b"PK\x03\x04\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&len);
        out.extend_from_slice(&len);
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&[0, 0]);
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(body);
        central.extend_from_slice(b"PK\x01\x02\x14\x00\x14\x00\x00\x00\x00\x00\x00\x00\x00\x00");
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&len);
        central.extend_from_slice(&len);
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 12]);
        central.extend_from_slice(&off.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
    }
    let cd_off = out.len() as u32;
    out.extend_from_slice(&central);
    out.extend_from_slice(b"PK\x05\x06\x00\x00\x00\x00");
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(entries.len() as u16).to_le_bytes());
    out.extend_from_slice(&(central.len() as u32).to_le_bytes());
    out.extend_from_slice(&cd_off.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Pickle protocol-2 helpers for hand-built streams.
pub fn unicode(s: &str) -> Vec<u8> {
    let mut v = vec![b'X'];
    v.extend_from_slice(&(s.len() as u32).to_le_bytes());
    v.extend_from_slice(s.as_bytes());
    v
}

/// `{name: _rebuild_tensor_v2(storage(FloatStorage, key, numel), offset, size, stride, False, OrderedDict())}`
/// for 1-d float tensors, as a protocol-2 pickle.
pub fn state_dict_pickle(tensors: &[(&str, &str, u8, u8, u8)]) -> Vec<u8> {
    // (name, storage key, storage numel, offset, size)
    let mut p = b"\x80\x02}(".to_vec();
    for (name, key, numel, offset, size) in tensors {
        p.extend(unicode(name));
        p.extend_from_slice(b"ctorch._utils\n_rebuild_tensor_v2\n((");
        p.extend(unicode("storage"));
        p.extend_from_slice(b"ctorch\nFloatStorage\n");
        p.extend(unicode(key));
        p.extend(unicode("cpu"));
        p.extend_from_slice(&[
            b'K', *numel, b't', b'Q', b'K', *offset, b'K', *size, 0x85, b'K', 1, 0x85, 0x89,
        ]);
        p.extend_from_slice(b"ccollections\nOrderedDict\n)Rt");
        p.push(b'R');
    }
    p.extend_from_slice(b"u.");
    p
}

/// The interpreter for torch tests: `SAFETENSORS_TEST_PYTHON`, else `<repo>/.venv/bin/python`,
/// else `python3`. Panics when torch cannot be imported with it: the tests that need torch
/// are `#[ignore]`d, so they run (and must pass) only when asked for.
pub fn torch_python() -> PathBuf {
    let repo_venv = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../.venv/bin/python");
    let python = std::env::var_os("SAFETENSORS_TEST_PYTHON")
        .map(PathBuf::from)
        .or_else(|| repo_venv.exists().then_some(repo_venv))
        .unwrap_or_else(|| PathBuf::from("python3"));
    let ok = Command::new(&python)
        .arg(helper())
        .arg("probe")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(
        ok,
        "torch is not importable with {} (set SAFETENSORS_TEST_PYTHON, or run `make setup`)",
        python.display()
    );
    python
}

pub fn helper() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/torch_helper.py")
}

/// Runs the helper; panics with its stderr on failure; returns stdout.
pub fn run_helper(python: &Path, args: &[&std::ffi::OsStr]) -> String {
    let out = Command::new(python)
        .arg(helper())
        .args(args)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "torch_helper {:?} failed:\n{}",
        args,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}
