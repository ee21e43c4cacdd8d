//! A sharded checkpoint written tensor by tensor: the streaming form of
//! [`save_sharded_with`](crate::checkpoint::shard_index::save_sharded_with).
//!
//! [`ShardedWriter`] takes every tensor's name, dtype and shape first (in the order
//! `save_sharded` would get the tensors), plans the same shards with [`plan_shards`], and
//! opens one [`StreamingWriter`] a shard. Each tensor's bytes then go to its shard, in any
//! order.
//! [`finish`](ShardedWriter::finish) renames the shards into place only once every tensor of
//! every shard is written, then writes the index last and removes what an earlier save of
//! another shape left, exactly as `save_sharded` does: the same files, byte for byte.
//!
//! ```
//! use safetensors::tensor::TensorView;
//! use safetensors::write::{ShardedWriter, Spec, WriteOptions};
//! use safetensors::Dtype;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let specs = (0..3).map(|i| (format!("layer.{i}"), Spec::new(Dtype::U8, [100])));
//! // Shards of at most 200 bytes of tensor data: two shards here.
//! let mut writer =
//!     ShardedWriter::create(dir.path(), specs, None, 200, &WriteOptions::default()).unwrap();
//! for i in (0..3).rev() {
//!     let bytes = vec![i as u8; 100]; // made just before it is written
//!     let view = TensorView::new(Dtype::U8, vec![100], &bytes).unwrap();
//!     writer.write(&format!("layer.{i}"), &view).unwrap();
//! }
//! let index = writer.finish().unwrap();
//! assert!(index.contains("\"layer.2\": \"model-00002-of-00002.safetensors\""));
//! assert!(dir.path().join("model.safetensors.index.json").exists());
//! ```

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};

use crate::checkpoint::shard_index::{
    plan_shards, remove_stale, shard_files, write_index_json, INDEX_FILE,
};
use crate::format::error::{excerpt, Error};
use crate::format::serialize::WriteOptions;
use crate::format::streaming::{missing_error, Spec, StreamingWriter};
use crate::format::tensor::View;

/// A sharded checkpoint (the layout `transformers` writes) written tensor by tensor. See
/// [the module](self) for an example.
#[derive(Debug)]
pub struct ShardedWriter {
    folder: PathBuf,
    /// One writer a shard, in shard order.
    shards: Vec<StreamingWriter>,
    shard_of: HashMap<String, usize>,
    weight_map: BTreeMap<String, String>,
    total_size: u64,
}

impl ShardedWriter {
    /// Plans the shards of `specs` (in order: shards of at most `limit` tensor bytes, a larger
    /// tensor alone in its own; one [`SINGLE_FILE`](crate::checkpoint::shard_index::SINGLE_FILE)
    /// when everything fits) and creates each shard's temporary file in `folder` (made if
    /// missing), every shard with `metadata` as its `__metadata__` and with `options`. Refuses
    /// a name given twice, before any file is created.
    pub fn create<S, I>(
        folder: impl AsRef<Path>,
        specs: I,
        metadata: Option<Vec<(String, String)>>,
        limit: u64,
        options: &WriteOptions,
    ) -> Result<Self, Error>
    where
        S: Into<String>,
        I: IntoIterator<Item = (S, Spec)>,
    {
        let folder = folder.as_ref().to_path_buf();
        let specs: Vec<(String, Spec)> = specs.into_iter().map(|(n, s)| (n.into(), s)).collect();
        let mut seen = HashSet::with_capacity(specs.len());
        let mut sized = Vec::with_capacity(specs.len());
        for (name, spec) in &specs {
            if !seen.insert(name.as_str()) {
                return Err(Error::DuplicateTensor(excerpt(name)));
            }
            sized.push((name.clone(), spec.byte_len(name)? as u64));
        }
        let total_size = sized.iter().map(|(_, n)| n).sum();
        let plan = plan_shards(&sized, limit);
        let files = shard_files(plan.len());
        std::fs::create_dir_all(&folder)?;

        let mut pending: HashMap<String, Spec> = specs.into_iter().collect();
        let mut shards = Vec::with_capacity(plan.len());
        let mut shard_of = HashMap::with_capacity(pending.len());
        let mut weight_map = BTreeMap::new();
        for (i, (names, file)) in plan.iter().zip(&files).enumerate() {
            let shard_specs: Vec<(String, Spec)> = names
                .iter()
                .map(|n| {
                    (
                        n.clone(),
                        pending.remove(n).expect("planned from these specs"),
                    )
                })
                .collect();
            for name in names {
                shard_of.insert(name.clone(), i);
                weight_map.insert(name.clone(), file.clone());
            }
            let path = folder.join(file);
            shards.push(match &metadata {
                None => StreamingWriter::create(
                    path,
                    shard_specs,
                    None::<HashMap<String, String>>,
                    options,
                )?,
                Some(pairs) => StreamingWriter::create(path, shard_specs, pairs.clone(), options)?,
            });
        }
        Ok(ShardedWriter {
            folder,
            shards,
            shard_of,
            weight_map,
            total_size,
        })
    }

    /// Writes tensor `name`'s bytes into its shard, at its planned place. Refuses what
    /// [`StreamingWriter::write`] refuses (a name not planned, a tensor already written, a
    /// dtype, shape or length other than planned), naming the tensor.
    pub fn write<V: View>(&mut self, name: &str, tensor: &V) -> Result<(), Error> {
        let Some(&i) = self.shard_of.get(name) else {
            return Err(Error::InvalidWrite(format!(
                "tensor {:?} is not one of the {} planned tensors",
                excerpt(name),
                self.shard_of.len()
            )));
        };
        self.shards[i].write(name, tensor)
    }

    /// The spec of planned tensor `name`.
    pub fn spec(&self, name: &str) -> Option<&Spec> {
        self.shards[*self.shard_of.get(name)?].spec(name)
    }

    /// Which shard file each tensor goes to (what the index's `weight_map` will say).
    pub fn weight_map(&self) -> &BTreeMap<String, String> {
        &self.weight_map
    }

    /// The planned tensors not written yet: shard by shard, each in file order.
    pub fn missing(&self) -> impl Iterator<Item = &str> {
        self.shards.iter().flat_map(StreamingWriter::missing)
    }

    /// True once every planned tensor is written.
    pub fn is_complete(&self) -> bool {
        self.shards.iter().all(StreamingWriter::is_complete)
    }

    /// Once every tensor is written: renames every shard into place, writes the index (when
    /// there are several shards) last, and removes the files of an earlier save of another
    /// shape, as [`save_sharded`](crate::checkpoint::shard_index::save_sharded) does. Returns
    /// the index JSON (for a single file, the index it would have). A tensor never written is
    /// an error naming it, and then nothing is renamed: every temporary file is removed and
    /// the folder is left as it was.
    pub fn finish(self) -> Result<String, Error> {
        if !self.is_complete() {
            return Err(missing_error(
                self.missing(),
                self.shard_of.len(),
                &self.folder,
            ));
        }
        let count = self.shards.len();
        for shard in self.shards {
            shard.finish()?;
        }
        let index = write_index_json(self.total_size, &self.weight_map);
        if count > 1 {
            crate::format::atomic::write_atomically(
                self.folder.join(INDEX_FILE),
                index.as_bytes(),
            )?;
        }
        remove_stale(&self.folder, &self.weight_map)?;
        Ok(index)
    }
}
