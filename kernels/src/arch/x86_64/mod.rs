//! x86_64 micro-kernels: AVX2+FMA (`avx2.rs`) and AVX-512F (`avx512.rs`).

pub(crate) mod avx2;
pub(crate) mod avx512;
