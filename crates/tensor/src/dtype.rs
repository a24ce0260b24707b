//! Element types: f32 for compute, f16 and bf16 for storage, and their conversion to f32; i8
//! for quantised weights (whose scales are stored beside them).

use half::{bf16, f16};
use std::fmt;

/// How a tensor is stored (in a weight file, or in memory): f32, f16, bf16, or i8 (a
/// quantised weight: the integers, whose per-channel scales are a separate tensor). Not the
/// precision a weight is computed in ([`crate::Precision`]): any float storage type can be
/// packed into any precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    F16,
    BF16,
    I8,
}

impl DType {
    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            DType::F32 => 4,
            DType::F16 | DType::BF16 => 2,
            DType::I8 => 1,
        }
    }

    /// The name safetensors uses ("F32", "F16", "BF16", "I8").
    pub fn safetensors_name(self) -> &'static str {
        match self {
            DType::F32 => "F32",
            DType::F16 => "F16",
            DType::BF16 => "BF16",
            DType::I8 => "I8",
        }
    }
}

impl fmt::Display for DType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DType::F32 => "f32",
            DType::F16 => "f16",
            DType::BF16 => "bf16",
            DType::I8 => "i8",
        })
    }
}

/// Converts f16 values to f32 (exactly; `half` uses F16C where the CPU has it).
pub fn f16_to_f32(src: &[f16], dst: &mut [f32]) {
    use half::slice::HalfFloatSliceExt;
    src.convert_to_f32_slice(dst);
}

/// Converts bf16 values to f32 (exactly: a bf16 is the top half of an f32). The loop is a
/// shift per element and vectorises.
pub fn bf16_to_f32(src: &[bf16], dst: &mut [f32]) {
    assert_eq!(src.len(), dst.len(), "bf16_to_f32: lengths differ");
    for (d, s) in dst.iter_mut().zip(src) {
        *d = f32::from_bits((s.to_bits() as u32) << 16);
    }
}

/// Rounds f32 values to f16 (round to nearest even).
pub fn f32_to_f16(src: &[f32]) -> Vec<f16> {
    src.iter().map(|&x| f16::from_f32(x)).collect()
}

/// Rounds f32 values to bf16 (round to nearest even, NaN kept NaN).
pub fn f32_to_bf16(src: &[f32]) -> Vec<bf16> {
    src.iter().map(|&x| bf16::from_f32(x)).collect()
}
