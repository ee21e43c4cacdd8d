//! Human-readable sizes: parsing `--max-shard-size` values such as `5GB`, `500MiB` or
//! `1048576`, and printing byte and parameter counts for people.

/// Parses a size in bytes: a plain integer, or a number (decimals allowed) followed by a unit.
///
/// Decimal units follow the SI convention used by `transformers` (`KB` = 1000, `MB` = 10^6,
/// `GB` = 10^9, `TB` = 10^12); binary units are `KiB`, `MiB`, `GiB`, `TiB` (powers of 1024).
/// `B` is bytes. Units are case-insensitive and may be separated from the number by spaces.
/// Fractions are rounded down to a whole byte. Zero is refused. The error does not repeat
/// `text`: clap's message in front of it already quotes the value.
pub fn parse_size(text: &str) -> Result<u64, String> {
    let trimmed = text.trim();
    let split = trimmed
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(trimmed.len());
    let (number, unit) = trimmed.split_at(split);
    let unit = unit.trim();
    if number.is_empty() {
        return Err("not a size: expected a number such as 5GB, 500MiB or 1048576".to_string());
    }
    let multiplier: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" => 1_000,
        "m" | "mb" => 1_000_000,
        "g" | "gb" => 1_000_000_000,
        "t" | "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown unit `{unit}`: use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB"
            ))
        }
    };
    let (whole, fraction) = match number.split_once('.') {
        Some((w, f)) => (w, f),
        None => (number, ""),
    };
    if fraction.contains('.') || (whole.is_empty() && fraction.is_empty()) {
        return Err(format!("not a size: `{number}` is not a number"));
    }
    let too_big = || "too large: sizes must fit in 64 bits".to_string();
    let whole_value: u64 = if whole.is_empty() {
        0
    } else {
        whole.parse().map_err(|_| too_big())?
    };
    let mut bytes = whole_value.checked_mul(multiplier).ok_or_else(too_big)?;
    if !fraction.is_empty() {
        // Exact: fraction / 10^digits * multiplier, in 128-bit integers, rounded down.
        // Digits past the 20th cannot change a 64-bit result by a whole byte here.
        let digits = &fraction[..fraction.len().min(20)];
        let numerator: u128 = digits.parse().map_err(|_| too_big())?;
        let denominator = 10u128.pow(digits.len() as u32);
        let part = numerator * u128::from(multiplier) / denominator;
        bytes = bytes
            .checked_add(u64::try_from(part).map_err(|_| too_big())?)
            .ok_or_else(too_big)?;
    }
    if bytes == 0 {
        return Err("zero bytes: the size must be at least one byte".to_string());
    }
    Ok(bytes)
}

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
