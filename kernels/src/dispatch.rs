//! Instruction-set detection, done once per process.
//!
//! [`Isa::active`] is the kernel set every call uses unless it names one: the best the CPU
//! has, or the one forced by the `CLIP_ISA` environment variable
//! (`scalar|portable|avx2|avx512|neon`). The choice is made on first use and cached.
//! Tests and benches that want a particular kernel set pass an [`Isa`] explicitly; the
//! kernel tests skip a set this CPU cannot run unless `CLIP_REQUIRE_ISA` names it
//! ([`test_gate`]).
//!
//! Not here: which kernels a set runs (`table.rs`), the kernels.

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

/// The environment variable naming the kernel sets a test run must exercise, comma-separated
/// (`CLIP_REQUIRE_ISA=avx512,avx2`): the kernel tests then fail, instead of skipping, when this
/// CPU cannot run a named set, so a CI machine that lost a set is noticed.
pub const REQUIRE_ISA_ENV: &str = "CLIP_REQUIRE_ISA";

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
                        "warning: {ISA_ENV}={v} is not one of {NAMES}; using {}",
                        Isa::detect().name()
                    );
                    Isa::detect()
                }
            },
            _ => Isa::detect(),
        })
    }
}

/// Parses a comma-separated list of kernel-set names, as [`Isa::parse`] reads them (spaces and
/// empty items are ignored). `Err` names the first item that is not a kernel set.
pub fn parse_isa_list(s: &str) -> Result<Vec<Isa>, String> {
    s.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| Isa::parse(item).ok_or_else(|| format!("`{item}` is not a kernel set")))
        .collect()
}

/// The kernel sets `CLIP_REQUIRE_ISA` names (none when it is unset); `Err` if it names
/// something that is not a kernel set.
pub fn required_isas() -> Result<Vec<Isa>, String> {
    match std::env::var(REQUIRE_ISA_ENV) {
        Ok(v) => parse_isa_list(&v).map_err(|e| format!("{REQUIRE_ISA_ENV}={v}: {e} ({NAMES})")),
        Err(_) => Ok(Vec::new()),
    }
}

/// What a kernel test does with the set `isa`, which this CPU can run or not (`available`),
/// given the sets the run requires: `Ok(true)` to test it, `Ok(false)` to skip it (it is not
/// available and not required), `Err` (the test must fail) when it is required but not
/// available.
pub fn test_gate(isa: Isa, available: bool, required: &[Isa]) -> Result<bool, String> {
    match (available, required.contains(&isa)) {
        (true, _) => Ok(true),
        (false, false) => Ok(false),
        (false, true) => Err(format!(
            "{REQUIRE_ISA_ENV} names {isa}, but this CPU cannot run the {isa} kernels"
        )),
    }
}

/// [`test_gate`] for this CPU and `CLIP_REQUIRE_ISA` (`Err` too if the variable is malformed).
pub fn test_isa(isa: Isa) -> Result<bool, String> {
    test_gate(isa, isa.is_available(), &required_isas()?)
}

/// The names `CLIP_ISA` and `CLIP_REQUIRE_ISA` accept.
const NAMES: &str = "scalar|portable|avx2|avx512|neon";

impl std::fmt::Display for Isa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn isa_lists_parse() {
        assert_eq!(parse_isa_list(""), Ok(vec![]));
        assert_eq!(
            parse_isa_list("avx512,avx2"),
            Ok(vec![Isa::Avx512, Isa::Avx2])
        );
        assert_eq!(
            parse_isa_list(" AVX2 , ,scalar,"),
            Ok(vec![Isa::Avx2, Isa::Scalar])
        );
        let err = parse_isa_list("avx512,avx513").unwrap_err();
        assert!(err.contains("avx513"), "{err}");
    }

    #[test]
    fn a_required_set_the_cpu_lacks_is_a_failure() {
        assert_eq!(test_gate(Isa::Avx2, true, &[]), Ok(true));
        assert_eq!(test_gate(Isa::Avx2, true, &[Isa::Avx2]), Ok(true));
        assert_eq!(test_gate(Isa::Avx2, false, &[Isa::Avx512]), Ok(false));
        let err = test_gate(Isa::Avx2, false, &[Isa::Avx512, Isa::Avx2]).unwrap_err();
        assert!(
            err.contains("avx2") && err.contains(REQUIRE_ISA_ENV),
            "{err}"
        );
        // On this CPU: no machine runs both the x86_64 sets and NEON.
        let missing = Isa::ALL.into_iter().find(|i| !i.is_available()).unwrap();
        assert!(test_gate(missing, missing.is_available(), &[missing]).is_err());
        assert_eq!(test_gate(Isa::Scalar, true, &[missing]), Ok(true));
    }
}
