//! Writing a file whose tensors arrive one at a time.
//!
//! [`StreamingWriter`] takes every tensor's name, dtype and shape first and lays the file
//! out with the same code as [`to_file`](crate::format::serialize::to_file) (the same order,
//! the same header builder), so the file it writes is byte for byte what `to_file` writes for
//! the same tensors. Then it takes each tensor's bytes whenever they are ready, in any order,
//! and writes them at their planned offsets: only the tensor being written needs to be in
//! memory, which is what converting or merging a model larger than memory needs.
//!
//! The file is written to a temporary file beside the target and renamed into place by
//! [`StreamingWriter::finish`], which refuses to do so while a planned tensor has not been
//! written. A writer dropped before that (an error, a tensor never written) removes its
//! temporary file; an existing file at the target is never touched.
//!
//! With a checksum ([`WriteOptions::checksum`]) each tensor is hashed as it is written and
//! the header, laid out with placeholders of the digests' length, is rewritten at the start
//! of the file by `finish`: again exactly what `to_file_with` writes.
//!
//! ```
//! use safetensors::tensor::TensorView;
//! use safetensors::write::{Spec, StreamingWriter, WriteOptions};
//! use safetensors::Dtype;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("model.safetensors");
//! let specs = [
//!     ("embed", Spec::new(Dtype::F32, [4, 2])),
//!     ("head", Spec::new(Dtype::U8, [3])),
//! ];
//! let mut writer =
//!     StreamingWriter::create(&path, specs, vec![("format", "pt")], &WriteOptions::default())
//!         .unwrap();
//! // Any order; each tensor's bytes can be dropped once written.
//! writer.write("head", &TensorView::new(Dtype::U8, vec![3], &[1, 2, 3]).unwrap()).unwrap();
//! let embed = vec![0u8; 32];
//! writer.write("embed", &TensorView::new(Dtype::F32, vec![4, 2], &embed).unwrap()).unwrap();
//! writer.finish().unwrap();
//!
//! let whole = safetensors::serialize(
//!     [
//!         ("embed", TensorView::new(Dtype::F32, vec![4, 2], &embed).unwrap()),
//!         ("head", TensorView::new(Dtype::U8, vec![3], &[1, 2, 3]).unwrap()),
//!     ],
//!     vec![("format", "pt")],
//! )
//! .unwrap();
//! assert_eq!(std::fs::read(&path).unwrap(), whole);
//! ```

use std::collections::HashMap;
use std::path::Path;

use crate::format::atomic::AtomicFile;
use crate::format::checksum::Algorithm;
use crate::format::dtype::{Dtype, ShapeSizeError};
use crate::format::error::{excerpt, Error, QUOTED_DIMS};
use crate::format::serialize::{lay_out, Described, Laid, MetadataArg, WriteOptions};
use crate::format::tensor::View;

/// What the writer must know of a tensor before its bytes: its dtype and its shape (the
/// header's shape: elements, not storage units).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    /// Element type.
    pub dtype: Dtype,
    /// Shape.
    pub shape: Vec<usize>,
}

impl Spec {
    /// A tensor of `dtype` and `shape`.
    pub fn new(dtype: Dtype, shape: impl Into<Vec<usize>>) -> Self {
        Spec {
            dtype,
            shape: shape.into(),
        }
    }

    /// The tensor's size in bytes, or the error naming tensor `name` when the shape has none
    /// (it overflows, or sub-byte elements do not fill whole bytes).
    pub fn byte_len(&self, name: &str) -> Result<usize, Error> {
        let kept = || self.shape[..self.shape.len().min(QUOTED_DIMS)].to_vec();
        self.dtype.byte_size(&self.shape).map_err(|e| match e {
            ShapeSizeError::Overflow => Error::ValidationOverflow {
                tensor: excerpt(name),
                shape: kept(),
                ndim: self.shape.len(),
            },
            ShapeSizeError::PartialByte => Error::MisalignedSubByte {
                tensor: excerpt(name),
                dtype: self.dtype,
                shape: kept(),
                ndim: self.shape.len(),
            },
        })
    }
}

/// A planned tensor: its spec with its byte length checked.
struct Planned {
    spec: Spec,
    len: usize,
}

impl Described for Planned {
    fn dtype(&self) -> Dtype {
        self.spec.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.spec.shape
    }
    fn data_len(&self) -> usize {
        self.len
    }
}

/// Where a planned tensor goes, and whether it is there yet.
struct Slot {
    /// Its first byte's offset in the file (header included).
    at: u64,
    written: bool,
    /// Its digest, once written, when a checksum was asked for.
    digest: Option<String>,
}

/// A safetensors file written tensor by tensor: the layout is fixed when it is created, each
/// tensor is written once, in any order, and [`finish`](StreamingWriter::finish) renames the
/// file into place when all are written. See [the module](self) for an example.
pub struct StreamingWriter {
    file: AtomicFile,
    laid: Laid<String, Planned>,
    /// In file order, as `laid.items`.
    slots: Vec<Slot>,
    by_name: HashMap<String, usize>,
    checksum: Option<Algorithm>,
    written: usize,
}

impl StreamingWriter {
    /// Lays out a file of the tensors `specs` (names with their dtype and shape, in any order)
    /// and `metadata` (see [`MetadataArg`]), and creates its temporary file beside `path` with
    /// the header in place. Refuses what [`to_file`](crate::format::serialize::to_file) refuses
    /// (a name given twice, `__metadata__` as a name, a header over the limit), before any
    /// file is created.
    pub fn create<S, I, M>(
        path: impl AsRef<Path>,
        specs: I,
        metadata: M,
        options: &WriteOptions,
    ) -> Result<Self, Error>
    where
        S: Into<String>,
        I: IntoIterator<Item = (S, Spec)>,
        M: MetadataArg,
    {
        let planned = specs
            .into_iter()
            .map(|(name, spec)| {
                let name: String = name.into();
                let len = spec.byte_len(&name)?;
                Ok((name, Planned { spec, len }))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let laid = lay_out(planned, metadata, options)?;
        let mut at = laid.header.len() as u64;
        let mut slots = Vec::with_capacity(laid.items.len());
        let mut by_name = HashMap::with_capacity(laid.items.len());
        for (i, (name, planned)) in laid.items.iter().enumerate() {
            slots.push(Slot {
                at,
                written: false,
                digest: None,
            });
            at += planned.len as u64;
            by_name.insert(name.clone(), i);
        }
        let file = AtomicFile::create(path.as_ref())?;
        // The final size at once: tensors written out of order leave no short file between.
        file.set_len(at)?;
        file.write_all_at(&laid.header, 0)?;
        Ok(StreamingWriter {
            file,
            laid,
            slots,
            by_name,
            checksum: options.checksum,
            written: 0,
        })
    }

    /// Writes tensor `name`'s bytes at its planned place. Refuses a name that was not planned,
    /// a tensor already written, and a tensor whose dtype, shape or byte length differ from
    /// the plan, each with an error naming the tensor; nothing is written then.
    pub fn write<V: View>(&mut self, name: &str, tensor: &V) -> Result<(), Error> {
        let i = self.slot(name)?;
        let (_, planned) = &self.laid.items[i];
        if tensor.dtype() != planned.spec.dtype || tensor.shape() != planned.spec.shape {
            return Err(Error::InvalidWrite(format!(
                "tensor {:?} was planned as {} {:?} but is {} {:?}",
                excerpt(name),
                planned.spec.dtype,
                planned.spec.shape,
                tensor.dtype(),
                tensor.shape()
            )));
        }
        let data = tensor.data();
        if data.len() != planned.len {
            return Err(Error::InvalidWrite(format!(
                "tensor {:?}: a {} tensor of shape {:?} takes {} bytes, but {} were given",
                excerpt(name),
                planned.spec.dtype,
                planned.spec.shape,
                planned.len,
                data.len()
            )));
        }
        let slot = &mut self.slots[i];
        self.file.write_all_at(&data, slot.at)?;
        slot.digest = self.checksum.map(|algorithm| algorithm.digest(&data));
        slot.written = true;
        self.written += 1;
        Ok(())
    }

    /// The index of a planned tensor not yet written, or why it cannot be written.
    fn slot(&self, name: &str) -> Result<usize, Error> {
        let Some(&i) = self.by_name.get(name) else {
            return Err(Error::InvalidWrite(format!(
                "tensor {:?} is not one of the {} planned tensors",
                excerpt(name),
                self.slots.len()
            )));
        };
        if self.slots[i].written {
            return Err(Error::InvalidWrite(format!(
                "tensor {:?} was already written (each tensor is written once)",
                excerpt(name)
            )));
        }
        Ok(i)
    }

    /// The planned tensors, in file order: name and spec.
    pub fn specs(&self) -> impl Iterator<Item = (&str, &Spec)> {
        self.laid
            .items
            .iter()
            .map(|(name, planned)| (name.as_str(), &planned.spec))
    }

    /// The spec of planned tensor `name`.
    pub fn spec(&self, name: &str) -> Option<&Spec> {
        let &i = self.by_name.get(name)?;
        Some(&self.laid.items[i].1.spec)
    }

    /// The planned tensors not written yet, in file order.
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        self.laid
            .items
            .iter()
            .zip(&self.slots)
            .filter(|(_, slot)| !slot.written)
            .map(|((name, _), _)| name.as_str())
    }

    /// True once every planned tensor is written.
    pub fn is_complete(&self) -> bool {
        self.written == self.slots.len()
    }

    /// The file's size once written, header included.
    pub fn file_len(&self) -> u64 {
        let data: usize = self.laid.items.iter().map(|(_, p)| p.len).sum();
        self.laid.header.len() as u64 + data as u64
    }

    /// The path the file is renamed to by [`finish`](StreamingWriter::finish).
    pub fn path(&self) -> &Path {
        self.file.target()
    }

    /// Renames the file into place, once every planned tensor is written (with a checksum,
    /// after rewriting the header with the digests). A tensor never written is an error
    /// naming it, and then, as for any error here, the temporary file is removed and an
    /// existing file at the target is left as it was.
    pub fn finish(mut self) -> Result<(), Error> {
        if !self.is_complete() {
            return Err(self.missing_error());
        }
        if self.checksum.is_some() {
            let digests = self
                .slots
                .iter_mut()
                .map(|slot| slot.digest.take().expect("every written slot has one"))
                .collect();
            let header = self.laid.final_header(digests)?;
            self.file.write_all_at(&header, 0)?;
        }
        self.file.commit()?;
        Ok(())
    }

    /// The error for tensors never written: how many, and the first few names.
    pub(crate) fn missing_error(&self) -> Error {
        missing_error(self.missing(), self.slots.len(), self.path())
    }
}

/// The error for planned tensors never written (`missing`, in file order, of `planned`),
/// naming the first few; nothing is renamed to `path`.
pub(crate) fn missing_error<'a>(
    missing: impl Iterator<Item = &'a str>,
    planned: usize,
    path: &Path,
) -> Error {
    const SHOWN: usize = 8;
    let missing: Vec<&str> = missing.collect();
    let mut names: Vec<String> = missing
        .iter()
        .take(SHOWN)
        .map(|n| format!("{:?}", excerpt(n)))
        .collect();
    if missing.len() > SHOWN {
        names.push(format!("… ({} more)", missing.len() - SHOWN));
    }
    Error::InvalidWrite(format!(
        "{} of the {planned} planned tensors {} never written: {}; nothing was written to {}",
        missing.len(),
        if missing.len() == 1 { "was" } else { "were" },
        names.join(", "),
        path.display()
    ))
}

impl std::fmt::Debug for StreamingWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamingWriter")
            .field("path", &self.path())
            .field("planned", &self.slots.len())
            .field("written", &self.written)
            .finish()
    }
}
