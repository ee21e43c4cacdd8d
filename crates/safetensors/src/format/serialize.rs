//! Writing: the layout rule (descending alignment, then name), the compact JSON header
//! padded to 8 bytes, and the metadata argument that keeps the caller's order.

use alloc::collections::BTreeMap;
use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt::Display;

use crate::format::dtype::Dtype;
use crate::format::error::Error;
use crate::format::header::{MAX_HEADER_SIZE, METADATA_KEY};
use crate::format::safe_tensor_error::SafeTensorError;
use crate::format::tensor::View;
use crate::format::HashMap;

/// What `serialize` accepts as metadata: `None`, `&None`, `Some(HashMap)`, `&Some(HashMap)`
/// (the reference crate's forms; keys are written sorted so output is deterministic), or an
/// ordered collection of string pairs (`Vec<(K, V)>`, `&[(K, V)]`, `[(K, V); N]`,
/// `BTreeMap<K, V>`) whose order is kept.
///
/// There is exactly one `Option` form so that a bare `None` needs no type annotation.
pub trait MetadataArg {
    /// The pairs to write, in order; `None` writes no `__metadata__` entry.
    fn into_pairs(self) -> Option<Vec<(String, String)>>;
}

fn sorted_pairs(map: &HashMap<String, String>) -> Vec<(String, String)> {
    let mut pairs: Vec<(String, String)> =
        map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    pairs.sort();
    pairs
}

impl MetadataArg for Option<HashMap<String, String>> {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        self.as_ref().map(sorted_pairs)
    }
}

impl MetadataArg for &Option<HashMap<String, String>> {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        self.as_ref().map(sorted_pairs)
    }
}

impl<K: Into<String>, V: Into<String>> MetadataArg for Vec<(K, V)> {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        Some(
            self.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: AsRef<str>, V: AsRef<str>> MetadataArg for &[(K, V)] {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        Some(
            self.iter()
                .map(|(k, v)| (k.as_ref().into(), v.as_ref().into()))
                .collect(),
        )
    }
}

impl MetadataArg for crate::format::tensor::MetadataEntries<'_> {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        Some(self.to_vec())
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> MetadataArg for [(K, V); N] {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        Some(
            self.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl<K: Into<String>, V: Into<String>> MetadataArg for BTreeMap<K, V> {
    fn into_pairs(self) -> Option<Vec<(String, String)>> {
        Some(
            self.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

/// What laying out a file needs of a tensor: everything its header entry says, not its
/// bytes. Every [`View`] is one; the streaming writer's planned tensors are too, so a file
/// whose bytes come later is laid out by the same code as one written whole.
pub(crate) trait Described {
    /// Element type.
    fn dtype(&self) -> Dtype;
    /// Shape.
    fn shape(&self) -> &[usize];
    /// Number of bytes.
    fn data_len(&self) -> usize;
}

impl<V: View> Described for V {
    fn dtype(&self) -> Dtype {
        View::dtype(self)
    }
    fn shape(&self) -> &[usize] {
        View::shape(self)
    }
    fn data_len(&self) -> usize {
        View::data_len(self)
    }
}

/// Tensors in file order with the header that describes them.
pub(crate) struct Prepared<V> {
    pub header: Vec<u8>,
    pub tensors: Vec<V>,
    pub data_len: usize,
}

/// Orders the tensors, checks them, and builds the padded header (length prefix included).
pub(crate) fn prepare<S, V, I, M>(data: I, metadata: M) -> Result<Prepared<V>, Error>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
    M: MetadataArg,
{
    let mut items: Vec<(S, V)> = data.into_iter().collect();
    order(&mut items)?;
    let pairs = metadata.into_pairs();
    let (header, data_len) = header(&items, pairs.as_deref())?;
    Ok(Prepared {
        header,
        tensors: items.into_iter().map(|(_, v)| v).collect(),
        data_len,
    })
}

/// Puts tensors in file order (largest alignment first so each tensor starts aligned; then
/// byte-wise by name) and refuses a name given twice.
pub(crate) fn order<S: AsRef<str>, V: Described>(items: &mut [(S, V)]) -> Result<(), Error> {
    items.sort_by(|(an, a), (bn, b)| {
        b.dtype()
            .cmp(&a.dtype())
            .then_with(|| an.as_ref().as_bytes().cmp(bn.as_ref().as_bytes()))
    });
    for pair in items.windows(2) {
        if pair[0].0.as_ref() == pair[1].0.as_ref() {
            return Err(Error::DuplicateTensor(pair[0].0.as_ref().into()));
        }
    }
    Ok(())
}

/// The padded header (length prefix included) of tensors already in file order, and the
/// length of the data section after it. `pairs` is the `__metadata__` (`None`: no entry).
pub(crate) fn header<S: AsRef<str>, V: Described, K: AsRef<str>, T: AsRef<str>>(
    items: &[(S, V)],
    pairs: Option<&[(K, T)]>,
) -> Result<(Vec<u8>, usize), Error> {
    let mut json = String::with_capacity(64 + items.len() * 96);
    json.push('{');
    let mut first = true;
    if let Some(pairs) = pairs {
        if let Some(k) = crate::format::json::repeated_key(pairs.len(), |i| pairs[i].0.as_ref()) {
            return Err(Error::InvalidWrite(format!(
                "metadata key {k:?} given twice"
            )));
        }
        push_metadata(
            &mut json,
            pairs.iter().map(|(k, v)| (k.as_ref(), v.as_ref())),
        );
        first = false;
    }

    let mut offset = 0usize;
    for (name, view) in items {
        let name = name.as_ref();
        if name == METADATA_KEY {
            return Err(Error::InvalidWrite(format!(
                "{METADATA_KEY:?} is reserved and cannot name a tensor"
            )));
        }
        let len = view.data_len();
        if view.dtype().byte_size(view.shape()) != Ok(len) {
            return Err(Error::InvalidWrite(format!(
                "tensor {name:?}: a {} tensor of shape {:?} cannot hold {len} bytes",
                view.dtype(),
                view.shape()
            )));
        }
        if !first {
            json.push(',');
        }
        first = false;
        push_entry(
            &mut json,
            name,
            view.dtype(),
            view.shape(),
            (offset, offset + len),
        );
        offset += len;
    }
    json.push('}');

    // Pad with spaces so the data section starts 8-byte aligned.
    let padded = json.len().next_multiple_of(8);
    // A header past the limit would make a file no reader accepts (this one included).
    if padded > MAX_HEADER_SIZE {
        return Err(Error::HeaderTooLarge {
            header_len: padded as u64,
        });
    }
    let mut header = Vec::with_capacity(8 + padded);
    header.extend_from_slice(&(padded as u64).to_le_bytes());
    header.extend_from_slice(json.as_bytes());
    header.resize(8 + padded, b' ');
    Ok((header, offset))
}

/// A tensor's bytes, refused if they are not as long as its header entry says: a `View`
/// whose `data()` disagrees with its `data_len()` would otherwise corrupt the file.
fn checked_data<V: View>(view: &V) -> Result<alloc::borrow::Cow<'_, [u8]>, Error> {
    let data = view.data();
    if data.len() != view.data_len() {
        return Err(Error::InvalidWrite(format!(
            "a tensor's data() gave {} bytes but its data_len() promised {}",
            data.len(),
            view.data_len()
        )));
    }
    Ok(data)
}

/// Writes `s` as a JSON string, escaping only what JSON requires (as serde_json does).
/// Appends `"__metadata__":{"k":"v",...}` (compact, in the order given).
pub(crate) fn push_metadata<'a>(
    json: &mut String,
    pairs: impl Iterator<Item = (&'a str, &'a str)>,
) {
    json_string(json, METADATA_KEY);
    json.push_str(":{");
    for (i, (k, v)) in pairs.enumerate() {
        if i > 0 {
            json.push(',');
        }
        json_string(json, k);
        json.push(':');
        json_string(json, v);
    }
    json.push('}');
}

/// Appends one tensor entry, `"name":{"dtype":..,"shape":[..],"data_offsets":[b,e]}`.
pub(crate) fn push_entry(
    json: &mut String,
    name: &str,
    dtype: Dtype,
    shape: &[usize],
    (begin, end): (usize, usize),
) {
    json_string(json, name);
    json.push_str(":{\"dtype\":\"");
    json.push_str(dtype.name());
    json.push_str("\",\"shape\":[");
    for (i, d) in shape.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json.push_str(itoa(*d, &mut [0u8; 20]));
    }
    json.push_str("],\"data_offsets\":[");
    json.push_str(itoa(begin, &mut [0u8; 20]));
    json.push(',');
    json.push_str(itoa(end, &mut [0u8; 20]));
    json.push_str("]}");
}

pub(crate) fn json_string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.push_str("\\u00");
                out.push(HEX[(c as usize) >> 4] as char);
                out.push(HEX[(c as usize) & 0xf] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Formats an integer without going through `core::fmt`.
pub(crate) fn itoa(mut n: usize, buf: &mut [u8; 20]) -> &str {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    // The buffer holds ASCII digits only.
    core::str::from_utf8(&buf[i..]).unwrap_or("0")
}

/// Serializes tensors to an owned buffer: the length prefix, the header, then the data.
///
/// `data_info` is the `__metadata__`: see [`MetadataArg`] for the accepted forms. Errors
/// are the reference's enum; [`crate::format::serialize::to_bytes`] is the same writer with the
/// crate's detailed [`Error`].
pub fn serialize<S, V, I>(data: I, data_info: impl MetadataArg) -> Result<Vec<u8>, SafeTensorError>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
{
    Ok(to_bytes(data, data_info)?)
}

/// [`serialize`] with the crate's detailed [`Error`] (which tensor, which numbers): the
/// writer the project's own faces use.
pub fn to_bytes<S, V, I, M>(data: I, data_info: M) -> Result<Vec<u8>, Error>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
    M: MetadataArg,
{
    let prepared = prepare(data, data_info)?;
    let mut out = Vec::with_capacity(prepared.header.len() + prepared.data_len);
    out.extend_from_slice(&prepared.header);
    for view in &prepared.tensors {
        out.extend_from_slice(&checked_data(view)?);
    }
    Ok(out)
}

/// How a file is written, beyond its tensors and metadata.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct WriteOptions {
    /// Record each tensor's digest in `__metadata__`
    /// (the scheme: [`checksum`](crate::format::checksum)). Off by default.
    pub checksum: Option<crate::format::checksum::Algorithm>,
}

#[cfg(feature = "std")]
impl WriteOptions {
    /// Options that record every tensor's digest with `algorithm`.
    pub fn checksum(algorithm: crate::format::checksum::Algorithm) -> Self {
        WriteOptions {
            checksum: Some(algorithm),
        }
    }

    /// These options with `checksum` (`None`: no digests).
    pub fn with_checksum(mut self, checksum: Option<crate::format::checksum::Algorithm>) -> Self {
        self.checksum = checksum;
        self
    }
}

/// Tensors in file order, the metadata to write (with digest placeholders when asked), and
/// the header laid out with them.
#[cfg(feature = "std")]
pub(crate) struct Laid<S, V> {
    pub items: Vec<(S, V)>,
    pairs: Option<Vec<(String, String)>>,
    pub header: Vec<u8>,
}

#[cfg(feature = "std")]
pub(crate) fn lay_out<S, V, I, M>(
    data: I,
    data_info: M,
    options: &WriteOptions,
) -> Result<Laid<S, V>, Error>
where
    S: AsRef<str>,
    V: Described,
    I: IntoIterator<Item = (S, V)>,
    M: MetadataArg,
{
    let mut items: Vec<(S, V)> = data.into_iter().collect();
    order(&mut items)?;
    let mut pairs = data_info.into_pairs();
    if let Some(algorithm) = options.checksum {
        let names = items.iter().map(|(n, _)| n.as_ref());
        pairs = Some(crate::format::checksum::with_placeholders(
            pairs, names, algorithm,
        )?);
    }
    let (header, _) = header(&items, pairs.as_deref())?;
    Ok(Laid {
        items,
        pairs,
        header,
    })
}

#[cfg(feature = "std")]
impl<S: AsRef<str>, V: Described> Laid<S, V> {
    /// The final header, once every tensor's digest is known (same length as the laid one).
    pub fn final_header(mut self, digests: Vec<String>) -> Result<Vec<u8>, Error> {
        let Some(pairs) = self.pairs.as_mut() else {
            return Ok(self.header);
        };
        crate::format::checksum::fill(pairs, digests);
        let (header, _) = header(&self.items, self.pairs.as_deref())?;
        debug_assert_eq!(header.len(), self.header.len());
        Ok(header)
    }
}

/// [`to_bytes`] with [`WriteOptions`]: with a checksum, every tensor's digest is recorded
/// in `__metadata__` after the caller's entries, in file order.
#[cfg(feature = "std")]
pub fn to_bytes_with<S, V, I, M>(
    data: I,
    data_info: M,
    options: &WriteOptions,
) -> Result<Vec<u8>, Error>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
    M: MetadataArg,
{
    let laid = lay_out(data, data_info, options)?;
    let data_len: usize = laid.items.iter().map(|(_, v)| v.data_len()).sum();
    let mut out = Vec::with_capacity(laid.header.len() + data_len);
    out.extend_from_slice(&laid.header);
    let mut digests = Vec::new();
    for (_, view) in &laid.items {
        let data = checked_data(view)?;
        if let Some(algorithm) = options.checksum {
            digests.push(algorithm.digest(&data));
        }
        out.extend_from_slice(&data);
    }
    let header = laid.final_header(digests)?;
    out[..header.len()].copy_from_slice(&header);
    Ok(out)
}

/// Serializes tensors straight to a file, never holding the whole file in memory.
///
/// The bytes go to a temporary file in the same folder that is renamed over `filename`
/// only once complete: an error midway leaves any existing file untouched. They are written
/// from each tensor's own memory with vectored writes (`writev`): the header and many
/// tensors per system call, and no copy into a buffer, so saving costs what a plain write
/// of the same bytes costs.
///
/// Errors are the reference's enum; [`crate::format::serialize::to_file`] is the same writer with the
/// crate's detailed [`Error`].
#[cfg(feature = "std")]
pub fn serialize_to_file<S, V, I>(
    data: I,
    data_info: impl MetadataArg,
    filename: &std::path::Path,
) -> Result<(), SafeTensorError>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
{
    Ok(to_file(data, data_info, filename)?)
}

/// [`serialize_to_file`] with the crate's detailed [`Error`] (which tensor, which numbers):
/// the writer the project's own faces use.
#[cfg(feature = "std")]
pub fn to_file<S, V, I, M>(data: I, data_info: M, filename: &std::path::Path) -> Result<(), Error>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
    M: MetadataArg,
{
    to_file_with(data, data_info, filename, &WriteOptions::default())
}

/// [`to_file`] with [`WriteOptions`]. With a checksum, each tensor is hashed as its bytes are
/// handed to the file (one pass over them), and the header, laid out with placeholders of
/// the digests' length, is rewritten in place before the file is renamed into place.
#[cfg(feature = "std")]
pub fn to_file_with<S, V, I, M>(
    data: I,
    data_info: M,
    filename: &std::path::Path,
    options: &WriteOptions,
) -> Result<(), Error>
where
    S: AsRef<str> + Ord + Display,
    V: View,
    I: IntoIterator<Item = (S, V)>,
    M: MetadataArg,
{
    let laid = lay_out(data, data_info, options)?;
    let mut out = crate::format::atomic::AtomicFile::create(filename)?;
    let mut digests = Vec::new();
    {
        let mut batch: Vec<alloc::borrow::Cow<'_, [u8]>> = Vec::new();
        let mut owned = 0;
        batch.push(alloc::borrow::Cow::Borrowed(&laid.header));
        for (_, view) in &laid.items {
            let data = checked_data(view)?;
            if let Some(algorithm) = options.checksum {
                digests.push(algorithm.digest(&data));
            }
            if data.is_empty() {
                continue;
            }
            if let alloc::borrow::Cow::Owned(bytes) = &data {
                owned += bytes.len();
            }
            batch.push(data);
            // A view may hand out a copy of its bytes: hold a bounded amount of those at once.
            if batch.len() == MAX_SLICES || owned > MAX_OWNED {
                write_all_vectored(&mut out, &batch)?;
                batch.clear();
                owned = 0;
            }
        }
        write_all_vectored(&mut out, &batch)?;
    }
    if options.checksum.is_some() {
        let header = laid.final_header(digests)?;
        out.rewrite_start(&header)?;
    }
    out.commit()?;
    Ok(())
}

/// The most buffers one vectored write takes (Linux's `IOV_MAX` is 1024).
#[cfg(feature = "std")]
const MAX_SLICES: usize = 1024;

/// Bytes of tensor copies (views whose `data()` is owned) held before they are written.
#[cfg(feature = "std")]
const MAX_OWNED: usize = 64 << 20;

/// Writes every byte of `bufs`, in order, with as few vectored writes as the system allows
/// (a write may stop short: at 2 GiB on Linux, or on a signal).
#[cfg(feature = "std")]
fn write_all_vectored<B: AsRef<[u8]>>(
    out: &mut impl std::io::Write,
    bufs: &[B],
) -> std::io::Result<()> {
    use std::io::{ErrorKind, IoSlice};
    let mut index = 0; // first buffer not fully written
    let mut skip = 0; // bytes of it already written
    while index < bufs.len() {
        let slices: Vec<IoSlice<'_>> = core::iter::once(&bufs[index].as_ref()[skip..])
            .chain(bufs[index + 1..].iter().map(|b| b.as_ref()))
            .map(IoSlice::new)
            .collect();
        let mut written = match out.write_vectored(&slices) {
            Ok(0) => return Err(ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while index < bufs.len() && written >= bufs[index].as_ref().len() - skip {
            written -= bufs[index].as_ref().len() - skip;
            index += 1;
            skip = 0;
        }
        skip += written;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::{dtype::Dtype, tensor::TensorView};
    use alloc::vec;

    /// A writer that takes at most `max` bytes a call, across buffers, like a write that a
    /// signal or the 2 GiB limit cuts short.
    #[cfg(feature = "std")]
    struct Trickle {
        out: Vec<u8>,
        max: usize,
        calls: usize,
    }

    #[cfg(feature = "std")]
    impl std::io::Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.write_vectored(&[std::io::IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[std::io::IoSlice<'_>]) -> std::io::Result<usize> {
            self.calls += 1;
            let mut left = self.max;
            for b in bufs {
                let n = b.len().min(left);
                self.out.extend_from_slice(&b[..n]);
                left -= n;
            }
            Ok(self.max - left)
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[cfg(feature = "std")]
    #[test]
    fn vectored_writes_resume_after_short_writes() {
        let bufs: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i; usize::from(i % 7) * 3]).collect();
        let want: Vec<u8> = bufs.concat();
        for max in [1, 2, 5, 7, 64, 10_000] {
            let mut w = Trickle {
                out: Vec::new(),
                max,
                calls: 0,
            };
            write_all_vectored(&mut w, &bufs).unwrap();
            assert_eq!(w.out, want, "max {max}");
            if max >= want.len() {
                assert_eq!(w.calls, 1, "one call when the writer takes everything");
            }
        }
    }

    #[test]
    fn json_escapes_like_serde_json() {
        for s in [
            "plain",
            "quo\"te",
            "back\\slash",
            "ctl\u{01}\u{1f}\n\t\r\u{08}\u{0c}",
            "ünï ☃",
            "\u{7f}",
        ] {
            let mut ours = String::new();
            json_string(&mut ours, s);
            assert_eq!(ours, serde_json::to_string(s).unwrap());
        }
    }

    #[test]
    fn itoa_matches_display() {
        for n in [0usize, 7, 10, 12345, usize::MAX] {
            assert_eq!(itoa(n, &mut [0u8; 20]), alloc::format!("{n}"));
        }
    }

    #[test]
    fn none_needs_no_annotation_and_order_is_kept() {
        let data = [0u8; 4];
        let view = TensorView::new(Dtype::F32, vec![1], &data).unwrap();
        let plain = serialize([("a", view.clone())], None).unwrap();
        let by_ref = serialize([("a", view.clone())], &None).unwrap();
        assert_eq!(plain, by_ref);
        let ordered = serialize([("a", view)], vec![("z", "1"), ("a", "2")]).unwrap();
        let header = core::str::from_utf8(&ordered[8..]).unwrap();
        assert!(
            header.starts_with(r#"{"__metadata__":{"z":"1","a":"2"},"a":"#),
            "{header}"
        );
    }
}
