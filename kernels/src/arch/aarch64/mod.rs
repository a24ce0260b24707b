//! aarch64 micro-kernels: NEON (`neon.rs`). The kernel type and its block sizes exist on every
//! target (so `Blocking::of(Isa::Neon)` answers everywhere); its code is built on aarch64 only.

pub(crate) mod neon;
