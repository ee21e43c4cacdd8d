//! One handle over a checkpoint on disk, whether it is one file or an index of shards.
//!
//! [`Checkpoint::open`] takes a safetensors file, a folder (see [`crate::index::locate`]) or
//! an index JSON. A sharded checkpoint knows every tensor's shard from the index alone;
//! each shard's header is read and validated the first time one of its tensors is asked
//! for, and checked against the index then (a tensor the shard lacks, a tensor it holds that
//! the index does not list), so opening a 30-shard model reads one small JSON file.
//!
//! Shards are opened with positioned reads ([`Backend::Pread`]); a face that wants a memory
//! map makes its own over [`SafeFile::file`] (the Python binding maps privately). Local
//! files only for now: the shard list is kept as names relative to the index so that other
//! [`crate::source::Source`]s (HTTP ranges) can resolve them the same way later.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use crate::error::SafeTensorError;
use crate::file::{Backend, SafeFile};
use crate::header::TensorInfo;
use crate::index::{locate, Layout, ShardIndex};

/// One file of a checkpoint, opened on first use.
#[derive(Debug)]
struct Shard {
    /// The name the index gives it (the file name for a single file).
    name: String,
    /// Where it lives.
    path: PathBuf,
    /// The open, validated file, once something asked for it.
    file: OnceLock<Arc<SafeFile>>,
}

/// A safetensors checkpoint: one file, or the shards an index names. `Send + Sync`.
#[derive(Debug)]
pub struct Checkpoint {
    /// The index and its path, for a sharded checkpoint.
    index: Option<(PathBuf, ShardIndex)>,
    /// The files, in the index's (sorted) shard order.
    shards: Vec<Shard>,
    /// Tensor name -> position in `shards`.
    names: BTreeMap<String, usize>,
}

impl Checkpoint {
    /// Opens a file, a folder or an index JSON. A single file's header is read now; an
    /// index is parsed and every shard it names must exist, but no shard is read yet.
    pub fn open(location: impl AsRef<Path>) -> Result<Self, SafeTensorError> {
        match locate(location.as_ref())? {
            Layout::Single(path) => Self::open_file(path),
            Layout::Sharded { index, folder } => Self::open_index(index, &folder),
        }
    }

    fn open_file(path: PathBuf) -> Result<Self, SafeTensorError> {
        let file = SafeFile::open(&path, Backend::Pread)?;
        let names = file
            .metadata()
            .iter()
            .map(|(name, _)| (name.to_owned(), 0))
            .collect();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let shard = Shard {
            name,
            path,
            file: OnceLock::from(Arc::new(file)),
        };
        Ok(Checkpoint {
            index: None,
            shards: vec![shard],
            names,
        })
    }

    fn open_index(index_path: PathBuf, folder: &Path) -> Result<Self, SafeTensorError> {
        let bytes = std::fs::read(&index_path).map_err(|e| {
            io::Error::new(
                e.kind(),
                format!("cannot read the index {}: {e}", index_path.display()),
            )
        })?;
        let index = ShardIndex::parse(&bytes)
            .map_err(|e| SafeTensorError::InvalidIndex(format!("{}: {e}", index_path.display())))?;
        let files = index.files();
        let mut shards = Vec::with_capacity(files.len());
        for name in &files {
            let path = folder.join(name);
            if !path.is_file() {
                let tensor = index
                    .weight_map
                    .iter()
                    .find(|(_, f)| f == name)
                    .map(|(t, _)| t.as_str())
                    .unwrap_or_default();
                return Err(SafeTensorError::IoError(io::Error::new(
                    io::ErrorKind::NotFound,
                    format!(
                        "the index {} maps tensor `{tensor}` to {name}, but {} does not exist",
                        index_path.display(),
                        path.display()
                    ),
                )));
            }
            shards.push(Shard {
                name: (*name).to_owned(),
                path,
                file: OnceLock::new(),
            });
        }
        let names = index
            .weight_map
            .iter()
            .map(|(tensor, file)| {
                let at = files
                    .binary_search(&file.as_str())
                    .expect("files() lists it");
                (tensor.clone(), at)
            })
            .collect();
        Ok(Checkpoint {
            index: Some((index_path, index)),
            shards,
            names,
        })
    }

    /// True when the checkpoint is an index of shards.
    pub fn is_sharded(&self) -> bool {
        self.index.is_some()
    }

    /// The index and the path it was read from, for a sharded checkpoint.
    pub fn index(&self) -> Option<(&Path, &ShardIndex)> {
        self.index.as_ref().map(|(p, i)| (p.as_path(), i))
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.names.keys().map(String::as_str)
    }

    /// The number of tensors.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// True when the checkpoint holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// True when some shard holds tensor `name` (by the index; no shard is read).
    pub fn contains(&self, name: &str) -> bool {
        self.names.contains_key(name)
    }

    /// The number of files.
    pub fn shard_count(&self) -> usize {
        self.shards.len()
    }

    /// Which shard holds tensor `name` (by the index; no shard is read).
    pub fn shard_of(&self, name: &str) -> Option<usize> {
        self.names.get(name).copied()
    }

    /// Shard `i`'s name, as the index spells it (the file name for a single file).
    pub fn shard_name(&self, i: usize) -> &str {
        &self.shards[i].name
    }

    /// Shard `i`'s path.
    pub fn shard_path(&self, i: usize) -> &Path {
        &self.shards[i].path
    }

    /// Shard `i`, opened and checked against the index on first use.
    pub fn shard(&self, i: usize) -> Result<&Arc<SafeFile>, SafeTensorError> {
        let shard = &self.shards[i];
        if let Some(file) = shard.file.get() {
            return Ok(file);
        }
        let file = SafeFile::open(&shard.path, Backend::Pread).map_err(|e| match e {
            SafeTensorError::IoError(io) => SafeTensorError::IoError(io::Error::new(
                io.kind(),
                format!("cannot open shard {}: {io}", shard.path.display()),
            )),
            other => SafeTensorError::InvalidIndex(format!(
                "shard {} is not a valid safetensors file: {other}",
                shard.path.display()
            )),
        })?;
        if let Some((index_path, index)) = &self.index {
            let problems = index.shard_problems(&shard.name, &file.metadata());
            if !problems.is_empty() {
                let listed: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
                return Err(SafeTensorError::InvalidIndex(format!(
                    "shard {} disagrees with the index {}: {}",
                    shard.path.display(),
                    index_path.display(),
                    listed.join("; ")
                )));
            }
        }
        // Two threads may race to open a shard: both files are valid, one is kept.
        Ok(shard.file.get_or_init(|| Arc::new(file)))
    }

    /// The shard holding tensor `name` (opened if needed) and the tensor's header entry.
    pub fn tensor(&self, name: &str) -> Result<(&Arc<SafeFile>, &TensorInfo), SafeTensorError> {
        let at = self
            .shard_of(name)
            .ok_or_else(|| SafeTensorError::TensorNotFound(name.into()))?;
        let file = self.shard(at)?;
        let info = file
            .metadata()
            .info(name)
            .ok_or_else(|| SafeTensorError::TensorNotFound(name.into()))?;
        Ok((file, info))
    }

    /// Every tensor name in shard order, then by position of its data within the shard.
    /// Opens every shard.
    pub fn offset_keys(&self) -> Result<Vec<String>, SafeTensorError> {
        let mut keys = Vec::with_capacity(self.len());
        for i in 0..self.shards.len() {
            keys.extend(self.shard(i)?.metadata().offset_keys());
        }
        Ok(keys)
    }

    /// The checkpoint's metadata as string pairs: for a sharded checkpoint the index's
    /// `metadata` (non-string values as their JSON text, e.g. `total_size`), then each
    /// shard's `__metadata__` keys not seen yet; for one file its `__metadata__`. None when
    /// there is none at all. Opens every shard.
    pub fn metadata(&self) -> Result<Option<Vec<(String, String)>>, SafeTensorError> {
        let mut pairs: Vec<(String, String)> = Vec::new();
        let mut any = false;
        if let Some((_, index)) = &self.index {
            if let Some(map) = &index.metadata {
                any = true;
                for (key, value) in map {
                    let text = match value {
                        serde_json::Value::String(s) => s.clone(),
                        other => other.to_string(),
                    };
                    pairs.push((key.clone(), text));
                }
            }
        }
        for i in 0..self.shards.len() {
            if let Some(shard_pairs) = self.shard(i)?.metadata().metadata_ordered() {
                any = true;
                for (key, value) in shard_pairs {
                    if !pairs.iter().any(|(k, _)| k == key) {
                        pairs.push((key.clone(), value.clone()));
                    }
                }
            }
        }
        Ok(any.then_some(pairs))
    }
}
