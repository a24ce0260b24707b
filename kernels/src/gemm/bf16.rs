//! bf16 weights for the GEMM: the rounding from f32 (and f16), the precision of a
//! [`super::PackedB`], and the choice between the two kinds of bf16 micro-kernel.
//!
//! A bf16 is the top half of an f32 (sign, 8 exponent bits, 7 mantissa bits), so widening is
//! a shift and exact. Narrowing rounds to nearest, ties to even; NaN stays NaN (quietened).
//!
//! Not here: the bf16 micro-kernels (`arch/`), the packing of pairs (`pack.rs`).

use crate::table::Kernel;
use crate::Isa;
use std::sync::OnceLock;

/// The precision a packed B (a model's weight) is kept in: the one precision type of the
/// workspace (`clip-tensor` and `clip` re-export it). Activations, bias and the results are
/// f32 in every case. Not to be confused with a tensor's storage type in a file
/// (`clip_tensor::DType`: f32, f16 or bf16), which any precision can be packed from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Precision {
    /// f32 weights.
    #[default]
    F32,
    /// bf16 weights (half the bytes), widened to f32 (or multiplied by `vdpbf16ps`) with f32
    /// accumulation.
    Bf16,
    /// int8 weights (a quarter of the bytes), symmetric per output channel with an f32 scale
    /// each; activations quantised to u8 per row at each product; exact i32 accumulation,
    /// dequantised to f32 (`gemm/int8.rs`).
    Int8,
}

/// How a bf16 B is multiplied.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Bf16Kernel {
    /// A stays f32; each bf16 pair of B is widened to two f32 vectors (a shift and an AND)
    /// before ordinary f32 FMAs. Every kernel set has one; the result is the f32 GEMM of A
    /// and the bf16-rounded B.
    Convert,
    /// A is rounded to bf16 too, and pairs of products are accumulated by `vdpbf16ps`
    /// (AVX512-BF16), or by the scalar model of that instruction (`Isa::Scalar`, the reference).
    /// Rounding A costs accuracy (see `docs/numerics.md`).
    Dot,
}

/// The environment variable that picks the default bf16 kernel: `convert` or `dot`.
pub const BF16_ENV: &str = "CLIP_BF16";

impl Bf16Kernel {
    /// The lower-case name used by `CLIP_BF16`.
    pub fn name(self) -> &'static str {
        match self {
            Bf16Kernel::Convert => "convert",
            Bf16Kernel::Dot => "dot",
        }
    }

    /// Whether `isa` has this kind of kernel on this CPU: `Convert` everywhere `isa` runs;
    /// `Dot` on `Isa::Avx512` when the CPU has AVX512-BF16, and on `Isa::Scalar` (a model).
    pub fn is_available(self, isa: Isa) -> bool {
        super::loops::is_available(Kernel::Bf16(isa, self))
    }

    /// The kernel [`super::PackedB::new_bf16`] uses for `isa`: `CLIP_BF16` if set and available
    /// for `isa`; else, where `isa` is AVX-512 on a CPU with AVX512-BF16, the kernel the
    /// calibration picks ([`Bf16Calibration`]: `Dot` where `vdpbf16ps` was measured at least
    /// [`DOT_MIN_RATIO`] times the FMA rate, as on AMD Zen 4; `Convert` where it is slower, as
    /// on Intel Sapphire Rapids); else `Convert`.
    pub fn default_for(isa: Isa) -> Bf16Kernel {
        match env_choice() {
            Some(k) if k.is_available(isa) => k,
            _ if isa == Isa::Avx512 => {
                bf16_calibration().map_or(Bf16Kernel::Convert, |c| c.choice())
            }
            _ => Bf16Kernel::Convert,
        }
    }

    /// Where [`Bf16Kernel::default_for`]`(isa)` came from: `"env"` (`CLIP_BF16`),
    /// `"calibrated"` (measured on this CPU) or `"only"` (the set has no other kind).
    pub fn default_source(isa: Isa) -> &'static str {
        match env_choice() {
            Some(k) if k.is_available(isa) => "env",
            _ if isa == Isa::Avx512 && bf16_calibration().is_some() => "calibrated",
            _ => "only",
        }
    }
}

/// The smallest ratio of the `vdpbf16ps` FLOP rate to the FMA rate at which the dot kernel is
/// the default. The conversion kernel runs at 0.90-0.97x of the f32 kernel, itself 80-90 % of
/// the FMA peak; the dot kernel at 75-96 % of the `vdpbf16ps` peak (`docs/kernels.md`), so
/// the two break even near a ratio of 1.2; 1.3 leaves a margin for the accuracy the dot kernel
/// gives up. Measured ratios lie far on either side: 2.1-2.2 on AMD Zen 4, 0.49 on Intel
/// Sapphire Rapids.
pub const DOT_MIN_RATIO: f64 = 1.3;

/// The one-core measurement behind the default bf16 kernel on a CPU with AVX512-BF16: a few
/// milliseconds of `vdpbf16ps` and FMA loops (`peak::bf16_dot_and_fma_rates`), run once per
/// process at the first bf16 packing.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bf16Calibration {
    /// `vdpbf16ps zmm` FLOP rate of one core, GFLOP/s.
    pub dot_gflops: f64,
    /// `vfmadd231ps zmm` FLOP rate of the same core, GFLOP/s.
    pub fma_gflops: f64,
}

impl Bf16Calibration {
    /// `dot_gflops / fma_gflops`.
    pub fn ratio(&self) -> f64 {
        self.dot_gflops / self.fma_gflops
    }

    /// `Dot` when [`Bf16Calibration::ratio`] is at least [`DOT_MIN_RATIO`], else `Convert`.
    pub fn choice(&self) -> Bf16Kernel {
        if self.ratio() >= DOT_MIN_RATIO {
            Bf16Kernel::Dot
        } else {
            Bf16Kernel::Convert
        }
    }
}

/// The calibration, measured on first use and cached; `None` on a CPU without AVX512-BF16.
pub fn bf16_calibration() -> Option<Bf16Calibration> {
    static CAL: OnceLock<Option<Bf16Calibration>> = OnceLock::new();
    *CAL.get_or_init(|| {
        // 3 rounds of 100k iterations: about 0.5 ms per FMA run and 0.6 ms per dot run where
        // the dot rate is twice the FMA rate, 1.5 ms where it is half.
        let (dot, fma) = crate::peak::bf16_dot_and_fma_rates(100_000, 3)?;
        Some(Bf16Calibration {
            dot_gflops: dot,
            fma_gflops: fma,
        })
    })
}

impl std::fmt::Display for Bf16Kernel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// `CLIP_BF16`, read once.
fn env_choice() -> Option<Bf16Kernel> {
    static CHOICE: OnceLock<Option<Bf16Kernel>> = OnceLock::new();
    *CHOICE.get_or_init(|| {
        let v = std::env::var(BF16_ENV).ok()?;
        match v.trim().to_ascii_lowercase().as_str() {
            "" => None,
            "convert" => Some(Bf16Kernel::Convert),
            "dot" => Some(Bf16Kernel::Dot),
            _ => {
                eprintln!("warning: {BF16_ENV}={v} is not one of convert|dot; using convert");
                None
            }
        }
    })
}

/// Whether the CPU has AVX512-BF16 (`vdpbf16ps`) besides AVX-512F and BW; detected once.
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx512bf16() -> bool {
    static HAS: OnceLock<bool> = OnceLock::new();
    *HAS.get_or_init(|| {
        // (Every CPU with AVX512-BF16 has BW too; the dot kernel's A packer uses it.)
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512bf16")
    })
}

/// Rounds an f32 to the nearest bf16 (ties to even), as its 16 bits. Infinities stay
/// infinite, finite values beyond the largest bf16 round to infinity, NaN stays NaN (its top
/// mantissa bit set, so a NaN whose payload sits in the low half does not become infinity).
#[inline]
pub fn f32_to_bf16_bits(x: f32) -> u16 {
    let b = x.to_bits();
    if x.is_nan() {
        return ((b >> 16) as u16) | 0x0040;
    }
    // Adding 0x7FFF rounds up when the low half exceeds one half; the kept LSB breaks ties
    // towards even. A carry into the exponent is the correct rounding (up to infinity).
    ((b + 0x7FFF + ((b >> 16) & 1)) >> 16) as u16
}

/// [`f32_to_bf16_bits`], except that a finite value rounding beyond the largest bf16
/// (3.3961e38, below f32's 3.4028e38) gives that largest bf16, with its sign, instead of an
/// infinity: how the dot kernels round activations, so that rounding never turns a finite
/// activation into an infinity (and a product with a zero weight into NaN) where the f32
/// path stays finite. Weights keep the IEEE rounding.
#[inline]
pub fn f32_to_bf16_bits_sat(x: f32) -> u16 {
    let h = f32_to_bf16_bits(x);
    if h & 0x7FFF == 0x7F80 && x.is_finite() {
        (h & 0x8000) | 0x7F7F
    } else {
        h
    }
}

/// The f32 value of a bf16 (exact).
#[inline]
pub fn bf16_bits_to_f32(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

/// The f32 value of an IEEE binary16 (exact: every f16 is an f32).
#[inline]
pub fn f16_bits_to_f32(h: u16) -> f32 {
    let sign = ((h & 0x8000) as u32) << 16;
    let exp = ((h >> 10) & 0x1F) as u32;
    let man = (h & 0x3FF) as u32;
    match exp {
        // Zero or subnormal: man * 2^-24, exact in f32 (2^-24 is 0x3380_0000).
        0 => {
            let v = man as f32 * f32::from_bits(0x3380_0000);
            if sign != 0 {
                -v
            } else {
                v
            }
        }
        0x1F => f32::from_bits(sign | 0x7F80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// Two bf16 of consecutive k as one packed element, the lower k in the low half.
#[inline(always)]
pub(crate) fn pair(lo: u16, hi: u16) -> u32 {
    lo as u32 | ((hi as u32) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule on the figures measured on each CPU family (`docs/kernels.md`): Zen 4's 2.1x
    /// picks the dot kernel, Sapphire Rapids' 0.49x the conversion kernel.
    #[test]
    fn calibration_picks_dot_only_where_it_is_fast() {
        let cal = |dot, fma| Bf16Calibration {
            dot_gflops: dot,
            fma_gflops: fma,
        };
        assert_eq!(cal(235.0, 117.0).choice(), Bf16Kernel::Dot);
        assert_eq!(cal(86.0, 176.0).choice(), Bf16Kernel::Convert);
        assert_eq!(cal(1.29, 1.0).choice(), Bf16Kernel::Convert);
        assert_eq!(cal(1.3, 1.0).choice(), Bf16Kernel::Dot);
    }

    /// On this CPU, without `CLIP_BF16`, the default follows the measurement (once measured,
    /// the choice is fixed for the process); kernel sets without a dot kernel convert.
    #[test]
    fn default_follows_the_calibration() {
        if env_choice().is_some() {
            return eprintln!("CLIP_BF16 is set: the calibration is not used");
        }
        for isa in Isa::available() {
            let want = match (isa, bf16_calibration()) {
                (Isa::Avx512, Some(c)) => {
                    eprintln!(
                        "bf16 calibration: dot {:.1}, fma {:.1} GFLOP/s ({:.2}x): {}",
                        c.dot_gflops,
                        c.fma_gflops,
                        c.ratio(),
                        c.choice()
                    );
                    c.choice()
                }
                _ => Bf16Kernel::Convert,
            };
            assert_eq!(Bf16Kernel::default_for(isa), want, "{isa}");
            assert_eq!(Bf16Kernel::default_for(isa), Bf16Kernel::default_for(isa));
        }
    }
}
