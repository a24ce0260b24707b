//! clip-kernels: the only crate of the workspace with `core::arch`.
//!
//! Safe API over slices and strides: packed GEMM, row kernels and attention.
