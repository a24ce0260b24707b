//! clip-tensor: the tensor layer between `clip-kernels` and the model.
//!
//! - [`Tensor`]: shape and strides over owned or borrowed (memory-mapped) storage; f32 for
//!   compute, f16 and bf16 for storage with exact conversion to f32; views without copies.
//!   Weights are read through it.
//! - [`Linear`]: a weight packed once for the GEMM, in f32 or bf16 ([`Precision`]; a bf16 or
//!   f16 tensor, memory-mapped or not, is packed from its bits without an f32 copy).
//! - [`Exec`]: the execution context, a thread pool and a kernel set, passed to every
//!   operation; results are bitwise the same for every thread count.
//!
//! Activations are plain row-major `Vec<f32>` buffers owned by the model, not tensors.
//! Not here: broadcasting, autograd, devices, model code.

mod dtype;
mod error;
mod exec;
mod linear;
mod tensor;

pub use dtype::{bf16_to_f32, f16_to_f32, f32_to_bf16, f32_to_f16, DType};
pub use error::{Error, Result};
pub use exec::{available_cores, max_threads, Exec, MAX_THREADS_PER_CORE};
pub use linear::{Linear, Precision};
pub use tensor::{ByteStorage, Tensor};

pub use clip_kernels::{Activation, Bf16Kernel, Isa};
pub use half::{bf16, f16};
