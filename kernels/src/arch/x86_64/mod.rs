//! x86_64 micro-kernels: AVX2+FMA (`avx2.rs`), AVX-512F (`avx512.rs`), both with a bf16
//! conversion twin, the AVX512-BF16 dot kernel (`avx512bf16.rs`), and the int8 kernels
//! (`avx512vnni.rs`, `avx2_int8.rs`).
//!
//! Not here: the scalar references (`arch/scalar.rs`), the loops (`gemm/`).

pub(crate) mod avx2;
pub(crate) mod avx2_int8;
pub(crate) mod avx512;
pub(crate) mod avx512bf16;
pub(crate) mod avx512vnni;
