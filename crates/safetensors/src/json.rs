//! The header's JSON grammar as typed serde visitors. They keep entries in file order with
//! repeated keys (so duplicates can be refused), and report a wrong JSON type as a value
//! rather than a parse error, so validation can name the tensor and field. No
//! intermediate `serde_json::Value` is built: parsing a large header allocates little.

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::marker::PhantomData;

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::header::METADATA_KEY;

/// One top-level header entry, before validation.
pub(crate) enum RawEntry {
    /// `__metadata__`: ordered pairs, or what was found instead of an object of strings.
    Metadata(Result<Vec<(String, String)>, String>),
    /// A tensor entry: its fields, or the JSON type found instead of an object.
    Tensor(Result<RawTensor, &'static str>),
}

/// A tensor entry's fields; each is `Err(what was found)` when it has the wrong JSON type.
#[derive(Default)]
pub(crate) struct RawTensor {
    pub dtype: Option<Result<String, &'static str>>,
    pub shape: Option<Result<Vec<usize>, String>>,
    pub data_offsets: Option<Result<Vec<usize>, String>>,
    pub duplicate_field: Option<String>,
}

/// The whole header object, in file order, repeated keys kept.
pub(crate) struct Header(pub Vec<(String, RawEntry)>);

impl<'de> Deserialize<'de> for Header {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Header;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Header, A::Error> {
                let mut entries = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let entry = if key == METADATA_KEY {
                        RawEntry::Metadata(map.next_value::<MetadataValue>()?.0)
                    } else {
                        RawEntry::Tensor(map.next_value::<TensorValue>()?.0)
                    };
                    entries.push((key, entry));
                }
                Ok(Header(entries))
            }
        }
        d.deserialize_map(V)
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

/// The first key, in sorted order, that appears more than once. Sorting positions keeps
/// this O(n log n): a header with a million metadata entries must not take quadratic time.
pub(crate) fn repeated_key(pairs: &[(String, String)]) -> Option<&str> {
    let mut order: Vec<usize> = (0..pairs.len()).collect();
    order.sort_unstable_by(|&a, &b| pairs[a].0.cmp(&pairs[b].0));
    order
        .windows(2)
        .find(|w| pairs[w[0]].0 == pairs[w[1]].0)
        .map(|w| pairs[w[0]].0.as_str())
}

struct MetadataValue(Result<Vec<(String, String)>, String>);

impl<'de> Deserialize<'de> for MetadataValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = MetadataValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(|kind| MetadataValue(Err(format!(
                "expected an object of strings, found {kind}"
            ))));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<MetadataValue, A::Error> {
                drain_seq(seq)?;
                Ok(MetadataValue(Err(
                    "expected an object of strings, found an array".into(),
                )))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<MetadataValue, A::Error> {
                let mut pairs: Vec<(String, String)> = Vec::new();
                let mut problem = None;
                while let Some(key) = map.next_key::<String>()? {
                    let value = map.next_value::<Typed<String>>()?.0;
                    if problem.is_some() {
                        continue;
                    }
                    match value {
                        Ok(v) => pairs.push((key, v)),
                        Err(kind) => {
                            problem =
                                Some(format!("value of {key:?} must be a string, found {kind}"))
                        }
                    }
                }
                let problem = problem.or_else(|| {
                    repeated_key(&pairs).map(|key| format!("key {key:?} appears twice"))
                });
                Ok(MetadataValue(match problem {
                    Some(p) => Err(p),
                    None => Ok(pairs),
                }))
            }
        }
        d.deserialize_any(V)
    }
}

struct TensorValue(Result<RawTensor, &'static str>);

impl<'de> Deserialize<'de> for TensorValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = TensorValue;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(|kind| TensorValue(Err(kind)));
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<TensorValue, A::Error> {
                drain_seq(seq)?;
                Ok(TensorValue(Err("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<TensorValue, A::Error> {
                let mut t = RawTensor::default();
                while let Some(key) = map.next_key::<FieldName>()? {
                    let slot_taken = match key {
                        FieldName::Dtype => t.dtype.is_some(),
                        FieldName::Shape => t.shape.is_some(),
                        FieldName::DataOffsets => t.data_offsets.is_some(),
                        FieldName::Other => false,
                    };
                    if slot_taken && t.duplicate_field.is_none() {
                        t.duplicate_field = Some(key.name().into());
                    }
                    match key {
                        FieldName::Dtype => t.dtype = Some(map.next_value::<Typed<String>>()?.0),
                        FieldName::Shape => t.shape = Some(map.next_value::<Integers>()?.0),
                        FieldName::DataOffsets => {
                            t.data_offsets = Some(map.next_value::<Integers>()?.0)
                        }
                        // Ignored, as the reference does, so files from newer writers load.
                        FieldName::Other => {
                            map.next_value::<IgnoredAny>()?;
                        }
                    }
                }
                Ok(TensorValue(Ok(t)))
            }
        }
        d.deserialize_any(V)
    }
}

enum FieldName {
    Dtype,
    Shape,
    DataOffsets,
    Other,
}

impl FieldName {
    fn name(&self) -> &str {
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

impl<'de> Deserialize<'de> for Typed<String> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V(PhantomData<String>);
        impl<'de> Visitor<'de> for V {
            type Value = Typed<String>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<Typed<String>, E> {
                Ok(Typed(Ok(s.into())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Typed<String>, E> {
                Ok(Typed(Err("a boolean")))
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Typed<String>, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Typed<String>, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Typed<String>, E> {
                Ok(Typed(Err("a number")))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Typed<String>, E> {
                Ok(Typed(Err("null")))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Typed<String>, A::Error> {
                drain_seq(seq)?;
                Ok(Typed(Err("an array")))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Typed<String>, A::Error> {
                drain_map(map)?;
                Ok(Typed(Err("an object")))
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// An array of non-negative integers that fit a `usize`, or a sentence end saying what
/// was found instead.
struct Integers(Result<Vec<usize>, String>);

impl<'de> Deserialize<'de> for Integers {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Integers;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            found_instead!(|kind| Integers(Err(format!(
                "must be an array of non-negative integers, found {kind}"
            ))));
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Integers, A::Error> {
                drain_map(map)?;
                Ok(Integers(Err(
                    "must be an array of non-negative integers, found an object".into(),
                )))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Integers, A::Error> {
                let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(4).min(16));
                let mut problem = None;
                while let Some(item) = seq.next_element::<Integer>()? {
                    match item.0 {
                        Ok(n) => out.push(n),
                        Err(found) => {
                            problem.get_or_insert(format!(
                                "must hold non-negative integers, found {found}"
                            ));
                        }
                    }
                }
                Ok(Integers(match problem {
                    Some(p) => Err(p),
                    None => Ok(out),
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
                Ok(Integer(Err(format!("{s:?}"))))
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
