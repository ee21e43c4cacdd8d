//! A direct reader for the plain header nearly every file has: tensor entries of exactly
//! `dtype`, `shape` and `data_offsets`, plain non-negative integers, strings without
//! escapes, an optional `__metadata__` object of such strings, and no problem anywhere.
//! It is several times faster than the general serde reader ([`crate::format::json`]), which
//! matters for headers of a million entries.
//!
//! It only ever gives up: on anything else (an escape, another field, a number with a sign,
//! fraction or exponent, an invalid entry, a syntax error), [`parse`] returns the entries
//! read before the one it could not read, and the general reader goes on from that entry
//! (or reads the whole header, where it cannot resume). So every error, and which one is
//! reported first, comes from one place, and the two readers agree on every header this one
//! accepts (checked by tests and by the `differential` fuzz target through the public API).

use alloc::boxed::Box;

use crate::format::dtype::Dtype;
use crate::format::json::{
    repeated_key, validate_tensor_entry, Dims, Entry, Header, Offsets, RawTensor,
};
use crate::format::limits::METADATA_KEY;
use crate::format::table::{DimTable, StrTable};

/// Where the direct reader gave up: the entries it read before (all valid) and the byte
/// offset of the entry it could not read (right after the `{` or `,` before it), from where
/// the general reader can go on.
pub(crate) struct Partial {
    pub header: Header,
    pub resume_at: usize,
}

/// Reads `text` (a whole header) if it is plain. `Err(Some(..))`: what was read before the
/// first entry it could not read; `Err(None)`: nothing worth keeping.
pub(crate) fn parse(text: &str) -> Result<Header, Option<Box<Partial>>> {
    let mut c = Cursor { text, pos: 0 };
    let mut header = Header::empty();
    c.eat(b'{').ok_or(None)?;
    if c.eat_if(b'}') {
        c.skip_whitespace();
        return (c.pos == text.len()).then_some(header).ok_or(None);
    }
    let first_entry = c.pos;
    loop {
        let entry_start = c.pos;
        let give_up = |header: Header| {
            Some(Box::new(Partial {
                header,
                resume_at: entry_start,
            }))
        };
        // An entry is kept only once what follows it is read too: the general reader must
        // resume at an entry's start, never after one (its errors would differ).
        let Some(entry) = c.entry(&mut header) else {
            // A `}` right after a comma: the general reader, resumed after the blanked comma,
            // would see an empty object where the file has a trailing comma.
            if entry_start != first_entry && c.peek() == Some(b'}') {
                return Err(None);
            }
            return Err(give_up(header));
        };
        let last = if c.eat_if(b',') {
            false
        } else if c.eat_if(b'}') {
            c.skip_whitespace();
            if c.pos != text.len() {
                return Err(give_up(header));
            }
            true
        } else {
            return Err(give_up(header));
        };
        match entry {
            Read::Metadata(pairs) => header.metadata = Some(pairs),
            Read::Tensor(name, entry) => {
                header.infos.push(entry);
                header.names.push(name);
            }
        }
        if last {
            return Ok(header);
        }
    }
}

/// One entry of the header's object, read but not yet kept.
enum Read<'a> {
    Metadata(StrTable),
    Tensor(&'a str, Entry),
}

/// The bytes that end the plain part of a string: the closing quote, a backslash (an
/// escape: given up on) and control characters (invalid in JSON strings).
const STRING_STOP: [bool; 256] = {
    let mut stop = [false; 256];
    let mut b = 0;
    while b < 0x20 {
        stop[b] = true;
        b += 1;
    }
    stop[b'"' as usize] = true;
    stop[b'\\' as usize] = true;
    stop
};

/// The position of the first byte at or after `pos` that is not JSON whitespace. A header
/// may carry up to 100 MB of padding or leading whitespace, so within a run of whitespace,
/// spaces are skipped 32 bytes at a step (a loop the compiler vectorizes); outside one, it
/// costs one byte's look.
#[inline]
pub(crate) fn skip_whitespace(bytes: &[u8], mut pos: usize) -> usize {
    const STEP: usize = 32;
    while matches!(bytes.get(pos), Some(b' ' | b'\t' | b'\n' | b'\r')) {
        pos += 1;
        // No early exit inside a block: the fold compiles to a few vector compares.
        while bytes
            .get(pos..pos + STEP)
            .is_some_and(|block| block.iter().fold(0u8, |acc, &b| acc | (b ^ b' ')) == 0)
        {
            pos += STEP;
        }
    }
    pos
}

/// The end of `bytes` without its trailing JSON whitespace (a header's padding), found as
/// [`skip_whitespace`] finds the start.
pub(crate) fn trim_whitespace_end(bytes: &[u8]) -> usize {
    const STEP: usize = 32;
    let mut end = bytes.len();
    loop {
        if let Some(block) = end.checked_sub(STEP).map(|start| &bytes[start..end]) {
            if block.iter().fold(0u8, |acc, &b| acc | (b ^ b' ')) == 0 {
                end -= STEP;
                continue;
            }
        }
        match end.checked_sub(1).map(|last| bytes[last]) {
            Some(b' ' | b'\t' | b'\n' | b'\r') => end -= 1,
            _ => return end,
        }
    }
}

struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn skip_whitespace(&mut self) {
        self.pos = skip_whitespace(self.text.as_bytes(), self.pos);
    }

    /// The next byte after whitespace, not consumed.
    fn peek(&mut self) -> Option<u8> {
        self.skip_whitespace();
        self.text.as_bytes().get(self.pos).copied()
    }

    fn eat_if(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        if found {
            self.pos += 1;
        }
        found
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        self.eat_if(byte).then_some(())
    }

    /// One entry of the header's object (`"key": value`), valid and plain.
    fn entry(&mut self, header: &mut Header) -> Option<Read<'a>> {
        let key = self.string()?;
        self.eat(b':')?;
        if key == METADATA_KEY {
            if header.metadata.is_some() {
                return None;
            }
            return Some(Read::Metadata(self.metadata()?));
        }
        let raw = self.tensor(&mut header.dims)?;
        let entry = validate_tensor_entry(key, Ok(raw), &header.dims).ok()?;
        Some(Read::Tensor(key, entry))
    }

    /// A string with no escape and no control character.
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.pos;
        let rest = &self.text.as_bytes()[start..];
        let len = rest.iter().position(|&b| STRING_STOP[usize::from(b)])?;
        if rest[len] != b'"' {
            return None;
        }
        self.pos = start + len + 1;
        // Both ends are next to an ASCII quote: character boundaries.
        self.text.get(start..start + len)
    }

    /// A plain non-negative integer (no sign, fraction, exponent or leading zero) that fits.
    fn integer(&mut self) -> Option<usize> {
        self.skip_whitespace();
        let bytes = self.text.as_bytes();
        let start = self.pos;
        let mut value: usize = 0;
        while let Some(digit) = bytes.get(self.pos).filter(|b| b.is_ascii_digit()) {
            value = value
                .checked_mul(10)?
                .checked_add(usize::from(digit - b'0'))?;
            self.pos += 1;
        }
        let digits = self.pos - start;
        let leading_zero = digits > 1 && bytes[start] == b'0';
        let more = matches!(bytes.get(self.pos), Some(b'.' | b'e' | b'E'));
        (digits > 0 && !leading_zero && !more).then_some(value)
    }

    /// An array of plain integers, each handed to `keep`; returns how many there were.
    fn integers(&mut self, mut keep: impl FnMut(usize)) -> Option<usize> {
        self.eat(b'[')?;
        let mut count = 0;
        if self.eat_if(b']') {
            return Some(0);
        }
        loop {
            keep(self.integer()?);
            count += 1;
            if !self.eat_if(b',') {
                self.eat(b']')?;
                return Some(count);
            }
        }
    }

    /// A shape, its dimensions stored in `table` as they are read.
    fn shape(&mut self, table: &mut DimTable) -> Option<Dims> {
        let mut dims = Dims::start(table);
        self.integers(|n| dims.push(table, n))?;
        Some(dims)
    }

    /// A tensor entry with exactly the three fields, each once.
    fn tensor(&mut self, dims: &mut DimTable) -> Option<RawTensor> {
        let mut raw = RawTensor::default();
        self.eat(b'{')?;
        loop {
            let field = self.string()?;
            self.eat(b':')?;
            match field {
                "dtype" if raw.dtype.is_none() => {
                    let dtype = self.string()?.parse::<Dtype>().ok()?;
                    raw.dtype = Some(Ok(Ok(dtype)));
                }
                "shape" if raw.shape.is_none() => raw.shape = Some(Ok(self.shape(dims)?)),
                "data_offsets" if raw.data_offsets.is_none() => {
                    let mut first = [0usize; 2];
                    let mut seen = 0;
                    let count = self.integers(|n| {
                        if let Some(slot) = first.get_mut(seen) {
                            *slot = n;
                        }
                        seen += 1;
                    })?;
                    raw.data_offsets = Some(Ok(Offsets { first, count }));
                }
                _ => return None,
            }
            if !self.eat_if(b',') {
                self.eat(b'}')?;
                return Some(raw);
            }
        }
    }

    /// `__metadata__`: an object of strings, no key twice.
    fn metadata(&mut self) -> Option<StrTable> {
        let mut pairs = StrTable::default();
        self.eat(b'{')?;
        if !self.eat_if(b'}') {
            loop {
                let key = self.string()?;
                self.eat(b':')?;
                let value = self.string()?;
                pairs.push(key);
                pairs.push(value);
                if !self.eat_if(b',') {
                    self.eat(b'}')?;
                    break;
                }
            }
        }
        match repeated_key(pairs.len() / 2, |i| pairs.get(2 * i)) {
            Some(_) => None,
            None => Some(pairs),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;
    use alloc::string::String;
    use alloc::vec::Vec;
    use proptest::prelude::*;

    /// What the general reader makes of `text`, when it accepts it with no problem.
    fn general(text: &str) -> Option<Header> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_str(text);
        let header = crate::format::json::HeaderSeed(Header::empty())
            .deserialize(&mut de)
            .ok()?;
        de.end().ok()?;
        header.first_error.is_none().then_some(header)
    }

    fn same(a: &Header, b: &Header) -> bool {
        let shapes = |h: &Header| -> Vec<Vec<usize>> {
            (0..h.infos.len())
                .map(|i| h.dims.shape(h.infos[i].dims_at, h.infos[i].ndim))
                .collect()
        };
        let entries = |h: &Header| -> Vec<(Dtype, (usize, usize))> {
            (0..h.infos.len())
                .map(|i| (h.infos[i].dtype, h.infos[i].data_offsets))
                .collect()
        };
        a.names == b.names
            && entries(a) == entries(b)
            && shapes(a) == shapes(b)
            && a.metadata == b.metadata
    }

    /// Whenever the plain reader accepts a header, the general reader reads the same.
    fn agrees(text: &str) -> bool {
        match parse(text) {
            Err(_) => true,
            Ok(plain) => general(text).is_some_and(|g| same(&plain, &g)),
        }
    }

    const PLAIN: &str = concat!(
        " {\"__metadata__\":{\"format\":\"pt\",\"k\":\"\"},",
        "\"a.weight\" : {\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},\n",
        "\"b\":{\"shape\":[],\"data_offsets\":[24,26],\"dtype\":\"BF16\"},",
        "\"é\":{\"data_offsets\":[26,26],\"dtype\":\"U8\",\"shape\":[0,1,2,3,4,5,6,7,8,9]}}   "
    );

    #[test]
    fn takes_plain_headers_and_reads_them_as_the_general_reader_does() {
        for text in [
            PLAIN,
            "{}",
            " { } ",
            "{\"__metadata__\":{}}",
            "{\"x\":{\"dtype\":\"F64\",\"shape\":[1],\"data_offsets\":[0,8]}}",
        ] {
            let plain = parse(text).unwrap_or_else(|_| panic!("not taken: {text}"));
            assert!(same(&plain, &general(text).unwrap()), "{text}");
        }
    }

    #[test]
    fn gives_up_on_everything_else() {
        for text in [
            // Escapes, other fields, numbers that are not plain, syntax and entry problems.
            "{\"a\\u0041\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4],\"x\":1}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,8]}}",
            "{\"a\":{\"dtype\":\"F33\",\"shape\":[],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]},}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,],\"data_offsets\":[0,4]}}",
            "{\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}} x",
            "{\"__metadata__\":{\"k\":\"v\",\"k\":\"w\"}}",
            "{\"__metadata__\":{\"k\":1}}",
            "{\"__metadata__\":{},\"__metadata__\":{}}",
            "{\"k\":\"v\u{1}\"}",
            "[]",
        ] {
            assert!(parse(text).is_err(), "taken: {text}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        /// Random edits of a plain header, with bytes JSON gives meaning to: the plain
        /// reader either gives up or reads what the general reader reads.
        #[test]
        fn edits_never_make_the_readers_disagree(
            edits in proptest::collection::vec(
                (any::<prop::sample::Index>(), 0..3u8, prop::sample::select(
                    &[" ", "\"", "\\", ":", ",", "{", "}", "[", "]", "0", "1", "9", "-",
                      ".", "e", "a", "é", "\u{1}", "dtype", "shape", "data_offsets",
                      "__metadata__", "F32", "U8"][..])),
                1..4,
            )
        ) {
            let mut text = String::from(PLAIN);
            for (at, kind, piece) in edits {
                let boundaries: Vec<usize> =
                    (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
                let at = boundaries[at.index(boundaries.len())];
                match kind {
                    0 => text.insert_str(at, piece),
                    1 => {
                        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                        text.replace_range(at..end, "");
                    }
                    _ => {
                        let end = text[at..].chars().next().map_or(at, |c| at + c.len_utf8());
                        text.replace_range(at..end, piece);
                    }
                }
            }
            prop_assert!(agrees(&text), "disagree on {}", format!("{text:?}"));
        }
    }
}
