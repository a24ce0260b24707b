//! clip-tensor: a minimal tensor type over `clip-kernels`.
//!
//! - [`Tensor`]: shape and strides over owned or borrowed (memory-mapped) storage; f32 for
//!   compute, f16 and bf16 for storage with fast conversion; views without copies.
//! - [`Linear`]: a weight packed once for the GEMM, in f32 or bf16 ([`Precision`]; a bf16 or
//!   f16 tensor, memory-mapped or not, is packed from its bits without an f32 copy).
//! - Operations as safe methods (`matmul`, `linear`, `softmax`, `layernorm`, `gelu`,
//!   `quick_gelu`, `add`, `scale`, `attention`) on an explicit [`Threads`] pool, bitwise
//!   identical for every thread count.
//!
//! Not here: broadcasting, autograd, devices, model code.

mod dtype;
mod error;
mod ops;
mod tensor;

pub use dtype::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16, DType};
pub use error::{Error, Result};
pub use ops::{Linear, Precision, Threads};
pub use tensor::{ByteStorage, Tensor};

pub use clip_kernels::{Activation, Isa};
pub use half::{bf16, f16};
