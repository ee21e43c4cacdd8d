//! Compact storage for what a header holds many of: names and metadata strings, and tensor
//! entries. A header may list millions of them, so each costs about its own bytes (no
//! allocation per string) and growing the storage never copies what is already stored
//! (no moment where the old and the new buffer are both alive).

use alloc::string::String;
use alloc::vec::Vec;

/// Elements per chunk of a [`ChunkedVec`].
const CHUNK_LEN: usize = 1 << 14;

/// A push-only vector kept in fixed-size chunks: growing allocates one more chunk and moves
/// nothing, so references into it stay put and a large one never needs twice its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self {
            chunks: Vec::new(),
            len: 0,
        }
    }
}

impl<T> ChunkedVec<T> {
    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK_LEN => chunk.push(value),
            _ => {
                // The first chunk starts small: most headers hold a few entries.
                let capacity = if self.chunks.is_empty() {
                    16
                } else {
                    CHUNK_LEN
                };
                let mut chunk = Vec::with_capacity(capacity);
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Gives the first chunk's unused room back (a header of a few entries).
    fn shrink_small(&mut self) {
        if self.chunks.len() == 1 {
            self.chunks[0].shrink_to_fit();
        }
    }
}

impl<T> core::ops::Index<usize> for ChunkedVec<T> {
    type Output = T;
    fn index(&self, index: usize) -> &T {
        &self.chunks[index / CHUNK_LEN][index % CHUNK_LEN]
    }
}

/// Bytes per chunk of a [`DimTable`].
const DIM_CHUNK: usize = 1 << 16;

/// Tensor dimensions, back to back, each as a LEB128 varint: a dimension costs about the
/// bytes its digits take in the header (a shape of a million `1`s, a megabyte), where a
/// `usize` would cost four times the header's text. Chunk `k` holds positions
/// `[k * DIM_CHUNK, (k + 1) * DIM_CHUNK)`; a varint never straddles two chunks, so a chunk
/// may end a few positions short of its range.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct DimTable {
    chunks: Vec<Vec<u8>>,
}

impl DimTable {
    /// Where the next dimension pushed will start (or just before, at a chunk's unused end).
    pub fn position(&self) -> u32 {
        // A header's dimensions take at most its length in bytes (MAX_HEADER_SIZE).
        self.chunks.last().map_or(0, |c| {
            ((self.chunks.len() - 1) * DIM_CHUNK + c.len()) as u32
        })
    }

    pub fn push(&mut self, mut dim: usize) {
        // Room for the longest varint (10 bytes), so none straddles two chunks.
        let room = self
            .chunks
            .last()
            .is_some_and(|c| c.len() + 10 <= DIM_CHUNK);
        if !room {
            // The first chunk starts small and grows: most headers hold few dimensions.
            let capacity = if self.chunks.is_empty() {
                64
            } else {
                DIM_CHUNK
            };
            self.chunks.push(Vec::with_capacity(capacity));
        }
        let Some(chunk) = self.chunks.last_mut() else {
            return;
        };
        while dim >= 0x80 {
            chunk.push((dim & 0x7f) as u8 | 0x80);
            dim >>= 7;
        }
        chunk.push(dim as u8);
    }

    /// The `ndim` dimensions pushed from `at` on.
    pub fn shape(&self, at: u32, ndim: u32) -> Vec<usize> {
        let mut shape = Vec::with_capacity(ndim as usize);
        let (mut chunk, mut offset) = (at as usize / DIM_CHUNK, at as usize % DIM_CHUNK);
        for _ in 0..ndim {
            if offset >= self.chunks[chunk].len() {
                (chunk, offset) = (chunk + 1, 0);
            }
            let bytes = &self.chunks[chunk];
            let (mut dim, mut shift) = (0usize, 0);
            loop {
                let byte = bytes[offset];
                offset += 1;
                dim |= usize::from(byte & 0x7f) << shift;
                shift += 7;
                if byte & 0x80 == 0 {
                    break;
                }
            }
            shape.push(dim);
        }
        shape
    }
}

/// Bytes per text chunk of a [`StrTable`]; a string at least a quarter this long is kept
/// as its own allocation (moved in, not copied).
const TEXT_CHUNK: usize = 1 << 20;

/// A string's end is stored as `chunk << OFFSET_BITS | offset in the chunk`.
const OFFSET_BITS: u32 = 21;
const OFFSET_MASK: u32 = (1 << OFFSET_BITS) - 1;
/// At most this many chunks: a header's text (at most [`crate::format::limits::MAX_HEADER_SIZE`]
/// bytes) fills far fewer, as each chunk but the first holds at least a quarter MiB.
const MAX_CHUNKS: usize = 1 << (32 - OFFSET_BITS);

/// Strings stored back to back in chunks; a string never straddles two chunks, so each
/// is found from its end and its predecessor's in constant time. A string longer than an
/// offset can say fills its chunk alone and is stored with the offset 0.
#[derive(Debug, Clone, Default)]
pub(crate) struct StrTable {
    chunks: Vec<String>,
    ends: ChunkedVec<u32>,
}

impl StrTable {
    /// Appends `s`, moving it in when it is long.
    ///
    /// # Panics
    /// Past [`MAX_CHUNKS`] chunks, which text from one header cannot reach.
    pub fn push(&mut self, s: impl AsRef<str> + Into<String>) {
        let len = s.as_ref().len();
        let fits = self
            .chunks
            .last()
            .is_some_and(|c| c.capacity() - c.len() >= len && c.capacity() <= TEXT_CHUNK);
        if fits {
            if let Some(chunk) = self.chunks.last_mut() {
                chunk.push_str(s.as_ref());
            }
        } else {
            assert!(self.chunks.len() < MAX_CHUNKS, "string table full");
            // The chunk left behind gives back its unused room, so what the table reserves
            // follows what it stores: long strings alternating with short ones would
            // otherwise leave a fresh, nearly empty chunk behind each of them.
            if let Some(last) = self.chunks.last_mut() {
                if last.capacity() - last.len() > last.capacity() / 8 {
                    last.shrink_to_fit();
                }
            }
            let chunk = if len >= TEXT_CHUNK / 4 {
                s.into()
            } else {
                // The first chunk starts small: most headers hold a few short strings.
                let capacity = if self.chunks.is_empty() {
                    256
                } else {
                    TEXT_CHUNK
                };
                let mut chunk = String::with_capacity(capacity.max(len));
                chunk.push_str(s.as_ref());
                chunk
            };
            self.chunks.push(chunk);
        }
        let index = self.chunks.len() - 1;
        let end = self.chunks[index].len();
        // A chunk past the offset's range holds one string (nothing is appended to a chunk
        // over TEXT_CHUNK): offset 0 stands for "the whole chunk".
        let offset = if end > OFFSET_MASK as usize {
            0
        } else {
            end as u32
        };
        self.ends.push((index as u32) << OFFSET_BITS | offset);
    }

    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn get(&self, index: usize) -> &str {
        let end = self.ends[index];
        let chunk = &self.chunks[(end >> OFFSET_BITS) as usize];
        let end_offset = (end & OFFSET_MASK) as usize;
        if end_offset == 0 && chunk.len() > OFFSET_MASK as usize {
            return chunk;
        }
        let start_offset = match index.checked_sub(1).map(|i| self.ends[i]) {
            Some(previous) if previous >> OFFSET_BITS == end >> OFFSET_BITS => {
                (previous & OFFSET_MASK) as usize
            }
            _ => 0,
        };
        &chunk[start_offset..end_offset]
    }

    pub fn iter(&self) -> impl ExactSizeIterator<Item = &str> + Clone + '_ {
        (0..self.len()).map(move |i| self.get(i))
    }

    /// Gives unused room back where that is cheap (a header of a few strings).
    pub fn shrink_small(&mut self) {
        if self.chunks.len() == 1 {
            self.chunks[0].shrink_to_fit();
        }
        self.ends.shrink_small();
    }
}

#[cfg(test)]
impl StrTable {
    /// Bytes reserved for text.
    fn reserved(&self) -> usize {
        self.chunks.iter().map(String::capacity).sum()
    }
}

impl PartialEq for StrTable {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}

impl Eq for StrTable {}

/// A value derived from others, built on first use where `std` gives a thread-safe cell
/// (what is never asked for is never built); without `std`, built at once.
#[derive(Debug, Clone)]
pub(crate) struct Lazy<T> {
    #[cfg(feature = "std")]
    cell: std::sync::OnceLock<T>,
    #[cfg(not(feature = "std"))]
    value: T,
}

impl<T> Lazy<T> {
    #[cfg(feature = "std")]
    pub fn new(_: impl FnOnce() -> T) -> Self {
        Self {
            cell: std::sync::OnceLock::new(),
        }
    }

    #[cfg(not(feature = "std"))]
    pub fn new(init: impl FnOnce() -> T) -> Self {
        Self { value: init() }
    }

    /// The value; `init` must compute what `new`'s would have.
    #[cfg(feature = "std")]
    pub fn get(&self, init: impl FnOnce() -> T) -> &T {
        self.cell.get_or_init(init)
    }

    #[cfg(not(feature = "std"))]
    pub fn get(&self, _: impl FnOnce() -> T) -> &T {
        &self.value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::ToString;

    #[test]
    fn chunked_vec_keeps_order_across_chunks() {
        let mut v = ChunkedVec::default();
        for i in 0..(3 * CHUNK_LEN + 5) {
            v.push(i);
        }
        assert_eq!(v.len(), 3 * CHUNK_LEN + 5);
        assert!((0..v.len()).all(|i| v[i] == i));
    }

    #[test]
    fn dim_table_reads_back_every_size_of_dimension() {
        let dims = [0, 1, 127, 128, 4096, 1 << 35, usize::MAX, 7];
        let mut table = DimTable::default();
        table.push(5);
        let at = table.position();
        for d in dims {
            table.push(d);
        }
        assert_eq!(table.shape(at, dims.len() as u32), dims);
        assert_eq!(table.shape(0, 1), [5]);
        assert_eq!(table.shape(at, 0), Vec::<usize>::new());
        // Shapes across chunk ends, where a varint moves whole to the next chunk.
        let mut shapes = Vec::new();
        for i in 0..40_000usize {
            let shape: Vec<usize> = (0..i % 5).map(|k| (i << (k * 9)) | k).collect();
            let at = table.position();
            for &d in &shape {
                table.push(d);
            }
            shapes.push((at, shape));
        }
        assert!(table.chunks.len() > 3);
        for (at, shape) in shapes {
            assert_eq!(table.shape(at, shape.len() as u32), shape);
        }
    }

    #[test]
    fn str_table_reads_back_short_long_and_empty_strings() {
        let mut table = StrTable::default();
        let mut expected = Vec::new();
        for i in 0..60_000 {
            let s = match i % 7 {
                0 => String::new(),
                3 if i % 20_000 == 3 => "y".repeat(OFFSET_MASK as usize + 1 + i),
                3 => "x".repeat(TEXT_CHUNK / 4 + i),
                _ => format!("name.{i}.é"),
            };
            if i % 1000 == 3 || i % 7 != 3 {
                table.push(s.clone());
                expected.push(s);
            }
        }
        assert_eq!(table.len(), expected.len());
        assert!(table.iter().eq(expected.iter().map(String::as_str)));
        assert_eq!(table.get(0), "");
        let last = expected.len() - 1;
        assert_eq!(table.get(last), expected[last]);
    }

    #[test]
    fn str_table_reserves_in_proportion_to_what_it_stores() {
        // Long strings (moved in whole) alternating with short ones: each short string used
        // to start a fresh 1 MiB chunk that stayed nearly empty.
        let mut table = StrTable::default();
        let mut stored = 0;
        for i in 0..300 {
            let long = "l".repeat(TEXT_CHUNK / 4 + i);
            let short = format!("short {i}");
            stored += long.len() + short.len();
            table.push(long);
            table.push(short);
        }
        assert!(
            table.reserved() <= stored + stored / 8 + TEXT_CHUNK,
            "{} reserved for {stored}",
            table.reserved()
        );
        // Short strings alone fill whole chunks: nothing changes for the common header.
        let mut names = StrTable::default();
        for i in 0..200_000 {
            names.push(format!("model.layers.{i}.weight"));
        }
        let stored: usize = names.iter().map(str::len).sum();
        assert!(names.reserved() <= stored + TEXT_CHUNK);
        assert!(names
            .iter()
            .enumerate()
            .all(|(i, s)| s == format!("model.layers.{i}.weight")));
    }

    #[test]
    fn str_table_starts_empty_and_compares_by_content() {
        let mut a = StrTable::default();
        assert_eq!(a.len(), 0);
        a.push("k");
        a.push("v".to_string());
        let mut b = StrTable::default();
        b.push("k".to_string());
        b.push("v");
        assert_eq!(a, b);
        b.push("");
        assert_ne!(a, b);
    }
}
