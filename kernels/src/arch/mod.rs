//! Per-ISA GEMM micro-kernels. `scalar` is the reference; `portable` runs anywhere over `wide`;
//! `x86_64` holds the AVX2+FMA and AVX-512F kernels and `aarch64` the NEON one: the only
//! `core::arch` code of the GEMM. Which set uses which kernel is `crate::table`.
//!
//! Not here: the loops and packing (`gemm/`), the row kernels (`rows/`, `math/`).

pub(crate) mod aarch64;
pub(crate) mod portable;
pub(crate) mod scalar;
#[cfg(target_arch = "x86_64")]
pub(crate) mod x86_64;
