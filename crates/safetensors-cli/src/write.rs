//! Writing a safetensors file from borrowed tensor views through the core's
//! `write::to_file` (temporary file + rename), advancing a progress bar as each tensor's
//! bytes are handed to the writer.

use std::borrow::Cow;
use std::path::Path;

use safetensors::format::checksum::{self, Algorithm};
use safetensors::write::{to_file_with, WriteOptions};
use safetensors::{Dtype, View};

use crate::error::Error;
use crate::progress::Progress;

/// A view that reports its bytes to a progress bar when the writer takes them.
pub struct Counted<'p, V> {
    inner: V,
    progress: &'p Progress,
}

impl<'p, V> Counted<'p, V> {
    /// Wraps `inner`.
    pub fn new(inner: V, progress: &'p Progress) -> Self {
        Counted { inner, progress }
    }
}

impl<V: View> View for Counted<'_, V> {
    fn dtype(&self) -> Dtype {
        self.inner.dtype()
    }

    fn shape(&self) -> &[usize] {
        self.inner.shape()
    }

    fn data(&self) -> Cow<'_, [u8]> {
        self.progress.inc(self.inner.data_len() as u64);
        self.inner.data()
    }

    fn data_len(&self) -> usize {
        self.inner.data_len()
    }
}

/// Writes `tensors` with `metadata` (kept in its order; `None` writes no `__metadata__`) to
/// `path`, streaming each tensor's bytes from where the views point.
///
/// Checksums recorded in the input's metadata travel with the tensors they cover (the bytes
/// are copied unchanged, so they still hold) and are dropped for tensors this file does not
/// hold; with `checksum`, every tensor's digest is computed afresh instead.
pub fn write_file<V: View>(
    tensors: Vec<(String, V)>,
    metadata: Option<Vec<(String, String)>>,
    path: &Path,
    progress: &Progress,
    checksum: Option<Algorithm>,
) -> Result<(), Error> {
    let pairs = metadata.map(|entries| {
        let held: std::collections::HashSet<&str> =
            tensors.iter().map(|(n, _)| n.as_str()).collect();
        entries
            .iter()
            .filter(|(key, _)| match checksum::tensor_of_key(key) {
                Some(tensor) => checksum.is_none() && held.contains(tensor),
                None => true,
            })
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect::<Vec<_>>()
    });
    let counted = tensors
        .into_iter()
        .map(|(name, view)| (name, Counted::new(view, progress)));
    let options = WriteOptions::default().with_checksum(checksum);
    let result = match pairs {
        Some(pairs) => to_file_with(counted, pairs, path, &options),
        None => to_file_with(
            counted,
            None::<std::collections::HashMap<String, String>>,
            path,
            &options,
        ),
    };
    result.map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}

/// Parses `--checksum`'s value: `sha256` or `xxh3-64`.
pub fn parse_algorithm(text: &str) -> Result<Algorithm, String> {
    text.parse()
        .map_err(|e: checksum::UnknownAlgorithm| e.to_string())
}
