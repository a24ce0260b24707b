//! x86_64 micro-kernels: AVX2+FMA (`avx2.rs`), AVX-512F (`avx512.rs`), both with a bf16
//! conversion twin, and the AVX512-BF16 dot kernel (`avx512bf16.rs`).

pub(crate) mod avx2;
pub(crate) mod avx512;
pub(crate) mod avx512bf16;
