//! The header's JSON grammar as typed serde visitors. Each tensor entry is validated as soon
//! as it is read, so only validated entries are kept (never a raw copy of the whole header);
//! a wrong JSON type is reported as a value rather than a parse error, so validation can name
//! the tensor and field. No intermediate `serde_json::Value` is built: parsing a large header
//! allocates little beyond what the result keeps.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;

use serde::de::{
    self, Deserialize, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use crate::format::dtype::Dtype;
use crate::format::dtype::ShapeSizeError;
use crate::format::error::QUOTED_DIMS;
use crate::format::error::{excerpt, Error};
use crate::format::limits::METADATA_KEY;
use crate::format::table::{ChunkedVec, DimTable, StrTable};

/// A tensor entry's fields; each is `Err(what was found)` when it has the wrong JSON type.
#[derive(Default)]
pub(crate) struct RawTensor {
    pub dtype: Option<Result<Result<Dtype, String>, &'static str>>,
    pub shape: Option<Result<Dims, String>>,
    pub data_offsets: Option<Result<Offsets, String>>,
    pub duplicate_field: Option<&'static str>,
}

/// A shape as read: where its dimensions start in the header's [`DimTable`], how many there
/// are, and their product (`None` once it overflows a `usize`).
#[derive(Clone, Copy)]
pub(crate) struct Dims {
    pub at: u32,
    pub ndim: u32,
    pub numel: Option<usize>,
}

impl Dims {
    /// An empty shape about to be read into `table`.
    pub fn start(table: &DimTable) -> Self {
        Dims {
            at: table.position(),
            ndim: 0,
            numel: Some(1),
        }
    }

    /// Adds one dimension, stored in `table`.
    pub fn push(&mut self, table: &mut DimTable, dim: usize) {
        table.push(dim);
        self.ndim += 1;
        self.numel = self.numel.and_then(|n| n.checked_mul(dim));
    }
}

/// `data_offsets` as read: its first two integers and how many there were, so a wrong
/// count is reported without keeping the array.
pub(crate) struct Offsets {
    pub first: [usize; 2],
    pub count: usize,
}

/// The whole header, read in file order: the metadata, the validated tensors (in file
/// order), and the first problem met in file order. A problem does not stop the parse, so
/// a JSON syntax error anywhere still takes precedence, as when the header was read whole
/// before validation.
pub(crate) struct Header {
    /// Key, value, key, value... in file order.
    pub metadata: Option<StrTable>,
    /// Tensor names and entries in file order (same index), their shapes in `dims`.
    pub names: StrTable,
    pub infos: ChunkedVec<Entry>,
    pub dims: DimTable,
    pub first_error: Option<Error>,
    /// `"__metadata__": null` was read: no metadata, but the key is taken (a second one
    /// is a repeat).
    pub metadata_null: bool,
}

impl Header {
    /// A header with nothing read yet.
    pub fn empty() -> Self {
        Header {
            metadata: None,
            names: StrTable::default(),
            infos: ChunkedVec::default(),
            dims: DimTable::default(),
            first_error: None,
            metadata_null: false,
        }
    }
}

/// Reads a header's object into `.0`, which may already hold entries read before (by the
/// direct reader, see `json_plain.rs`): the object's remaining entries are added to them.
pub(crate) struct HeaderSeed(pub Header);

impl<'de> DeserializeSeed<'de> for HeaderSeed {
    type Value = Header;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Header, D::Error> {
        struct V(Header);
        impl<'de> Visitor<'de> for V {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                let mut header = self.0;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let problem = if key.as_ref() == METADATA_KEY {
                        let value = map.next_value::<MetadataValue>()?.0;
                        match value {
                            _ if header.metadata.is_some() || header.metadata_null => {
                                Some(Error::DuplicateTensor(key.into()))
                            }
                            Ok(Some(pairs)) => {
                                header.metadata = Some(pairs);
                                None
                            }
                            Ok(None) => {
                                header.metadata_null = true;
                                None
                            }
                            Err(e) => Some(Error::InvalidMetadata(e)),
                        }
                    } else {
                        let raw = map.next_value_seed(TensorSeed(&mut header.dims))?;
                        match validate_tensor_entry(key.as_ref(), raw, &header.dims) {
                            Ok(info) => {
                                header.names.push(key);
                                header.infos.push(info);
                                None
                            }
                            Err(e) => Some(e),
                        }
                    };
                    if problem.is_some() {
                        header.first_error = problem;
                        // The rest only has to be well-formed JSON: skim it, keeping nothing.
                        drain_map(map)?;
                        break;
                    }
                }
                Ok(header)
            }
        }
        d.deserialize_map(V(self.0))
    }
}

/// Defines the visit methods of a visitor whose value records "found X instead" for every
/// JSON type it does not expect, consuming nested arrays and objects.
macro_rules! found_instead {
    ($wrap:expr) => {
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok($wrap("a boolean"))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok($wrap("a number"))
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok($wrap("a number"))
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok($wrap("a number"))
        }
        fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
            Ok($wrap("a string"))
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok($wrap("null"))
        }
    };
}

fn drain_seq<'de, A: SeqAccess<'de>>(mut seq: A) -> Result<(), A::Error> {
    while seq.next_element::<IgnoredAny>()?.is_some() {}
    Ok(())
}

fn drain_map<'de, A: MapAccess<'de>>(mut map: A) -> Result<(), A::Error> {
    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
    Ok(())
}

/// The first key, in sorted order, that appears more than once among `count` keys.
/// Sorting positions keeps this O(n log n): a header with a million metadata entries must
/// not take quadratic time.
pub(crate) fn repeated_key<'a>(count: usize, key: impl Fn(usize) -> &'a str) -> Option<&'a str> {
    // Writers usually list keys sorted: one pass then proves there is no repeat, with no
    // scratch memory.
    if (1..count).all(|i| key(i - 1) < key(i)) {
        return None;
    }
    // u32 positions: half the scratch memory; a header's or a call's entries fit.
    let mut order: Vec<u32> = (0..count as u32).collect();
    order.sort_unstable_by(|&a, &b| key(a as usize).cmp(key(b as usize)));
    order
        .windows(2)
        .find(|w| key(w[0] as usize) == key(w[1] as usize))
        .map(|w| key(w[0] as usize))
}

/// `__metadata__`'s value: its pairs, `None` for `null` (read as no metadata, as the
/// reference reads it), or a sentence end saying what was found instead.
struct MetadataValue(Result<Option<StrTable>, String>);

impl<'de> Deserialize<'de> for MetadataValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MetadataValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(|kind| MetadataValue(match kind {
                "null" => Ok(None),
                _ => Err(format!("expected an object of strings, found {kind}")),
            }));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MetadataValue, A::Error> {
                drain_seq(seq)?;
                Ok(MetadataValue(Err(
                    "expected an object of strings, found an array".into(),
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetadataValue, A::Error> {
                let mut pairs = StrTable::default();
                let mut problem = None;
                while let Some(key) = map.next_key::<Text<'de>>()? {
                    let value = map.next_value::<Typed<Text<'de>>>()?.0;
                    if problem.is_some() {
                        continue;
                    }
                    match value {
                        Ok(v) => {
                            pairs.push(key);
                            pairs.push(v);
                        }
                        Err(kind) => {
                            let key = excerpt(key.as_ref());
                            problem =
                                Some(format!("value of {key:?} must be a string, found {kind}"))
                        }
                    }
                }
                let problem = problem.or_else(|| {
                    repeated_key(pairs.len() / 2, |i| pairs.get(2 * i))
                        .map(|key| format!("key {:?} appears twice", excerpt(key)))
                });
                Ok(MetadataValue(match problem {
                    Some(p) => Err(p),
                    None => Ok(Some(pairs)),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// A tensor entry; its shape goes to the header's [`DimTable`].
struct TensorSeed<'a>(&'a mut DimTable);

impl<'de> DeserializeSeed<'de> for TensorSeed<'_> {
    type Value = Result<RawTensor, &'static str>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'a>(&'a mut DimTable);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Result<RawTensor, &'static str>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(Err);
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Err("an array"))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let dims = self.0;
                let mut t = RawTensor::default();
                while let Some(key) = map.next_key::<FieldName>()? {
                    let slot_taken = match key {
                        FieldName::Dtype => t.dtype.is_some(),
                        FieldName::Shape => t.shape.is_some(),
                        FieldName::DataOffsets => t.data_offsets.is_some(),
                        FieldName::Other => false,
                    };
                    if slot_taken && t.duplicate_field.is_none() {
                        t.duplicate_field = Some(key.name());
                    }
                    match key {
                        FieldName::Dtype => t.dtype = Some(map.next_value::<DtypeValue>()?.0),
                        FieldName::Shape => {
                            t.shape = Some(map.next_value_seed(ShapeSeed(&mut *dims))?)
                        }
                        FieldName::DataOffsets => {
                            t.data_offsets = Some(map.next_value::<OffsetsValue>()?.0)
                        }
                        // Ignored, as the reference does, so files from newer writers load.
                        FieldName::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(Ok(t))
            }
        }
        d.deserialize_any(V(self.0))
    }
}

enum FieldName {
    Dtype,
    Shape,
    DataOffsets,
    Other,
}

impl FieldName {
    fn name(&self) -> &'static str {
        match self {
            FieldName::Dtype => "dtype",
            FieldName::Shape => "shape",
            FieldName::DataOffsets => "data_offsets",
            FieldName::Other => "",
        }
    }
}

impl<'de> Deserialize<'de> for FieldName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = FieldName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a field name")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<FieldName, E> {
                Ok(match s {
                    "dtype" => FieldName::Dtype,
                    "shape" => FieldName::Shape,
                    "data_offsets" => FieldName::DataOffsets,
                    _ => FieldName::Other,
                })
            }
        }
        d.deserialize_str(V)
    }
}

/// A string, or the JSON type found instead.
struct Typed<T>(Result<T, &'static str>);

impl<'de> Deserialize<'de> for Typed<Text<'de>> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Typed<Text<'de>>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(Typed(Ok(Text::Borrowed(s))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Typed(Ok(Text::Owned(s.into()))))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(Typed(Ok(Text::Owned(s))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Typed(Err("a boolean")))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(Typed(Err("null")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                drain_seq(seq)?;
                Ok(Typed(Err("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Typed(Err("an object")))
            }
        }
        d.deserialize_any(V)
    }
}

/// A string as read: borrowed from the header when it has no escapes (no allocation), owned
/// otherwise.
pub(crate) enum Text<'de> {
    Borrowed(&'de str),
    Owned(String),
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        match self {
            Text::Borrowed(s) => s,
            Text::Owned(s) => s,
        }
    }
}

impl From<Text<'_>> for String {
    fn from(text: Text<'_>) -> String {
        match text {
            Text::Borrowed(s) => s.into(),
            Text::Owned(s) => s,
        }
    }
}

impl<'de> Deserialize<'de> for Text<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Text<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Text<'de>, E> {
                Ok(Text::Borrowed(s))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Text<'de>, E> {
                Ok(Text::Owned(s.into()))
            }
            fn visit_string<E: de::Error>(self, s: String) -> Result<Text<'de>, E> {
                Ok(Text::Owned(s))
            }
        }
        d.deserialize_str(V)
    }
}

/// A `dtype` value: a known dtype, the unknown name (`Ok(Err(name))`), or the JSON type
/// found instead. Parsed from the borrowed text: a known dtype allocates nothing.
struct DtypeValue(Result<Result<Dtype, String>, &'static str>);

impl<'de> Deserialize<'de> for DtypeValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = DtypeValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<DtypeValue, E> {
                Ok(DtypeValue(Ok(s.parse::<Dtype>().map_err(|_| s.into()))))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<DtypeValue, E> {
                Ok(DtypeValue(Err("a boolean")))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<DtypeValue, E> {
                Ok(DtypeValue(Err("a number")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<DtypeValue, E> {
                Ok(DtypeValue(Err("a number")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<DtypeValue, E> {
                Ok(DtypeValue(Err("a number")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<DtypeValue, E> {
                Ok(DtypeValue(Err("null")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DtypeValue, A::Error> {
                drain_seq(seq)?;
                Ok(DtypeValue(Err("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DtypeValue, A::Error> {
                drain_map(map)?;
                Ok(DtypeValue(Err("an object")))
            }
        }
        d.deserialize_any(V)
    }
}

const NOT_INTEGERS: &str = "must be an array of non-negative integers, found";

/// Reads an array's items as integers, handing each to `keep` until one is not a
/// non-negative integer that fits a `usize`; returns the first such problem.
fn read_integers<'de, A: SeqAccess<'de>>(
    mut seq: A,
    mut keep: impl FnMut(usize),
) -> Result<Option<String>, A::Error> {
    let mut problem = None;
    while let Some(item) = seq.next_element::<Integer>()? {
        match item.0 {
            Ok(n) if problem.is_none() => keep(n),
            Ok(_) => {}
            Err(found) => {
                problem.get_or_insert(format!("must hold non-negative integers, found {found}"));
            }
        }
    }
    Ok(problem)
}

/// A `shape`: an array of non-negative integers that fit a `usize`, stored in the header's
/// [`DimTable`] as they are read (no vector of them), or a sentence end saying what was
/// found instead.
struct ShapeSeed<'a>(&'a mut DimTable);

impl<'de> DeserializeSeed<'de> for ShapeSeed<'_> {
    type Value = Result<Dims, String>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        struct V<'a>(&'a mut DimTable);
        impl<'de> Visitor<'de> for V<'_> {
            type Value = Result<Dims, String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(|kind| Err(format!("{NOT_INTEGERS} {kind}")));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                drain_map(map)?;
                Ok(Err(format!("{NOT_INTEGERS} an object")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
                let table = self.0;
                let mut dims = Dims::start(table);
                let problem = read_integers(seq, |n| dims.push(table, n))?;
                Ok(match problem {
                    Some(p) => Err(p),
                    None => Ok(dims),
                })
            }
        }
        d.deserialize_any(V(self.0))
    }
}

/// `data_offsets`: like a shape, but keeping only the first two and the count.
struct OffsetsValue(Result<Offsets, String>);

impl<'de> Deserialize<'de> for OffsetsValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OffsetsValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(|kind| OffsetsValue(Err(format!("{NOT_INTEGERS} {kind}"))));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<OffsetsValue, A::Error> {
                drain_map(map)?;
                Ok(OffsetsValue(Err(format!("{NOT_INTEGERS} an object"))))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OffsetsValue, A::Error> {
                let mut offsets = Offsets {
                    first: [0; 2],
                    count: 0,
                };
                let problem = read_integers(seq, |n| {
                    if let Some(slot) = offsets.first.get_mut(offsets.count) {
                        *slot = n;
                    }
                    offsets.count += 1;
                })?;
                Ok(OffsetsValue(match problem {
                    Some(p) => Err(p),
                    None => Ok(offsets),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

/// One integer, or a description of the value found instead (e.g. `-1`, `1.5`).
struct Integer(Result<usize, String>);

impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Integer;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> Result<Integer, E> {
                Ok(Integer(usize::try_from(n).map_err(|_| format!("{n}"))))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> Result<Integer, E> {
                Ok(Integer(usize::try_from(n).map_err(|_| format!("{n}"))))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> Result<Integer, E> {
                Ok(Integer(Err(format!("{n:?}"))))
            }
            fn visit_bool<E: de::Error>(self, b: bool) -> Result<Integer, E> {
                Ok(Integer(Err(format!("{b}"))))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Integer, E> {
                Ok(Integer(Err(format!("{:?}", excerpt(s)))))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Integer, E> {
                Ok(Integer(Err("null".into())))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Integer, A::Error> {
                drain_seq(seq)?;
                Ok(Integer(Err("an array".into())))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Integer, A::Error> {
                drain_map(map)?;
                Ok(Integer(Err("an object".into())))
            }
        }
        d.deserialize_any(V)
    }
}

/// A tensor entry as a header keeps it: 32 bytes, its dimensions in the header's
/// [`DimTable`]. `TensorInfo`s are built from it on demand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    pub data_offsets: (usize, usize),
    pub dims_at: u32,
    pub ndim: u32,
    pub dtype: Dtype,
}

/// Checks one tensor entry as read (everything but its place among the others).
pub(crate) fn validate_tensor_entry(
    name: &str,
    raw: Result<RawTensor, &'static str>,
    dims: &DimTable,
) -> Result<Entry, Error> {
    let bad = |reason: String| Error::InvalidTensorEntry {
        tensor: excerpt(name),
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
            return Err(Error::UnknownDtype {
                tensor: Some(excerpt(name)),
                dtype: excerpt(&unknown),
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

    let expected = dtype.byte_size_of(shape.numel).map_err(|e| match e {
        ShapeSizeError::Overflow => Error::ValidationOverflow {
            tensor: excerpt(name),
            shape: dims.shape(shape.at, shape.ndim.min(QUOTED_DIMS as u32)),
            ndim: shape.ndim as usize,
        },
        ShapeSizeError::PartialByte => Error::MisalignedSubByte {
            tensor: excerpt(name),
            dtype,
            shape: dims.shape(shape.at, shape.ndim.min(QUOTED_DIMS as u32)),
            ndim: shape.ndim as usize,
        },
    })?;
    if begin > end || end - begin != expected {
        return Err(Error::TensorInvalidInfo {
            tensor: excerpt(name),
            expected,
            data_offsets: (begin, end),
        });
    }
    Ok(Entry {
        data_offsets: (begin, end),
        dims_at: shape.at,
        ndim: shape.ndim,
        dtype,
    })
}
