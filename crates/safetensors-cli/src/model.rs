//! A model opened for reading tensor data: one safetensors file or every shard of a sharded
//! folder, opened through the core's `Checkpoint` with memory-mapped files.
//! `diff`, `shard` and `merge` read tensor bytes through it without loading files.

use std::collections::BTreeMap;
use std::path::Path;

use safetensors::checkpoint::shard_index::IndexProblem;
use safetensors::checkpoint::Backend;
use safetensors::checkpoint::Checkpoint;
use safetensors::format::checksum;
use safetensors::tensor::TensorView;

use crate::error::Error;
use crate::inspect::Pairs;
use crate::table::printable;

/// A model opened for reading: its checkpoint with every shard open and checked.
pub struct OpenModel {
    /// The path given.
    pub path: String,
    checkpoint: Checkpoint,
    /// Notes that did not stop the opening (e.g. a wrong `total_size` in the index).
    pub warnings: Vec<String>,
}

impl OpenModel {
    /// Opens `path`: a safetensors file, or a sharded folder / index json. For a sharded model
    /// the index must agree with the shards (every tensor where the weight map says, and only
    /// there); a wrong `total_size` is only a warning.
    pub fn open(path: &Path) -> Result<Self, Error> {
        let shown = path.display().to_string();
        // SAFETY: like ripgrep, the command maps the files the user names and accepts the mmap
        // contract on their behalf: a model modified in place while the command reads it is
        // outside what the tool supports (see the README); truncation is checked before reads.
        let checkpoint = Checkpoint::open_with(path, unsafe { Backend::mmap() })
            .map_err(|source| Error::from_core(&shown, source))?;
        let report = checkpoint.check();
        for (name, file) in report.shards {
            let at = if checkpoint.is_sharded() {
                name
            } else {
                shown.clone()
            };
            file.map_err(|source| Error::from_core(at, source))?;
        }
        let index_path = checkpoint
            .index()
            .map(|(index_path, _)| index_path.display().to_string())
            .unwrap_or_default();
        let mut warnings = Vec::new();
        for problem in report.index_problems {
            match problem {
                IndexProblem::Tensor(message) => {
                    return Err(Error::invalid(
                        &index_path,
                        format!("index and shards disagree: {message}"),
                    ))
                }
                IndexProblem::TotalSize(message) => {
                    warnings.push(format!("{index_path}: {message}"))
                }
            }
        }
        Ok(OpenModel {
            path: shown,
            checkpoint,
            warnings,
        })
    }

    /// Every tensor name, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> + '_ {
        self.checkpoint.names()
    }

    /// How many files the model has.
    pub fn file_count(&self) -> usize {
        self.checkpoint.shard_count()
    }

    /// The name of file `i` (the shard name, or the path for a single file).
    pub fn file_name(&self, i: usize) -> &str {
        if self.checkpoint.is_sharded() {
            self.checkpoint.shard_name(i)
        } else {
            &self.path
        }
    }

    /// The header entry and a zero-copy view of tensor `name`.
    pub fn view(&self, name: &str) -> Result<TensorView<'_>, Error> {
        let Some(at) = self.checkpoint.shard_of(name) else {
            return Err(Error::invalid(
                &self.path,
                format!("no tensor `{}`", printable(name)),
            ));
        };
        let file = self
            .checkpoint
            .shard(at)
            .map_err(|source| Error::from_core(self.file_name(at), source))?;
        file.tensor(name)
            .map_err(|source| Error::from_core(self.file_name(at), source))
    }

    /// Each file's `__metadata__`, in file order (every shard was opened by `open`).
    fn file_metadata(&self) -> impl Iterator<Item = (&str, Option<Pairs<'_>>)> + '_ {
        (0..self.file_count()).map(|i| {
            let pairs = self
                .checkpoint
                .shard(i)
                .ok()
                .and_then(|f| f.metadata().metadata_ordered());
            (self.file_name(i), pairs)
        })
    }

    /// The `__metadata__` to carry over: the first file's (in file name order). The second
    /// value lists files whose metadata differs from it.
    pub fn metadata(&self) -> (Option<Pairs<'_>>, Vec<&str>) {
        let first = self.file_metadata().next().and_then(|(_, pairs)| pairs);
        let differing = self
            .file_metadata()
            .filter(|(_, pairs)| !same_metadata(*pairs, first))
            .map(|(name, _)| name)
            .collect();
        (first, differing)
    }

    /// The `__metadata__` to write for the whole model: the first file's entries, with the
    /// checksums every file records for its own tensors (each shard records only its own).
    pub fn merged_metadata(&self) -> Option<Vec<(String, String)>> {
        let (first, _) = self.metadata();
        let mut pairs: Vec<(String, String)> = first?
            .iter()
            .filter(|(k, _)| checksum::tensor_of_key(k).is_none())
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        for (_, file_pairs) in self.file_metadata() {
            let recorded = file_pairs.into_iter().flat_map(|p| p.iter());
            pairs.extend(
                recorded
                    .filter(|(k, _)| checksum::tensor_of_key(k).is_some())
                    .map(|(k, v)| (k.to_owned(), v.to_owned())),
            );
        }
        Some(pairs)
    }

    /// The `__metadata__` of the whole model as a map (for comparisons).
    pub fn metadata_map(&self) -> BTreeMap<&str, &str> {
        self.metadata()
            .0
            .map(|pairs| pairs.iter().collect())
            .unwrap_or_default()
    }

    /// Tensor names in data order, file by file: the order a reader streaming the files sees.
    pub fn names_in_data_order(&self) -> Result<Vec<String>, Error> {
        self.checkpoint
            .offset_keys()
            .map_err(|source| Error::from_core(&self.path, source))
    }
}

/// Two `__metadata__` values hold the same pairs (order aside, and recorded checksums
/// aside: each shard records its own tensors').
fn same_metadata(a: Option<Pairs<'_>>, b: Option<Pairs<'_>>) -> bool {
    fn own(pairs: Pairs<'_>) -> BTreeMap<&str, &str> {
        pairs
            .iter()
            .filter(|(k, _)| checksum::tensor_of_key(k).is_none())
            .collect()
    }
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => own(a) == own(b),
        _ => false,
    }
}
