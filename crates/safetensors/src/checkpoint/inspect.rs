//! What a checkpoint holds, from its headers alone: every file's header, the index (for a
//! sharded checkpoint), the disagreements between them, totals per dtype, and the JSON
//! report the CLI's `inspect --json` prints and the Python package's `inspect` returns.
//!
//! [`sharded`] assembles headers however they were read; [`inspect_local`] reads a local
//! file, folder or index, `inspect_url` (feature `http`) a file or index at a URL.

use std::collections::BTreeMap;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use crate::checkpoint::shard_index::ShardIndex;
use crate::checkpoint::Checkpoint;
use crate::format::dtype::Dtype;
use crate::format::error::Error;
use crate::format::header::{Metadata, MetadataEntries};
use crate::source::FileHeader;

/// One file's header and where it came from.
pub struct ShardHeader {
    /// The name shown: the shard file name as the index spells it, or the path/URL given.
    pub name: String,
    /// The header read.
    pub header: FileHeader,
}

/// Everything `inspect` learned.
pub struct Model {
    /// The location given on the command line.
    pub source: String,
    /// The index, for a sharded model.
    pub index: Option<ShardIndex>,
    /// Each file's header, in file name order.
    pub files: Vec<ShardHeader>,
    /// Inconsistencies between an index and its shards.
    pub warnings: Vec<String>,
}

/// Reads the headers of a local file, folder or index JSON (never the tensor data), through
/// [`Checkpoint`].
pub fn inspect_local(location: &str) -> Result<Model, Error> {
    let checkpoint = Checkpoint::open(location).map_err(|e| match e {
        Error::IoError(io) => Error::IoError(std::io::Error::new(
            io.kind(),
            format!("cannot open {location}: {io}"),
        )),
        Error::InvalidIndex(message) => Error::InvalidIndex(message),
        other => Error::InvalidIndex(format!("{location}: {other}")),
    })?;
    model(location, checkpoint).map_err(|(at, e)| match e {
        Error::IoError(io) => Error::IoError(io),
        Error::InvalidIndex(message) => Error::InvalidIndex(message),
        other => Error::InvalidIndex(format!("{at}: {other}")),
    })
}

/// Reads the headers behind an `http(s)` URL of a file or of an index JSON (whose shards are
/// resolved next to it), through [`Checkpoint`]: two Range requests per file, several files
/// at once, never the tensor data. An error comes with the URL it is about (the index, or
/// the shard).
#[cfg(feature = "http")]
pub fn inspect_url(
    url: &str,
    client: &crate::checkpoint::Client,
) -> Result<Model, (String, Error)> {
    let checkpoint = Checkpoint::open_url(url, client).map_err(|e| (url.to_string(), e))?;
    model(url, checkpoint)
}

/// The report of an open checkpoint: every file's header, moved out of it.
fn model(source: &str, checkpoint: Checkpoint) -> Result<Model, (String, Error)> {
    let (index, headers) = checkpoint.into_headers()?;
    let files = headers
        .into_iter()
        .map(|(name, header)| ShardHeader { name, header })
        .collect();
    Ok(match index {
        Some(index) => sharded(source, index, files),
        None => Model {
            source: source.to_string(),
            index: None,
            files,
            warnings: Vec::new(),
        },
    })
}

/// Assembles a sharded model and notes where the index and the shards disagree.
pub fn sharded(source: &str, index: ShardIndex, files: Vec<ShardHeader>) -> Model {
    let headers: Vec<(&str, &Metadata)> = files
        .iter()
        .map(|s| (s.name.as_str(), &s.header.metadata))
        .collect();
    let warnings = index
        .problems(&headers)
        .iter()
        .map(ToString::to_string)
        .collect();
    Model {
        source: source.to_string(),
        index: Some(index),
        files,
        warnings,
    }
}

/// A `__metadata__` in file order.
pub type Pairs<'a> = MetadataEntries<'a>;

/// Elements in a tensor of this shape (1 for a scalar).
pub fn parameters(shape: &[usize]) -> u64 {
    shape
        .iter()
        .map(|&d| d as u64)
        .fold(1u64, u64::saturating_mul)
}

/// Per-dtype totals.
#[derive(Default, Clone, Copy, Serialize)]
pub struct Totals {
    /// Tensors counted.
    pub tensors: u64,
    /// Their elements.
    pub parameters: u64,
    /// Their data bytes.
    pub bytes: u64,
}

impl Totals {
    fn add(&mut self, parameters: u64, bytes: u64) {
        self.tensors += 1;
        self.parameters += parameters;
        self.bytes += bytes;
    }
}

/// Totals per dtype, and over all tensors.
pub fn totals(model: &Model) -> (BTreeMap<Dtype, Totals>, Totals) {
    let mut by_dtype: BTreeMap<Dtype, Totals> = BTreeMap::new();
    let mut all = Totals::default();
    for shard in &model.files {
        for (_, info) in shard.header.metadata.entries() {
            let params = parameters(&info.shape);
            let bytes = (info.data_offsets.1 - info.data_offsets.0) as u64;
            by_dtype.entry(info.dtype).or_default().add(params, bytes);
            all.add(params, bytes);
        }
    }
    (by_dtype, all)
}

/// `__metadata__` serialized as a JSON object in file order.
struct OrderedMap<'a>(MetadataEntries<'a>);

impl Serialize for OrderedMap<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in self.0.iter() {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

#[derive(Serialize)]
struct JsonTensor<'a> {
    name: &'a str,
    file: &'a str,
    dtype: String,
    shape: Vec<usize>,
    parameters: u64,
    bytes: u64,
    data_offsets: [usize; 2],
}

#[derive(Serialize)]
struct JsonFile<'a> {
    file: &'a str,
    file_size: u64,
    header_len: usize,
    tensors: usize,
    metadata: Option<OrderedMap<'a>>,
}

#[derive(Serialize)]
struct JsonTotals {
    tensors: u64,
    parameters: u64,
    bytes: u64,
    by_dtype: BTreeMap<String, Totals>,
}

#[derive(Serialize)]
struct JsonIndex<'a> {
    metadata: &'a Option<serde_json::Map<String, serde_json::Value>>,
    weight_map_len: usize,
}

/// The `--json` document.
#[derive(Serialize)]
struct JsonReport<'a> {
    source: &'a str,
    sharded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<JsonIndex<'a>>,
    files: Vec<JsonFile<'a>>,
    tensors: Vec<JsonTensor<'a>>,
    totals: JsonTotals,
    warnings: &'a [String],
}

/// The JSON report of `model` (pretty-printed): `source`, `sharded`, `index` (its
/// `metadata` and `weight_map_len`, when sharded), `files` (name, size, header length,
/// tensor count, `__metadata__`), `tensors` (name, file, dtype, shape, parameters, bytes,
/// data offsets), `totals` (with `by_dtype`) and `warnings`.
pub fn json_report(model: &Model) -> String {
    serde_json::to_string_pretty(&JsonReport::new(model)).expect("the report is plain data")
}

impl<'a> JsonReport<'a> {
    fn new(model: &'a Model) -> Self {
        let (by_dtype, all) = totals(model);
        let mut tensors = Vec::new();
        for shard in &model.files {
            for (name, info) in shard.header.metadata.entries() {
                tensors.push(JsonTensor {
                    name,
                    file: &shard.name,
                    dtype: info.dtype.to_string(),
                    parameters: parameters(&info.shape),
                    shape: info.shape,
                    bytes: (info.data_offsets.1 - info.data_offsets.0) as u64,
                    data_offsets: [info.data_offsets.0, info.data_offsets.1],
                });
            }
        }
        JsonReport {
            source: &model.source,
            sharded: model.index.is_some(),
            index: model.index.as_ref().map(|i| JsonIndex {
                metadata: &i.metadata,
                weight_map_len: i.weight_map.len(),
            }),
            files: model
                .files
                .iter()
                .map(|s| JsonFile {
                    file: &s.name,
                    file_size: s.header.file_len,
                    header_len: s.header.header_len,
                    tensors: s.header.metadata.len(),
                    metadata: s.header.metadata.metadata_ordered().map(OrderedMap),
                })
                .collect(),
            tensors,
            totals: JsonTotals {
                tensors: all.tensors,
                parameters: all.parameters,
                bytes: all.bytes,
                by_dtype: by_dtype
                    .into_iter()
                    .map(|(d, t)| (d.to_string(), t))
                    .collect(),
            },
            warnings: &model.warnings,
        }
    }
}
