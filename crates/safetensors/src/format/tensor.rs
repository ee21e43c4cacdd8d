//! Zero-copy reading of a whole file held in memory: [`SafeTensors`] over a caller's
//! buffer, [`TensorView`]s into it, and the [`View`] trait the writer consumes.

use alloc::borrow::Cow;
use alloc::string::String;
use alloc::vec::Vec;

/// Anything the writer can store as a tensor: a dtype, a shape and little-endian,
/// row-major bytes.
pub trait View {
    /// Element type.
    fn dtype(&self) -> Dtype;
    /// Shape.
    fn shape(&self) -> &[usize];
    /// The bytes, borrowed where possible.
    fn data(&self) -> Cow<'_, [u8]>;
    /// Number of bytes `data()` returns, known without producing them.
    fn data_len(&self) -> usize;
}

/// A tensor whose bytes are borrowed from a buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TensorView<'data> {
    dtype: Dtype,
    shape: Vec<usize>,
    data: &'data [u8],
}

impl<'data> TensorView<'data> {
    /// Wraps `data` as a tensor, checking its length against dtype and shape
    /// ([`SafeTensorError::InvalidTensorView`] when they disagree, and
    /// [`SafeTensorError::MisalignedSlice`], as the reference, when the shape holds a
    /// sub-byte dtype's elements that do not fill whole bytes).
    pub fn new(
        dtype: Dtype,
        shape: Vec<usize>,
        data: &'data [u8],
    ) -> Result<Self, SafeTensorError> {
        if dtype.byte_size(&shape) == Err(crate::format::dtype::ShapeSizeError::PartialByte) {
            return Err(SafeTensorError::MisalignedSlice);
        }
        Self::checked(dtype, shape, data).map_err(SafeTensorError::from)
    }

    /// [`TensorView::new`] with the crate's detailed [`crate::format::error::Error`].
    pub(crate) fn checked(
        dtype: Dtype,
        shape: Vec<usize>,
        data: &'data [u8],
    ) -> Result<Self, crate::format::error::Error> {
        if dtype.byte_size(&shape) != Ok(data.len()) {
            return Err(crate::format::error::Error::InvalidTensorView {
                dtype,
                shape,
                data_len: data.len(),
            });
        }
        Ok(TensorView { dtype, shape, data })
    }

    /// Element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// Shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The tensor's bytes.
    pub fn data(&self) -> &'data [u8] {
        self.data
    }

    /// Number of bytes.
    pub fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl View for TensorView<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

impl View for &TensorView<'_> {
    fn dtype(&self) -> Dtype {
        self.dtype
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(self.data)
    }
    fn data_len(&self) -> usize {
        self.data.len()
    }
}

/// A validated safetensors file over a borrowed buffer (for example a memory map).
/// Tensors are views into that buffer: nothing is copied.
#[derive(Debug, Clone)]
pub struct SafeTensors<'data> {
    metadata: Metadata,
    data: &'data [u8],
}

impl<'data> SafeTensors<'data> {
    /// Parses and validates the header of a whole file held in `buffer`; returns the
    /// header length `N` and the header.
    ///
    /// The reference's error enum: for the detailed [`crate::format::error::Error`] (the tensor, the
    /// numbers) read the same header with
    /// [`read_file_header_from_bytes`](crate::format::file_header::read_file_header_from_bytes).
    pub fn read_metadata(buffer: &'data [u8]) -> Result<(usize, Metadata), SafeTensorError> {
        let header = crate::format::file_header::read_file_header_from_bytes(buffer)?;
        Ok((header.header_len, header.metadata))
    }

    /// Parses and validates a whole file held in `buffer`.
    ///
    /// ```
    /// use safetensors::{serialize, Dtype, SafeTensors};
    /// use safetensors::tensor::TensorView;
    ///
    /// let bytes: Vec<u8> = [1.0f32, 2.0].iter().flat_map(|v| v.to_le_bytes()).collect();
    /// let view = TensorView::new(Dtype::F32, vec![2], &bytes).unwrap();
    /// let file = serialize([("weight", view)], None).unwrap();
    ///
    /// let st = SafeTensors::deserialize(&file).unwrap();
    /// let weight = st.tensor("weight").unwrap();
    /// assert_eq!(weight.shape(), &[2]);
    /// assert_eq!(weight.data(), &bytes[..]);
    /// ```
    ///
    /// The reference's error enum: for the detailed [`crate::format::error::Error`] (the tensor, the
    /// numbers) use [`SafeTensors::parse`].
    pub fn deserialize(buffer: &'data [u8]) -> Result<Self, SafeTensorError> {
        Ok(Self::parse(buffer)?)
    }

    /// [`SafeTensors::deserialize`] with the crate's detailed [`crate::format::error::Error`] (which tensor,
    /// which numbers): the same checks, for callers that report them.
    pub fn parse(buffer: &'data [u8]) -> Result<Self, crate::format::error::Error> {
        let header = crate::format::file_header::read_file_header_from_bytes(buffer)?;
        let (n, metadata) = (header.header_len, header.metadata);
        Ok(SafeTensors {
            metadata,
            data: &buffer[8 + n..],
        })
    }

    fn view(&self, info: crate::format::header::TensorInfo) -> TensorView<'data> {
        TensorView {
            dtype: info.dtype,
            data: &self.data[info.data_offsets.0..info.data_offsets.1],
            shape: info.shape,
        }
    }

    /// Every tensor, in data order.
    pub fn tensors(&self) -> Vec<(String, TensorView<'data>)> {
        self.iter()
            .map(|(name, view)| (name.into(), view))
            .collect()
    }

    /// Every tensor, in data order, without allocating names.
    pub fn iter(&self) -> impl Iterator<Item = (&str, TensorView<'data>)> + '_ {
        self.metadata
            .entries()
            .map(|(name, info)| (name, self.view(info)))
    }

    /// One tensor by name.
    pub fn tensor(&self, name: &str) -> Result<TensorView<'data>, SafeTensorError> {
        self.metadata
            .entry(name)
            .map(|info| self.view(info))
            .ok_or_else(|| SafeTensorError::TensorNotFound(crate::format::error::excerpt(name)))
    }

    /// Tensor names, in data order (0.8.0's signature: borrowed `&str`s).
    pub fn names(&self) -> Vec<&str> {
        self.metadata.iter_names().collect()
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.metadata.len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.metadata.is_empty()
    }

    /// The header: tensor entries and the `__metadata__` map.
    pub fn metadata(&self) -> &Metadata {
        &self.metadata
    }
}

// The reference crate exposes these under `safetensors::tensor`; keep the paths.
#[doc(inline)]
pub use crate::format::dtype::Dtype;
#[doc(inline)]
pub use crate::format::header::{read_header_len, Metadata, MetadataEntries, TensorInfo};
#[doc(inline)]
pub use crate::format::safe_tensor_error::SafeTensorError;
#[cfg(feature = "std")]
#[doc(inline)]
pub use crate::format::serialize::serialize_to_file;
#[doc(inline)]
pub use crate::format::serialize::{serialize, MetadataArg};
