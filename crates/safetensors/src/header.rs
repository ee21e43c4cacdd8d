//! Parsing and validating the header: the 8-byte length, the JSON object, and every
//! acceptance rule of the format (types, dtypes, sizes, and exact tiling of the data).

use alloc::collections::{BTreeMap, BTreeSet};
use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;
use core::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::dtype::Dtype;
use crate::error::SafeTensorError;
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
    /// Name to position in `tensors`; a BTreeMap so sorted names come for free.
    index: BTreeMap<String, usize>,
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
        if !text.starts_with('{') {
            return Err(SafeTensorError::InvalidHeaderStart);
        }
        let entries: Entries<&RawValue> = serde_json::from_str(text)
            .map_err(|e| SafeTensorError::InvalidHeaderDeserialization(e.to_string()))?;
        check_unique(&entries.0).map_err(SafeTensorError::DuplicateTensor)?;

        let mut metadata_pairs = None;
        let mut tensors = Vec::with_capacity(entries.0.len());
        for (name, raw) in entries.0 {
            if name == METADATA_KEY {
                metadata_pairs = Some(parse_metadata(raw)?);
            } else {
                let info = parse_tensor_entry(&name, raw)?;
                tensors.push((name, info));
            }
        }
        check_tiling(&mut tensors, data_len)?;
        Ok(Self::from_parts(metadata_pairs, tensors, data_len))
    }

    /// Builds a header from parts already known to be valid (tensors in data order).
    fn from_parts(
        metadata_pairs: Option<Vec<(String, String)>>,
        tensors: Vec<(String, TensorInfo)>,
        data_len: usize,
    ) -> Self {
        let index = tensors
            .iter()
            .enumerate()
            .map(|(i, (name, _))| (name.clone(), i))
            .collect();
        let metadata = metadata_pairs
            .as_ref()
            .map(|pairs| pairs.iter().cloned().collect());
        Metadata {
            metadata,
            metadata_pairs,
            tensors,
            index,
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
        self.index.get(name).map(|&i| &self.tensors[i].1)
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
        self.index.keys().map(String::as_str).collect()
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

/// A JSON object as an ordered list of entries. Unlike a map, it keeps file order and
/// repeated keys, so duplicates can be rejected instead of silently overwritten.
struct Entries<V>(Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for Entries<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct EntriesVisitor<V>(core::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for EntriesVisitor<V> {
            type Value = Entries<V>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entries<V>, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    entries.push((key, map.next_value::<V>()?));
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor(core::marker::PhantomData))
    }
}

/// Returns the first key that appears twice.
fn check_unique<V>(entries: &[(String, V)]) -> Result<(), String> {
    let mut seen = BTreeSet::new();
    for (key, _) in entries {
        if !seen.insert(key.as_str()) {
            return Err(key.clone());
        }
    }
    Ok(())
}

fn parse_metadata(raw: &RawValue) -> Result<Vec<(String, String)>, SafeTensorError> {
    let entries: Entries<Value> = serde_json::from_str(raw.get()).map_err(|_| {
        SafeTensorError::InvalidMetadata(format!(
            "expected an object of strings, found {}",
            raw_kind(raw)
        ))
    })?;
    check_unique(&entries.0)
        .map_err(|k| SafeTensorError::InvalidMetadata(format!("key {k:?} appears twice")))?;
    entries
        .0
        .into_iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k, s)),
            other => Err(SafeTensorError::InvalidMetadata(format!(
                "value of {k:?} must be a string, found {}",
                json_kind(&other)
            ))),
        })
        .collect()
}

fn parse_tensor_entry(name: &str, raw: &RawValue) -> Result<TensorInfo, SafeTensorError> {
    let bad = |reason: String| SafeTensorError::InvalidTensorEntry {
        tensor: name.into(),
        reason,
    };
    let fields: Entries<Value> = serde_json::from_str(raw.get()).map_err(|_| {
        bad(format!(
            "entry must be an object with dtype, shape and data_offsets, found {}",
            raw_kind(raw)
        ))
    })?;
    let fields = fields.0;
    check_unique(&fields).map_err(|k| bad(format!("field {k:?} appears twice")))?;
    if let Some((extra, _)) = fields
        .iter()
        .find(|(k, _)| !matches!(k.as_str(), "dtype" | "shape" | "data_offsets"))
    {
        return Err(bad(format!("unexpected field {extra:?}")));
    }
    let field = |key: &str| {
        fields
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
            .ok_or_else(|| bad(format!("missing field {key:?}")))
    };

    let dtype = match field("dtype")? {
        Value::String(s) => s
            .parse::<Dtype>()
            .map_err(|_| SafeTensorError::UnknownDtype {
                tensor: Some(name.into()),
                dtype: s.clone(),
            })?,
        other => {
            return Err(bad(format!(
                "dtype must be a string, found {}",
                json_kind(other)
            )))
        }
    };
    let shape = integer_array(field("shape")?).map_err(|what| bad(format!("shape {what}")))?;
    let offsets = integer_array(field("data_offsets")?)
        .map_err(|what| bad(format!("data_offsets {what}")))?;
    let [begin, end] = offsets[..] else {
        return Err(bad(format!(
            "data_offsets must hold exactly 2 integers, found {}",
            offsets.len()
        )));
    };

    let expected = shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .and_then(|numel| numel.checked_mul(dtype.bitsize()))
        .ok_or_else(|| SafeTensorError::ValidationOverflow {
            tensor: name.into(),
            shape: shape.clone(),
        })?;
    if expected % 8 != 0 {
        return Err(SafeTensorError::MisalignedSubByte {
            tensor: name.into(),
            dtype,
            shape,
        });
    }
    let expected = expected / 8;
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

/// Reads a JSON array of non-negative integers that fit a `usize`; on failure returns
/// the end of a sentence saying what is wrong.
fn integer_array(value: &Value) -> Result<Vec<usize>, String> {
    let Value::Array(items) = value else {
        return Err(format!(
            "must be an array of non-negative integers, found {}",
            json_kind(value)
        ));
    };
    items
        .iter()
        .map(|item| {
            item.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("must hold non-negative integers, found {item}"))
        })
        .collect()
}

/// Names the JSON type of an unparsed value from its first character.
fn raw_kind(raw: &RawValue) -> &'static str {
    match raw.get().as_bytes().first() {
        Some(b'{') => "an object",
        Some(b'[') => "an array",
        Some(b'"') => "a string",
        Some(b't' | b'f') => "a boolean",
        Some(b'n') => "null",
        _ => "a number",
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Sorts tensors into data order and checks they cover `[0, data_len)` exactly: no hole,
/// no overlap, nothing past the end and no trailing bytes.
fn check_tiling(
    tensors: &mut [(String, TensorInfo)],
    data_len: usize,
) -> Result<(), SafeTensorError> {
    tensors
        .sort_by(|(an, a), (bn, b)| a.data_offsets.cmp(&b.data_offsets).then_with(|| an.cmp(bn)));
    let mut covered = 0usize;
    for (name, info) in tensors.iter() {
        let (begin, end) = info.data_offsets;
        if begin != covered || end > data_len {
            return Err(SafeTensorError::InvalidOffset {
                tensor: name.clone(),
                data_offsets: (begin, end),
                expected_begin: covered,
                data_len,
            });
        }
        covered = end;
    }
    if covered != data_len {
        return Err(SafeTensorError::MetadataIncompleteBuffer { covered, data_len });
    }
    Ok(())
}
