//! Judging an HTTP answer to a Range request, and reading its body within bounds. Pure
//! functions of the status, two header values and a byte stream, so that nothing a server
//! says can make the reader allocate or read more than it asked for; the fuzz target
//! `http_response` compiles this file on its own and runs it on arbitrary answers, so it
//! depends on `std` only.

use std::io::Read;

/// `Content-Range: bytes START-END/TOTAL`, with `START <= END < TOTAL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ContentRange {
    pub start: u64,
    pub end: u64,
    pub total: u64,
}

impl ContentRange {
    /// Parses the header value; `None` unless all three numbers are given and consistent.
    pub fn parse(value: &str) -> Option<ContentRange> {
        let rest = value.trim().strip_prefix("bytes ")?;
        let (range, total) = rest.split_once('/')?;
        let (start, end) = range.split_once('-')?;
        let number = |s: &str| -> Option<u64> {
            let s = s.trim();
            // Digits only: `u64::from_str` would also take a leading `+`.
            (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
                .then(|| s.parse().ok())
                .flatten()
        };
        let range = ContentRange {
            start: number(start)?,
            end: number(end)?,
            total: number(total)?,
        };
        (range.start <= range.end && range.end < range.total).then_some(range)
    }
}

/// What was asked: `len` bytes at `offset`, of a file of `size` bytes when known (the first
/// request learns the size from the answer).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub offset: u64,
    pub len: u64,
    pub size: Option<u64>,
}

/// How to read the body of an acceptable answer: skip `skip` bytes, keep `len`; the file
/// is `size` bytes long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub skip: u64,
    pub len: u64,
    pub size: u64,
}

/// Decides whether an answer (`status`, `Content-Range`, `Content-Length`) delivers what
/// `ask` wanted, and how to read it. The first request (`ask.size == None`) may get fewer
/// bytes than asked when the file is shorter; a later one must get exactly what it asked.
pub fn accept(
    ask: Ask,
    status: u16,
    content_range: Option<&str>,
    content_length: Option<&str>,
) -> Result<Accepted, String> {
    let last = ask.offset.saturating_add(ask.len.max(1) - 1);
    match status {
        206 => {
            let value = content_range.ok_or("a 206 response without a Content-Range header")?;
            let range = ContentRange::parse(value).ok_or_else(|| {
                format!("cannot understand Content-Range `{value}` (the file size must be given)")
            })?;
            if let Some(size) = ask.size {
                if range.total != size {
                    return Err(format!(
                        "the file changed size on the server: {size} bytes, now {}",
                        range.total
                    ));
                }
            }
            let wanted_end = match ask.size {
                None => last.min(range.total - 1),
                Some(_) => last,
            };
            if range.start != ask.offset || range.end != wanted_end {
                return Err(format!(
                    "asked for bytes {}-{last}, the server sent {}-{}",
                    ask.offset, range.start, range.end
                ));
            }
            if let Some(length) = content_length.and_then(parse_length) {
                if length != range.end - range.start + 1 {
                    return Err(format!(
                        "Content-Length {length} disagrees with Content-Range `{value}`"
                    ));
                }
            }
            Ok(Accepted {
                skip: 0,
                len: range.end - range.start + 1,
                size: range.total,
            })
        }
        200 => {
            let length = content_length.and_then(parse_length).ok_or(
                "the server ignored the Range request and did not say how large the file is",
            )?;
            if let Some(size) = ask.size {
                if length != size {
                    return Err(format!(
                        "the file changed size on the server: {size} bytes, now {length}"
                    ));
                }
            }
            let len = match ask.size {
                None => ask.len.min(length.saturating_sub(ask.offset)),
                Some(_) => ask.len,
            };
            if ask.offset.saturating_add(len) > length {
                return Err(format!(
                    "asked for bytes {}-{last} of a {length}-byte file",
                    ask.offset
                ));
            }
            Ok(Accepted {
                skip: ask.offset,
                len,
                size: length,
            })
        }
        status => Err(format!(
            "unexpected HTTP status {status} for a range request"
        )),
    }
}

/// A `Content-Length` value: digits only.
fn parse_length(value: &str) -> Option<u64> {
    let v = value.trim();
    (!v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .then(|| v.parse().ok())
        .flatten()
}

/// Reads `accepted.len` bytes after skipping `accepted.skip`, and nothing more: an endless or
/// oversized body is cut off, a short one is an error. Memory grows with what arrives,
/// never with what a header claims.
pub fn read_accepted(mut body: impl Read, accepted: Accepted) -> Result<Vec<u8>, String> {
    let expected = accepted.skip.saturating_add(accepted.len);
    let short = |got: u64| format!("the response ended after {got} bytes, {expected} expected");
    if accepted.skip > 0 {
        let skipped = std::io::copy(&mut (&mut body).take(accepted.skip), &mut std::io::sink())
            .map_err(|e| format!("cannot read the response: {e}"))?;
        if skipped < accepted.skip {
            return Err(short(skipped));
        }
    }
    let mut out = Vec::new();
    body.take(accepted.len)
        .read_to_end(&mut out)
        .map_err(|e| format!("cannot read the response: {e}"))?;
    if (out.len() as u64) < accepted.len {
        return Err(short(accepted.skip + out.len() as u64));
    }
    Ok(out)
}

/// [`read_accepted`] straight into `dst` (whose length must be `accepted.len`): the bytes of a
/// large read land in their final place without a growing buffer or a second copy.
pub fn read_accepted_into(
    mut body: impl Read,
    accepted: Accepted,
    dst: &mut [u8],
) -> Result<(), String> {
    if dst.len() as u64 != accepted.len {
        return Err(format!(
            "a {}-byte destination for a {}-byte answer",
            dst.len(),
            accepted.len
        ));
    }
    let expected = accepted.skip.saturating_add(accepted.len);
    let short = |got: u64| format!("the response ended after {got} bytes, {expected} expected");
    if accepted.skip > 0 {
        let skipped = std::io::copy(&mut (&mut body).take(accepted.skip), &mut std::io::sink())
            .map_err(|e| format!("cannot read the response: {e}"))?;
        if skipped < accepted.skip {
            return Err(short(skipped));
        }
    }
    let mut done = 0;
    while done < dst.len() {
        match body.read(&mut dst[done..]) {
            Ok(0) => return Err(short(accepted.skip + done as u64)),
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("cannot read the response: {e}")),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: Ask = Ask {
        offset: 0,
        len: 8,
        size: None,
    };

    #[test]
    fn parses_content_range() {
        let r = ContentRange::parse("bytes 0-7/100").unwrap();
        assert_eq!((r.start, r.end, r.total), (0, 7, 100));
        for bad in [
            "bytes 0-7/*",
            "bytes 7-0/100",
            "bytes 0-100/100",
            "bytes +0-7/100",
            "bytes 0-7",
            "items 0-7/100",
            "bytes -7/100",
            "bytes 0-99999999999999999999999/1",
        ] {
            assert!(ContentRange::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn first_request_learns_the_size() {
        let p = accept(FIRST, 206, Some("bytes 0-7/1000"), Some("8")).unwrap();
        assert_eq!((p.skip, p.len, p.size), (0, 8, 1000));
        let p = accept(FIRST, 206, Some("bytes 0-2/3"), None).unwrap();
        assert_eq!((p.len, p.size), (3, 3));
        let p = accept(FIRST, 200, None, Some("5")).unwrap();
        assert_eq!((p.skip, p.len, p.size), (0, 5, 5));
    }

    #[test]
    fn refuses_answers_that_disagree_with_the_ask() {
        let later = Ask {
            offset: 8,
            len: 100,
            size: Some(1000),
        };
        for (status, range, length, needle) in [
            (206, Some("bytes 8-50/1000"), None, "asked for bytes 8-107"),
            (206, Some("bytes 0-99/1000"), None, "asked for bytes 8-107"),
            (206, Some("bytes 8-107/2000"), None, "changed size"),
            (206, Some("bytes 8-107/1000"), Some("5"), "disagrees"),
            (206, None, None, "without a Content-Range"),
            (200, None, None, "did not say how large"),
            (200, None, Some("999"), "changed size"),
            (500, None, None, "status 500"),
            (304, None, None, "status 304"),
        ] {
            let e = accept(later, status, range, length).unwrap_err();
            assert!(e.contains(needle), "{status} {range:?}: {e}");
        }
    }

    #[test]
    fn reads_exactly_what_was_accepted() {
        let p = Accepted {
            skip: 2,
            len: 3,
            size: 10,
        };
        assert_eq!(read_accepted(&b"abcdefgh"[..], p).unwrap(), b"cde");
        assert!(read_accepted(&b"abcd"[..], p)
            .unwrap_err()
            .contains("after 4 bytes"));
        assert!(read_accepted(&b"a"[..], p)
            .unwrap_err()
            .contains("after 1 bytes"));
        // An endless body is cut off after what was accepted.
        assert_eq!(read_accepted(std::io::repeat(7), p).unwrap(), [7, 7, 7]);
        let mut dst = [0u8; 3];
        read_accepted_into(&b"abcdefgh"[..], p, &mut dst).unwrap();
        assert_eq!(&dst, b"cde");
        let err = read_accepted_into(&b"abcd"[..], p, &mut dst).unwrap_err();
        assert!(err.contains("after 4 bytes"), "{err}");
        read_accepted_into(std::io::repeat(7), p, &mut dst).unwrap();
        assert_eq!(dst, [7, 7, 7]);
        assert!(read_accepted_into(&b"abcdefgh"[..], p, &mut [0u8; 2]).is_err());
    }
}
