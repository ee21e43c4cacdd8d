//! Parsing and validating the header: the 8-byte length, the JSON object, and every
//! acceptance rule of the format (types, dtypes, sizes, and exact tiling of the data).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::dtype::{Dtype, ShapeSizeError};
use crate::error::SafeTensorError;
use crate::json::{Header, RawEntry, RawTensor};
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Metadata {
    metadata: Option<HashMap<String, String>>,
    metadata_pairs: Option<Vec<(String, String)>>,
    /// Tensors sorted by their offsets (data order).
    tensors: Vec<(String, TensorInfo)>,
    /// Positions in `tensors`, sorted by name: lookups by binary search, sorted names for free.
    by_name: Vec<usize>,
    data_len: usize,
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
        let Header(entries) = serde_json::from_str(text)
            .map_err(|e| SafeTensorError::InvalidHeaderDeserialization(e.to_string()))?;

        let mut metadata_pairs = None;
        let mut tensors = Vec::with_capacity(entries.len());
        for (name, entry) in entries {
            match entry {
                RawEntry::Metadata(_) if metadata_pairs.is_some() => {
                    return Err(SafeTensorError::DuplicateTensor(name));
                }
                RawEntry::Metadata(pairs) => {
                    metadata_pairs = Some(pairs.map_err(SafeTensorError::InvalidMetadata)?)
                }
                RawEntry::Tensor(raw) => {
                    let info = validate_tensor_entry(&name, raw)?;
                    tensors.push((name, info));
                }
            }
        }
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
        tensors.sort_by(|(an, a), (bn, b)| {
            a.data_offsets.cmp(&b.data_offsets).then_with(|| an.cmp(bn))
        });
        let mut by_name: Vec<usize> = (0..tensors.len()).collect();
        by_name.sort_unstable_by(|&a, &b| tensors[a].0.cmp(&tensors[b].0));
        let metadata = metadata_pairs
            .as_ref()
            .map(|pairs| pairs.iter().cloned().collect());
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
        &self.metadata
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
            .binary_search_by(|&i| self.tensors[i].0.as_str().cmp(name))
            .ok()
            .map(|pos| &self.tensors[self.by_name[pos]].1)
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
            .map(|&i| self.tensors[i].0.as_str())
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

fn validate_tensor_entry(
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
        Ok(s) => s
            .parse::<Dtype>()
            .map_err(|_| SafeTensorError::UnknownDtype {
                tensor: Some(name.into()),
                dtype: s,
            })?,
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
    let [begin, end] = offsets[..] else {
        return Err(bad(format!(
            "data_offsets must hold exactly 2 integers, found {}",
            offsets.len()
        )));
    };

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
            let name = &self.tensors[pair[0]].0;
            if *name == self.tensors[pair[1]].0 {
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
