//! A model opened for reading tensor data: one safetensors file or every shard of a sharded
//! folder, each memory-mapped through the core's `SafeFile`, with a name -> shard table.
//! `diff`, `shard` and `merge` read tensor bytes through it without loading files.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::source::file::{Backend, SafeFile};
use safetensors::tensor::{Metadata, TensorView};

use crate::error::Error;
use crate::index::IndexProblem;
use crate::index::{locate, read_index, Layout};
use crate::inspect::Pairs;
use crate::table::printable;

/// The open files of a model.
pub struct OpenModel {
    /// The path given.
    pub path: String,
    /// Each file's name (the shard name, or the path for a single file) and its open handle.
    pub files: Vec<(String, SafeFile)>,
    /// Tensor name -> position in `files`.
    pub tensors: BTreeMap<String, usize>,
    /// Notes that did not stop the opening (e.g. a wrong `total_size` in the index).
    pub warnings: Vec<String>,
}

impl OpenModel {
    /// Opens `path`: a safetensors file, or a sharded folder / index json. For a sharded model
    /// the index must agree with the shards (every tensor where the weight map says, and only
    /// there); a wrong `total_size` is only a warning.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        match locate(path)? {
            Layout::Single(file) => {
                let safe = open_file(&file)?;
                let tensors = safe
                    .metadata()
                    .iter_names()
                    .map(|name| (name.to_string(), 0))
                    .collect();
                Ok(OpenModel {
                    path: shown.clone(),
                    files: vec![(shown, safe)],
                    tensors,
                    warnings: Vec::new(),
                })
            }
            Layout::Sharded {
                index: index_path,
                folder,
            } => {
                let index = read_index(&index_path)?;
                let mut files = Vec::new();
                for name in index.files() {
                    files.push((name.to_string(), open_file(&folder.join(name))?));
                }
                let headers: Vec<(&str, &Metadata)> = files
                    .iter()
                    .map(|(n, f)| (n.as_str(), f.metadata()))
                    .collect();
                let mut warnings = Vec::new();
                for problem in index.problems(&headers) {
                    match problem {
                        IndexProblem::Tensor(message) => {
                            return Err(Error::invalid(
                                index_path.display(),
                                format!("index and shards disagree: {message}"),
                            ))
                        }
                        IndexProblem::TotalSize(message) => {
                            warnings.push(format!("{}: {message}", index_path.display()))
                        }
                    }
                }
                let mut tensors = BTreeMap::new();
                for (position, (_, file)) in files.iter().enumerate() {
                    for name in file.metadata().iter_names() {
                        tensors.insert(name.to_string(), position);
                    }
                }
                Ok(OpenModel {
                    path: shown,
                    files,
                    tensors,
                    warnings,
                })
            }
        }
    }

    /// The header entry and a zero-copy view of tensor `name`.
    pub fn view(&self, name: &str) -> Result<TensorView<'_>, Error> {
        let position = *self.tensors.get(name).ok_or_else(|| {
            Error::invalid(&self.path, format!("no tensor `{}`", printable(name)))
        })?;
        let (file, safe) = &self.files[position];
        safe.tensor(name)
            .map_err(|source| Error::from_core(file, source))
    }

    /// The `__metadata__` to carry over: the first file's (in file name order). The second
    /// value lists files whose metadata differs from it.
    pub fn metadata(&self) -> (Option<Pairs<'_>>, Vec<&str>) {
        let first = self
            .files
            .first()
            .and_then(|(_, f)| f.metadata().metadata_ordered());
        let differing = self
            .files
            .iter()
            .filter(|(_, f)| !same_metadata(f.metadata().metadata_ordered(), first))
            .map(|(n, _)| n.as_str())
            .collect();
        (first, differing)
    }

    /// The `__metadata__` of the whole model as a map (for comparisons).
    pub fn metadata_map(&self) -> BTreeMap<&str, &str> {
        self.metadata()
            .0
            .map(|pairs| pairs.iter().collect())
            .unwrap_or_default()
    }

    /// Tensor names in data order, file by file: the order a reader streaming the files sees.
    pub fn names_in_data_order(&self) -> Vec<String> {
        self.files
            .iter()
            .flat_map(|(_, f)| f.metadata().offset_keys())
            .collect()
    }
}

/// Two `__metadata__` values hold the same pairs (order aside).
fn same_metadata(a: Option<Pairs<'_>>, b: Option<Pairs<'_>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            let a: BTreeMap<_, _> = a.iter().collect();
            let b: BTreeMap<_, _> = b.iter().collect();
            a == b
        }
        _ => false,
    }
}

fn open_file(path: &Path) -> Result<SafeFile, Error> {
    // SAFETY: like ripgrep, the command maps the files the user names and accepts the mmap
    // contract on their behalf: a model modified in place while the command reads it is
    // outside what the tool supports (see the README); truncation is checked before reads.
    SafeFile::open(path, unsafe { Backend::mmap() })
        .map_err(|source| Error::from_core(path.display(), source))
}
