//! Instruction-set detection, done once per process.
//!
//! [`Isa::active`] is the kernel set every call uses unless it names one: the best the CPU
//! has, or the one forced by the `CLIP_ISA` environment variable
//! (`scalar|portable|avx2|avx512|neon`). The choice is made on first use and cached.
//! Tests and benches that want a particular kernel set pass an [`Isa`] explicitly.

use std::sync::OnceLock;

/// A kernel set. `Scalar` is the reference every other set is tested against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Isa {
    /// Plain Rust, no SIMD: the reference (the test oracle).
    Scalar,
    /// Portable SIMD over the `wide` crate (8 lanes), for any target.
    Portable,
    /// x86_64 AVX2 + FMA (8 lanes).
    Avx2,
    /// x86_64 AVX-512F (16 lanes).
    Avx512,
    /// aarch64 NEON (4 lanes; GEMM micro-kernel of its own, row kernels over `wide`).
    Neon,
}

/// The environment variable that forces a kernel set.
pub const ISA_ENV: &str = "CLIP_ISA";

impl Isa {
    /// Every kernel set this crate knows, worst first.
    pub const ALL: [Isa; 5] = [
        Isa::Scalar,
        Isa::Portable,
        Isa::Avx2,
        Isa::Avx512,
        Isa::Neon,
    ];

    /// The lower-case name used by `CLIP_ISA`, the CLI and the benches.
    pub fn name(self) -> &'static str {
        match self {
            Isa::Scalar => "scalar",
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
            Isa::Neon => "neon",
        }
    }

    /// Parses a name as printed by [`Isa::name`] (case-insensitive).
    pub fn parse(s: &str) -> Option<Isa> {
        Isa::ALL
            .into_iter()
            .find(|isa| isa.name().eq_ignore_ascii_case(s.trim()))
    }

    /// Whether this CPU can run the kernel set.
    pub fn is_available(self) -> bool {
        match self {
            Isa::Scalar | Isa::Portable => true,
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => std::arch::is_x86_feature_detected!("avx512f"),
            #[cfg(not(target_arch = "x86_64"))]
            Isa::Avx2 | Isa::Avx512 => false,
            Isa::Neon => cfg!(target_arch = "aarch64"),
        }
    }

    /// The kernel sets this CPU can run, worst first (`neon` sorts last but only exists on
    /// aarch64, where the x86 sets do not).
    pub fn available() -> Vec<Isa> {
        Isa::ALL.into_iter().filter(|i| i.is_available()).collect()
    }

    /// The best kernel set this CPU can run.
    pub fn detect() -> Isa {
        *Isa::available().last().unwrap_or(&Isa::Scalar)
    }

    /// The kernel set used by default: `CLIP_ISA` if set (and runnable), else [`Isa::detect`].
    /// Decided once per process.
    pub fn active() -> Isa {
        static ACTIVE: OnceLock<Isa> = OnceLock::new();
        *ACTIVE.get_or_init(|| match std::env::var(ISA_ENV) {
            Ok(v) if !v.trim().is_empty() => match Isa::parse(&v) {
                Some(isa) if isa.is_available() => isa,
                Some(isa) => {
                    eprintln!(
                        "warning: {ISA_ENV}={v}: this CPU cannot run {}; using {}",
                        isa.name(),
                        Isa::detect().name()
                    );
                    Isa::detect()
                }
                None => {
                    eprintln!(
                        "warning: {ISA_ENV}={v} is not one of scalar|portable|avx2|avx512|neon; using {}",
                        Isa::detect().name()
                    );
                    Isa::detect()
                }
            },
            _ => Isa::detect(),
        })
    }
}

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}
