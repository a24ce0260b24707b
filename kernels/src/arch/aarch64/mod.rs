//! aarch64 micro-kernels: NEON (`neon.rs`).

pub(crate) mod neon;
