//! Which bytes a request needs, computed from headers alone: no I/O here.
//!
//! A request is a whole tensor, a slice ([`mod@slice`], or numpy's rules in [`numpy_index`]), one
//! rank's part ([`split`]); its answer is a list of byte runs, merged into few reads for
//! high-latency sources by [`coalesce`], or read as one covering span when they are short
//! ([`cover`]). Executing the runs is the reader's job.

pub mod coalesce;
pub mod cover;
pub mod numpy_index;
pub mod slice;
pub mod split;
