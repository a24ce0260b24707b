//! Shared helpers of the kernel tests: the kernel sets to test, a seeded generator, and f64
//! references for the functions the standard library lacks.
#![allow(dead_code)]

use clip_kernels::dispatch::test_isa;
use clip_kernels::Isa;

pub mod mat;

/// Every kernel set this CPU runs; says loudly which ones are skipped, and fails the test if
/// `CLIP_REQUIRE_ISA` names one of those.
pub fn isas(test: &str) -> Vec<Isa> {
    Isa::ALL
        .into_iter()
        .filter(|&isa| run_or_skip(test, isa))
        .collect()
}

/// Whether `test` runs the kernel set `isa`: `false`, said loudly, when this CPU cannot run
/// it; a panic (the test fails) when `CLIP_REQUIRE_ISA` names it all the same.
pub fn run_or_skip(test: &str, isa: Isa) -> bool {
    match test_isa(isa) {
        Ok(true) => true,
        Ok(false) => {
            eprintln!("!!! {test}: kernel set {isa} is NOT available on this CPU: SKIPPED !!!");
            false
        }
        Err(e) => panic!("{test}: {e}"),
    }
}

/// SplitMix64: small, seeded, good enough for test data.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        let u = (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32;
        lo + (hi - lo) * u
    }
    pub fn vec(&mut self, n: usize, lo: f32, hi: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(lo, hi)).collect()
    }
}

/// `erf(x)` in f64 to about 1e-16: `erf(x) = 2/sqrt(pi) e^(-x^2) sum_n 2^n x^(2n+1) / (2n+1)!!`,
/// a series of positive terms (no cancellation); `+-1` beyond |x| = 6.
pub fn erf_f64(x: f64) -> f64 {
    let a = x.abs();
    if a > 6.0 {
        return x.signum();
    }
    let (mut term, mut sum, mut n) = (a, a, 0.0);
    while term > sum * 1e-18 {
        n += 1.0;
        term *= 2.0 * a * a / (2.0 * n + 1.0);
        sum += term;
    }
    let r = 2.0 / std::f64::consts::PI.sqrt() * (-a * a).exp() * sum;
    r.copysign(x)
}

/// `erfc(a)` for `a >= 0` in f64 with a small relative error (continued fraction beyond 2).
pub fn erfc_f64(a: f64) -> f64 {
    if a < 2.0 {
        return 1.0 - erf_f64(a);
    }
    // erfc(a) = e^(-a^2)/sqrt(pi) * 1/(a + 1/2/(a + 1/(a + 3/2/(a + ...)))), evaluated bottom-up.
    let mut f = a;
    for k in (1..200).rev() {
        f = a + (k as f64 / 2.0) / f;
    }
    (-a * a).exp() / std::f64::consts::PI.sqrt() / f
}

pub fn gelu_f64(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    if z < 0.0 {
        0.5 * x * erfc_f64(-z)
    } else {
        0.5 * x * (1.0 + erf_f64(z))
    }
}

pub fn sigmoid_f64(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// `x * sigmoid(1.702 x)` with the product `1.702 x` rounded to f32 first, as every f32
/// implementation (PyTorch's too) computes it: `e^(1.702 x)` amplifies that rounding by up to
/// |1.702 x| ulp, which is a property of the f32 formula, not of a kernel.
pub fn quick_gelu_f64(x: f64) -> f64 {
    let t = (1.702f32 * x as f32) as f64;
    x * sigmoid_f64(t)
}

/// Distance in units of the last place of the f32 nearest to `exact`.
pub fn ulps(got: f32, exact: f64) -> f64 {
    let r = exact as f32;
    let ulp = if r == 0.0 {
        f32::from_bits(1) as f64
    } else {
        let next = f32::from_bits(r.abs().to_bits() + 1) as f64;
        next - r.abs() as f64
    };
    (got as f64 - exact).abs() / ulp
}
