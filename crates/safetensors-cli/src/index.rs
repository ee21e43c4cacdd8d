//! The sharded layout (`model.safetensors.index.json` beside its shards), from the core's
//! `safetensors::checkpoint::shard_index`, which holds every rule about it; this module only names the file
//! or URL in errors.

use std::path::Path;

pub use safetensors::checkpoint::shard_index::{
    shard_file_name, write_index_json, IndexProblem, Layout, ShardIndex, INDEX_FILE,
};

use crate::error::Error;

/// Parses index json read from `origin` (a path or URL, used in errors).
pub fn parse_index(bytes: &[u8], origin: &str) -> Result<ShardIndex, Error> {
    ShardIndex::parse(bytes).map_err(|e| Error::invalid(origin, e.to_string()))
}

/// Reads and parses an index json file.
pub fn read_index(path: &Path) -> Result<ShardIndex, Error> {
    let bytes = std::fs::read(path).map_err(|e| Error::io("read", path, e))?;
    parse_index(&bytes, &path.display().to_string())
}

/// Classifies a local path given on the command line (see [`safetensors::checkpoint::shard_index::locate`]).
pub fn locate(path: &Path) -> Result<Layout, Error> {
    safetensors::checkpoint::shard_index::locate(path)
        .map_err(|e| Error::invalid(path.display(), e.to_string()))
}
