//! Reading a `torch.save` file into a [`TorchCheckpoint`]: named tensors with their dtype, shape and a
//! validated location inside the (memory-mapped) file.
//!
//! Two container formats are understood: the zip archive `torch.save` writes by default
//! (`<prefix>/data.pkl`, `<prefix>/data/<key>`, `<prefix>/byteorder`) and the legacy stream
//! (`_use_new_zipfile_serialization=False`: magic number, protocol, sys_info and object pickles,
//! then the list of storage keys and each storage as an 8-byte element count plus raw bytes).
//! Every tensor's geometry is checked against the bytes its storage really has before a
//! [`TorchCheckpoint`] is returned, so reading a tensor's bytes afterwards cannot fail.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use crate::archive::{self, Archive};
use crate::error::{excerpt, ConvertError};
use crate::mmap::Mapped;
use crate::pickle::{self, PickleError, Value};
use crate::torch::{self, Torch};
use crate::torch_types::{TensorRecord, TorchDtype};

/// A tensor whose elements overlap (stride 0 or overlapping strides) is materialized in full;
/// it may exceed the storage bytes it reads by at most this much.
const MAX_EXPANSION: u64 = 64 << 20;

/// The torch legacy format's magic number, `0x1950a86a20f9469cfc6c`, little-endian.
const LEGACY_MAGIC: [u8; 10] = [0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19];
const LEGACY_PROTOCOL: i64 = 1001;

/// A PyTorch checkpoint opened for conversion: its tensors by name, nothing executed.
pub struct TorchCheckpoint {
    path: PathBuf,
    map: Mapped,
    /// Byte range of each root storage in the file.
    storages: Vec<Range<usize>>,
    storage_keys: Vec<String>,
    tensors: Vec<TensorEntry>,
    by_name: HashMap<String, usize>,
    big_endian: bool,
}

/// One tensor of a [`TorchCheckpoint`].
#[derive(Debug, Clone)]
pub struct TensorEntry {
    name: String,
    torch_dtype: TorchDtype,
    dtype: safetensors::Dtype,
    shape: Vec<usize>,
    /// Index into the checkpoint's root storages.
    storage: usize,
    /// Byte offset of element 0 within the root storage.
    start: usize,
    size: Vec<usize>,
    stride: Vec<usize>,
    nbytes: usize,
    /// Bytes of the root storage the tensor touches, `[lo, hi)`.
    span: Range<usize>,
    contiguous: bool,
}

impl TensorEntry {
    /// The tensor's name in the state dict.
    pub fn name(&self) -> &str {
        &self.name
    }
    /// The torch dtype.
    pub fn torch_dtype(&self) -> TorchDtype {
        self.torch_dtype
    }
    /// The safetensors dtype.
    pub fn dtype(&self) -> safetensors::Dtype {
        self.dtype
    }
    /// The safetensors shape (torch's shape, except `float4_e2m1fn_x2` doubles the last dim).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }
    /// The torch shape.
    pub fn torch_shape(&self) -> &[usize] {
        &self.size
    }
    /// The torch strides, in elements.
    pub fn torch_stride(&self) -> &[usize] {
        &self.stride
    }
    /// Number of bytes of the tensor in C order.
    pub fn byte_len(&self) -> usize {
        self.nbytes
    }
    /// Whether the tensor is stored C-contiguous (its bytes are one run of its storage).
    pub fn is_contiguous(&self) -> bool {
        self.contiguous
    }
    /// The byte range of its storage this tensor reads.
    pub(crate) fn span(&self) -> Range<usize> {
        self.span.clone()
    }
    /// Whether `other` is the very same view (storage, offset, shape, strides, dtype).
    pub(crate) fn same_view(&self, other: &TensorEntry) -> bool {
        self.storage == other.storage
            && self.start == other.start
            && self.size == other.size
            && self.stride == other.stride
            && self.torch_dtype == other.torch_dtype
    }
    /// Index of its root storage.
    pub(crate) fn storage_index(&self) -> usize {
        self.storage
    }
}

impl std::fmt::Debug for TorchCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TorchCheckpoint")
            .field("path", &self.path)
            .field("tensors", &self.tensors.len())
            .field("big_endian", &self.big_endian)
            .finish()
    }
}

impl TorchCheckpoint {
    /// The file this was read from.
    pub fn path(&self) -> &Path {
        &self.path
    }
    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }
    /// Whether the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
    /// The tensors, in the order the state dict lists them.
    pub fn tensors(&self) -> &[TensorEntry] {
        &self.tensors
    }
    /// Tensor names, in state-dict order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.iter().map(|t| t.name.as_str())
    }
    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&TensorEntry> {
        self.by_name.get(name).map(|&i| &self.tensors[i])
    }
    /// Whether the checkpoint was written on a big-endian machine (bytes are swapped on read).
    pub fn is_big_endian(&self) -> bool {
        self.big_endian
    }
    /// The storage key (the `data/<key>` record) a tensor reads from.
    pub fn storage_key(&self, entry: &TensorEntry) -> &str {
        &self.storage_keys[entry.storage]
    }

    /// The tensor's bytes as safetensors stores them: C order, little-endian. Borrowed from the
    /// mapped file when the tensor is contiguous, gathered otherwise.
    pub fn tensor_bytes(&self, entry: &TensorEntry) -> Cow<'_, [u8]> {
        let storage = &self.map.bytes()[self.storages[entry.storage].clone()];
        gather(storage, entry, self.big_endian)
    }

    /// Like [`TorchCheckpoint::tensor_bytes`], by name.
    pub fn tensor_bytes_by_name(&self, name: &str) -> Option<Cow<'_, [u8]>> {
        self.get(name).map(|e| self.tensor_bytes(e))
    }
}

fn gather<'a>(storage: &'a [u8], e: &TensorEntry, big_endian: bool) -> Cow<'a, [u8]> {
    if e.nbytes == 0 {
        return Cow::Borrowed(&[]);
    }
    let el = e.torch_dtype.element_size();
    let mut out = if e.contiguous {
        let run = &storage[e.start..e.start + e.nbytes];
        if !big_endian {
            return Cow::Borrowed(run);
        }
        run.to_vec()
    } else {
        // Merge trailing dims that are contiguous among themselves into one run per copy.
        let mut k = e.size.len();
        let mut run = 1usize;
        while k > 0 && (e.size[k - 1] == 1 || e.stride[k - 1] == run) {
            run *= e.size[k - 1];
            k -= 1;
        }
        let run_bytes = run * el;
        let mut out = vec![0u8; e.nbytes];
        if k == 0 {
            out.copy_from_slice(&storage[e.start..e.start + run_bytes]);
            out
        } else {
            // The last two dims form planes copied in square tiles (a transpose reads columns;
            // tiling keeps both sides in cache); dims outside them are walked like an odometer,
            // keeping the byte position incrementally.
            let inner = (e.size[k - 1], e.stride[k - 1] * el);
            let rows = if k >= 2 {
                (e.size[k - 2], e.stride[k - 2] * el)
            } else {
                (1, 0)
            };
            let outer = k.saturating_sub(2);
            let plane = rows.0 * inner.0 * run_bytes;
            let step: Vec<usize> = e.stride[..outer].iter().map(|s| s * el).collect();
            let mut idx = vec![0usize; outer];
            let mut pos = e.start;
            for dst in out.chunks_exact_mut(plane) {
                copy_plane(storage, pos, rows, inner, run_bytes, dst);
                for d in (0..outer).rev() {
                    idx[d] += 1;
                    if idx[d] < e.size[d] {
                        pos += step[d];
                        break;
                    }
                    idx[d] = 0;
                    pos -= step[d] * (e.size[d] - 1);
                }
            }
            out
        }
    };
    if big_endian {
        let unit = e.torch_dtype.swap_unit();
        if unit > 1 {
            for chunk in out.chunks_exact_mut(unit) {
                chunk.reverse();
            }
        }
    }
    Cow::Owned(out)
}

/// Copies a `rows x inner` plane of `run`-byte items (each given as (count, byte step)) from
/// `src` at `pos` into `dst` in C order, tile by tile.
fn copy_plane(
    src: &[u8],
    pos: usize,
    rows: (usize, usize),
    inner: (usize, usize),
    run: usize,
    dst: &mut [u8],
) {
    const TILE: usize = 32;
    let row_bytes = inner.0 * run;
    for r0 in (0..rows.0).step_by(TILE) {
        for j0 in (0..inner.0).step_by(TILE) {
            let j1 = (j0 + TILE).min(inner.0);
            for r in r0..(r0 + TILE).min(rows.0) {
                let from = pos + r * rows.1 + j0 * inner.1;
                let to = r * row_bytes;
                copy_strided(
                    src,
                    from,
                    inner.1,
                    run,
                    &mut dst[to + j0 * run..to + j1 * run],
                );
            }
        }
    }
}

/// Fills `dst` with runs of `run` bytes taken every `step` bytes of `src` from `pos`.
fn copy_strided(src: &[u8], pos: usize, step: usize, run: usize, dst: &mut [u8]) {
    fn fixed<const N: usize>(src: &[u8], mut pos: usize, step: usize, dst: &mut [u8]) {
        for d in dst.chunks_exact_mut(N) {
            d.copy_from_slice(&src[pos..pos + N]);
            pos += step;
        }
    }
    match run {
        1 => {
            for (i, d) in dst.iter_mut().enumerate() {
                *d = src[pos + i * step];
            }
        }
        2 => fixed::<2>(src, pos, step, dst),
        4 => fixed::<4>(src, pos, step, dst),
        8 => fixed::<8>(src, pos, step, dst),
        _ => {
            let mut pos = pos;
            for d in dst.chunks_exact_mut(run) {
                d.copy_from_slice(&src[pos..pos + run]);
                pos += step;
            }
        }
    }
}

fn pickle_err(path: &Path, stream: &str, e: PickleError) -> ConvertError {
    let path = path.to_path_buf();
    let stream = stream.to_owned();
    match e {
        PickleError::UnsupportedOpcode {
            opcode,
            name,
            offset,
        } => ConvertError::UnsupportedOpcode {
            path,
            stream,
            opcode,
            name,
            offset: offset as u64,
        },
        PickleError::ForbiddenGlobal {
            module,
            name,
            offset,
        } => ConvertError::ForbiddenGlobal {
            path,
            stream,
            module,
            name,
            offset: offset as u64,
        },
        PickleError::Malformed { offset, message } => ConvertError::Pickle {
            path,
            stream,
            offset: offset as u64,
            message,
        },
    }
}

/// Opens and validates a checkpoint. See the crate docs for what is accepted.
///
/// The file is memory-mapped; it must not be truncated by another process while the returned
/// [`TorchCheckpoint`] is alive.
pub fn read_checkpoint(path: &Path) -> Result<TorchCheckpoint, ConvertError> {
    let map = Mapped::open(path).map_err(|source| ConvertError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let Contents {
        storages,
        tensors,
        by_name,
        big_endian,
    } = parse_contents(path, map.bytes())?;
    Ok(TorchCheckpoint {
        path: path.to_path_buf(),
        map,
        storages: storages.ranges,
        storage_keys: storages.keys,
        tensors,
        by_name,
        big_endian,
    })
}

/// What a checkpoint's bytes hold once parsed and validated.
struct Contents {
    storages: Storages,
    tensors: Vec<TensorEntry>,
    by_name: HashMap<String, usize>,
    big_endian: bool,
}

/// Parses and validates the checkpoint in `data` (the whole file; `path` names it in errors).
fn parse_contents(path: &Path, data: &[u8]) -> Result<Contents, ConvertError> {
    let parsed = if archive::looks_like_zip(data) {
        read_zip(path, data)?
    } else if data.first() == Some(&0x80) {
        read_legacy(path, data)?
    } else {
        let reason = if data.is_empty() {
            "the file is empty".to_owned()
        } else if data.get(257..262) == Some(b"ustar") {
            "it is a tar archive (the torch.save format of PyTorch before 0.4), which is not supported".to_owned()
        } else if data.starts_with(b"\x93NUMPY") {
            "it is a NumPy .npy file".to_owned()
        } else if data.len() >= 8 && data.get(8) == Some(&b'{') {
            "it looks like a safetensors file already".to_owned()
        } else {
            format!(
                "it starts with bytes {:02x?}, neither a zip archive nor a pickle",
                &data[..data.len().min(4)]
            )
        };
        return Err(ConvertError::NotACheckpoint {
            path: path.to_path_buf(),
            reason,
        });
    };
    let Parsed {
        records,
        storages,
        big_endian,
    } = parsed;
    let mut tensors = Vec::with_capacity(records.len());
    let mut by_name = HashMap::with_capacity(records.len());
    for (name, rec) in records {
        let entry = validate(path, &name, &rec, &storages)?;
        by_name.insert(name, tensors.len());
        tensors.push(entry);
    }
    Ok(Contents {
        storages,
        tensors,
        by_name,
        big_endian,
    })
}

/// Parses a checkpoint held in memory and gathers every tensor's bytes, returning each
/// tensor's name and byte count. The fuzz target's entry point: the same parser and
/// checks as [`read_checkpoint`], without a file.
#[doc(hidden)]
pub fn parse_checkpoint_bytes(data: &[u8]) -> Result<Vec<(String, usize)>, ConvertError> {
    let path = Path::new("<memory>");
    let contents = parse_contents(path, data)?;
    let mut out = Vec::with_capacity(contents.tensors.len());
    for entry in &contents.tensors {
        let storage = &data[contents.storages.ranges[entry.storage].clone()];
        let bytes = gather(storage, entry, contents.big_endian);
        assert_eq!(bytes.len(), entry.byte_len(), "{}", entry.name);
        out.push((entry.name.clone(), bytes.len()));
    }
    Ok(out)
}

/// The root storages tensors use: byte range in the file, key, and index by key.
struct Storages {
    ranges: Vec<Range<usize>>,
    keys: Vec<String>,
    index: HashMap<Rc<str>, usize>,
}

struct Parsed {
    records: Vec<(String, Rc<TensorRecord>)>,
    storages: Storages,
    big_endian: bool,
}

fn structure(path: &Path, message: impl Into<String>) -> ConvertError {
    ConvertError::Structure {
        path: path.to_path_buf(),
        message: message.into(),
    }
}

/// Assigns each storage key used by a tensor an index, resolving its bytes with `lookup`.
fn resolve_storages(
    path: &Path,
    records: &[(String, Rc<TensorRecord>)],
    mut lookup: impl FnMut(&str) -> Option<Result<Range<usize>, String>>,
) -> Result<Storages, ConvertError> {
    let mut storages = Vec::new();
    let mut keys = Vec::new();
    let mut index: HashMap<Rc<str>, usize> = HashMap::new();
    for (name, rec) in records {
        let key = &rec.storage.key;
        if index.contains_key(key) {
            continue;
        }
        let range = match lookup(key) {
            Some(Ok(range)) => range,
            Some(Err(message)) => {
                return Err(ConvertError::Archive {
                    path: path.to_path_buf(),
                    message,
                })
            }
            None => {
                return Err(ConvertError::MissingStorage {
                    path: path.to_path_buf(),
                    tensor: excerpt(name),
                    key: excerpt(key.as_ref()),
                })
            }
        };
        index.insert(key.clone(), storages.len());
        storages.push(range);
        keys.push(key.to_string());
    }
    Ok(Storages {
        ranges: storages,
        keys,
        index,
    })
}

fn read_zip(path: &Path, data: &[u8]) -> Result<Parsed, ConvertError> {
    let archive = Archive::parse(data).map_err(|message| ConvertError::Archive {
        path: path.to_path_buf(),
        message,
    })?;
    let pkls: Vec<&archive::Entry> = archive
        .entries
        .iter()
        .filter(|e| {
            e.name
                .strip_suffix("data.pkl")
                .is_some_and(|p| p.is_empty() || (p.ends_with('/') && p.matches('/').count() == 1))
        })
        .collect();
    let pkl = match pkls.as_slice() {
        [one] => *one,
        [] => {
            return Err(ConvertError::NotACheckpoint {
                path: path.to_path_buf(),
                reason: "zip archive has no `<name>/data.pkl` record (not a torch.save archive)"
                    .to_owned(),
            })
        }
        _ => {
            return Err(structure(
                path,
                "zip archive has more than one `data.pkl` record",
            ))
        }
    };
    let prefix = &pkl.name[..pkl.name.len() - "data.pkl".len()];
    if archive.get(&format!("{prefix}constants.pkl")).is_some()
        || archive
            .entries
            .iter()
            .any(|e| e.name.starts_with(&format!("{prefix}code/")))
    {
        return Err(ConvertError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: "it is a TorchScript archive (torch.jit.save); convert a torch.save'd state_dict() instead".to_owned(),
        });
    }
    let archive_err = |message| ConvertError::Archive {
        path: path.to_path_buf(),
        message,
    };
    let pkl_bytes = &data[pkl.stored().map_err(archive_err)?];
    if archive::crc32(pkl_bytes) != pkl.crc32 {
        return Err(ConvertError::Archive {
            path: path.to_path_buf(),
            message: format!("CRC mismatch in '{}' (corrupt archive)", pkl.name),
        });
    }
    let big_endian = match archive.get(&format!("{prefix}byteorder")) {
        None => false,
        Some(e) => match &data[e.stored().map_err(archive_err)?] {
            b"little" => false,
            b"big" => true,
            other => {
                return Err(structure(
                    path,
                    format!(
                        "byteorder record says {:?}, expected \"little\" or \"big\"",
                        String::from_utf8_lossy(other)
                    ),
                ))
            }
        },
    };
    let loaded = pickle::load(pkl_bytes, &Torch, &mut |heap, pid| {
        torch::storage_from_pid(heap, pid, false)
    })
    .map_err(|e| pickle_err(path, &pkl.name, e))?;
    let records = torch::collect_tensors(&loaded.heap, &loaded.value, pkl_bytes.len())
        .map_err(|m| structure(path, m))?;
    let storages = resolve_storages(path, &records, |key| {
        archive
            .get(&format!("{prefix}data/{key}"))
            .map(archive::Entry::stored)
    })?;
    Ok(Parsed {
        records,
        storages,
        big_endian,
    })
}

fn read_legacy(path: &Path, data: &[u8]) -> Result<Parsed, ConvertError> {
    let mut pos = 0usize;
    let mut next = |stream: &str,
                    legacy_pid: Option<&mut HashMap<Rc<str>, usize>>|
     -> Result<(pickle::Loaded, usize), ConvertError> {
        let start = pos;
        let loaded = match legacy_pid {
            None => pickle::load(&data[pos..], &Torch, &mut |_, _| {
                Err("unexpected persistent id".to_owned())
            }),
            Some(elsizes) => pickle::load(&data[pos..], &Torch, &mut |heap, pid| {
                let v = torch::storage_from_pid(heap, pid, true)?;
                if let Value::Storage(s) = &v {
                    let el = s.dtype.map_or(1, TorchDtype::element_size);
                    elsizes.entry(s.key.clone()).or_insert(el);
                }
                Ok(v)
            }),
        }
        .map_err(|e| pickle_err(path, stream, e))?;
        pos += loaded.consumed;
        Ok((loaded, start))
    };
    let (magic, _) = next("magic number", None).map_err(|_| ConvertError::NotACheckpoint {
        path: path.to_path_buf(),
        reason: "it is a pickle but does not start with torch's magic number".to_owned(),
    })?;
    if !matches!(&magic.value, Value::BigInt(b) if **b == LEGACY_MAGIC) {
        return Err(ConvertError::NotACheckpoint {
            path: path.to_path_buf(),
            reason: "it is a pickle but not a torch.save file (wrong magic number)".to_owned(),
        });
    }
    let (proto, _) = next("protocol version", None)?;
    if !matches!(proto.value, Value::Int(LEGACY_PROTOCOL)) {
        let got = match proto.value {
            Value::Int(i) => i.to_string(),
            ref other => format!("a {}", other.kind()),
        };
        return Err(structure(
            path,
            format!("legacy checkpoint protocol is {got}, expected {LEGACY_PROTOCOL}"),
        ));
    }
    let (sys_info, _) = next("sys_info", None)?;
    let mut big_endian = false;
    if let Value::Dict(d) = sys_info.value {
        for (k, v) in &sys_info.heap.dicts[d].items {
            if matches!(k, Value::Str(s) if &**s == "little_endian") {
                big_endian = matches!(v, Value::Bool(false));
            }
        }
    } else {
        return Err(structure(path, "legacy checkpoint sys_info is not a dict"));
    }
    let mut elsizes: HashMap<Rc<str>, usize> = HashMap::new();
    let (main, _) = next("object pickle", Some(&mut elsizes))?;
    let records = torch::collect_tensors(&main.heap, &main.value, main.consumed)
        .map_err(|m| structure(path, m))?;
    let (keys, _) = next("storage key list", None)?;
    let key_list: Vec<Rc<str>> = match keys.value {
        Value::List(l) => keys.heap.lists[l]
            .iter()
            .map(|k| match k {
                Value::Str(s) => Ok(s.clone()),
                other => Err(structure(
                    path,
                    format!(
                        "legacy storage key is a {}, expected a string",
                        other.kind()
                    ),
                )),
            })
            .collect::<Result<_, _>>()?,
        other => {
            return Err(structure(
                path,
                format!("legacy storage key list is a {}", other.kind()),
            ))
        }
    };
    // The storages follow, in key-list order: an 8-byte element count, then the bytes.
    let mut ranges: HashMap<Rc<str>, Range<usize>> = HashMap::new();
    for key in key_list {
        let Some(&el) = elsizes.get(&key) else {
            return Err(structure(
                path,
                format!("legacy storage `{key}` is listed but no object uses it"),
            ));
        };
        let Some(head) = data.get(pos..pos + 8) else {
            return Err(structure(
                path,
                format!(
                    "legacy storage `{key}`: file ends at byte {} before its size (truncated?)",
                    data.len()
                ),
            ));
        };
        let mut a = [0u8; 8];
        a.copy_from_slice(head);
        let count = if big_endian {
            u64::from_be_bytes(a)
        } else {
            u64::from_le_bytes(a)
        };
        let start = pos + 8;
        let len = count
            .checked_mul(el as u64)
            .and_then(|n| usize::try_from(n).ok());
        match len.and_then(|n| start.checked_add(n)).filter(|&end| end <= data.len()) {
            Some(end) => {
                ranges.insert(key.clone(), start..end);
                pos = end;
            }
            None => {
                return Err(structure(
                    path,
                    format!(
                        "legacy storage `{key}` claims {count} elements of {el} bytes at byte {start}, past the end of the {}-byte file (truncated?)",
                        data.len()
                    ),
                ))
            }
        }
    }
    let storages = resolve_storages(path, &records, |key| ranges.get(key).cloned().map(Ok))?;
    Ok(Parsed {
        records,
        storages,
        big_endian,
    })
}

fn validate(
    path: &Path,
    name: &str,
    rec: &TensorRecord,
    storages: &Storages,
) -> Result<TensorEntry, ConvertError> {
    let invalid = |message: String| ConvertError::InvalidTensor {
        path: path.to_path_buf(),
        tensor: excerpt(name),
        message,
    };
    let Some(st_name) = rec.dtype.safetensors_name() else {
        return Err(ConvertError::UnsupportedDtype {
            path: path.to_path_buf(),
            tensor: excerpt(name),
            dtype: rec.dtype.name().to_owned(),
        });
    };
    let dtype: safetensors::Dtype = st_name.parse().map_err(|_| {
        invalid(format!(
            "dtype {st_name} is unknown to the safetensors crate"
        ))
    })?;
    let storage = storages.index[&rec.storage.key];
    let root_len = storages.ranges[storage].len() as u64;
    let view_start = rec.storage.byte_offset;
    let view_end = match rec.storage.view_len {
        Some(l) => view_start.checked_add(l),
        None => Some(root_len),
    };
    let view_end = match view_end {
        Some(e) if e <= root_len && view_start <= e => e,
        _ => {
            return Err(invalid(format!(
                "storage view [{view_start}, +{:?}) exceeds its {root_len}-byte storage",
                rec.storage.view_len
            )))
        }
    };
    let el = rec.dtype.element_size() as u64;
    let too_big = || {
        invalid(format!(
            "geometry overflows (size {:?}, stride {:?}, offset {})",
            rec.size, rec.stride, rec.offset
        ))
    };
    let numel = rec
        .size
        .iter()
        .try_fold(1u64, |a, &d| a.checked_mul(d))
        .ok_or_else(too_big)?;
    let nbytes = numel.checked_mul(el).ok_or_else(too_big)?;
    let start = rec
        .offset
        .checked_mul(el)
        .and_then(|o| o.checked_add(view_start))
        .ok_or_else(too_big)?;
    let span = if numel == 0 {
        start.min(view_end)..start.min(view_end)
    } else {
        let mut last = rec.offset;
        for (&d, &s) in rec.size.iter().zip(&rec.stride) {
            last = (d - 1)
                .checked_mul(s)
                .and_then(|x| x.checked_add(last))
                .ok_or_else(too_big)?;
        }
        let end = last
            .checked_add(1)
            .and_then(|x| x.checked_mul(el))
            .and_then(|x| x.checked_add(view_start))
            .ok_or_else(too_big)?;
        if end > view_end {
            return Err(invalid(format!(
                "needs bytes up to {} of storage `{}` but it has only {} (size {:?}, stride {:?}, offset {})",
                end - view_start,
                storages.keys[storage],
                view_end - view_start,
                rec.size,
                rec.stride,
                rec.offset
            )));
        }
        start..end
    };
    let mut contiguous = true;
    let mut expected = 1u64;
    for (&d, &s) in rec.size.iter().zip(&rec.stride).rev() {
        if d != 1 && s != expected {
            contiguous = false;
        }
        expected = expected.saturating_mul(d);
    }
    if numel == 0 {
        contiguous = true;
    }
    let span_len = span.end - span.start;
    if nbytes > span_len.saturating_add(MAX_EXPANSION) {
        return Err(invalid(format!(
            "overlapping strides {:?} would expand {span_len} storage bytes into {nbytes} bytes; refused",
            rec.stride
        )));
    }
    let to_usize = |v: u64| usize::try_from(v).map_err(|_| too_big());
    let size: Vec<usize> = rec
        .size
        .iter()
        .map(|&d| to_usize(d))
        .collect::<Result<_, _>>()?;
    let stride: Vec<usize> = rec
        .stride
        .iter()
        .map(|&d| to_usize(d))
        .collect::<Result<_, _>>()?;
    let mut shape = size.clone();
    if rec.dtype == TorchDtype::Float4E2M1FnX2 {
        match shape.last_mut() {
            Some(d) => *d = d.checked_mul(2).ok_or_else(too_big)?,
            None => shape.push(2),
        }
    }
    Ok(TensorEntry {
        name: name.to_owned(),
        torch_dtype: rec.dtype,
        dtype,
        shape,
        storage,
        start: to_usize(start)?,
        size,
        stride,
        nbytes: to_usize(nbytes)?,
        span: to_usize(span.start)?..to_usize(span.end)?,
        contiguous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(size: &[usize], stride: &[usize], start: usize, el_dtype: TorchDtype) -> TensorEntry {
        let numel: usize = size.iter().product();
        TensorEntry {
            name: "t".into(),
            torch_dtype: el_dtype,
            dtype: safetensors::Dtype::U8,
            shape: size.to_vec(),
            storage: 0,
            start,
            size: size.to_vec(),
            stride: stride.to_vec(),
            nbytes: numel * el_dtype.element_size(),
            span: 0..0,
            contiguous: false,
        }
    }

    /// Element-by-element reference for `gather`.
    fn naive(storage: &[u8], e: &TensorEntry) -> Vec<u8> {
        let el = e.torch_dtype.element_size();
        let numel: usize = e.size.iter().product();
        let mut out = Vec::new();
        for flat in 0..numel {
            let mut rem = flat;
            let mut pos = e.start;
            for d in (0..e.size.len()).rev() {
                pos += (rem % e.size[d]) * e.stride[d] * el;
                rem /= e.size[d];
            }
            out.extend_from_slice(&storage[pos..pos + el]);
        }
        out
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 64, failure_persistence: None, ..Default::default() })]

        /// Any permutation of a C-contiguous layout (with an offset) gathers like the
        /// element-by-element reference, including planes larger than one tile.
        #[test]
        fn gather_matches_reference(
            dims in proptest::collection::vec(1usize..70, 1..4),
            perm_seed in proptest::prelude::any::<u64>(),
            el in proptest::sample::select(vec![TorchDtype::UInt8, TorchDtype::Int16, TorchDtype::Float32, TorchDtype::Complex64]),
            offset in 0usize..3,
        ) {
            let n = dims.len();
            let mut c_strides = vec![1usize; n];
            for d in (0..n - 1).rev() {
                c_strides[d] = c_strides[d + 1] * dims[d + 1];
            }
            let mut order: Vec<usize> = (0..n).collect();
            let mut seed = perm_seed;
            for i in (1..n).rev() {
                order.swap(i, (seed % (i as u64 + 1)) as usize);
                seed /= i as u64 + 1;
            }
            let size: Vec<usize> = order.iter().map(|&d| dims[d]).collect();
            let stride: Vec<usize> = order.iter().map(|&d| c_strides[d]).collect();
            let numel: usize = dims.iter().product();
            let storage: Vec<u8> = (0..(numel + offset) * el.element_size()).map(|i| (i * 7 % 251) as u8).collect();
            let mut e = entry(&size, &stride, offset * el.element_size(), el);
            e.contiguous = order.iter().enumerate().all(|(i, &d)| i == d || dims[d] == 1);
            proptest::prop_assert_eq!(gather(&storage, &e, false).into_owned(), naive(&storage, &e));
        }
    }

    #[test]
    fn gather_transposed_matrix() {
        // Storage holds a 2x3 matrix row-major; the tensor is its 3x2 transpose.
        let storage: Vec<u8> = (0..6).collect();
        let e = entry(&[3, 2], &[1, 3], 0, TorchDtype::UInt8);
        assert_eq!(&*gather(&storage, &e, false), &[0, 3, 1, 4, 2, 5]);
    }

    #[test]
    fn gather_strided_rows_and_offset() {
        // Every other row of a 4x2 int16 matrix, starting at row 1.
        let storage: Vec<u8> = (0..16).collect();
        let e = entry(&[2, 2], &[4, 1], 4, TorchDtype::Int16);
        assert_eq!(&*gather(&storage, &e, false), &[4, 5, 6, 7, 12, 13, 14, 15]);
    }

    #[test]
    fn gather_broadcast_and_big_endian_swap() {
        let storage = [1u8, 2];
        let e = entry(&[3], &[0], 0, TorchDtype::Int16);
        assert_eq!(&*gather(&storage, &e, false), &[1, 2, 1, 2, 1, 2]);
        assert_eq!(&*gather(&storage, &e, true), &[2, 1, 2, 1, 2, 1]);
        let mut c = entry(&[2], &[1], 0, TorchDtype::Int16);
        c.contiguous = true;
        let storage = [1u8, 2, 3, 4];
        assert!(matches!(gather(&storage, &c, false), Cow::Borrowed(_)));
        assert_eq!(&*gather(&storage, &c, true), &[2, 1, 4, 3]);
    }

    #[test]
    fn gather_scalar_and_empty() {
        let storage = [9u8, 8, 7, 6];
        let mut s = entry(&[], &[], 0, TorchDtype::Float32);
        s.contiguous = true;
        assert_eq!(&*gather(&storage, &s, false), &storage);
        let z = entry(&[0, 3], &[3, 1], 0, TorchDtype::Float32);
        assert!(gather(&storage, &z, false).is_empty());
    }
}
