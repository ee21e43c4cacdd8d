//! [`Checkpoint::check`]: every shard validated on its own, then the index held against
//! them, without stopping at the first problem.

use crate::checkpoint::shard_index::IndexProblem;
use crate::checkpoint::{Checkpoint, ShardFile};
use crate::format::error::Error;
use crate::format::header::Metadata;

/// What [`Checkpoint::check`] found: each shard opened on its own (or why it could not
/// be), and, when every shard opened, where the index disagrees with them.
#[derive(Debug)]
pub struct CheckReport {
    /// Each shard's name and the file, validated against every rule of the format.
    pub shards: Vec<(String, Result<ShardFile, Error>)>,
    /// The index's disagreements with the shards (empty for a single file, and when a
    /// shard could not be opened).
    pub index_problems: Vec<IndexProblem>,
}

impl CheckReport {
    /// True when every shard is valid and the index agrees with them (a wrong
    /// `total_size` aside: readers do not use it).
    pub fn is_valid(&self) -> bool {
        self.shards.iter().all(|(_, file)| file.is_ok())
            && !self
                .index_problems
                .iter()
                .any(|p| matches!(p, IndexProblem::Tensor(_)))
    }
}

impl Checkpoint {
    /// Checks the whole checkpoint without stopping at the first problem: opens every shard
    /// on its own (each validated against every rule of the format), then, when all of them
    /// opened, holds the index against them (every tensor in the shard the index names and
    /// nowhere else, and the `total_size` if the index records one). When everything
    /// agrees, the shards stay open for later reads.
    pub fn check(&self) -> CheckReport {
        let shards: Vec<(String, Result<ShardFile, Error>)> = self
            .shards
            .iter()
            .map(|shard| {
                let file = match shard.file.get() {
                    Some(file) => Ok(file.clone()),
                    None => self.open_shard(shard),
                };
                (shard.name.clone(), file)
            })
            .collect();
        let mut index_problems = Vec::new();
        if let Some((_, index)) = &self.index {
            if shards.iter().all(|(_, file)| file.is_ok()) {
                let contents: Vec<(&str, &Metadata)> = shards
                    .iter()
                    .filter_map(|(name, file)| {
                        Some((name.as_str(), file.as_ref().ok()?.metadata()))
                    })
                    .collect();
                index_problems = index.problems(&contents);
            }
        }
        let report = CheckReport {
            shards,
            index_problems,
        };
        if report.is_valid() {
            for (shard, (_, file)) in self.shards.iter().zip(&report.shards) {
                if let Ok(file) = file {
                    let _ = shard.file.set(file.clone());
                }
            }
        }
        report
    }
}
