//! Writing a safetensors file from borrowed tensor views through the core's
//! `write::to_file` (temporary file + rename), advancing a progress bar as each tensor's
//! bytes are handed to the writer.

use std::borrow::Cow;
use std::path::Path;

use safetensors::write::to_file as serialize_to_file;
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
pub fn write_file<V: View>(
    tensors: Vec<(String, V)>,
    metadata: Option<safetensors::tensor::MetadataEntries<'_>>,
    path: &Path,
    progress: &Progress,
) -> Result<(), Error> {
    let counted = tensors
        .into_iter()
        .map(|(name, view)| (name, Counted::new(view, progress)));
    let result = match metadata {
        Some(pairs) => serialize_to_file(counted, pairs, path),
        None => serialize_to_file(counted, None, path),
    };
    result.map_err(|source| Error::Write {
        path: path.display().to_string(),
        source,
    })
}
