//! The reference's serde face of a header: `Serialize`/`Deserialize` for [`Metadata`],
//! [`TensorInfo`] and [`Dtype`] with the header's own JSON forms, and `Metadata::new`.
//!
//! A `Metadata` built from parts (`new`, or deserialized from any serde format) is validated
//! as a header is: the parts are written as header JSON and read by the one header reader,
//! with the data section taken to end where the last tensor ends. So the rules and the
//! errors are the readers' own (converted into the reference's enum).

use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{self, MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::format::dtype::Dtype;
use crate::format::header::{Metadata, TensorInfo, METADATA_KEY};
use crate::format::safe_tensor_error::SafeTensorError;
use crate::format::serialize::{push_entry, push_metadata};
use crate::format::HashMap;

impl Metadata {
    /// A header from its parts: the `__metadata__` map and the tensors, validated as a
    /// file's header is (known dtypes, sizes that agree with the offsets, no repeated name,
    /// tensors that tile the data from offset 0 without holes or overlaps).
    ///
    /// ```
    /// use safetensors::tensor::{Dtype, Metadata, TensorInfo};
    ///
    /// let info = TensorInfo { dtype: Dtype::F32, shape: vec![2], data_offsets: (0, 8) };
    /// let metadata = Metadata::new(None, vec![("w".to_string(), info)]).unwrap();
    /// assert_eq!(metadata.info("w").unwrap().data_offsets, (0, 8));
    /// ```
    pub fn new(
        metadata: Option<HashMap<String, String>>,
        tensors: Vec<(String, TensorInfo)>,
    ) -> Result<Metadata, SafeTensorError> {
        let pairs = metadata.map(|map| map.into_iter().collect::<Vec<_>>());
        Self::from_pairs(pairs, &tensors)
    }

    /// [`Metadata::new`] with the `__metadata__` in a given order.
    fn from_pairs(
        metadata: Option<Vec<(String, String)>>,
        tensors: &[(String, TensorInfo)],
    ) -> Result<Metadata, SafeTensorError> {
        let mut json = String::with_capacity(64 + tensors.len() * 96);
        json.push('{');
        let mut first = true;
        if let Some(pairs) = &metadata {
            push_metadata(
                &mut json,
                pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            first = false;
        }
        let mut data_len = 0usize;
        for (name, info) in tensors {
            if !first {
                json.push(',');
            }
            first = false;
            push_entry(&mut json, name, info.dtype, &info.shape, info.data_offsets);
            data_len = data_len.max(info.data_offsets.1);
        }
        json.push('}');
        Ok(Metadata::from_header_bytes(json.as_bytes(), data_len)?)
    }
}

impl Serialize for Dtype {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Dtype {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct DtypeVisitor;
        impl Visitor<'_> for DtypeVisitor {
            type Value = Dtype;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a safetensors dtype name (\"F32\", \"BF16\", ...)")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Dtype, E> {
                v.parse().map_err(E::custom)
            }
        }
        deserializer.deserialize_str(DtypeVisitor)
    }
}

/// `{"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]}`, as a header spells it.
impl Serialize for TensorInfo {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut s = serializer.serialize_struct("TensorInfo", 3)?;
        s.serialize_field("dtype", &self.dtype)?;
        s.serialize_field("shape", &self.shape)?;
        s.serialize_field("data_offsets", &self.data_offsets)?;
        s.end()
    }
}

impl<'de> Deserialize<'de> for TensorInfo {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        /// The entry's fields; any other field is ignored (files from newer writers).
        #[derive(Deserialize)]
        struct Entry {
            dtype: Dtype,
            shape: Vec<usize>,
            data_offsets: (usize, usize),
        }
        let Entry {
            dtype,
            shape,
            data_offsets,
        } = Entry::deserialize(deserializer)?;
        Ok(TensorInfo {
            dtype,
            shape,
            data_offsets,
        })
    }
}

/// The header as JSON: `__metadata__` first (when there is one, in its order), then the
/// tensors in data order.
impl Serialize for Metadata {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let extra = usize::from(self.metadata_ordered().is_some());
        let mut map = serializer.serialize_map(Some(self.len() + extra))?;
        if let Some(pairs) = self.metadata_ordered() {
            map.serialize_key(METADATA_KEY)?;
            map.serialize_value(&OrderedPairs(pairs))?;
        }
        for (name, info) in self.entries() {
            map.serialize_entry(name, &info)?;
        }
        map.end()
    }
}

struct OrderedPairs<'a>(crate::format::header::MetadataEntries<'a>);

impl Serialize for OrderedPairs<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(self.0.iter())
    }
}

/// A header read from any serde format (`serde_json::from_slice::<Metadata>(header)`),
/// validated as [`Metadata::new`] validates: an invalid header is an error whose message is
/// the reference's (`invalid offset for tensor `a``, ...).
impl<'de> Deserialize<'de> for Metadata {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MetadataVisitor;
        impl<'de> Visitor<'de> for MetadataVisitor {
            type Value = Metadata;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a safetensors header: a map of tensor names to entries")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Metadata, A::Error> {
                let mut metadata: Option<Vec<(String, String)>> = None;
                let mut tensors: Vec<(String, TensorInfo)> = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    if key == METADATA_KEY {
                        let pairs: Option<OrderedMap> = map.next_value()?;
                        metadata = pairs.map(|p| p.0);
                    } else {
                        tensors.push((key, map.next_value()?));
                    }
                }
                Metadata::from_pairs(metadata, &tensors).map_err(de::Error::custom)
            }
        }
        deserializer.deserialize_map(MetadataVisitor)
    }
}

/// A JSON object of strings to strings, in its order.
struct OrderedMap(Vec<(String, String)>);

impl<'de> Deserialize<'de> for OrderedMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct PairsVisitor;
        impl<'de> Visitor<'de> for PairsVisitor {
            type Value = OrderedMap;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of strings to strings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<OrderedMap, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry::<String, String>()? {
                    pairs.push(pair);
                }
                Ok(OrderedMap(pairs))
            }
        }
        deserializer.deserialize_map(PairsVisitor)
    }
}
