//! What a `safe_open` handle reads: one open container (`Opened`: a file, a buffer, a file
//! object or a URL, with its mapping), or the shards of a checkpoint opened as needed
//! (`Container`), and what the handle shares with the slices it hands out (`Inner`). Reads of
//! whole tensors and of slices end here: a view of the mapping, or a copy of the selected
//! runs of bytes into a new framework tensor.

use crate::error::{slice_error, st_err, to_pyerr};
use crate::framework::Hooks;
use crate::mapping::Map;
use pyo3::prelude::*;
use pyo3::sync::MutexExt;
use pyo3::types::PyList;
use safetensors::checkpoint::verify::verify_tensors;
use safetensors::checkpoint::{Checkpoint, ShardFile};
use safetensors::reader::gather::gather;
use safetensors::reader::selection::{read_selection, Reach};
use safetensors::slice::{byte_ranges, ByteRanges};
use safetensors::tensor::TensorInfo;
use std::collections::HashSet;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

/// Copies from the mapping above this size run with the interpreter detached.
const DETACH_ABOVE: usize = 1 << 16;

/// An open container: where its bytes come from, and the mapping views are made of.
pub struct Opened {
    /// Where the bytes come from: the checkpoint's file.
    pub origin: ShardFile,
    /// The one private mapping of the file (mmap backend on a path only).
    pub map: Option<Map>,
    /// Tensors whose recorded digest was checked (with `verify`), so each is hashed once.
    checked: Mutex<HashSet<String>>,
}

impl Opened {
    /// A checkpoint's file as an `Opened`: a local file mapped when `map` (the mmap backend);
    /// a remote one, a buffer or a file object as it is.
    pub fn from_shard(py: Python<'_>, file: ShardFile, map: bool) -> PyResult<Opened> {
        let map = match &file {
            ShardFile::Local(local) if map => crate::mapping::private_map(py, local)?,
            _ => None,
        };
        Ok(Opened {
            origin: file,
            map,
            checked: Mutex::new(HashSet::new()),
        })
    }

    /// Whether tensor `name`'s recorded digest was already checked on this handle.
    fn digest_checked(&self, py: Python<'_>, name: &str) -> bool {
        self.checked
            .lock_py_attached(py)
            .is_ok_and(|c| c.contains(name))
    }

    /// Remembers that tensor `name`'s digest holds (or that it has none).
    fn mark_checked(&self, py: Python<'_>, name: &str) {
        if let Ok(mut checked) = self.checked.lock_py_attached(py) {
            checked.insert(name.to_owned());
        }
    }

    /// The whole file's bytes when it is mapped (checked against a file that shrank).
    fn mapped_bytes(&self) -> PyResult<Option<&[u8]>> {
        match (&self.map, &self.origin) {
            (Some(map), ShardFile::Local(file)) => {
                file.check_unchanged().map_err(to_pyerr)?;
                Ok(Some(map.bytes()))
            }
            _ => Ok(None),
        }
    }

    /// The header entry of tensor `name`, or a `SafetensorError` naming it.
    pub fn info(&self, name: &str) -> PyResult<TensorInfo> {
        self.origin.metadata().entry(name).ok_or_else(|| {
            st_err(format!(
                "File does not contain tensor {name}: call keys() to list the tensors it has"
            ))
        })
    }

    /// The bytes `run` (relative to the first byte of the tensor described by `info`) as a
    /// framework tensor of `shape` viewing the mapping; None when there is no mapping or the
    /// framework cannot view these bytes.
    pub fn view<'py>(
        &self,
        py: Python<'py>,
        hooks: &Hooks,
        info: &TensorInfo,
        shape: &[usize],
        run: Range<usize>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let (Some(map), ShardFile::Local(file)) = (&self.map, &self.origin) else {
            return Ok(None);
        };
        // A file that shrank since it was mapped would fault on first touch of a view:
        // refuse cleanly instead (a shrink after this check is the documented limit).
        file.check_unchanged().map_err(to_pyerr)?;
        let offset = file.data_start() + (info.data_offsets.0 + run.start) as u64;
        hooks.view(py, &map.obj, info.dtype, shape, offset, run.len())
    }

    /// Copies the byte runs of `plan` (relative to the first byte of the tensor `info`
    /// describes) one after the other into `dst`, whose length is their total: gathered from
    /// the mapping or an in-memory buffer, or read by the core's `read_selection` from a file,
    /// a file object or a URL.
    pub fn read_plan(
        &self,
        py: Python<'_>,
        info: &TensorInfo,
        plan: ByteRanges,
        dst: &mut [u8],
    ) -> PyResult<()> {
        let (begin, end) = info.data_offsets;
        let at = self.origin.data_start() + begin as u64;
        let start = self.origin.data_start() as usize;
        let in_memory = match &self.origin {
            ShardFile::Other(file) => file.bytes(),
            _ => None,
        };
        let tensor: &[u8] = match (&self.map, &self.origin, in_memory) {
            (Some(map), ShardFile::Local(file), _) => {
                file.check_unchanged().map_err(to_pyerr)?;
                &map.bytes()[start + begin..start + end]
            }
            (_, _, Some(bytes)) => &bytes[start + begin..start + end],
            // No mapping: the core reads the runs as the plan layer advises for the source.
            (_, ShardFile::Local(file), _) => {
                file.check_unchanged().map_err(to_pyerr)?;
                return py
                    .detach(|| read_selection(&**file, at, plan, dst, Reach::Near))
                    .map_err(to_pyerr);
            }
            (_, ShardFile::Remote(file), _) => {
                return py
                    .detach(|| read_selection(file.source(), at, plan, dst, Reach::Far))
                    .map_err(to_pyerr);
            }
            (_, other, _) => {
                return py
                    .detach(|| read_selection(other, at, plan, dst, Reach::Near))
                    .map_err(to_pyerr);
            }
        };
        if dst.len() > DETACH_ABOVE {
            py.detach(|| gather(tensor, 0, plan, dst));
        } else {
            gather(tensor, 0, plan, dst);
        }
        Ok(())
    }

    /// The byte runs of `plan` of tensor `name` as a framework tensor of `shape`: a view of
    /// the mapping when they are one run and the framework can view it, else a copy.
    pub fn tensor_of<'py>(
        &self,
        py: Python<'py>,
        hooks: &Hooks,
        name: &str,
        info: &TensorInfo,
        shape: &[usize],
        plan: ByteRanges,
    ) -> PyResult<Bound<'py, PyAny>> {
        if plan.len() == 1 {
            let run = plan.clone().next().unwrap_or(0..0);
            if let Some(view) = self.view(py, hooks, info, shape, run)? {
                return Ok(view);
            }
        }
        let want = plan.remaining_byte_len();
        hooks.build(py, name, info.dtype, shape, want, |dst| {
            self.read_plan(py, info, plan, dst)
        })
    }
}

/// What a handle reads: one container, or the shards of a checkpoint opened as needed.
pub enum Container {
    /// One file, buffer or file object.
    Single(Arc<Opened>),
    /// An index of shards.
    Sharded {
        /// The checkpoint: names, shard of each tensor, lazily opened shard files.
        checkpoint: Checkpoint,
        /// Each shard as an `Opened` (with its mapping), made on first use.
        opened: Vec<OnceLock<Arc<Opened>>>,
        /// Whether to map shards (the mmap backend).
        map: bool,
    },
}

impl Container {
    /// The container holding tensor `name`, opening its shard if needed.
    pub fn for_tensor(&self, py: Python<'_>, name: &str) -> PyResult<Arc<Opened>> {
        let (checkpoint, opened, map) = match self {
            Container::Single(one) => return Ok(one.clone()),
            Container::Sharded {
                checkpoint,
                opened,
                map,
            } => (checkpoint, opened, *map),
        };
        let at = checkpoint.shard_of(name).ok_or_else(|| {
            st_err(format!(
                "File does not contain tensor {name}: call keys() to list the tensors it has"
            ))
        })?;
        self.shard(py, checkpoint, opened, map, at)
    }

    /// Shard `at` as an `Opened`, made once.
    fn shard(
        &self,
        py: Python<'_>,
        checkpoint: &Checkpoint,
        opened: &[OnceLock<Arc<Opened>>],
        map: bool,
        at: usize,
    ) -> PyResult<Arc<Opened>> {
        if let Some(one) = opened[at].get() {
            return Ok(one.clone());
        }
        let file = py
            .detach(|| checkpoint.shard_file(at).cloned())
            .map_err(to_pyerr)?;
        let made = Arc::new(Opened::from_shard(py, file, map)?);
        Ok(opened[at].get_or_init(|| made).clone())
    }

    /// The header entry of tensor `name`.
    pub fn info(&self, py: Python<'_>, name: &str) -> PyResult<TensorInfo> {
        Ok(self.for_tensor(py, name)?.info(name)?.clone())
    }

    /// The tensor names, sorted.
    pub fn keys(&self) -> Vec<String> {
        match self {
            Container::Single(one) => one
                .origin
                .metadata()
                .iter_names_sorted()
                .map(str::to_owned)
                .collect(),
            Container::Sharded { checkpoint, .. } => {
                checkpoint.names().map(str::to_owned).collect()
            }
        }
    }

    /// The tensor names in shard order, then in the order of their data.
    pub fn offset_keys(&self, py: Python<'_>) -> PyResult<Vec<String>> {
        match self {
            Container::Single(one) => Ok(one.origin.metadata().offset_keys()),
            Container::Sharded { checkpoint, .. } => {
                py.detach(|| checkpoint.offset_keys()).map_err(to_pyerr)
            }
        }
    }

    /// The metadata pairs: the header's `__metadata__`, or the index's `metadata` merged
    /// with the shards' (see `Checkpoint::metadata`).
    pub fn metadata(&self, py: Python<'_>) -> PyResult<Option<Vec<(String, String)>>> {
        match self {
            Container::Single(one) => {
                Ok(one.origin.metadata().metadata_ordered().map(|m| m.to_vec()))
            }
            Container::Sharded { checkpoint, .. } => {
                py.detach(|| checkpoint.metadata()).map_err(to_pyerr)
            }
        }
    }

    /// True when the files are at URLs (reads are Range requests).
    pub fn is_remote(&self) -> bool {
        match self {
            Container::Single(one) => matches!(one.origin, ShardFile::Remote(_)),
            Container::Sharded { checkpoint, .. } => checkpoint.is_remote(),
        }
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        match self {
            Container::Single(one) => one.origin.metadata().len(),
            Container::Sharded { checkpoint, .. } => checkpoint.len(),
        }
    }

    /// True when tensor `name` is in the container.
    pub fn contains(&self, name: &str) -> bool {
        match self {
            Container::Single(one) => one.origin.metadata().entry(name).is_some(),
            Container::Sharded { checkpoint, .. } => checkpoint.contains(name),
        }
    }
}

/// What a `safe_open` and the slices it hands out share.
pub struct Inner {
    /// The framework's hooks and the device.
    pub hooks: Hooks,
    /// Whether each tensor's recorded digest is checked before it is handed out.
    pub verify: bool,
    /// The open container; None once closed.
    state: Mutex<Option<Arc<Container>>>,
}

impl Inner {
    /// What a handle opened on `container` shares with its slices.
    pub fn new(hooks: Hooks, container: Container, verify: bool) -> Self {
        Inner {
            hooks,
            verify,
            state: Mutex::new(Some(Arc::new(container))),
        }
    }

    /// The open container, or the `SafetensorError` of a closed handle.
    pub fn opened(&self, py: Python<'_>) -> PyResult<Arc<Container>> {
        let state = self
            .state
            .lock_py_attached(py)
            .map_err(|_| st_err("a previous call on this file failed midway; open it again"))?;
        state.clone().ok_or_else(|| {
            st_err(
                "File is closed: this safe_open handle was used after its `with` block \
                 ended; open the file again",
            )
        })
    }

    /// Closes the container: drops the source (its file descriptor) and the reference to the
    /// mapping, once any read in progress on another thread is done.
    pub fn close(&self, py: Python<'_>) {
        let taken = match self.state.lock_py_attached(py) {
            Ok(mut state) => state.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        drop(taken);
    }

    /// With `verify`, checks the recorded digests of `names` (each tensor once per handle)
    /// before any of their bytes are handed out; without, does nothing.
    pub fn check_digests<'a>(
        &self,
        py: Python<'_>,
        container: &Container,
        names: impl IntoIterator<Item = &'a str>,
    ) -> PyResult<()> {
        if !self.verify {
            return Ok(());
        }
        // Each tensor not checked yet on this handle, hashed by the core's few threads
        // (from the mapping when there is one) with the interpreter detached.
        let mut pending: Vec<(Arc<Opened>, &str)> = Vec::new();
        let mut seen = HashSet::new();
        for name in names {
            let opened = container.for_tensor(py, name)?;
            if !opened.digest_checked(py, name) && seen.insert(name) {
                pending.push((opened, name));
            }
        }
        let mut items = Vec::with_capacity(pending.len());
        for (opened, name) in &pending {
            items.push((&opened.origin, *name, opened.mapped_bytes()?));
        }
        let results = py.detach(|| verify_tensors(&items));
        for ((opened, name), result) in pending.iter().zip(results) {
            match result {
                Ok(_) => opened.mark_checked(py, name),
                Err(e) => {
                    let e = to_pyerr(e);
                    // Name the shard too: the digest is the one that shard records.
                    if let Container::Sharded { checkpoint, .. } = container {
                        if let Some(i) = checkpoint.shard_of(name) {
                            let shard = checkpoint.shard_name(i);
                            return Err(st_err(format!("{} (shard {shard})", e.value(py))));
                        }
                    }
                    return Err(e);
                }
            }
        }
        Ok(())
    }

    /// The whole tensor `name` as a framework tensor.
    pub fn tensor<'py>(
        &self,
        py: Python<'py>,
        container: &Container,
        name: &str,
    ) -> PyResult<Bound<'py, PyAny>> {
        self.check_digests(py, container, [name])?;
        let opened = container.for_tensor(py, name)?;
        let info = opened.info(name)?;
        let whole =
            byte_ranges(info.dtype, &info.shape, &[]).map_err(|e| slice_error(py, name, e))?;
        opened.tensor_of(py, &self.hooks, name, &info, &info.shape, whole)
    }
}

/// Helper used by slices: a list of Python ints.
pub fn shape_list<'py>(py: Python<'py>, shape: &[usize]) -> PyResult<Bound<'py, PyList>> {
    PyList::new(py, shape)
}
