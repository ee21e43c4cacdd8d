//! The core's accept/refuse decision against an independent model of SPEC section 1,
//! written here as plainly as possible: the JSON is read into a tree that keeps repeated
//! keys (otherwise built like `serde_json::Value`), then each rule is one straightforward
//! check. Both must agree on every input, and on what an accepted file holds.
#![no_main]

use std::collections::BTreeSet;
use std::fmt;

use libfuzzer_sys::fuzz_target;
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Number;

/// A JSON value; objects keep every key in file order, repeated ones included.
enum Json {
    Null,
    Bool,
    Num(Number),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl<'de> Deserialize<'de> for Json {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Json, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Json;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("JSON")
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Json, E> {
                Ok(Json::Null)
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Json, E> {
                Ok(Json::Bool)
            }
            fn visit_u64<E: serde::de::Error>(self, n: u64) -> Result<Json, E> {
                Ok(Json::Num(n.into()))
            }
            fn visit_i64<E: serde::de::Error>(self, n: i64) -> Result<Json, E> {
                Ok(Json::Num(n.into()))
            }
            fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Json, E> {
                // Any float, finite or not, is "not an integer" to the model.
                Ok(Json::Num(
                    Number::from_f64(n).unwrap_or_else(|| Number::from_f64(0.5).unwrap()),
                ))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Json, E> {
                Ok(Json::Str(s.to_owned()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Json, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element()? {
                    items.push(item);
                }
                Ok(Json::Arr(items))
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Json, A::Error> {
                let mut pairs = Vec::new();
                while let Some(pair) = map.next_entry()? {
                    pairs.push(pair);
                }
                Ok(Json::Obj(pairs))
            }
        }
        d.deserialize_any(V)
    }
}

/// Bits per element of each dtype name the format defines.
fn bits(dtype: &str) -> Option<u64> {
    Some(match dtype {
        "F4" => 4,
        "F6_E2M3" | "F6_E3M2" => 6,
        "BOOL" | "U8" | "I8" | "F8_E5M2" | "F8_E4M3" | "F8_E8M0" | "F8_E4M3FNUZ"
        | "F8_E5M2FNUZ" => 8,
        "U16" | "I16" | "F16" | "BF16" => 16,
        "U32" | "I32" | "F32" => 32,
        "U64" | "I64" | "F64" | "C64" => 64,
        _ => return None,
    })
}

/// What the model accepts a file as: tensors (name, dtype, shape, begin, end) sorted by
/// name, and the metadata pairs in file order.
type Tensor = (String, String, Vec<u64>, u64, u64);
type Accepted = (Vec<Tensor>, Option<Vec<(String, String)>>);

fn no_repeats<'a>(keys: impl Iterator<Item = &'a String>) -> bool {
    let mut seen = BTreeSet::new();
    keys.into_iter().all(|k| seen.insert(k))
}

fn integers(v: &Json) -> Option<Vec<u64>> {
    match v {
        Json::Arr(items) => items
            .iter()
            .map(|i| match i {
                Json::Num(n) => n.as_u64(),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

fn tensor(name: &str, entry: &Json) -> Option<Tensor> {
    let Json::Obj(fields) = entry else {
        return None;
    };
    let field = |key: &str| {
        let mut found = fields.iter().filter(|(k, _)| k == key);
        let first = found.next();
        // Missing or repeated: refused.
        if found.next().is_some() {
            return None;
        }
        first.map(|(_, v)| v)
    };
    let Json::Str(dtype) = field("dtype")? else {
        return None;
    };
    let shape = integers(field("shape")?)?;
    let offsets = integers(field("data_offsets")?)?;
    let [begin, end] = offsets[..] else {
        return None;
    };
    // The running product, left to right, then times the bits, must fit 64 bits.
    let mut product: u64 = 1;
    for &d in &shape {
        product = product.checked_mul(d)?;
    }
    let total_bits = product.checked_mul(bits(dtype)?)?;
    if total_bits % 8 != 0 || begin > end || end - begin != total_bits / 8 {
        return None;
    }
    Some((name.to_owned(), dtype.clone(), shape, begin, end))
}

fn model(file: &[u8]) -> Option<Accepted> {
    let n = u64::from_le_bytes(file.get(..8)?.try_into().ok()?);
    if n > 100_000_000 || 8 + n > file.len() as u64 {
        return None;
    }
    let header = std::str::from_utf8(&file[8..8 + n as usize]).ok()?;
    let data_len = file.len() as u64 - 8 - n;
    let Json::Obj(entries) = serde_json::from_str::<Json>(header).ok()? else {
        return None;
    };
    if !no_repeats(entries.iter().map(|(k, _)| k)) {
        return None;
    }
    let mut metadata = None;
    let mut tensors = Vec::new();
    for (name, value) in &entries {
        if name == "__metadata__" {
            let Json::Obj(pairs) = value else { return None };
            if !no_repeats(pairs.iter().map(|(k, _)| k)) {
                return None;
            }
            let mut strings = Vec::new();
            for (k, v) in pairs {
                let Json::Str(v) = v else { return None };
                strings.push((k.clone(), v.clone()));
            }
            metadata = Some(strings);
        } else {
            tensors.push(tensor(name, value)?);
        }
    }
    // Sorted by where they start (then end), they must tile [0, data_len) exactly.
    let mut by_offset: Vec<(u64, u64)> = tensors.iter().map(|t| (t.3, t.4)).collect();
    by_offset.sort();
    let mut covered = 0;
    for (begin, end) in by_offset {
        if begin != covered {
            return None;
        }
        covered = end;
    }
    if covered != data_len {
        return None;
    }
    tensors.sort();
    Some((tensors, metadata))
}

fuzz_target!(|data: &[u8]| {
    let expected = model(data);
    let got = safetensors::SafeTensors::deserialize(data);
    match (&expected, &got) {
        (Some((tensors, metadata)), Ok(st)) => {
            let mut ours: Vec<Tensor> = st
                .tensors()
                .into_iter()
                .map(|(name, v)| {
                    let info = st.metadata().info(&name).unwrap();
                    (
                        name,
                        v.dtype().to_string(),
                        v.shape().iter().map(|&d| d as u64).collect(),
                        info.data_offsets.0 as u64,
                        info.data_offsets.1 as u64,
                    )
                })
                .collect();
            ours.sort();
            assert!(
                ours == *tensors,
                "tensors differ: core {ours:?}, model {tensors:?}"
            );
            let ours_meta = st.metadata().metadata_ordered().map(|p| p.to_vec());
            assert!(ours_meta == *metadata, "metadata differs");
        }
        (None, Err(_)) => {}
        (Some(_), Err(e)) => panic!("the model accepts, the core refuses: {e}"),
        (None, Ok(_)) => panic!("the model refuses, the core accepts"),
    }
});
