//! The sharded layout `transformers` uses: `model.safetensors.index.json` beside
//! `model-00001-of-0000N.safetensors` files. The index is
//! `{"metadata": {"total_size": N, ...}, "weight_map": {tensor name: shard file name}}`.
//!
//! One set of rules for every reader and writer of indexes (the CLI, the checkpoint
//! converter, the Python package): file naming, parsing (a tensor listed twice is refused,
//! never silently resolved), shard names that must stay inside the index's folder, and the
//! ways an index and its shards can disagree.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::format::error::Error;
use crate::format::header::Metadata;
use crate::format::serialize::WriteOptions;

/// The index file name `transformers` looks for in a model folder.
pub const INDEX_FILE: &str = "model.safetensors.index.json";

/// The file name of a model that is not sharded.
pub const SINGLE_FILE: &str = "model.safetensors";

/// The file name of shard `number` (1-based) of `count`, as `transformers` writes it.
pub fn shard_file_name(number: usize, count: usize) -> String {
    format!("model-{number:05}-of-{count:05}.safetensors")
}

/// A parsed index: which shard holds each tensor.
#[derive(Debug, Clone, PartialEq)]
pub struct ShardIndex {
    /// The `metadata` object (`total_size` and anything else the writer put there).
    pub metadata: Option<serde_json::Map<String, serde_json::Value>>,
    /// Tensor name -> shard file name (relative to the index's folder).
    pub weight_map: BTreeMap<String, String>,
}

impl ShardIndex {
    /// Parses index JSON. Refuses a tensor listed twice and any shard name that is not a
    /// plain relative path inside the index's folder (see [`check_shard_name`]).
    pub fn parse(bytes: &[u8]) -> Result<Self, Error> {
        let index: ShardIndex = serde_json::from_slice(bytes)
            .map_err(|e| Error::InvalidIndex(format!("not a valid safetensors index: {e}")))?;
        for file in index.files() {
            check_shard_name(file)?;
        }
        Ok(index)
    }

    /// Reads and parses an index file.
    pub fn read(path: &Path) -> Result<Self, Error> {
        Self::parse(&std::fs::read(path)?)
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

    /// Where this index and the shards it names disagree: a tensor missing from its shard,
    /// one not in the weight map or in another shard than it says, and a wrong `total_size`.
    /// `shards` pairs each shard's file name (as the weight map spells it) with its contents.
    pub fn problems<T: ShardContents>(&self, shards: &[(&str, T)]) -> Vec<IndexProblem> {
        let mut problems = Vec::new();
        let mut data_bytes = 0u64;
        for (file, contents) in shards {
            data_bytes += contents.tensor_sizes().map(|(_, bytes)| bytes).sum::<u64>();
            problems.extend(self.shard_problems(file, contents));
        }
        // Tensors mapped to a file that is not among the shards at all.
        for (name, file) in &self.weight_map {
            if !shards.iter().any(|(shard, _)| shard == file) {
                problems.push(IndexProblem::Tensor(format!(
                    "the index maps tensor `{}` to {} which does not hold it",
                    shown(name),
                    shown(file)
                )));
            }
        }
        match self.total_size() {
            Some(total) if total != data_bytes => problems.push(IndexProblem::TotalSize(format!(
                "the index says total_size {total} but the shards hold {data_bytes} bytes of tensor data"
            ))),
            _ => {}
        }
        problems
    }
}

impl ShardIndex {
    /// Where one shard disagrees with this index: a tensor it holds that the weight map does
    /// not list (or maps to another shard), and a tensor the weight map puts in it that it
    /// lacks. For readers that open shards one at a time; `file` is the shard's name as the
    /// weight map spells it.
    pub fn shard_problems<T: ShardContents>(&self, file: &str, contents: &T) -> Vec<IndexProblem> {
        let mut problems = Vec::new();
        for (name, _) in contents.tensor_sizes() {
            match self.weight_map.get(name) {
                None => problems.push(IndexProblem::Tensor(format!(
                    "tensor `{}` in {} is not in the index's weight_map",
                    shown(name),
                    shown(file)
                ))),
                Some(mapped) if mapped.as_str() != file => {
                    problems.push(IndexProblem::Tensor(format!(
                        "tensor `{}` is in {} but the index maps it to {}",
                        shown(name),
                        shown(file),
                        shown(mapped)
                    )))
                }
                Some(_) => {}
            }
        }
        for (name, mapped) in &self.weight_map {
            if mapped == file && !contents.holds(name) {
                problems.push(IndexProblem::Tensor(format!(
                    "the index maps tensor `{}` to {} which does not hold it",
                    shown(name),
                    shown(file)
                )));
            }
        }
        problems
    }
}

/// What [`ShardIndex::problems`] needs to know of one shard: its tensors and their sizes.
pub trait ShardContents {
    /// Each tensor's name and byte size.
    fn tensor_sizes(&self) -> impl Iterator<Item = (&str, u64)>;
    /// True when the shard holds a tensor of this name.
    fn holds(&self, name: &str) -> bool;
}

impl ShardContents for &Metadata {
    fn tensor_sizes(&self) -> impl Iterator<Item = (&str, u64)> {
        self.entries()
            .map(|(name, info)| (name, info.byte_len() as u64))
    }

    fn holds(&self, name: &str) -> bool {
        self.entry(name).is_some()
    }
}

/// One way an index and its shards disagree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IndexProblem {
    /// A tensor missing from its shard, absent from the weight map, or in another shard.
    Tensor(String),
    /// `metadata.total_size` differs from the tensor bytes the shards hold (writers disagree
    /// on what it counts, so readers usually only warn).
    TotalSize(String),
}

impl fmt::Display for IndexProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IndexProblem::Tensor(m) | IndexProblem::TotalSize(m) => f.write_str(m),
        }
    }
}

/// Serializes an index the way `transformers` does (`json.dumps(index, indent=2,
/// sort_keys=True)` plus a newline).
pub fn write_index_json<S: AsRef<str>>(
    total_size: u64,
    weight_map: &BTreeMap<S, String>,
) -> String {
    let map: serde_json::Map<String, serde_json::Value> = weight_map
        .iter()
        .map(|(k, v)| (k.as_ref().to_owned(), serde_json::Value::from(v.as_str())))
        .collect();
    let index = serde_json::json!({
        "metadata": { "total_size": total_size },
        "weight_map": map,
    });
    let mut text = serde_json::to_string_pretty(&index).expect("JSON values serialize");
    text.push('\n');
    text
}

/// Parses a size in bytes (`max_shard_size`): a plain integer, or a number (decimals allowed) followed by a unit.
///
/// Decimal units follow the SI convention used by `transformers` (`KB` = 1000, `MB` = 10^6,
/// `GB` = 10^9, `TB` = 10^12); binary units are `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024).
/// `B` is bytes. Units are case-insensitive and may be separated from the number by spaces.
/// Fractions are rounded down to a whole byte. Zero is refused. The error does not repeat
/// `text`: each caller says which value it was (clap quotes it; Python names the argument).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err("not a size: expected a number such as 5GB, 500MiB or 1048576".to_string());
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        }
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return Err(format!("not a size: `{number}` is not a number"));
    }
    let too_big = || "too large: sizes must fit in 64 bits".to_string();
    let whole_value: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let mut bytes = whole_value.checked_mul(multiplier).ok_or_else(too_big)?;
    if !fraction.is_empty() {
        // Exact: fraction / 10^digits * multiplier, in 128-bit integers, rounded down.
        // Digits past the 20th cannot change a 64-bit result by a whole byte here.
        let digits = &fraction[..fraction.len().min(20)];
        let numerator: u128 = digits.parse().map_err(|_| too_big())?;
        let denominator = 10u128.pow(digits.len() as u32);
        let part = numerator * u128::from(multiplier) / denominator;
        bytes = bytes
            .checked_add(u64::try_from(part).map_err(|_| too_big())?)
            .ok_or_else(too_big)?;
    }
    if bytes == 0 {
        return Err("zero bytes: the size must be at least one byte".to_string());
    }
    Ok(bytes)
}

/// Groups tensors (name, bytes), in order, into shards of at most `limit` bytes; a tensor
/// larger than `limit` is alone in its shard. Always at least one (possibly empty) shard.
pub fn plan_shards(tensors: &[(String, u64)], limit: u64) -> Vec<Vec<String>> {
    let mut shards: Vec<Vec<String>> = vec![Vec::new()];
    let mut current = 0u64;
    for (name, bytes) in tensors {
        let last = shards.last_mut().expect("never empty");
        if !last.is_empty() && current.saturating_add(*bytes) > limit {
            shards.push(vec![name.clone()]);
            current = *bytes;
        } else {
            last.push(name.clone());
            current += bytes;
        }
    }
    shards
}

/// The file names of `count` planned shards: [`SINGLE_FILE`] when there is one, else
/// [`shard_file_name`]s.
pub(crate) fn shard_files(count: usize) -> Vec<String> {
    match count {
        1 => vec![SINGLE_FILE.to_owned()],
        _ => (1..=count).map(|i| shard_file_name(i, count)).collect(),
    }
}

/// Writes `tensors` (in order) as a sharded checkpoint in `folder`, the layout
/// `transformers` writes: shards of at most `limit` tensor bytes named by
/// [`shard_file_name`], each with `metadata` as its `__metadata__`, then [`INDEX_FILE`] last;
/// or a single [`SINGLE_FILE`] (and no index) when everything fits in one shard. Every file
/// is written through a temporary file renamed into place. Returns the index JSON (for a
/// single file, the index it would have: every tensor mapped to [`SINGLE_FILE`]).
pub fn save_sharded<S, V>(
    tensors: Vec<(S, V)>,
    metadata: Option<Vec<(String, String)>>,
    folder: &Path,
    limit: u64,
) -> Result<String, Error>
where
    S: AsRef<str> + Ord + fmt::Display,
    V: crate::format::tensor::View,
{
    save_sharded_with(tensors, metadata, folder, limit, &WriteOptions::default())
}

/// [`save_sharded`] with [`WriteOptions`] for every shard (with a checksum, each shard
/// records the digests of its own tensors).
pub fn save_sharded_with<S, V>(
    tensors: Vec<(S, V)>,
    metadata: Option<Vec<(String, String)>>,
    folder: &Path,
    limit: u64,
    options: &WriteOptions,
) -> Result<String, Error>
where
    S: AsRef<str> + Ord + fmt::Display,
    V: crate::format::tensor::View,
{
    let sized: Vec<(String, u64)> = tensors
        .iter()
        .map(|(name, view)| (name.as_ref().to_owned(), view.data_len() as u64))
        .collect();
    let total: u64 = sized.iter().map(|(_, n)| n).sum();
    let plan = plan_shards(&sized, limit);
    let count = plan.len();
    std::fs::create_dir_all(folder)?;
    let mut pending: BTreeMap<String, (S, V)> = tensors
        .into_iter()
        .map(|(name, view)| (name.as_ref().to_owned(), (name, view)))
        .collect();
    let mut weight_map = BTreeMap::new();
    for (names, file) in plan.iter().zip(shard_files(count)) {
        let mut shard = Vec::with_capacity(names.len());
        for name in names {
            shard.push(pending.remove(name).expect("planned from these tensors"));
            weight_map.insert(name.clone(), file.clone());
        }
        let path = folder.join(&file);
        match &metadata {
            None => crate::format::serialize::to_file_with(
                shard,
                None::<std::collections::HashMap<String, String>>,
                &path,
                options,
            )?,
            Some(pairs) => {
                crate::format::serialize::to_file_with(shard, pairs.clone(), &path, options)?
            }
        }
    }
    let index = write_index_json(total, &weight_map);
    if count > 1 {
        crate::format::atomic::write_atomically(folder.join(INDEX_FILE), index.as_bytes())?;
    }
    remove_stale(folder, &weight_map)?;
    Ok(index)
}

/// Removes what an earlier save of another shape left in `folder` (readers would pick it:
/// `transformers` tries `model.safetensors` before the index, and an old index names old
/// shards): [`SINGLE_FILE`], [`INDEX_FILE`] and `model-*-of-*.safetensors` files that the save
/// just made (`written`'s values, plus the index when sharded) does not include. Runs after
/// the new files are in place, so a reader sees the old checkpoint or the new one.
pub(crate) fn remove_stale(folder: &Path, written: &BTreeMap<String, String>) -> Result<(), Error> {
    let sharded = written.values().any(|f| f != SINGLE_FILE);
    for entry in std::fs::read_dir(folder)? {
        let Ok(name) = entry?.file_name().into_string() else {
            continue;
        };
        let ours = name == SINGLE_FILE
            || name == INDEX_FILE
            || (name.starts_with("model-")
                && name.contains("-of-")
                && name.ends_with(".safetensors"));
        let current = written.values().any(|f| *f == name) || (sharded && name == INDEX_FILE);
        if ours && !current {
            std::fs::remove_file(folder.join(&name))?;
        }
    }
    Ok(())
}

/// What a local path points at.
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

/// Classifies `path`: a folder with [`INDEX_FILE`] (or else its one `*.safetensors.index.json`,
/// or else [`SINGLE_FILE`], or else its one `*.safetensors` file), a `.json` index file, or
/// a single safetensors file.
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
        let single = path.join(SINGLE_FILE);
        if index.is_file() {
            return Ok(sharded(index));
        }
        if let Some(index) = only_file(path, ".safetensors.index.json")? {
            return Ok(sharded(index));
        }
        if single.is_file() {
            return Ok(Layout::Single(single));
        }
        match only_file(path, ".safetensors")? {
            Some(file) => Ok(Layout::Single(file)),
            // Not found, like opening a folder as a file: nothing to open there.
            None => Err(Error::IoError(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                format!(
                    "the folder {} holds neither {INDEX_FILE} nor {SINGLE_FILE} (nor any \
                     other *.safetensors.index.json or .safetensors file)",
                    path.display()
                ),
            ))),
        }
    } else if path.extension().is_some_and(|e| e == "json") {
        Ok(sharded(path.to_path_buf()))
    } else {
        Ok(Layout::Single(path.to_path_buf()))
    }
}

/// The one file of `folder` whose name ends with `suffix`; None when there is none, an
/// error naming them when there are several (the choice would be a guess).
fn only_file(folder: &Path, suffix: &str) -> Result<Option<PathBuf>, Error> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(folder)? {
        let path = entry?.path();
        let matches = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(suffix) && n.len() > suffix.len());
        if matches && path.is_file() {
            found.push(path);
        }
    }
    found.sort();
    match found.len() {
        0 => Ok(None),
        1 => Ok(found.pop()),
        _ => Err(Error::InvalidArgument(format!(
            "the folder {} holds several *{suffix} files ({}): name the one to open",
            folder.display(),
            found
                .iter()
                .filter_map(|p| p.file_name()?.to_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// Refuses shard names that would leave the index's folder: empty, absolute, with a scheme,
/// a `..` or empty component, a backslash, a query, a fragment or a NUL.
pub fn check_shard_name(name: &str) -> Result<(), Error> {
    let bad = name.is_empty()
        || name.starts_with('/')
        || name.contains("://")
        || name.contains(['\\', '?', '#', '\0'])
        || name.split('/').any(|part| part == ".." || part.is_empty());
    if bad {
        return Err(Error::InvalidIndex(format!(
            "shard file name `{}` must be a relative path inside the index's folder",
            shown(name)
        )));
    }
    Ok(())
}

/// `text` with control characters escaped, so a hostile name cannot garble a message.
fn shown(text: &str) -> String {
    text.chars()
        .map(|c| match c.is_control() {
            true => c.escape_default().collect(),
            false => String::from(c),
        })
        .collect()
}

impl<'de> Deserialize<'de> for ShardIndex {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(IndexVisitor)
    }
}

struct IndexVisitor;

impl<'de> Visitor<'de> for IndexVisitor {
    type Value = ShardIndex;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object with a weight_map")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<ShardIndex, A::Error> {
        let mut metadata = None;
        let mut weight_map = None;
        while let Some(key) = access.next_key::<String>()? {
            match key.as_str() {
                "metadata" if metadata.is_some() => {
                    return Err(de::Error::duplicate_field("metadata"))
                }
                "weight_map" if weight_map.is_some() => {
                    return Err(de::Error::duplicate_field("weight_map"))
                }
                "metadata" => metadata = Some(access.next_value()?),
                "weight_map" => {
                    let UniqueMap(map) = access
                        .next_value()
                        .map_err(|e| de::Error::custom(format!("weight_map: {e}")))?;
                    weight_map = Some(map);
                }
                _ => {
                    access.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(ShardIndex {
            metadata: metadata.flatten(),
            weight_map: weight_map.ok_or_else(|| de::Error::missing_field("weight_map"))?,
        })
    }
}

/// A JSON object of strings to strings, refusing a key that appears twice (instead of
/// silently keeping the last value).
struct UniqueMap(BTreeMap<String, String>);

impl<'de> Deserialize<'de> for UniqueMap {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = UniqueMap;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object mapping tensor names to shard file names")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<UniqueMap, A::Error> {
                let mut map = BTreeMap::new();
                while let Some((key, value)) = access.next_entry::<String, String>()? {
                    if map.contains_key(&key) {
                        return Err(de::Error::custom(format!(
                            "tensor `{key}` is listed twice in weight_map"
                        )));
                    }
                    map.insert(key, value);
                }
                Ok(UniqueMap(map))
            }
        }
        deserializer.deserialize_map(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_transformers_index() {
        let json = br#"{"metadata": {"total_size": 1234}, "weight_map": {"b": "model-00002-of-00002.safetensors", "a": "model-00001-of-00002.safetensors", "c": "model-00001-of-00002.safetensors"}, "extra": [1]}"#;
        let index = ShardIndex::parse(json).unwrap();
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
        let index = ShardIndex::parse(br#"{"weight_map": {}}"#).unwrap();
        assert_eq!(index.total_size(), None);
        let index =
            ShardIndex::parse(br#"{"metadata": {"total_size": "77"}, "weight_map": {}}"#).unwrap();
        assert_eq!(index.total_size(), Some(77));
        let index = ShardIndex::parse(br#"{"metadata": null, "weight_map": {}}"#).unwrap();
        assert_eq!(index.metadata, None);
    }

    #[test]
    fn refuses_duplicates_bad_names_and_junk() {
        let dup = br#"{"weight_map": {"a": "x.safetensors", "a": "y.safetensors"}}"#;
        let err = ShardIndex::parse(dup).unwrap_err().to_string();
        assert!(err.contains("`a` is listed twice"), "{err}");
        let twice = br#"{"weight_map": {}, "weight_map": {}}"#;
        let err = ShardIndex::parse(twice).unwrap_err().to_string();
        assert!(err.contains("duplicate field `weight_map`"), "{err}");
        for escape in [
            "../secret.safetensors",
            "/abs",
            "a//b",
            "http://x/y",
            "a\\b",
            "",
        ] {
            let json = format!(r#"{{"weight_map": {{"a": {escape:?}}}}}"#);
            let err = ShardIndex::parse(json.as_bytes()).unwrap_err().to_string();
            assert!(err.contains("must be a relative path"), "{escape}: {err}");
        }
        ShardIndex::parse(br#"{"weight_map": {"a": "sub/x.safetensors"}}"#).unwrap();
        for (junk, why) in [
            (&b"[]"[..], "expected an object"),
            (b"{}", "missing field `weight_map`"),
            (b"{\"weight_map\": {\"a\": 3}}", "weight_map: invalid type"),
            (b"{\"weight_map\": 3}", "weight_map: invalid type"),
            (b"not json", "expected ident"),
        ] {
            let err = ShardIndex::parse(junk).unwrap_err().to_string();
            assert!(
                err.starts_with("not a valid safetensors index") && err.contains(why),
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
        let back = ShardIndex::parse(text.as_bytes()).unwrap();
        assert_eq!(back.weight_map, map);
        assert_eq!(back.total_size(), Some(42));
    }

    struct Names(Vec<(&'static str, u64)>);

    impl ShardContents for Names {
        fn tensor_sizes(&self) -> impl Iterator<Item = (&str, u64)> {
            self.0.iter().copied()
        }
        fn holds(&self, name: &str) -> bool {
            self.0.iter().any(|(n, _)| *n == name)
        }
    }

    #[test]
    fn names_every_disagreement_between_index_and_shards() {
        let index = ShardIndex::parse(
            br#"{"metadata": {"total_size": 5}, "weight_map": {"x": "a", "y": "b", "ghost": "a"}}"#,
        )
        .unwrap();
        let shards = [
            ("a", Names(vec![("x", 4), ("y", 2), ("stray\n", 1)])),
            ("b", Names(vec![])),
        ];
        let problems: Vec<String> = index
            .problems(&shards)
            .iter()
            .map(|p| p.to_string())
            .collect();
        assert_eq!(
            problems,
            [
                "tensor `y` is in a but the index maps it to b",
                "tensor `stray\\n` in a is not in the index's weight_map",
                "the index maps tensor `ghost` to a which does not hold it",
                "the index maps tensor `y` to b which does not hold it",
                "the index says total_size 5 but the shards hold 7 bytes of tensor data",
            ]
        );
        let ok = [
            ("a", Names(vec![("x", 4), ("ghost", 1)])),
            ("b", Names(vec![("y", 0)])),
        ];
        assert_eq!(index.problems(&ok), []);
    }
}
