//! Element types: their header spelling, their width in bits, and byte sizes of tensors.

use core::fmt;

/// The element type of a tensor, spelled in headers exactly as the variant name.
///
/// The variants are declared in increasing alignment order; the writer lays tensors out in
/// descending order of this enum so every tensor starts aligned to its own element size.
#[non_exhaustive]
#[allow(non_camel_case_types)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Dtype {
    /// Boolean, one byte per element.
    BOOL,
    /// 4-bit float (e2m1), two elements per byte.
    F4,
    /// 6-bit float (e2m3), four elements per three bytes.
    F6_E2M3,
    /// 6-bit float (e3m2), four elements per three bytes.
    F6_E3M2,
    /// Unsigned 8-bit integer.
    U8,
    /// Signed 8-bit integer.
    I8,
    /// 8-bit float, 5 exponent bits and 2 mantissa bits.
    F8_E5M2,
    /// 8-bit float, 4 exponent bits and 3 mantissa bits.
    F8_E4M3,
    /// 8-bit exponent-only float (scale factors).
    F8_E8M0,
    /// 8-bit float e4m3, finite and unsigned-zero variant.
    F8_E4M3FNUZ,
    /// 8-bit float e5m2, finite and unsigned-zero variant.
    F8_E5M2FNUZ,
    /// Signed 16-bit integer.
    I16,
    /// Unsigned 16-bit integer.
    U16,
    /// IEEE half precision float.
    F16,
    /// Brain float 16.
    BF16,
    /// Signed 32-bit integer.
    I32,
    /// Unsigned 32-bit integer.
    U32,
    /// IEEE single precision float.
    F32,
    /// Complex number of two F32 (real, imaginary).
    C64,
    /// IEEE double precision float.
    F64,
    /// Signed 64-bit integer.
    I64,
    /// Unsigned 64-bit integer.
    U64,
}

/// Every dtype, in declaration (increasing alignment) order.
pub const ALL_DTYPES: [Dtype; 22] = [
    Dtype::BOOL,
    Dtype::F4,
    Dtype::F6_E2M3,
    Dtype::F6_E3M2,
    Dtype::U8,
    Dtype::I8,
    Dtype::F8_E5M2,
    Dtype::F8_E4M3,
    Dtype::F8_E8M0,
    Dtype::F8_E4M3FNUZ,
    Dtype::F8_E5M2FNUZ,
    Dtype::I16,
    Dtype::U16,
    Dtype::F16,
    Dtype::BF16,
    Dtype::I32,
    Dtype::U32,
    Dtype::F32,
    Dtype::C64,
    Dtype::F64,
    Dtype::I64,
    Dtype::U64,
];

/// Each dtype and the name torch and numpy/`ml_dtypes` give it.
const FRAMEWORK_NAMES: [(Dtype, &str); 22] = [
    (Dtype::BOOL, "bool"),
    (Dtype::F4, "float4_e2m1fn"),
    (Dtype::F6_E2M3, "float6_e2m3fn"),
    (Dtype::F6_E3M2, "float6_e3m2fn"),
    (Dtype::U8, "uint8"),
    (Dtype::I8, "int8"),
    (Dtype::F8_E5M2, "float8_e5m2"),
    (Dtype::F8_E4M3, "float8_e4m3fn"),
    (Dtype::F8_E8M0, "float8_e8m0fnu"),
    (Dtype::F8_E4M3FNUZ, "float8_e4m3fnuz"),
    (Dtype::F8_E5M2FNUZ, "float8_e5m2fnuz"),
    (Dtype::I16, "int16"),
    (Dtype::U16, "uint16"),
    (Dtype::F16, "float16"),
    (Dtype::BF16, "bfloat16"),
    (Dtype::I32, "int32"),
    (Dtype::U32, "uint32"),
    (Dtype::F32, "float32"),
    (Dtype::C64, "complex64"),
    (Dtype::F64, "float64"),
    (Dtype::I64, "int64"),
    (Dtype::U64, "uint64"),
];

impl Dtype {
    /// Width of one element in bits.
    pub const fn bitsize(&self) -> usize {
        match self {
            Dtype::F4 => 4,
            Dtype::F6_E2M3 | Dtype::F6_E3M2 => 6,
            Dtype::BOOL
            | Dtype::U8
            | Dtype::I8
            | Dtype::F8_E5M2
            | Dtype::F8_E4M3
            | Dtype::F8_E8M0
            | Dtype::F8_E4M3FNUZ
            | Dtype::F8_E5M2FNUZ => 8,
            Dtype::I16 | Dtype::U16 | Dtype::F16 | Dtype::BF16 => 16,
            Dtype::I32 | Dtype::U32 | Dtype::F32 => 32,
            Dtype::C64 | Dtype::F64 | Dtype::I64 | Dtype::U64 => 64,
        }
    }

    /// Bytes per element for byte-sized dtypes; 0 for the sub-byte ones (`F4`, `F6_*`).
    pub const fn size(&self) -> usize {
        if self.bitsize() % 8 == 0 {
            self.bitsize() / 8
        } else {
            0
        }
    }

    /// True for the dtypes whose elements are narrower than a byte.
    pub const fn is_sub_byte(&self) -> bool {
        self.bitsize() % 8 != 0
    }

    /// Byte length of `numel` elements: `numel * bits / 8`.
    ///
    /// Returns `None` when the bit count overflows or, for sub-byte dtypes, when it is not
    /// a whole number of bytes (such a tensor cannot be stored).
    pub fn byte_len(&self, numel: usize) -> Option<usize> {
        self.byte_size(&[numel]).ok()
    }

    /// Byte size of a tensor of this dtype and `shape`: the one size rule of the format,
    /// used by the header validator, the writer, tensor views and the bindings.
    ///
    /// ```
    /// use safetensors::format::dtype::{Dtype, ShapeSizeError};
    /// assert_eq!(Dtype::F32.byte_size(&[2, 3]), Ok(24));
    /// assert_eq!(Dtype::F4.byte_size(&[3]), Err(ShapeSizeError::PartialByte));
    /// assert_eq!(Dtype::U8.byte_size(&[usize::MAX, 2]), Err(ShapeSizeError::Overflow));
    /// ```
    pub fn byte_size(&self, shape: &[usize]) -> Result<usize, ShapeSizeError> {
        self.byte_size_of(shape.iter().try_fold(1usize, |acc, &d| acc.checked_mul(d)))
    }

    /// [`Dtype::byte_size`] from the element count, `None` when the product of the shape
    /// overflowed (multiplied left to right).
    pub(crate) fn byte_size_of(&self, numel: Option<usize>) -> Result<usize, ShapeSizeError> {
        let bits = numel
            .and_then(|numel| numel.checked_mul(self.bitsize()))
            .ok_or(ShapeSizeError::Overflow)?;
        if bits % 8 != 0 {
            return Err(ShapeSizeError::PartialByte);
        }
        Ok(bits / 8)
    }

    /// The header spelling, e.g. `"F32"`.
    pub const fn name(&self) -> &'static str {
        match self {
            Dtype::BOOL => "BOOL",
            Dtype::F4 => "F4",
            Dtype::F6_E2M3 => "F6_E2M3",
            Dtype::F6_E3M2 => "F6_E3M2",
            Dtype::U8 => "U8",
            Dtype::I8 => "I8",
            Dtype::F8_E5M2 => "F8_E5M2",
            Dtype::F8_E4M3 => "F8_E4M3",
            Dtype::F8_E8M0 => "F8_E8M0",
            Dtype::F8_E4M3FNUZ => "F8_E4M3FNUZ",
            Dtype::F8_E5M2FNUZ => "F8_E5M2FNUZ",
            Dtype::I16 => "I16",
            Dtype::U16 => "U16",
            Dtype::F16 => "F16",
            Dtype::BF16 => "BF16",
            Dtype::I32 => "I32",
            Dtype::U32 => "U32",
            Dtype::F32 => "F32",
            Dtype::C64 => "C64",
            Dtype::F64 => "F64",
            Dtype::I64 => "I64",
            Dtype::U64 => "U64",
        }
    }

    /// The name PyTorch and numpy (with `ml_dtypes`) give this element type, e.g. `"float32"`,
    /// `"bfloat16"`, `"float8_e4m3fn"`: the one table of framework spellings in Rust.
    /// (Torch packs `F4` two to a byte as `float4_e2m1fn_x2`; this is the per-element name.)
    pub fn framework_name(&self) -> &'static str {
        FRAMEWORK_NAMES
            .iter()
            .find(|(d, _)| d == self)
            .map(|(_, name)| *name)
            .expect("FRAMEWORK_NAMES lists every dtype")
    }

    /// Parses a framework spelling: [`Dtype::framework_name`] or one of torch's aliases
    /// (`half`, `float`, `double`, `short`, `int`, `long`, `cfloat`).
    pub fn from_framework_name(name: &str) -> Option<Dtype> {
        let name = match name {
            "half" => "float16",
            "float" => "float32",
            "double" => "float64",
            "short" => "int16",
            "int" => "int32",
            "long" => "int64",
            "cfloat" => "complex64",
            other => other,
        };
        FRAMEWORK_NAMES
            .iter()
            .find(|(_, n)| *n == name)
            .map(|(d, _)| *d)
    }

    /// True for floating point dtypes (including the 8-, 6- and 4-bit floats and `C64`).
    pub const fn is_float(&self) -> bool {
        !matches!(
            self,
            Dtype::BOOL
                | Dtype::U8
                | Dtype::I8
                | Dtype::I16
                | Dtype::U16
                | Dtype::I32
                | Dtype::U32
                | Dtype::I64
                | Dtype::U64
        )
    }
}

/// Why a shape has no byte size for a dtype (see [`Dtype::byte_size`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShapeSizeError {
    /// The element count or the bit count overflows `usize`.
    Overflow,
    /// Sub-byte elements that do not fill a whole number of bytes.
    PartialByte,
}

impl fmt::Display for Dtype {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::string::ToString;

    #[test]
    fn names_round_trip() {
        for d in ALL_DTYPES {
            assert_eq!(d.to_string().parse::<Dtype>().unwrap(), d);
        }
        assert!("f32".parse::<Dtype>().is_err());
    }

    #[test]
    fn declaration_order_is_the_spec_writer_order_reversed() {
        let spec = "U64 I64 F64 C64 F32 U32 I32 BF16 F16 U16 I16 F8_E5M2FNUZ F8_E4M3FNUZ \
                    F8_E8M0 F8_E4M3 F8_E5M2 I8 U8 F6_E3M2 F6_E2M3 F4 BOOL";
        let mut ours: alloc::vec::Vec<Dtype> = ALL_DTYPES.to_vec();
        ours.sort_by(|a, b| b.cmp(a));
        let ours: alloc::vec::Vec<&str> = ours.iter().map(|d| d.name()).collect();
        assert_eq!(
            ours,
            spec.split_whitespace().collect::<alloc::vec::Vec<_>>()
        );
    }

    #[test]
    fn framework_names_round_trip() {
        for d in ALL_DTYPES {
            assert_eq!(Dtype::from_framework_name(d.framework_name()), Some(d));
        }
        assert_eq!(Dtype::from_framework_name("long"), Some(Dtype::I64));
        assert_eq!(Dtype::from_framework_name("half"), Some(Dtype::F16));
        assert_eq!(Dtype::BF16.framework_name(), "bfloat16");
        assert_eq!(Dtype::from_framework_name("F32"), None);
        assert_eq!(Dtype::from_framework_name("complex128"), None);
    }

    #[test]
    fn sub_byte_lengths() {
        assert_eq!(Dtype::F4.byte_len(4), Some(2));
        assert_eq!(Dtype::F4.byte_len(3), None);
        assert_eq!(Dtype::F6_E2M3.byte_len(4), Some(3));
        assert_eq!(Dtype::F6_E3M2.byte_len(2), None);
        assert_eq!(Dtype::F32.byte_len(usize::MAX), None);
        assert_eq!(Dtype::C64.byte_len(3), Some(24));
    }
}
