//! Decoding of the float dtypes that `diff` compares numerically (F16, BF16, F32, F64) and
//! the element-wise comparison itself. Values are little-endian, as the format stores them.

/// The float encodings `diff` knows how to decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FloatKind {
    /// IEEE 754 half precision.
    F16,
    /// bfloat16: the upper half of an F32.
    BF16,
    /// IEEE 754 single precision.
    F32,
    /// IEEE 754 double precision.
    F64,
}

impl FloatKind {
    /// The kind for a header dtype name, or `None` when `diff` does not decode that dtype.
    pub fn from_dtype_name(name: &str) -> Option<Self> {
        match name {
            "F16" => Some(Self::F16),
            "BF16" => Some(Self::BF16),
            "F32" => Some(Self::F32),
            "F64" => Some(Self::F64),
            _ => None,
        }
    }

    /// Bytes per element.
    pub fn width(self) -> usize {
        match self {
            Self::F16 | Self::BF16 => 2,
            Self::F32 => 4,
            Self::F64 => 8,
        }
    }

    /// Decodes one element; `bytes` has exactly `width()` bytes.
    fn decode(self, bytes: &[u8]) -> f64 {
        match self {
            Self::F16 => f64::from(f16_to_f32(u16::from_le_bytes([bytes[0], bytes[1]]))),
            Self::BF16 => f64::from(bf16_to_f32(u16::from_le_bytes([bytes[0], bytes[1]]))),
            Self::F32 => f64::from(f32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])),
            Self::F64 => {
                let mut raw = [0u8; 8];
                raw.copy_from_slice(bytes);
                f64::from_le_bytes(raw)
            }
        }
    }
}

/// Converts IEEE 754 half-precision bits to an `f32` (exact: every f16 is an f32).
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = u32::from(bits >> 15) << 31;
    let exponent = u32::from((bits >> 10) & 0x1f);
    let mantissa = u32::from(bits & 0x3ff);
    let magnitude = match (exponent, mantissa) {
        (0, 0) => 0,
        (0, _) => {
            // Subnormal: value = mantissa * 2^-24, exactly representable in f32.
            let value = mantissa as f32 * 2f32.powi(-24);
            return if sign != 0 { -value } else { value };
        }
        (0x1f, 0) => 0xff << 23,
        (0x1f, _) => (0xff << 23) | (mantissa << 13) | (1 << 22),
        _ => ((exponent + 127 - 15) << 23) | (mantissa << 13),
    };
    f32::from_bits(sign | magnitude)
}

/// Converts bfloat16 bits to an `f32` (they are the high 16 bits of one).
pub fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits(u32::from(bits) << 16)
}

/// Formats a difference for people: shortest round-trip digits, in scientific notation when
/// very large or very small (`0.25`, `1e-7`, `2e300`, `inf`).
pub fn format_float(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && magnitude.is_finite() && !(1e-4..1e6).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// What an element-wise comparison of two equally shaped float tensors found.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct FloatDiff {
    /// Elements compared.
    pub elements: u64,
    /// Elements whose values differ (two NaNs count as equal; +0 and -0 too).
    pub differing: u64,
    /// Largest `|a - b|` over elements where neither side is NaN (infinite when one side is
    /// infinite and the other is not, or the infinities have opposite signs).
    pub max_abs_diff: f64,
    /// Elements where exactly one side is NaN.
    pub nan_mismatches: u64,
}

impl FloatDiff {
    /// Folds the next chunk of both tensors in; both chunks hold the same whole elements.
    pub fn update(&mut self, kind: FloatKind, a: &[u8], b: &[u8]) {
        debug_assert_eq!(a.len(), b.len());
        let width = kind.width();
        for (ea, eb) in a.chunks_exact(width).zip(b.chunks_exact(width)) {
            self.elements += 1;
            if ea == eb {
                continue;
            }
            let (x, y) = (kind.decode(ea), kind.decode(eb));
            match (x.is_nan(), y.is_nan()) {
                (true, true) => {}
                (true, false) | (false, true) => {
                    self.differing += 1;
                    self.nan_mismatches += 1;
                }
                (false, false) => {
                    if x == y {
                        continue; // +0 and -0
                    }
                    self.differing += 1;
                    let d = if x.is_infinite() || y.is_infinite() {
                        f64::INFINITY
                    } else {
                        (x - y).abs()
                    };
                    if d > self.max_abs_diff {
                        self.max_abs_diff = d;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn f16_decodes_normals_subnormals_and_specials() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x3555), 0.333_251_95);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x8001), -(2f32.powi(-24)));
        assert_eq!(f16_to_f32(0x03ff), 1023.0 * 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0400), 2f32.powi(-14));
        assert_eq!(f16_to_f32(0x0000).to_bits(), 0);
        assert_eq!(f16_to_f32(0x8000).to_bits(), 0x8000_0000);
        assert_eq!(f16_to_f32(0x7c00), f32::INFINITY);
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert!(f16_to_f32(0x7c01).is_nan());
    }

    #[test]
    fn f16_matches_every_value_computed_from_the_definition() {
        for bits in 0u16..=u16::MAX {
            let e = i32::from((bits >> 10) & 0x1f);
            let m = f64::from(bits & 0x3ff);
            let s = if bits >> 15 == 1 { -1.0 } else { 1.0 };
            let expected = match e {
                0 => s * m * 2f64.powi(-24),
                31 if m == 0.0 => s * f64::INFINITY,
                31 => f64::NAN,
                _ => s * (1.0 + m / 1024.0) * 2f64.powi(e - 15),
            };
            let got = f64::from(f16_to_f32(bits));
            if expected.is_nan() {
                assert!(got.is_nan(), "{bits:#06x}");
            } else {
                assert_eq!(got, expected, "{bits:#06x}");
                assert_eq!(
                    got.is_sign_negative(),
                    expected.is_sign_negative(),
                    "{bits:#06x}"
                );
            }
        }
    }

    #[test]
    fn formats_floats_briefly() {
        assert_eq!(format_float(0.0), "0");
        assert_eq!(format_float(0.25), "0.25");
        assert_eq!(format_float(123456.5), "123456.5");
        assert_eq!(format_float(2e300), "2e300");
        assert_eq!(format_float(1.5e-7), "1.5e-7");
        assert_eq!(format_float(f64::INFINITY), "inf");
    }

    #[test]
    fn bf16_is_the_high_half_of_f32() {
        assert_eq!(bf16_to_f32(0x3f80), 1.0);
        assert_eq!(bf16_to_f32(0xc040), -3.0);
        assert_eq!(bf16_to_f32(0x7f80), f32::INFINITY);
        assert!(bf16_to_f32(0x7fc0).is_nan());
    }

    fn f32_bytes(values: &[f32]) -> Vec<u8> {
        values.iter().flat_map(|v| v.to_le_bytes()).collect()
    }

    #[test]
    fn diff_reports_max_abs_difference_and_counts() {
        let mut d = FloatDiff::default();
        d.update(
            FloatKind::F32,
            &f32_bytes(&[1.0, 2.0, 3.0, -0.0]),
            &f32_bytes(&[1.0, 2.5, 1.0, 0.0]),
        );
        assert_eq!(
            d,
            FloatDiff {
                elements: 4,
                differing: 2,
                max_abs_diff: 2.0,
                nan_mismatches: 0
            }
        );
    }

    #[test]
    fn diff_handles_nan_and_infinity() {
        let mut d = FloatDiff::default();
        let a = f32_bytes(&[f32::NAN, f32::NAN, f32::INFINITY, 1.0]);
        let b = f32_bytes(&[f32::NAN, 0.0, f32::INFINITY, f32::NEG_INFINITY]);
        d.update(FloatKind::F32, &a, &b);
        assert_eq!(d.elements, 4);
        assert_eq!(d.differing, 2);
        assert_eq!(d.nan_mismatches, 1);
        assert_eq!(d.max_abs_diff, f64::INFINITY);
    }

    #[test]
    fn diff_decodes_each_kind() {
        let mut d = FloatDiff::default();
        d.update(
            FloatKind::F16,
            &0x3c00u16.to_le_bytes(),
            &0x4000u16.to_le_bytes(),
        );
        assert_eq!(d.max_abs_diff, 1.0);
        let mut d = FloatDiff::default();
        d.update(
            FloatKind::BF16,
            &0x3f80u16.to_le_bytes(),
            &0x4040u16.to_le_bytes(),
        );
        assert_eq!(d.max_abs_diff, 2.0);
        let mut d = FloatDiff::default();
        d.update(
            FloatKind::F64,
            &0.25f64.to_le_bytes(),
            &(-0.5f64).to_le_bytes(),
        );
        assert_eq!(d.max_abs_diff, 0.75);
        assert_eq!(FloatKind::from_dtype_name("F8_E4M3"), None);
        assert_eq!(FloatKind::from_dtype_name("BF16"), Some(FloatKind::BF16));
    }
}
