//! The torch vocabulary of a checkpoint, as plain data: its element types, the globals a
//! checkpoint may name, and what the unpickler records of storages and tensors. The pickle
//! machine (`pickle.rs`) carries these values; what they mean, and which (module, name) pairs
//! may name them, is the torch allowlist's (`torch.rs`).

use std::rc::Rc;

/// A torch element type as it appears in a checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TorchDtype {
    /// `torch.bool`
    Bool,
    /// `torch.uint8`
    UInt8,
    /// `torch.int8`
    Int8,
    /// `torch.int16`
    Int16,
    /// `torch.uint16`
    UInt16,
    /// `torch.int32`
    Int32,
    /// `torch.uint32`
    UInt32,
    /// `torch.int64`
    Int64,
    /// `torch.uint64`
    UInt64,
    /// `torch.float16`
    Float16,
    /// `torch.bfloat16`
    BFloat16,
    /// `torch.float32`
    Float32,
    /// `torch.float64`
    Float64,
    /// `torch.complex32`: no safetensors equivalent.
    Complex32,
    /// `torch.complex64`
    Complex64,
    /// `torch.complex128`: no safetensors equivalent.
    Complex128,
    /// `torch.float8_e4m3fn`
    Float8E4M3Fn,
    /// `torch.float8_e5m2`
    Float8E5M2,
    /// `torch.float8_e4m3fnuz`
    Float8E4M3Fnuz,
    /// `torch.float8_e5m2fnuz`
    Float8E5M2Fnuz,
    /// `torch.float8_e8m0fnu`
    Float8E8M0Fnu,
    /// `torch.float4_e2m1fn_x2`: two 4-bit floats a byte; the last dimension doubles in safetensors.
    Float4E2M1FnX2,
    /// A quantized type (`torch.qint8`, ...): no safetensors equivalent.
    Quantized(&'static str),
}

impl TorchDtype {
    /// The torch name, e.g. `float32`.
    pub fn name(self) -> &'static str {
        use TorchDtype::*;
        match self {
            Bool => "bool",
            UInt8 => "uint8",
            Int8 => "int8",
            Int16 => "int16",
            UInt16 => "uint16",
            Int32 => "int32",
            UInt32 => "uint32",
            Int64 => "int64",
            UInt64 => "uint64",
            Float16 => "float16",
            BFloat16 => "bfloat16",
            Float32 => "float32",
            Float64 => "float64",
            Complex32 => "complex32",
            Complex64 => "complex64",
            Complex128 => "complex128",
            Float8E4M3Fn => "float8_e4m3fn",
            Float8E5M2 => "float8_e5m2",
            Float8E4M3Fnuz => "float8_e4m3fnuz",
            Float8E5M2Fnuz => "float8_e5m2fnuz",
            Float8E8M0Fnu => "float8_e8m0fnu",
            Float4E2M1FnX2 => "float4_e2m1fn_x2",
            Quantized(n) => n,
        }
    }

    /// Bytes per element of a storage of this type.
    pub fn element_size(self) -> usize {
        use TorchDtype::*;
        match self {
            Bool | UInt8 | Int8 | Float8E4M3Fn | Float8E5M2 | Float8E4M3Fnuz | Float8E5M2Fnuz
            | Float8E8M0Fnu | Float4E2M1FnX2 => 1,
            Int16 | UInt16 | Float16 | BFloat16 => 2,
            Int32 | UInt32 | Float32 | Complex32 => 4,
            Int64 | UInt64 | Float64 | Complex64 => 8,
            Complex128 => 16,
            Quantized("qint32") => 4,
            Quantized(_) => 1,
        }
    }

    /// Size of the unit a big-endian checkpoint byte-swaps (complex numbers swap each half).
    pub(crate) fn swap_unit(self) -> usize {
        match self {
            TorchDtype::Complex32 | TorchDtype::Complex64 | TorchDtype::Complex128 => {
                self.element_size() / 2
            }
            _ => self.element_size(),
        }
    }

    /// The safetensors header spelling, or `None` when safetensors cannot hold this type.
    /// Read off the core's one table of framework names (`Dtype::from_framework_name`).
    pub fn safetensors_name(self) -> Option<&'static str> {
        match self {
            // Two 4-bit floats a byte in torch; safetensors stores them as F4 elements.
            TorchDtype::Float4E2M1FnX2 => Some(safetensors::Dtype::F4.name()),
            _ => safetensors::Dtype::from_framework_name(self.name()).map(|d| d.name()),
        }
    }

    pub(crate) fn from_torch_attr(name: &str) -> Option<Self> {
        use TorchDtype::*;
        Some(match name {
            "bool" => Bool,
            "uint8" => UInt8,
            "int8" => Int8,
            "int16" | "short" => Int16,
            "uint16" => UInt16,
            "int32" | "int" => Int32,
            "uint32" => UInt32,
            "int64" | "long" => Int64,
            "uint64" => UInt64,
            "float16" | "half" => Float16,
            "bfloat16" => BFloat16,
            "float32" | "float" => Float32,
            "float64" | "double" => Float64,
            "complex32" | "chalf" => Complex32,
            "complex64" | "cfloat" => Complex64,
            "complex128" | "cdouble" => Complex128,
            "float8_e4m3fn" => Float8E4M3Fn,
            "float8_e5m2" => Float8E5M2,
            "float8_e4m3fnuz" => Float8E4M3Fnuz,
            "float8_e5m2fnuz" => Float8E5M2Fnuz,
            "float8_e8m0fnu" => Float8E8M0Fnu,
            "float4_e2m1fn_x2" => Float4E2M1FnX2,
            "qint8" => Quantized("qint8"),
            "quint8" => Quantized("quint8"),
            "qint32" => Quantized("qint32"),
            "quint4x2" => Quantized("quint4x2"),
            "quint2x4" => Quantized("quint2x4"),
            _ => return None,
        })
    }

    pub(crate) fn from_storage_class(name: &str) -> Option<Self> {
        use TorchDtype::*;
        Some(match name {
            "DoubleStorage" => Float64,
            "FloatStorage" => Float32,
            "HalfStorage" => Float16,
            "LongStorage" => Int64,
            "IntStorage" => Int32,
            "ShortStorage" => Int16,
            "CharStorage" => Int8,
            "ByteStorage" => UInt8,
            "BoolStorage" => Bool,
            "BFloat16Storage" => BFloat16,
            "ComplexDoubleStorage" => Complex128,
            "ComplexFloatStorage" => Complex64,
            "QInt8Storage" => Quantized("qint8"),
            "QInt32Storage" => Quantized("qint32"),
            "QUInt8Storage" => Quantized("quint8"),
            "QUInt4x2Storage" => Quantized("quint4x2"),
            "QUInt2x4Storage" => Quantized("quint2x4"),
            _ => return None,
        })
    }
}

/// The only globals a checkpoint may name. Everything else is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Global {
    OrderedDict,
    RebuildTensor,
    RebuildTensorV2,
    RebuildTensorV3,
    RebuildParameter,
    RebuildParameterWithState,
    RebuildFromTypeV2,
    TensorClass,
    ParameterClass,
    TorchSize,
    /// `torch.device`, rebuilt as its string form.
    Device,
    /// `torch.<X>Storage` (typed, carries a dtype) or `torch.UntypedStorage` (`None`).
    StorageType(Option<TorchDtype>),
    Dtype(TorchDtype),
}

/// A storage named by a persistent id: the key of its bytes in the checkpoint, plus (for legacy
/// views) where inside that storage this one starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StorageRef {
    /// Key of the root storage's bytes (`data/<key>` in a zip; the key list in a legacy file).
    pub(crate) key: Rc<str>,
    /// Element type of a typed storage; `None` for an untyped (byte) storage.
    pub(crate) dtype: Option<TorchDtype>,
    /// Byte offset of this storage inside the root storage (non-zero only for legacy views).
    pub(crate) byte_offset: u64,
    /// Byte length of a legacy view; `None` means "to the end of the root storage".
    pub(crate) view_len: Option<u64>,
}

/// What `_rebuild_tensor*` recorded: no data, only where it lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TensorRecord {
    pub(crate) storage: Rc<StorageRef>,
    pub(crate) dtype: TorchDtype,
    /// Offset in elements of `dtype`.
    pub(crate) offset: u64,
    pub(crate) size: Vec<u64>,
    pub(crate) stride: Vec<u64>,
}
