//! Human-readable sizes: parsing `--max-shard-size` values such as `5GB`, `500MiB` or
//! `1048576`, and printing byte and parameter counts for people.

/// Parses a size in bytes (`5GB`, `500MiB`, `1048576`): the core's rule, shared with the
/// Python package's `save_sharded`.
pub use safetensors::checkpoint::shard_index::parse_size;

/// Formats a byte count with binary units (`1.50 GiB`), exact below one KiB.
pub fn format_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// `count` (grouped as by [`format_count`]) and `noun`, plural unless the count is one:
/// `1 tensor`, `0 tensors`, `1,024 tensors`. For nouns whose plural adds an `s`.
pub fn counted(count: u64, noun: &str) -> String {
    let s = if count == 1 { "" } else { "s" };
    format!("{} {noun}{s}", format_count(count))
}

/// Formats an integer with `,` between groups of three digits (`124,439,808`).
pub fn format_count(count: u64) -> String {
    let digits = count.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_read_as_words() {
        assert_eq!(counted(1, "tensor"), "1 tensor");
        assert_eq!(counted(0, "tensor"), "0 tensors");
        assert_eq!(counted(2, "shard"), "2 shards");
        assert_eq!(counted(1234, "byte"), "1,234 bytes");
    }

    #[test]
    fn parses_plain_bytes_and_every_unit() {
        assert_eq!(parse_size("1048576"), Ok(1_048_576));
        assert_eq!(parse_size("12B"), Ok(12));
        assert_eq!(parse_size("5KB"), Ok(5_000));
        assert_eq!(parse_size("5MB"), Ok(5_000_000));
        assert_eq!(parse_size("5GB"), Ok(5_000_000_000));
        assert_eq!(parse_size("2TB"), Ok(2_000_000_000_000));
        assert_eq!(parse_size("5KiB"), Ok(5 * 1024));
        assert_eq!(parse_size("5MiB"), Ok(5 * 1024 * 1024));
        assert_eq!(parse_size("5GiB"), Ok(5 * 1024 * 1024 * 1024));
        assert_eq!(parse_size("1TiB"), Ok(1 << 40));
    }

    #[test]
    fn units_are_case_insensitive_and_may_be_spaced() {
        assert_eq!(parse_size("5gb"), Ok(5_000_000_000));
        assert_eq!(parse_size("5 GiB"), Ok(5 << 30));
        assert_eq!(parse_size(" 10 mib "), Ok(10 << 20));
    }

    #[test]
    fn decimals_are_exact() {
        assert_eq!(parse_size("1.5GB"), Ok(1_500_000_000));
        assert_eq!(parse_size("0.5KiB"), Ok(512));
        assert_eq!(parse_size(".25MB"), Ok(250_000));
        assert_eq!(parse_size("0.75KiB"), Ok(768));
        assert_eq!(parse_size("1.1GiB"), Ok(1_181_116_006));
        assert_eq!(parse_size("2.5"), Ok(2));
    }

    #[test]
    fn refuses_junk_zero_and_overflow() {
        for bad in [
            "",
            "GB",
            "5XB",
            "-5GB",
            "1.2.3MB",
            "0",
            "0GB",
            "0.0001B",
            "99999999999999999999",
            "20000000000TB",
            ".",
        ] {
            let err = parse_size(bad).unwrap_err();
            assert!(
                ["not a size", "unknown unit", "too large", "zero bytes"]
                    .iter()
                    .any(|what| err.starts_with(what)),
                "{bad}: {err}"
            );
        }
    }

    #[test]
    fn formats_bytes_and_counts() {
        assert_eq!(format_bytes(0), "0 B");
        assert_eq!(format_bytes(1023), "1023 B");
        assert_eq!(format_bytes(1536), "1.50 KiB");
        assert_eq!(format_bytes(5 << 30), "5.00 GiB");
        assert_eq!(format_count(0), "0");
        assert_eq!(format_count(999), "999");
        assert_eq!(format_count(1000), "1,000");
        assert_eq!(format_count(124_439_808), "124,439,808");
    }
}
