//! clip-kernels: the only crate of the workspace with `core::arch`.
//!
//! A safe API over slices and strides:
//! - [`gemm`]: packed, blocked f32 GEMM (BLIS's five loops) with AVX-512, AVX2+FMA, portable
//!   (`wide`) and scalar micro-kernels, a pre-packed right-hand side and fused epilogues;
//! - [`rows`]: softmax, layernorm, GELU (erf and quick), add, scale over rows;
//! - [`mod@attention`]: multi-head scaled dot-product attention;
//! - [`math`]: exp, erf, sigmoid and the GELUs on each kernel set's vector type.
//!
//! The kernel set is chosen once per process ([`Isa::active`]); every entry point also takes an
//! explicit [`Isa`] so tests can compare each set with the scalar reference. Which kernels a
//! set runs, and its fallbacks, is one table (`table.rs`).
//! Not here: tensors, threads pools, model code (see `clip-tensor` and `clip`).

pub(crate) mod arch;
pub mod attention;
pub mod dispatch;
pub mod gemm;
pub mod math;
pub mod peak;
pub mod rows;
pub(crate) mod table;

pub use attention::{attention, AttentionShape};
pub use dispatch::Isa;
pub use rows::SoftmaxMask;

pub use gemm::{
    sgemm, sgemm_prepacked, Activation, Bf16Kernel, Blocking, Epilogue, MatMut, MatRef, PackedB,
    Precision,
};
