//! Parsing and validating the header: the 8-byte length, the JSON object, and every
//! acceptance rule of the format (types, dtypes, sizes, and exact tiling of the data).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::dtype::{Dtype, ShapeSizeError};
use crate::error::SafeTensorError;
use crate::json::{Header, RawTensor};
use crate::HashMap;

/// The largest header a reader accepts, in bytes. Keeps a hostile length prefix from
/// making the reader allocate or read without bound.
pub const MAX_HEADER_SIZE: usize = 100_000_000;

/// The key under which free-form string metadata is stored in the header.
pub const METADATA_KEY: &str = "__metadata__";

/// Where one tensor lives and what it holds. Endianness is little, order is C (row-major).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Shape; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// `[begin, end)` relative to the start of the data section.
    pub data_offsets: (usize, usize),
}

impl TensorInfo {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of bytes (`end - begin`).
    pub fn byte_len(&self) -> usize {
        self.data_offsets.1 - self.data_offsets.0
    }
}

/// A parsed and validated header: the tensors in data order, and the `__metadata__` map.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// `__metadata__` in file order: the one copy of it.
    metadata_pairs: Option<Vec<(String, String)>>,
    /// The same as a map, for [`Metadata::metadata`].
    metadata: MetadataMap,
    /// Tensors sorted by their offsets (data order).
    tensors: Vec<(String, TensorInfo)>,
    /// Positions in `tensors`, sorted by name: lookups by binary search, sorted names for free.
    /// `u32` is enough: a header of at most [`MAX_HEADER_SIZE`] bytes holds fewer entries.
    by_name: Vec<u32>,
    data_len: usize,
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        // The map is derived from the pairs (and may not be built yet on either side).
        self.metadata_pairs == other.metadata_pairs
            && self.tensors == other.tensors
            && self.by_name == other.by_name
            && self.data_len == other.data_len
    }
}

impl Eq for Metadata {}

fn to_map(pairs: &Option<Vec<(String, String)>>) -> Option<HashMap<String, String>> {
    pairs.as_ref().map(|pairs| pairs.iter().cloned().collect())
}

/// The map [`Metadata::metadata`] returns. With `std` it is built on first use: most
/// readers only ask for the ordered pairs, and a header of millions of entries must not be
/// held twice. Without `std` there is no thread-safe lazy cell, so it is built at once.
#[cfg(feature = "std")]
#[derive(Debug, Clone, Default)]
struct MetadataMap(std::sync::OnceLock<Option<HashMap<String, String>>>);

#[cfg(feature = "std")]
impl MetadataMap {
    fn new(_: &Option<Vec<(String, String)>>) -> Self {
        Self::default()
    }

    fn get(&self, pairs: &Option<Vec<(String, String)>>) -> &Option<HashMap<String, String>> {
        self.0.get_or_init(|| to_map(pairs))
    }
}

#[cfg(not(feature = "std"))]
#[derive(Debug, Clone)]
struct MetadataMap(Option<HashMap<String, String>>);

#[cfg(not(feature = "std"))]
impl MetadataMap {
    fn new(pairs: &Option<Vec<(String, String)>>) -> Self {
        Self(to_map(pairs))
    }

    fn get(&self, _: &Option<Vec<(String, String)>>) -> &Option<HashMap<String, String>> {
        &self.0
    }
}

/// Reads the 8-byte little-endian header length at the start of `prefix`, refusing
/// lengths above [`MAX_HEADER_SIZE`].
pub fn read_header_len(prefix: &[u8]) -> Result<usize, SafeTensorError> {
    let bytes: [u8; 8] = prefix
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(SafeTensorError::HeaderTooSmall { len: prefix.len() })?;
    let n = u64::from_le_bytes(bytes);
    if n > MAX_HEADER_SIZE as u64 {
        return Err(SafeTensorError::HeaderTooLarge { header_len: n });
    }
    Ok(n as usize)
}

impl Metadata {
    /// Validates a header. `header` is the `N` bytes after the length prefix (padding
    /// included); `data_len` is the length of the data section (`file size - 8 - N`).
    pub fn from_header_bytes(header: &[u8], data_len: usize) -> Result<Metadata, SafeTensorError> {
        let text = core::str::from_utf8(header).map_err(|e| SafeTensorError::InvalidHeader {
            valid_up_to: e.valid_up_to(),
        })?;
        // JSON whitespace may precede the object, as the reference reads it.
        if !text
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
        {
            return Err(SafeTensorError::InvalidHeaderStart);
        }
        // Every tensor entry is validated as it is read; the first problem in file order is
        // reported, after any JSON syntax error.
        let header: Header = serde_json::from_str(text)
            .map_err(|e| SafeTensorError::InvalidHeaderDeserialization(e.to_string()))?;
        if let Some(problem) = header.first_error {
            return Err(problem);
        }
        let (metadata_pairs, tensors) = (header.metadata, header.tensors);
        let metadata = Self::from_parts(metadata_pairs, tensors, data_len);
        metadata.check_unique_names()?;
        metadata.check_tiling()?;
        Ok(metadata)
    }

    /// Puts tensors in data order (by offsets; ties, zero-sized tensors, by name) and
    /// indexes them by name. Validation happens on the result.
    fn from_parts(
        metadata_pairs: Option<Vec<(String, String)>>,
        mut tensors: Vec<(String, TensorInfo)>,
        data_len: usize,
    ) -> Self {
        // Unstable: no scratch buffer of half the entries. Equal keys are equal names and
        // offsets, which the duplicate-name check refuses whatever their order.
        tensors.sort_unstable_by(|(an, a), (bn, b)| {
            a.data_offsets.cmp(&b.data_offsets).then_with(|| an.cmp(bn))
        });
        // Entries take more than one byte each, so their count fits a u32 (MAX_HEADER_SIZE).
        let mut by_name: Vec<u32> = (0..tensors.len() as u32).collect();
        by_name.sort_unstable_by(|&a, &b| tensors[a as usize].0.cmp(&tensors[b as usize].0));
        let metadata = MetadataMap::new(&metadata_pairs);
        Metadata {
            metadata,
            metadata_pairs,
            tensors,
            by_name,
            data_len,
        }
    }

    /// The `__metadata__` map, if the header has one.
    pub fn metadata(&self) -> &Option<HashMap<String, String>> {
        self.metadata.get(&self.metadata_pairs)
    }

    /// The `__metadata__` entries in the order the file lists them.
    pub fn metadata_ordered(&self) -> Option<&[(String, String)]> {
        self.metadata_pairs.as_deref()
    }

    /// Every tensor by name.
    pub fn tensors(&self) -> HashMap<String, &TensorInfo> {
        self.tensors
            .iter()
            .map(|(name, info)| (name.clone(), info))
            .collect()
    }

    /// One tensor's entry.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.by_name
            .binary_search_by(|&i| self.tensors[i as usize].0.as_str().cmp(name))
            .ok()
            .map(|pos| &self.tensors[self.by_name[pos] as usize].1)
    }

    /// Tensor names in data order (sorted by offsets).
    pub fn offset_keys(&self) -> Vec<String> {
        self.tensors.iter().map(|(name, _)| name.clone()).collect()
    }

    pub(crate) fn iter_names(&self) -> impl Iterator<Item = &String> + '_ {
        self.tensors.iter().map(|(name, _)| name)
    }

    /// Tensor names sorted byte-wise.
    pub fn names_sorted(&self) -> Vec<&str> {
        self.by_name
            .iter()
            .map(|&i| self.tensors[i as usize].0.as_str())
            .collect()
    }

    /// Tensors in data order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &TensorInfo)> + '_ {
        self.tensors
            .iter()
            .map(|(name, info)| (name.as_str(), info))
    }

    /// Length of the data section in bytes.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }
}

/// Checks one tensor entry as read (everything but its place among the others).
pub(crate) fn validate_tensor_entry(
    name: &str,
    raw: Result<RawTensor, &'static str>,
) -> Result<TensorInfo, SafeTensorError> {
    let bad = |reason: String| SafeTensorError::InvalidTensorEntry {
        tensor: name.into(),
        reason,
    };
    let raw = raw.map_err(|found| {
        bad(format!(
            "entry must be an object with dtype, shape and data_offsets, found {found}"
        ))
    })?;
    if let Some(field) = raw.duplicate_field {
        return Err(bad(format!("field {field:?} appears twice")));
    }
    let missing = |key: &str| bad(format!("missing field {key:?}"));
    let dtype = match raw.dtype.ok_or_else(|| missing("dtype"))? {
        Ok(Ok(dtype)) => dtype,
        Ok(Err(unknown)) => {
            return Err(SafeTensorError::UnknownDtype {
                tensor: Some(name.into()),
                dtype: unknown,
            })
        }
        Err(found) => return Err(bad(format!("dtype must be a string, found {found}"))),
    };
    let shape = raw
        .shape
        .ok_or_else(|| missing("shape"))?
        .map_err(|what| bad(format!("shape {what}")))?;
    let offsets = raw
        .data_offsets
        .ok_or_else(|| missing("data_offsets"))?
        .map_err(|what| bad(format!("data_offsets {what}")))?;
    if offsets.count != 2 {
        return Err(bad(format!(
            "data_offsets must hold exactly 2 integers, found {}",
            offsets.count
        )));
    }
    let [begin, end] = offsets.first;

    let expected = dtype.byte_size(&shape).map_err(|e| match e {
        ShapeSizeError::Overflow => SafeTensorError::ValidationOverflow {
            tensor: name.into(),
            shape: shape.clone(),
        },
        ShapeSizeError::PartialByte => SafeTensorError::MisalignedSubByte {
            tensor: name.into(),
            dtype,
            shape: shape.clone(),
        },
    })?;
    if begin > end || end - begin != expected {
        return Err(SafeTensorError::TensorInvalidInfo {
            tensor: name.into(),
            expected,
            data_offsets: (begin, end),
        });
    }
    Ok(TensorInfo {
        dtype,
        shape,
        data_offsets: (begin, end),
    })
}

impl Metadata {
    /// Refuses a tensor name that appears twice (adjacent in name order).
    fn check_unique_names(&self) -> Result<(), SafeTensorError> {
        for pair in self.by_name.windows(2) {
            let name = &self.tensors[pair[0] as usize].0;
            if *name == self.tensors[pair[1] as usize].0 {
                return Err(SafeTensorError::DuplicateTensor(name.clone()));
            }
        }
        Ok(())
    }

    /// Checks the tensors, in data order, cover `[0, data_len)` exactly: no hole, no
    /// overlap, nothing past the end and no trailing bytes.
    fn check_tiling(&self) -> Result<(), SafeTensorError> {
        let mut covered = 0usize;
        for (name, info) in &self.tensors {
            let (begin, end) = info.data_offsets;
            if begin != covered || end > self.data_len {
                return Err(SafeTensorError::InvalidOffset {
                    tensor: name.clone(),
                    data_offsets: (begin, end),
                    expected_begin: covered,
                    data_len: self.data_len,
                });
            }
            covered = end;
        }
        if covered != self.data_len {
            return Err(SafeTensorError::MetadataIncompleteBuffer {
                covered,
                data_len: self.data_len,
            });
        }
        Ok(())
    }
}
