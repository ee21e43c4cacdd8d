//! Parsing and validating the header: the 8-byte length, the JSON object, and every
//! acceptance rule of the format (types, dtypes, sizes, and exact tiling of the data).

use alloc::string::{String, ToString};
use alloc::vec;
use alloc::vec::Vec;

use crate::format::dtype::Dtype;
use crate::format::error::{excerpt, excerpt_to, Error, QUOTED_BYTES};
use crate::format::json::{Entry, Header, HeaderSeed};
use crate::format::table::{ChunkedVec, DimTable, Lazy, StrTable};
use crate::format::HashMap;

pub use crate::format::limits::{MAX_HEADER_SIZE, METADATA_KEY};

/// Where one tensor lives and what it holds. Endianness is little, order is C (row-major).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TensorInfo {
    /// Element type.
    pub dtype: Dtype,
    /// Shape; `[]` is a scalar.
    pub shape: Vec<usize>,
    /// `[begin, end)` relative to the start of the data section.
    pub data_offsets: (usize, usize),
}

impl TensorInfo {
    /// Number of elements (product of the shape; 1 for a scalar).
    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    /// Number of bytes (`end - begin`).
    pub fn byte_len(&self) -> usize {
        self.data_offsets.1 - self.data_offsets.0
    }
}

/// A parsed and validated header: the tensors (kept in file order, listed in data order),
/// and the `__metadata__` map. Names, metadata strings and entries are stored compactly
/// (`table.rs`): a header of millions of entries costs about its own size.
#[derive(Debug, Clone)]
pub struct Metadata {
    /// `__metadata__` in file order, key then value: the one copy of it.
    metadata_pairs: Option<StrTable>,
    /// The same as a map, for [`Metadata::metadata`]: built on first use, as most readers
    /// only ask for the ordered pairs and millions of entries must not be held twice.
    metadata: Lazy<Option<HashMap<String, String>>>,
    /// Tensor names and entries, in file order (same index), their shapes in `dims`.
    names: StrTable,
    infos: ChunkedVec<Entry>,
    dims: DimTable,
    /// Every entry as a [`TensorInfo`] (file order), for the methods that lend one out
    /// ([`Metadata::info`], [`Metadata::iter`], [`Metadata::tensors`]): built on first use,
    /// as the others ([`Metadata::entry`], [`Metadata::entries`]) need no such copy.
    lent: Lazy<ChunkedVec<TensorInfo>>,
    /// Positions in `infos` in data order (by offsets; ties, zero-sized tensors, by name).
    /// `u32` is enough: a header of at most [`MAX_HEADER_SIZE`] bytes holds fewer entries.
    by_offset: Order,
    /// Positions in `infos` sorted by name: lookups by binary search, sorted names for free.
    by_name: Order,
    data_len: usize,
}

impl PartialEq for Metadata {
    fn eq(&self, other: &Self) -> bool {
        // The map is derived from the pairs (and may not be built yet on either side); the
        // file order of the entries does not matter, their data order does.
        self.metadata_pairs == other.metadata_pairs
            && self.data_len == other.data_len
            && self.entries().eq(other.entries())
    }
}

impl Eq for Metadata {}

/// Positions of the entries in some order: usually the file lists them in name order or in
/// data order already, and then the order costs nothing.
#[derive(Debug, Clone)]
enum Order {
    FileOrder(usize),
    Listed(Vec<u32>),
}

impl Order {
    fn new(positions: Vec<u32>) -> Self {
        let in_file_order = positions.iter().enumerate().all(|(i, &p)| i == p as usize);
        match in_file_order {
            true => Order::FileOrder(positions.len()),
            false => Order::Listed(positions),
        }
    }

    fn len(&self) -> usize {
        match self {
            Order::FileOrder(len) => *len,
            Order::Listed(positions) => positions.len(),
        }
    }

    /// The position of the `k`-th entry in this order.
    fn get(&self, k: usize) -> usize {
        match self {
            Order::FileOrder(_) => k,
            Order::Listed(positions) => positions[k] as usize,
        }
    }

    fn iter(&self) -> impl ExactSizeIterator<Item = usize> + '_ {
        (0..self.len()).map(move |k| self.get(k))
    }
}

/// The `__metadata__` entries in file order, as [`Metadata::metadata_ordered`] gives them.
#[derive(Clone, Copy)]
pub struct MetadataEntries<'a> {
    pairs: &'a StrTable,
}

impl<'a> MetadataEntries<'a> {
    /// Number of entries.
    pub fn len(&self) -> usize {
        self.pairs.len() / 2
    }

    /// True when `__metadata__` is an empty object.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `(key, value)` pairs in file order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&'a str, &'a str)> + Clone + 'a {
        let pairs = self.pairs;
        (0..self.len()).map(move |i| (pairs.get(2 * i), pairs.get(2 * i + 1)))
    }

    /// The value of `key` (a scan: for the few entries metadata usually holds; use
    /// [`Metadata::metadata`] for many lookups).
    pub fn get(&self, key: &str) -> Option<&'a str> {
        self.iter().find(|(k, _)| *k == key).map(|(_, v)| v)
    }

    /// The entries as owned pairs.
    pub fn to_vec(&self) -> Vec<(String, String)> {
        self.iter().map(|(k, v)| (k.into(), v.into())).collect()
    }
}

impl<'a> IntoIterator for MetadataEntries<'a> {
    type Item = (&'a str, &'a str);
    type IntoIter = alloc::boxed::Box<dyn Iterator<Item = (&'a str, &'a str)> + 'a>;
    fn into_iter(self) -> Self::IntoIter {
        alloc::boxed::Box::new(self.iter())
    }
}

impl PartialEq for MetadataEntries<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.pairs == other.pairs
    }
}

impl<K: AsRef<str>, V: AsRef<str>> PartialEq<[(K, V)]> for MetadataEntries<'_> {
    fn eq(&self, other: &[(K, V)]) -> bool {
        self.len() == other.len()
            && self
                .iter()
                .zip(other)
                .all(|((k, v), (ok, ov))| k == ok.as_ref() && v == ov.as_ref())
    }
}

impl<K: AsRef<str>, V: AsRef<str>> PartialEq<&[(K, V)]> for MetadataEntries<'_> {
    fn eq(&self, other: &&[(K, V)]) -> bool {
        *self == **other
    }
}

impl<K: AsRef<str>, V: AsRef<str>> PartialEq<Vec<(K, V)>> for MetadataEntries<'_> {
    fn eq(&self, other: &Vec<(K, V)>) -> bool {
        *self == other[..]
    }
}

impl<K: AsRef<str>, V: AsRef<str>, const N: usize> PartialEq<[(K, V); N]> for MetadataEntries<'_> {
    fn eq(&self, other: &[(K, V); N]) -> bool {
        *self == other[..]
    }
}

impl core::fmt::Debug for MetadataEntries<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_map().entries(self.iter()).finish()
    }
}

fn to_map(pairs: &Option<StrTable>) -> Option<HashMap<String, String>> {
    pairs.as_ref().map(|pairs| {
        MetadataEntries { pairs }
            .iter()
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    })
}

/// Reads the 8-byte little-endian header length at the start of `prefix`, refusing
/// lengths above [`MAX_HEADER_SIZE`].
pub fn read_header_len(prefix: &[u8]) -> Result<usize, Error> {
    let bytes: [u8; 8] = prefix
        .get(..8)
        .and_then(|b| b.try_into().ok())
        .ok_or(Error::HeaderTooSmall { len: prefix.len() })?;
    let n = u64::from_le_bytes(bytes);
    if n > MAX_HEADER_SIZE as u64 {
        return Err(Error::HeaderTooLarge { header_len: n });
    }
    Ok(n as usize)
}

impl Metadata {
    /// Validates a header. `header` is the `N` bytes after the length prefix (padding
    /// included); `data_len` is the length of the data section (`file size - 8 - N`).
    pub fn from_header_bytes(header: &[u8], data_len: usize) -> Result<Metadata, Error> {
        let text = header_text(header)?;
        // The direct reader takes nearly every real header; anything else, every problem
        // included, is read by the general one (borrowed bytes: from the start).
        let header = match crate::format::json_plain::parse(text) {
            Ok(header) => header,
            Err(_) => read_general(text, Header::empty())?,
        };
        Self::validated(header, data_len)
    }

    /// [`Metadata::from_header_bytes`] on bytes it may change: where the direct reader gives
    /// up after some entries, the general reader goes on from there instead of reading the
    /// header twice. The entries already read are blanked (newlines kept), so the general
    /// reader's error positions are still the file's.
    pub(crate) fn from_header_vec(mut bytes: Vec<u8>, data_len: usize) -> Result<Metadata, Error> {
        let text = header_text(&bytes)?;
        let header = match crate::format::json_plain::parse(text) {
            Ok(header) => header,
            Err(None) => read_general(text, Header::empty())?,
            Err(Some(partial)) => {
                // Just after the opening brace (the first byte that is not whitespace).
                let open = crate::format::json_plain::skip_whitespace(text.as_bytes(), 0) + 1;
                for byte in &mut bytes[open..partial.resume_at] {
                    if *byte != b'\n' {
                        *byte = b' ';
                    }
                }
                // The brace moves to just before the entry to resume at (where the `,` or
                // the brace itself was): the blanked entries become leading whitespace,
                // which the general reader skips fast, and every later byte keeps its line
                // and column.
                bytes[open - 1] = b' ';
                bytes[partial.resume_at - 1] = b'{';
                // Whole characters were replaced by ASCII bytes: still UTF-8.
                read_general(header_text(&bytes)?, partial.header)?
            }
        };
        Self::validated(header, data_len)
    }

    fn validated(header: Header, data_len: usize) -> Result<Metadata, Error> {
        if let Some(problem) = header.first_error {
            return Err(problem);
        }
        let metadata = Self::from_parts(header, data_len);
        metadata.check_unique_names()?;
        metadata.check_tiling()?;
        Ok(metadata)
    }

    /// Lists the tensors in data order (by offsets; ties, zero-sized tensors, by name) and
    /// by name. Validation happens on the result.
    fn from_parts(header: Header, data_len: usize) -> Self {
        let Header {
            metadata: mut metadata_pairs,
            mut names,
            infos,
            dims,
            ..
        } = header;
        names.shrink_small();
        if let Some(pairs) = metadata_pairs.as_mut() {
            pairs.shrink_small();
        }
        // Entries take more than one byte each, so their count fits a u32 (MAX_HEADER_SIZE).
        let count = infos.len() as u32;
        // Unstable sorts: no scratch buffer of half the entries. Equal keys are equal names
        // (and offsets), which the duplicate-name check refuses whatever their order.
        let mut by_name: Vec<u32> = (0..count).collect();
        by_name.sort_unstable_by(|&a, &b| names.get(a as usize).cmp(names.get(b as usize)));
        // Ties in data order (zero-sized tensors) go by name: by rank in name order, so the
        // sort compares integers only.
        let mut rank = vec![0u32; count as usize];
        for (r, &i) in by_name.iter().enumerate() {
            rank[i as usize] = r as u32;
        }
        let mut by_offset: Vec<u32> = (0..count).collect();
        by_offset.sort_unstable_by_key(|&i| (infos[i as usize].data_offsets, rank[i as usize]));
        drop(rank);
        let (by_name, by_offset) = (Order::new(by_name), Order::new(by_offset));
        let metadata = Lazy::new(|| to_map(&metadata_pairs));
        let lent = Lazy::new(|| lend(&infos, &dims));
        Metadata {
            metadata,
            metadata_pairs,
            names,
            infos,
            dims,
            lent,
            by_offset,
            by_name,
            data_len,
        }
    }

    /// The entry at `i` (file order) as a [`TensorInfo`].
    fn info_at(&self, i: usize) -> TensorInfo {
        to_info(&self.infos[i], &self.dims)
    }

    /// The position (file order) of the tensor `name`.
    fn position(&self, name: &str) -> Option<usize> {
        let (mut low, mut high) = (0, self.by_name.len());
        while low < high {
            let mid = low + (high - low) / 2;
            let i = self.by_name.get(mid);
            match self.names.get(i).cmp(name) {
                core::cmp::Ordering::Less => low = mid + 1,
                core::cmp::Ordering::Greater => high = mid,
                core::cmp::Ordering::Equal => return Some(i),
            }
        }
        None
    }

    fn lent(&self) -> &ChunkedVec<TensorInfo> {
        self.lent.get(|| lend(&self.infos, &self.dims))
    }

    /// The `__metadata__` map, if the header has one.
    pub fn metadata(&self) -> &Option<HashMap<String, String>> {
        self.metadata.get(|| to_map(&self.metadata_pairs))
    }

    /// The `__metadata__` entries in the order the file lists them.
    pub fn metadata_ordered(&self) -> Option<MetadataEntries<'_>> {
        self.metadata_pairs
            .as_ref()
            .map(|pairs| MetadataEntries { pairs })
    }

    /// Every tensor by name.
    pub fn tensors(&self) -> HashMap<String, &TensorInfo> {
        self.iter()
            .map(|(name, info)| (name.into(), info))
            .collect()
    }

    /// One tensor's entry, lent out (the reference's signature). The first call builds a
    /// [`TensorInfo`] for every tensor; [`Metadata::entry`] builds only the one asked for.
    pub fn info(&self, name: &str) -> Option<&TensorInfo> {
        self.position(name).map(|i| &self.lent()[i])
    }

    /// True when the header lists tensor `name` (no entry is built).
    pub fn contains(&self, name: &str) -> bool {
        self.position(name).is_some()
    }

    /// One tensor's entry, built from the compact header.
    pub fn entry(&self, name: &str) -> Option<TensorInfo> {
        self.position(name).map(|i| self.info_at(i))
    }

    /// Tensors in data order, each entry built from the compact header as it is reached.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (&str, TensorInfo)> + '_ {
        self.by_offset
            .iter()
            .map(|i| (self.names.get(i), self.info_at(i)))
    }

    /// Tensor names in data order (sorted by offsets).
    pub fn offset_keys(&self) -> Vec<String> {
        self.iter_names().map(String::from).collect()
    }

    /// Tensor names in data order, without collecting them.
    pub fn iter_names(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.by_offset.iter().map(|i| self.names.get(i))
    }

    /// Tensor names sorted byte-wise.
    pub fn names_sorted(&self) -> Vec<&str> {
        self.iter_names_sorted().collect()
    }

    /// Tensor names sorted byte-wise, without collecting them.
    pub fn iter_names_sorted(&self) -> impl ExactSizeIterator<Item = &str> + '_ {
        self.by_name.iter().map(|i| self.names.get(i))
    }

    /// Tensors in data order, entries lent out (the first call builds a [`TensorInfo`] for
    /// every tensor; [`Metadata::entries`] does not).
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&str, &TensorInfo)> + '_ {
        let lent = self.lent();
        self.by_offset
            .iter()
            .map(move |i| (self.names.get(i), &lent[i]))
    }

    /// Length of the data section in bytes.
    pub fn data_len(&self) -> usize {
        self.data_len
    }

    /// Number of tensors.
    pub fn len(&self) -> usize {
        self.infos.len()
    }

    /// True when the file holds no tensor.
    pub fn is_empty(&self) -> bool {
        self.infos.len() == 0
    }
}

fn to_info(entry: &Entry, dims: &DimTable) -> TensorInfo {
    TensorInfo {
        dtype: entry.dtype,
        shape: dims.shape(entry.dims_at, entry.ndim),
        data_offsets: entry.data_offsets,
    }
}

fn lend(infos: &ChunkedVec<Entry>, dims: &DimTable) -> ChunkedVec<TensorInfo> {
    let mut lent = ChunkedVec::default();
    for i in 0..infos.len() {
        lent.push(to_info(&infos[i], dims));
    }
    lent
}

/// The header as text: UTF-8, and an object (JSON whitespace may precede it, as the
/// reference reads it).
fn header_text(header: &[u8]) -> Result<&str, Error> {
    let text = core::str::from_utf8(header).map_err(|e| Error::InvalidHeader {
        valid_up_to: e.valid_up_to(),
        error: e,
    })?;
    let first = crate::format::json_plain::skip_whitespace(text.as_bytes(), 0);
    if text.as_bytes().get(first) != Some(&b'{') {
        return Err(Error::InvalidHeaderStart);
    }
    Ok(text)
}

/// The general (serde) reader, adding the object's entries to `start`: it validates every
/// tensor entry as it is read and reports the first problem in file order, after any JSON
/// syntax error.
///
/// serde skips whitespace a byte at a time, and a header may hold up to 100 MB of it around
/// the object, so it is given the object alone. Only where that fails is the whole text read
/// again, for an error message whose line and column are the file's.
fn read_general(text: &str, start: Header) -> Result<Header, Error> {
    use serde::de::DeserializeSeed;
    let read = |text: &str, start: Header| {
        let mut de = serde_json::Deserializer::from_str(text);
        HeaderSeed(start)
            .deserialize(&mut de)
            .and_then(|header| de.end().map(|()| header))
            // serde's own words, bounded should one ever quote a long piece of input.
            .map_err(|e| {
                Error::InvalidHeaderDeserialization(excerpt_to(&e.to_string(), 4 * QUOTED_BYTES))
            })
    };
    let bytes = text.as_bytes();
    let begin = crate::format::json_plain::skip_whitespace(bytes, 0);
    let end = crate::format::json_plain::trim_whitespace_end(bytes).max(begin);
    if begin == 0 && end == text.len() {
        return read(text, start);
    }
    // Cut at ASCII whitespace: both ends are character boundaries.
    // Surrounding whitespace never changes what JSON means, so the whole text fails too;
    // should it not, the first error stands.
    read(&text[begin..end], start)
        .map_err(|trimmed| read(text, Header::empty()).err().unwrap_or(trimmed))
}

impl Metadata {
    /// Refuses a tensor name that appears twice (adjacent in name order).
    fn check_unique_names(&self) -> Result<(), Error> {
        let mut sorted = self.iter_names_sorted();
        let Some(mut previous) = sorted.next() else {
            return Ok(());
        };
        for name in sorted {
            if name == previous {
                return Err(Error::DuplicateTensor(excerpt(name)));
            }
            previous = name;
        }
        Ok(())
    }

    /// Checks the tensors, in data order, cover `[0, data_len)` exactly: no hole, no
    /// overlap, nothing past the end and no trailing bytes.
    fn check_tiling(&self) -> Result<(), Error> {
        let mut covered = 0usize;
        for i in self.by_offset.iter() {
            let (begin, end) = self.infos[i].data_offsets;
            if begin != covered || end > self.data_len {
                return Err(Error::InvalidOffset {
                    tensor: excerpt(self.names.get(i)),
                    data_offsets: (begin, end),
                    expected_begin: covered,
                    data_len: self.data_len,
                });
            }
            covered = end;
        }
        if covered != self.data_len {
            return Err(Error::MetadataIncompleteBuffer {
                covered,
                data_len: self.data_len,
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;
    use proptest::prelude::*;

    /// The serde reader alone over the whole text, from the start: what every header read
    /// must equal, error messages included.
    fn general_only(text: &str, data_len: usize) -> Result<Metadata, String> {
        use serde::de::DeserializeSeed;
        header_text(text.as_bytes()).map_err(|e| e.to_string())?;
        let mut de = serde_json::Deserializer::from_str(text);
        HeaderSeed(Header::empty())
            .deserialize(&mut de)
            .and_then(|header| de.end().map(|()| header))
            .map_err(|e| Error::InvalidHeaderDeserialization(e.to_string()))
            .and_then(|header| Metadata::validated(header, data_len))
            .map_err(|e| e.to_string())
    }

    /// What the crate's readers make of `text`: the direct reader (resuming) and the general
    /// one on its own.
    fn both_readers(text: &str, data_len: usize) -> [Result<Metadata, String>; 2] {
        let general = header_text(text.as_bytes())
            .and_then(|text| read_general(text, Header::empty()))
            .and_then(|header| Metadata::validated(header, data_len))
            .map_err(|e| e.to_string());
        [resumed(text, data_len), general]
    }

    fn resumed(text: &str, data_len: usize) -> Result<Metadata, String> {
        Metadata::from_header_vec(text.as_bytes().to_vec(), data_len).map_err(|e| e.to_string())
    }

    const ENTRIES: &str = concat!(
        "{\"__metadata__\":{\"format\":\"pt\"},\n",
        "\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\n",
        "\"b\":{\"dtype\":\"BF16\",\"shape\":[],\"data_offsets\":[24,26]},",
        "\"c\\u00e9\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[26,28],\"x\":[1]},",
        "\"\\u00e9\":{\"dtype\":\"U8\",\"shape\":[0,4],\"data_offsets\":[28,28]}}  "
    );

    #[test]
    fn resuming_after_the_direct_reader_reads_what_the_serde_reader_reads() {
        // Escapes and an extra field in the third entry: two entries kept, then resumed.
        let Err(Some(partial)) = crate::format::json_plain::parse(ENTRIES) else {
            panic!("the direct reader should keep the first entries");
        };
        assert_eq!(partial.header.infos.len(), 2);
        let got = resumed(ENTRIES, 28).unwrap();
        assert_eq!(Ok(&got), general_only(ENTRIES, 28).as_ref());
        assert_eq!(both_readers(ENTRIES, 28)[1], Ok(got.clone()));
        assert_eq!(got.len(), 4);
        assert_eq!(got.entry("cé").unwrap().shape, [2]);
        // An error after the kept entries: same message, same position.
        let broken = ENTRIES.replace("[28,28]}}", "[28,28]},}");
        let error = resumed(&broken, 28).unwrap_err();
        assert_eq!(Err(error.clone()), general_only(&broken, 28));
        assert!(error.contains("line 3 column 185"), "{error}");
    }

    #[test]
    fn a_trailing_comma_after_kept_entries_is_reported_as_serde_reports_it() {
        // The direct reader gives up at the `}`; resumed after the blanked comma, the general
        // reader would have seen an empty object and then trailing characters.
        let text = ENTRIES.replacen("[0,24]},\n", "[0,24]},}\n", 1);
        let error = resumed(&text, 28).unwrap_err();
        assert_eq!(Err(error.clone()), general_only(&text, 28));
        assert!(
            error.contains("trailing comma at line 2 column 57"),
            "{error}"
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Random edits anywhere, most near the end: reading with the direct reader and
        /// resuming gives exactly the serde reader's result or error message.
        #[test]
        fn edits_read_the_same_resumed_or_not(
            edits in proptest::collection::vec(
                (0.0..1.0f64, 0..3u8, prop::sample::select(
                    &[" ", "\n", "\"", "\\", ":", ",", "{", "}", "[", "]", "0", "1", "-", ".",
                      "e", "é", "\u{1}", "dtype", "shape", "data_offsets", "__metadata__",
                      "F32", "U8", "\\u0041"][..])),
                1..4,
            )
        ) {
            let mut text = alloc::string::String::from(ENTRIES);
            for (at, kind, piece) in edits {
                // Three edits in four land in the last third, after entries to keep.
                let at = (text.len() as f64 * (if at < 0.75 { 0.66 + at * 0.45 } else { at })) as usize;
                let at = (0..=at.min(text.len())).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
                let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                match kind {
                    0 => text.insert_str(at, piece),
                    1 => text.replace_range(at..end, ""),
                    _ => text.replace_range(at..end, piece),
                }
            }
            prop_assert_eq!(resumed(&text, 28), general_only(&text, 28), "{:?}", text);
        }

        /// Whitespace around the object (runs longer than the 32-byte steps, mixed with
        /// newlines and tabs) and edits anywhere: every reader gives the serde reader's result
        /// or error message, line and column included.
        #[test]
        fn surrounding_whitespace_reads_as_serde_reads_it(
            lead in proptest::collection::vec(prop::sample::select(&[" ", "\n", "\t", "\r", "                                         "][..]), 0..6),
            trail in proptest::collection::vec(prop::sample::select(&[" ", "\n", "\t", "                                      "][..]), 0..6),
            edit in (0.0..1.0f64, prop::sample::select(&["", "\"", ",", "}", "\\", "é", "\u{1}", " \n "][..])),
        ) {
            let mut text = ENTRIES.to_string();
            let at = (text.len() as f64 * edit.0) as usize;
            let at = (0..=at).rev().find(|&i| text.is_char_boundary(i)).unwrap_or(0);
            text.insert_str(at, edit.1);
            let text = lead.concat() + &text + &trail.concat();
            let expected = general_only(&text, 28);
            for got in both_readers(&text, 28) {
                prop_assert_eq!(&got, &expected, "{:?}", text);
            }
        }
    }

    #[test]
    fn whitespace_is_skipped_from_either_end_at_any_length() {
        use crate::format::json_plain::{skip_whitespace, trim_whitespace_end};
        for n in [0, 1, 31, 32, 33, 64, 100] {
            for filler in [" ", "\n", " \t\r\n"] {
                let pad = filler.repeat(n);
                let text = format!("{pad}{{}}{pad}");
                let start = skip_whitespace(text.as_bytes(), 0);
                let end = trim_whitespace_end(text.as_bytes());
                assert_eq!(&text[start..end], "{}", "{n} x {filler:?}");
            }
        }
        assert_eq!(skip_whitespace(b"   ", 0), 3);
        assert_eq!(trim_whitespace_end(b"   "), 0);
        assert_eq!(skip_whitespace(b"{ ", 1), 2);
    }
}
