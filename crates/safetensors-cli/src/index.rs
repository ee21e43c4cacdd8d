//! The sharded layout (`model.safetensors.index.json` beside its shards), from the core's
//! `safetensors::checkpoint::shard_index`, which holds every rule about it; this module only names the file
//! or URL in errors.

use std::path::Path;

pub use safetensors::checkpoint::shard_index::{
    shard_file_name, write_index_json, Layout, INDEX_FILE,
};

use crate::error::Error;

/// Classifies a local path given on the command line (see [`safetensors::checkpoint::shard_index::locate`]).
pub fn locate(path: &Path) -> Result<Layout, Error> {
    safetensors::checkpoint::shard_index::locate(path)
        .map_err(|e| Error::invalid(path.display(), e.to_string()))
}
