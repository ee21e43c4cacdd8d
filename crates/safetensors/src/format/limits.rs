//! The format's fixed numbers and names, on their own so that every file of the format
//! (the errors included) can name them without importing the header model.

/// The largest header a reader accepts, in bytes. Keeps a hostile length prefix from
/// making the reader allocate or read without bound.
pub const MAX_HEADER_SIZE: usize = 100_000_000;

/// The key under which free-form string metadata is stored in the header.
pub const METADATA_KEY: &str = "__metadata__";
