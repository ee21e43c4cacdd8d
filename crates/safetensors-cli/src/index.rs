//! The sharded layout `transformers` uses: `model.safetensors.index.json` beside
//! `model-00001-of-0000N.safetensors` files. The index is
//! `{"metadata": {"total_size": N, ...}, "weight_map": {tensor name: shard file name}}`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::error::Error;

/// The index file name `transformers` looks for in a model folder.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The file name of shard `number` (1-based) of `count`, as `transformers` writes it.
pub fn shard_file_name(number: usize, count: usize) -> String {
    format!("model-{number:05}-of-{count:05}.safetensors")
}

/// A parsed index.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ShardIndex {
    /// The `metadata` object (`total_size` and anything else the writer put there).
    #[serde(default)]
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Tensor name -> shard file name.
    #[serde(deserialize_with = "unique_map")]
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    /// Parses index json read from `origin` (a path or URL, used in errors). Checks every shard
    /// name is a plain relative path and no tensor is listed twice.
    pub fn parse(bytes: &[u8], origin: &str) -> Result<Self, Error> {
        let index: ShardIndex = serde_json::from_slice(bytes)
            .map_err(|e| Error::invalid(origin, format!("not a valid safetensors index: {e}")))?;
        for file in index.files() {
            check_shard_name(origin, file)?;
        }
        Ok(index)
    }

    /// The distinct shard files, sorted.
    pub fn files(&self) -> Vec<&str> {
        let mut files: Vec<&str> = self.weight_map.values().map(String::as_str).collect();
        files.sort_unstable();
        files.dedup();
        files
    }

    /// `metadata.total_size` when present as a non-negative integer (some writers use a string).
    pub fn total_size(&self) -> Option<u64> {
        match self.metadata.as_ref()?.get("total_size")? {
            serde_json::Value::Number(n) => n.as_u64(),
            serde_json::Value::String(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Serializes an index the way `transformers` does (`json.dumps(index, indent=2,
/// sort_keys=True)` plus a newline).
pub fn write_index_json(total_size: u64, weight_map: &BTreeMap<String, String>) -> String {
    #[derive(Serialize)]
    struct Meta {
        total_size: u64,
    }
    #[derive(Serialize)]
    struct Index<'a> {
        metadata: Meta,
        weight_map: &'a BTreeMap<String, String>,
    }
    let mut text = serde_json::to_string_pretty(&Index {
        metadata: Meta { total_size },
        weight_map,
    })
    .expect("a map of strings always serializes");
    text.push('\n');
    text
}

/// What a local path given on the command line points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Layout {
    /// One safetensors file.
    Single(PathBuf),
    /// An index json and the folder its shard names are relative to.
    Sharded {
        /// The index json.
        index: PathBuf,
        /// The folder holding the shards.
        folder: PathBuf,
    },
}

/// Classifies `path`: a folder with [`INDEX_FILE`] (or else `model.safetensors`), a `.json`
/// index file, or a single safetensors file.
pub fn locate(path: &Path) -> Result<Layout, Error> {
    let sharded = |index: PathBuf| {
        let folder = index
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Layout::Sharded { index, folder }
    };
    if path.is_dir() {
        let index = path.join(INDEX_FILE);
        let single = path.join("model.safetensors");
        if index.is_file() {
            Ok(sharded(index))
        } else if single.is_file() {
            Ok(Layout::Single(single))
        } else {
            Err(Error::invalid(
                path.display(),
                format!("the folder holds neither {INDEX_FILE} nor model.safetensors"),
            ))
        }
    } else if path.extension().is_some_and(|e| e == "json") {
        Ok(sharded(path.to_path_buf()))
    } else {
        Ok(Layout::Single(path.to_path_buf()))
    }
}

/// Reads and parses an index json file.
pub fn read_index(path: &Path) -> Result<ShardIndex, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    ShardIndex::parse(&bytes, &path.display().to_string())
}

/// Refuses shard names that would leave the index's folder: empty, absolute, with a scheme,
/// a `..` component, a backslash, a query or a fragment.
pub fn check_shard_name(origin: &str, name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains("://")
        || name.contains(['\\', '?', '#', '\0'])
        || name.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        return Err(Error::invalid(
            origin,
            format!("shard file name `{name}` must be a relative path inside the index's folder"),
        ));
    }
    Ok(())
}

/// Deserializes a JSON object into a map, refusing a key that appears twice (instead of
/// silently keeping the last value).
fn unique_map<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    struct UniqueMap;
    impl<'de> Visitor<'de> for UniqueMap {
        type Value = BTreeMap<String, String>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object mapping tensor names to shard file names")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
            let mut map = BTreeMap::new();
            while let Some((key, value)) = access.next_entry::<String, String>()? {
                if map.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "tensor `{key}` is listed twice in weight_map"
                    )));
                }
                map.insert(key, value);
            }
            Ok(map)
        }
    }
    deserializer.deserialize_map(UniqueMap)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_transformers_index() {
        let json = br#"{"metadata": {"total_size": 1234}, "weight_map": {"b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}}"#;
        let index = ShardIndex::parse(json, "index.json").unwrap();
        assert_eq!(index.total_size(), Some(1234));
        assert_eq!(
            index.files(),
            [
                "model-00001-of-00002.safetensors",
                "model-00002-of-00002.safetensors"
            ]
        );
        assert_eq!(index.weight_map["b"], "model-00002-of-00002.safetensors");
    }

    #[test]
    fn total_size_may_be_missing_or_a_string() {
        let index = ShardIndex::parse(br#"{"weight_map": {}}"#, "i").unwrap();
        assert_eq!(index.total_size(), None);
        let index = ShardIndex::parse(
            br#"{"metadata": {"total_size": "77"}, "weight_map": {}}"#,
            "i",
        )
        .unwrap();
        assert_eq!(index.total_size(), Some(77));
    }

    #[test]
    fn refuses_duplicates_bad_names_and_junk() {
        let dup = br#"{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}"#;
        let err = ShardIndex::parse(dup, "dup.json").unwrap_err().to_string();
        assert!(
            err.contains("dup.json") && err.contains("`a` is listed twice"),
            "{err}"
        );
        let escape = br#"{"weight_map": {"a": "../secret.safetensors"}}"#;
        let err = ShardIndex::parse(escape, "e.json").unwrap_err().to_string();
        assert!(err.contains("../secret.safetensors"), "{err}");
        for junk in [
            &b"[]"[..],
            b"{}",
            b"{\"weight_map\": {\"a\": 3}}",
            b"not json",
        ] {
            let err = ShardIndex::parse(junk, "j.json").unwrap_err().to_string();
            assert!(
                err.starts_with("j.json: not a valid safetensors index"),
                "{err}"
            );
        }
    }

    #[test]
    fn writes_what_transformers_writes() {
        let mut map = BTreeMap::new();
        map.insert("b".to_string(), shard_file_name(2, 2));
        map.insert("a".to_string(), shard_file_name(1, 2));
        let text = write_index_json(42, &map);
        let expected = "{\n  \"metadata\": {\n    \"total_size\": 42\n  },\n  \"weight_map\": {\n    \"a\": \"model-00001-of-00002.safetensors\",\n    \"b\": \"model-00002-of-00002.safetensors\"\n  }\n}\n";
        assert_eq!(text, expected);
        let back = ShardIndex::parse(text.as_bytes(), "x").unwrap();
        assert_eq!(back.weight_map, map);
        assert_eq!(back.total_size(), Some(42));
    }
}
