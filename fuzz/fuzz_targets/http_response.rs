//! Arbitrary answers to a Range request, run through the core HTTP client's response
//! judge and body reader (`crates/safetensors/src/source/http/range.rs`, compiled in here): an
//! accepted answer yields exactly the bytes asked for (or, on the first request, the file's
//! first bytes), whatever the headers claim and however long the body is.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[path = "../../crates/safetensors/src/source/http/range.rs"]
#[allow(dead_code)]
mod http_range;

use http_range::{accept, read_accepted, read_accepted_into, Ask};

#[derive(Arbitrary, Debug)]
enum Header {
    Absent,
    Text(String),
    /// `bytes START-END/TOTAL` from numbers, so well-formed ranges are common.
    Range(u64, u64, u64),
    Number(u64),
}

impl Header {
    fn render(&self) -> Option<String> {
        match self {
            Header::Absent => None,
            Header::Text(s) => Some(s.clone()),
            Header::Range(a, b, t) => Some(format!("bytes {a}-{b}/{t}")),
            Header::Number(n) => Some(n.to_string()),
        }
    }
}

#[derive(Arbitrary, Debug)]
struct Answer {
    offset: u16,
    len: u16,
    size: Option<u32>,
    status: u8,
    content_range: Header,
    content_length: Header,
    body: Vec<u8>,
    endless: bool,
}

fuzz_target!(|a: Answer| {
    let ask = Ask {
        offset: a.offset as u64,
        len: a.len as u64 + 1,
        size: a.size.map(|s| s as u64),
    };
    let status = match a.status % 4 {
        0 | 1 => 206,
        2 => 200,
        _ => 100 + a.status as u16,
    };
    let range = a.content_range.render();
    let length = a.content_length.render();
    let Ok(p) = accept(ask, status, range.as_deref(), length.as_deref()) else {
        return;
    };
    assert!(p.len <= ask.len, "never more than asked: {p:?}");
    if ask.size.is_some() {
        assert_eq!(p.len, ask.len, "a later request gets exactly what it asked");
        assert_eq!(Some(p.size), ask.size, "the size cannot change");
    }
    if status == 206 {
        assert_eq!(p.skip, 0);
    } else {
        assert_eq!(p.skip, ask.offset);
    }
    assert!(
        p.skip + p.len <= p.size,
        "the accepted answer stays inside the file: {p:?}"
    );
    let body: Box<dyn std::io::Read> = if a.endless {
        Box::new(std::io::Read::chain(&a.body[..], std::io::repeat(0xAB)))
    } else {
        Box::new(&a.body[..])
    };
    let enough = a.endless || a.body.len() as u64 >= p.skip + p.len;
    // The in-place reader agrees with the buffered one on every answer.
    let into_body: Box<dyn std::io::Read> = if a.endless {
        Box::new(std::io::Read::chain(&a.body[..], std::io::repeat(0xAB)))
    } else {
        Box::new(&a.body[..])
    };
    let mut dst = vec![0u8; p.len as usize];
    let into = read_accepted_into(into_body, p, &mut dst);
    match read_accepted(body, p) {
        Ok(bytes) => {
            assert_eq!(bytes.len() as u64, p.len);
            assert!(into.is_ok() && dst == bytes, "the in-place read differs");
            let (skip, len) = (p.skip as usize, p.len as usize);
            for (i, &b) in bytes.iter().enumerate() {
                let expected = a.body.get(skip + i).copied().unwrap_or(0xAB);
                assert_eq!(b, expected, "byte {i} of {len}");
            }
        }
        Err(e) => {
            assert!(!enough, "enough bytes arrived, yet: {e}");
            assert!(into.is_err(), "the in-place read succeeded where the buffered one failed");
        }
    }
});
