//! Per-tensor checksums recorded in a file's own `__metadata__`.
//!
//! The scheme: for each tensor `NAME`, the metadata entry
//! `"__checksum__:NAME": "ALGORITHM:HEX"` holds the digest of the tensor's bytes as they
//! are stored in the file (little-endian, packed), e.g.
//! `"__checksum__:lm_head.weight": "xxh3-64:3c9d4b0f1e2a7788"`. The entries are ordinary
//! string metadata, so the file stays valid for every reader, the reference included; the
//! `__checksum__:` prefix follows the format's own `__metadata__` spelling, and a writer
//! asked for checksums refuses caller metadata that already uses it.
//!
//! Two algorithms: `sha256` (cryptographic: detects deliberate tampering as well as damage;
//! about 1-2 GB/s a core with the CPU's SHA instructions) and `xxh3-64` (not cryptographic:
//! catches truncation, bit flips and misplaced bytes at memory speed, 10+ GB/s a core;
//! the one for big checkpoints whose source you trust).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;
use core::fmt;
use core::str::FromStr;

use sha2::Digest;

/// The metadata key prefix of a recorded digest; the tensor's name follows it.
pub const CHECKSUM_KEY_PREFIX: &str = "__checksum__:";

/// A digest algorithm a checksum can be recorded with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    /// SHA-256, written `sha256`: 64 hex digits.
    Sha256,
    /// XXH3, 64-bit, seed 0, written `xxh3-64`: 16 hex digits.
    Xxh3_64,
}

impl Algorithm {
    /// Every algorithm, in the order their names are listed in messages.
    pub const ALL: [Algorithm; 2] = [Algorithm::Sha256, Algorithm::Xxh3_64];

    /// The name recorded in a digest (`sha256`, `xxh3-64`).
    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Xxh3_64 => "xxh3-64",
        }
    }

    /// The number of hex digits of a digest.
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 => 64,
            Algorithm::Xxh3_64 => 16,
        }
    }

    /// The length of a recorded value (`name:hex`): the same for every digest, so a header
    /// can be laid out before the bytes are hashed.
    pub fn value_len(self) -> usize {
        self.name().len() + 1 + self.hex_len()
    }

    /// A hasher fed in pieces, for bytes that arrive in parts.
    pub fn hasher(self) -> Hasher {
        Hasher(match self {
            Algorithm::Sha256 => State::Sha256(sha2::Sha256::new()),
            Algorithm::Xxh3_64 => State::Xxh3(alloc::boxed::Box::default()),
        })
    }

    /// The recorded value (`name:hex`) for `bytes`.
    pub fn digest(self, bytes: &[u8]) -> String {
        let mut hasher = self.hasher();
        hasher.update(bytes);
        hasher.finish()
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An algorithm name that is not one of [`Algorithm::ALL`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownAlgorithm(pub String);

impl fmt::Display for UnknownAlgorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown checksum algorithm {:?} (known: sha256, xxh3-64)",
            crate::format::error::excerpt(&self.0)
        )
    }
}

impl core::error::Error for UnknownAlgorithm {}

impl FromStr for Algorithm {
    type Err = UnknownAlgorithm;

    /// `sha256` or `xxh3-64` (also `xxh3`, `xxh3_64`), any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "sha256" | "sha-256" => Ok(Algorithm::Sha256),
            "xxh3-64" | "xxh3_64" | "xxh3" => Ok(Algorithm::Xxh3_64),
            _ => Err(UnknownAlgorithm(s.into())),
        }
    }
}

enum State {
    Sha256(sha2::Sha256),
    // Boxed: the XXH3 state is over 500 bytes.
    Xxh3(alloc::boxed::Box<xxhash_rust::xxh3::Xxh3>),
}

/// Digests bytes given in any number of pieces; [`Hasher::finish`] gives the recorded value.
pub struct Hasher(State);

impl Hasher {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        match &mut self.0 {
            State::Sha256(h) => h.update(bytes),
            State::Xxh3(h) => h.update(bytes),
        }
    }

    /// The value to record: `name:hex`.
    pub fn finish(self) -> String {
        match self.0 {
            State::Sha256(h) => format!("sha256:{}", hex(&h.finalize())),
            State::Xxh3(h) => format!("xxh3-64:{}", hex(&h.digest().to_be_bytes())),
        }
    }
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self.0 {
            State::Sha256(_) => "sha256",
            State::Xxh3(_) => "xxh3-64",
        };
        f.debug_tuple("Hasher").field(&name).finish()
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

/// The metadata key that records tensor `name`'s digest.
pub fn key(name: &str) -> String {
    format!("{CHECKSUM_KEY_PREFIX}{name}")
}

/// The tensor a metadata key records a digest for, if it is a checksum key.
pub fn tensor_of_key(key: &str) -> Option<&str> {
    key.strip_prefix(CHECKSUM_KEY_PREFIX)
}

/// A recorded value split into its algorithm and lowercase hex digest, or why it cannot be
/// checked.
pub fn parse_value(value: &str) -> Result<(Algorithm, &str), String> {
    let Some((name, digest)) = value.split_once(':') else {
        return Err(format!(
            "the recorded checksum {:?} is not ALGORITHM:HEX",
            crate::format::error::excerpt(value)
        ));
    };
    let algorithm: Algorithm = name.parse().map_err(|e: UnknownAlgorithm| e.to_string())?;
    let well_formed = digest.len() == algorithm.hex_len()
        && digest
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !well_formed {
        return Err(format!(
            "the recorded {algorithm} checksum {:?} is not {} lowercase hex digits",
            crate::format::error::excerpt(digest),
            algorithm.hex_len()
        ));
    }
    Ok((algorithm, digest))
}

/// The recorded checksums among metadata pairs: `(tensor name, value)`, in the pairs' order.
pub fn recorded<'a, K, V, I>(pairs: I) -> Vec<(&'a str, &'a str)>
where
    K: AsRef<str> + 'a + ?Sized,
    V: AsRef<str> + 'a + ?Sized,
    I: IntoIterator<Item = (&'a K, &'a V)>,
{
    pairs
        .into_iter()
        .filter_map(|(k, v)| Some((tensor_of_key(k.as_ref())?, v.as_ref())))
        .collect()
}

/// Whether `bytes` match a recorded value: `Ok(())`, or a message saying what differs (or
/// why the value cannot be checked).
pub fn check(value: &str, bytes: &[u8]) -> Result<(), String> {
    let (algorithm, expected) = parse_value(value)?;
    compare(algorithm, expected, &algorithm.digest(bytes))
}

/// Holds `actual` (a value from [`Hasher::finish`]) against the `expected` hex digits of
/// `algorithm`: `Ok(())`, or a message with both.
pub fn compare(algorithm: Algorithm, expected: &str, actual: &str) -> Result<(), String> {
    let actual = &actual[algorithm.name().len() + 1..];
    if actual == expected {
        Ok(())
    } else {
        Err(format!(
            "{algorithm} checksum mismatch: recorded {expected}, the bytes give {actual}"
        ))
    }
}

/// Caller metadata plus one placeholder entry per tensor (`names`, in file order) for the
/// digests of `algorithm`: each placeholder is as long as a digest, so a header laid out with
/// them keeps its length once [`fill`] puts the real digests in. Caller keys that use
/// [`CHECKSUM_KEY_PREFIX`] are refused: the entries would be ambiguous.
pub fn with_placeholders<'a>(
    pairs: Option<Vec<(String, String)>>,
    names: impl IntoIterator<Item = &'a str>,
    algorithm: Algorithm,
) -> Result<Vec<(String, String)>, crate::format::error::Error> {
    let mut pairs = pairs.unwrap_or_default();
    if let Some((k, _)) = pairs
        .iter()
        .find(|(k, _)| k.starts_with(CHECKSUM_KEY_PREFIX))
    {
        return Err(crate::format::error::Error::InvalidWrite(format!(
            "metadata key {:?} starts with {CHECKSUM_KEY_PREFIX:?}, which is kept for the \
             checksums the writer records (leave checksum off, or drop the key)",
            crate::format::error::excerpt(k)
        )));
    }
    let placeholder = format!("{algorithm}:{}", "0".repeat(algorithm.hex_len()));
    pairs.extend(names.into_iter().map(|n| (key(n), placeholder.clone())));
    Ok(pairs)
}

/// Puts `digests` (values from [`Hasher::finish`], in file order) into the placeholders
/// [`with_placeholders`] appended to `pairs`.
pub fn fill(pairs: &mut [(String, String)], digests: Vec<String>) {
    let start = pairs.len() - digests.len();
    for ((_, value), digest) in pairs[start..].iter_mut().zip(digests) {
        debug_assert_eq!(value.len(), digest.len());
        *value = digest;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digests() {
        // FIPS 180-2 test vector, and XXH3-64 of the empty input with seed 0.
        assert_eq!(
            Algorithm::Sha256.digest(b"abc"),
            "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(Algorithm::Xxh3_64.digest(b""), "xxh3-64:2d06800538d394c2");
    }

    #[test]
    fn pieces_give_the_digest_of_the_whole() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 7 % 251) as u8).collect();
        for algorithm in Algorithm::ALL {
            let mut hasher = algorithm.hasher();
            for piece in data.chunks(333) {
                hasher.update(piece);
            }
            let value = hasher.finish();
            assert_eq!(value, algorithm.digest(&data));
            assert_eq!(value.len(), algorithm.value_len());
            assert_eq!(check(&value, &data), Ok(()));
            let mut flipped = data.clone();
            flipped[4321] ^= 1;
            assert!(check(&value, &flipped).unwrap_err().contains("mismatch"));
        }
    }

    #[test]
    fn names_and_values() {
        assert_eq!("SHA256".parse::<Algorithm>(), Ok(Algorithm::Sha256));
        assert_eq!("xxh3".parse::<Algorithm>(), Ok(Algorithm::Xxh3_64));
        assert!("md5"
            .parse::<Algorithm>()
            .unwrap_err()
            .to_string()
            .contains("md5"));
        assert_eq!(key("a.b"), "__checksum__:a.b");
        assert_eq!(tensor_of_key("__checksum__:a.b"), Some("a.b"));
        assert_eq!(tensor_of_key("format"), None);
        assert!(parse_value("sha256").is_err());
        assert!(parse_value("crc32:00000000").unwrap_err().contains("crc32"));
        assert!(parse_value("xxh3-64:ABCDEF0123456789").is_err());
        assert!(parse_value("xxh3-64:abcdef01234567").is_err());
        let pairs = [
            ("format", "pt"),
            ("__checksum__:w", "xxh3-64:0000000000000000"),
        ];
        assert_eq!(
            recorded(pairs.iter().map(|(k, v)| (*k, *v))),
            [("w", "xxh3-64:0000000000000000")]
        );
    }
}
