//! A minimal, strict zip reader over an in-memory (mapped) byte slice, for `torch.save` archives.
//!
//! `torch.save` writes *stored* (uncompressed) entries, zip64 when large. This reader supports
//! exactly that: it finds the end-of-central-directory record (zip64 too), walks the central
//! directory, and resolves each entry to a byte range of the input. Every offset and size is
//! checked against the real input length before use, so a truncated archive or one declaring
//! huge sizes is an error, never an allocation. Compressed or encrypted entries are refused
//! (decompressing would let a small file claim unbounded memory: the zip-bomb case).

use std::collections::HashMap;
use std::ops::Range;

/// One stored entry: its name and where its bytes are in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    pub(crate) name: String,
    /// Where the entry's (stored, or else compressed) bytes are.
    pub(crate) data: Range<usize>,
    pub(crate) crc32: u32,
    /// Why the entry cannot be read (compressed or encrypted); `None` for a stored entry.
    pub(crate) unreadable: Option<String>,
}

impl Entry {
    /// The byte range of a stored entry, or why it cannot be read.
    pub(crate) fn stored(&self) -> Result<Range<usize>, String> {
        match &self.unreadable {
            None => Ok(self.data.clone()),
            Some(why) => Err(why.clone()),
        }
    }
}

/// The entries of an archive, by name.
#[derive(Debug)]
pub(crate) struct Archive {
    pub(crate) entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

const EOCD_SIG: u32 = 0x0605_4b50;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const LOCAL_SIG: u32 = 0x0403_4b50;

/// Whether `data` starts like a zip archive (a local file header).
pub(crate) fn looks_like_zip(data: &[u8]) -> bool {
    data.len() >= 4 && rd32(data, 0) == Some(LOCAL_SIG)
}

fn rd16(d: &[u8], at: usize) -> Option<u16> {
    let b = d.get(at..at.checked_add(2)?)?;
    Some(u16::from_le_bytes([b[0], b[1]]))
}
fn rd32(d: &[u8], at: usize) -> Option<u32> {
    let b = d.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}
fn rd64(d: &[u8], at: usize) -> Option<u64> {
    let b = d.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

fn to_usize(v: u64, what: &str, len: usize) -> Result<usize, String> {
    usize::try_from(v)
        .ok()
        .filter(|&v| v <= len)
        .ok_or_else(|| {
            format!("{what} ({v}) points past the end of the {len}-byte file (truncated archive?)")
        })
}

impl Archive {
    /// Parses the archive's directory. Errors are one line saying what is wrong.
    pub(crate) fn parse(data: &[u8]) -> Result<Archive, String> {
        let len = data.len();
        if len < 22 {
            return Err(format!("file is {len} bytes, too small for a zip archive"));
        }
        // The EOCD is the last 22 bytes plus a comment of at most 65535 bytes.
        let lowest = len.saturating_sub(22 + 0xffff);
        let mut eocd = None;
        let mut at = len - 22;
        loop {
            if rd32(data, at) == Some(EOCD_SIG) {
                let comment = usize::from(rd16(data, at + 20).unwrap_or(0));
                if at + 22 + comment == len {
                    eocd = Some(at);
                    break;
                }
            }
            if at == lowest {
                break;
            }
            at -= 1;
        }
        let Some(eocd) = eocd else {
            return Err(
                "no zip end-of-central-directory record found (truncated or not a zip archive)"
                    .to_owned(),
            );
        };
        let disk = rd16(data, eocd + 4).unwrap_or(0);
        let cd_disk = rd16(data, eocd + 6).unwrap_or(0);
        let mut count = u64::from(rd16(data, eocd + 10).unwrap_or(0));
        let mut cd_size = u64::from(rd32(data, eocd + 12).unwrap_or(0));
        let mut cd_off = u64::from(rd32(data, eocd + 16).unwrap_or(0));
        let mut cd_end_limit = eocd;
        if disk != 0 || cd_disk != 0 {
            return Err("multi-disk zip archives are not supported".to_owned());
        }
        // zip64: a locator sits right before the EOCD.
        if eocd >= 20 && rd32(data, eocd - 20) == Some(ZIP64_LOCATOR_SIG) {
            let z64 = rd64(data, eocd - 20 + 8).unwrap_or(u64::MAX);
            let z64 = to_usize(z64, "zip64 end-of-central-directory offset", len)?;
            if rd32(data, z64) != Some(ZIP64_EOCD_SIG) || z64 + 56 > eocd - 20 {
                return Err(
                    "zip64 end-of-central-directory record is missing or malformed".to_owned(),
                );
            }
            count = rd64(data, z64 + 32).unwrap_or(0);
            cd_size = rd64(data, z64 + 40).unwrap_or(0);
            cd_off = rd64(data, z64 + 48).unwrap_or(0);
            cd_end_limit = z64;
        }
        let cd_start = to_usize(cd_off, "central directory offset", len)?;
        let cd_len = to_usize(cd_size, "central directory size", len)?;
        let cd_end = cd_start
            .checked_add(cd_len)
            .filter(|&e| e <= cd_end_limit)
            .ok_or_else(|| format!("central directory ({cd_size} bytes at {cd_off}) overruns the file (truncated archive?)"))?;
        // Each central entry is at least 46 bytes: a claimed count larger than that allows is a lie.
        if count > (cd_len / 46) as u64 {
            return Err(format!("zip claims {count} entries but its {cd_len}-byte central directory holds at most {}", cd_len / 46));
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut by_name = HashMap::with_capacity(count as usize);
        let mut p = cd_start;
        for i in 0..count {
            let e = Self::central_entry(data, &mut p, cd_end, cd_start, i)?;
            if by_name.insert(e.name.clone(), entries.len()).is_some() {
                return Err(format!("zip entry '{}' appears twice", e.name));
            }
            entries.push(e);
        }
        Ok(Archive { entries, by_name })
    }

    fn central_entry(
        data: &[u8],
        p: &mut usize,
        cd_end: usize,
        data_end: usize,
        i: u64,
    ) -> Result<Entry, String> {
        let at = *p;
        if at + 46 > cd_end || rd32(data, at) != Some(CENTRAL_SIG) {
            return Err(format!(
                "central directory entry {i} at byte {at} is malformed"
            ));
        }
        let flags = rd16(data, at + 8).unwrap_or(0);
        let method = rd16(data, at + 10).unwrap_or(0);
        let crc32 = rd32(data, at + 16).unwrap_or(0);
        let mut comp = u64::from(rd32(data, at + 20).unwrap_or(0));
        let mut uncomp = u64::from(rd32(data, at + 24).unwrap_or(0));
        let name_len = usize::from(rd16(data, at + 28).unwrap_or(0));
        let extra_len = usize::from(rd16(data, at + 30).unwrap_or(0));
        let comment_len = usize::from(rd16(data, at + 32).unwrap_or(0));
        let mut local = u64::from(rd32(data, at + 42).unwrap_or(0));
        let name_at = at + 46;
        let extra_at = name_at + name_len;
        let next = extra_at + extra_len + comment_len;
        if next > cd_end {
            return Err(format!(
                "central directory entry {i} at byte {at} overruns the directory"
            ));
        }
        let name = String::from_utf8_lossy(&data[name_at..extra_at]).into_owned();
        // zip64 extended information: the fields saturated at 0xffffffff follow, in order.
        let mut x = extra_at;
        while x + 4 <= extra_at + extra_len {
            let id = rd16(data, x).unwrap_or(0);
            let sz = usize::from(rd16(data, x + 2).unwrap_or(0));
            let body = x + 4;
            if body + sz > extra_at + extra_len {
                return Err(format!("zip entry '{name}' has a malformed extra field"));
            }
            if id == 0x0001 {
                let mut f = body;
                for field in [&mut uncomp, &mut comp, &mut local] {
                    if *field == 0xffff_ffff {
                        if f + 8 > body + sz {
                            return Err(format!(
                                "zip entry '{name}' has a truncated zip64 extra field"
                            ));
                        }
                        *field = rd64(data, f).unwrap_or(0);
                        f += 8;
                    }
                }
            }
            x = body + sz;
        }
        *p = next;
        // Compressed and encrypted entries are listed (so the archive can still be recognized,
        // e.g. as TorchScript) but never inflated: reading one is an error.
        let unreadable = if flags & 1 != 0 {
            Some(format!("zip entry '{name}' is encrypted"))
        } else if method != 0 {
            Some(format!(
                "zip entry '{name}' is compressed (method {method}, {comp} bytes declaring {uncomp}); \
                 torch.save writes only stored entries and compressed ones are refused"
            ))
        } else {
            None
        };
        if unreadable.is_none() && comp != uncomp {
            return Err(format!(
                "stored zip entry '{name}' declares {uncomp} bytes but occupies {comp}"
            ));
        }
        let local = to_usize(local, &format!("local header of '{name}'"), data_end)?;
        if local + 30 > data_end || rd32(data, local) != Some(LOCAL_SIG) {
            return Err(format!(
                "local header of zip entry '{name}' at byte {local} is missing or malformed"
            ));
        }
        let l_name = usize::from(rd16(data, local + 26).unwrap_or(0));
        let l_extra = usize::from(rd16(data, local + 28).unwrap_or(0));
        let start = local + 30 + l_name + l_extra;
        let end = usize::try_from(comp)
            .ok()
            .and_then(|c| start.checked_add(c));
        match end {
            Some(end) if end <= data_end => Ok(Entry { name, data: start..end, crc32, unreadable }),
            _ => Err(format!(
                "zip entry '{name}' declares {comp} bytes at byte {start}, past the end of its data area at byte {data_end} \
                 (truncated archive or bogus size)"
            )),
        }
    }

    /// The entry called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }
}

/// CRC-32 (IEEE), as zip records it.
pub(crate) fn crc32(bytes: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, slot) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xedb8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut c = !0u32;
    for &b in bytes {
        c = table[((c ^ u32::from(b)) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// Writes a stored zip archive in memory, optionally in zip64 form (every size and offset in
/// the central directory moved to the zip64 extra field, plus the zip64 end records), as
/// `torch.save` does for archives over 4 GiB. For tests that need hand-made archives.
#[cfg(test)]
pub(crate) fn write_stored_zip(entries: &[(&str, &[u8])]) -> Vec<u8> {
    write_zip(entries, false)
}

#[cfg(test)]
pub(crate) fn write_zip(entries: &[(&str, &[u8])], zip64: bool) -> Vec<u8> {
    let mut out = Vec::new();
    let mut central = Vec::new();
    for (name, body) in entries {
        let off = out.len() as u64;
        let crc = crc32(body);
        let len = body.len() as u64;
        out.extend_from_slice(&LOCAL_SIG.to_le_bytes());
        out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        out.extend_from_slice(&crc.to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(&(name.len() as u16).to_le_bytes());
        out.extend_from_slice(&0u16.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(body);
        let (small_len, small_off, extra) = if zip64 {
            let mut x = vec![1, 0, 24, 0];
            for v in [len, len, off] {
                x.extend_from_slice(&v.to_le_bytes());
            }
            (u32::MAX, u32::MAX, x)
        } else {
            (len as u32, off as u32, Vec::new())
        };
        central.extend_from_slice(&CENTRAL_SIG.to_le_bytes());
        central.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        central.extend_from_slice(&crc.to_le_bytes());
        central.extend_from_slice(&small_len.to_le_bytes());
        central.extend_from_slice(&small_len.to_le_bytes());
        central.extend_from_slice(&(name.len() as u16).to_le_bytes());
        central.extend_from_slice(&(extra.len() as u16).to_le_bytes());
        central.extend_from_slice(&[0; 10]);
        central.extend_from_slice(&small_off.to_le_bytes());
        central.extend_from_slice(name.as_bytes());
        central.extend_from_slice(&extra);
    }
    let cd_off = out.len() as u64;
    out.extend_from_slice(&central);
    let n = entries.len() as u64;
    if zip64 {
        let z64 = out.len() as u64;
        out.extend_from_slice(&ZIP64_EOCD_SIG.to_le_bytes());
        out.extend_from_slice(&44u64.to_le_bytes());
        out.extend_from_slice(&[45, 0, 45, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
        for v in [n, n, central.len() as u64, cd_off] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&ZIP64_LOCATOR_SIG.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out.extend_from_slice(&z64.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
    }
    let (count16, size32, off32) = if zip64 {
        (u16::MAX, u32::MAX, u32::MAX)
    } else {
        (n as u16, central.len() as u32, cd_off as u32)
    };
    out.extend_from_slice(&EOCD_SIG.to_le_bytes());
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&count16.to_le_bytes());
    out.extend_from_slice(&count16.to_le_bytes());
    out.extend_from_slice(&size32.to_le_bytes());
    out.extend_from_slice(&off32.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_known_value() {
        assert_eq!(crc32(b"123456789"), 0xcbf4_3926);
    }

    #[test]
    fn round_trip_of_stored_entries() {
        let z = write_stored_zip(&[("a/data.pkl", b"hello"), ("a/data/0", b"\x01\x02\x03")]);
        assert!(looks_like_zip(&z));
        let a = Archive::parse(&z).unwrap();
        let e = a.get("a/data/0").unwrap();
        assert_eq!(&z[e.data.clone()], b"\x01\x02\x03");
        assert_eq!(e.crc32, crc32(b"\x01\x02\x03"));
        assert!(a.get("missing").is_none());
    }

    #[test]
    fn zip64_archives_resolve_the_same_entries() {
        let entries: [(&str, &[u8]); 2] = [("a/data.pkl", b"hello"), ("a/data/0", b"\x01\x02\x03")];
        let z = write_zip(&entries, true);
        let a = Archive::parse(&z).unwrap();
        for (name, body) in entries {
            assert_eq!(&z[a.get(name).unwrap().data.clone()], body);
        }
        for cut in 0..z.len() {
            assert!(Archive::parse(&z[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn every_truncation_is_an_error() {
        let z = write_stored_zip(&[("a/data.pkl", b"hello world"), ("a/data/0", &[7u8; 100])]);
        for cut in 0..z.len() {
            assert!(Archive::parse(&z[..cut]).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn compressed_entry_is_refused_with_its_name() {
        let mut z = write_stored_zip(&[("a/data/0", b"x")]);
        // Set method = 8 (deflate) and a huge declared size in the central entry.
        let cd = z
            .windows(4)
            .position(|w| w == CENTRAL_SIG.to_le_bytes())
            .unwrap();
        z[cd + 10] = 8;
        z[cd + 24..cd + 28].copy_from_slice(&u32::MAX.to_le_bytes());
        let err = Archive::parse(&z)
            .unwrap()
            .get("a/data/0")
            .unwrap()
            .stored()
            .unwrap_err();
        assert!(
            err.contains("a/data/0") && err.contains("compressed"),
            "{err}"
        );
    }

    #[test]
    fn size_past_end_is_refused() {
        let mut z = write_stored_zip(&[("a/data/0", b"xyz")]);
        let cd = z
            .windows(4)
            .position(|w| w == CENTRAL_SIG.to_le_bytes())
            .unwrap();
        z[cd + 20..cd + 24].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        z[cd + 24..cd + 28].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
        let err = Archive::parse(&z).unwrap_err();
        assert!(err.contains("past the end"), "{err}");
    }

    #[test]
    fn lying_entry_count_is_refused() {
        let mut z = write_stored_zip(&[("a", b"x")]);
        let n = z.len();
        z[n - 12..n - 10].copy_from_slice(&0xffffu16.to_le_bytes());
        let err = Archive::parse(&z).unwrap_err();
        assert!(err.contains("entries"), "{err}");
    }

    #[test]
    fn duplicate_names_are_refused() {
        let z = write_stored_zip(&[("a", b"x"), ("a", b"y")]);
        assert!(Archive::parse(&z).unwrap_err().contains("twice"));
    }
}
