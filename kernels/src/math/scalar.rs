//! The scalar reference of [`crate::math`]: the same algorithms on one `f32` lane.
//!
//! Uses `f32::mul_add` (a correctly rounded fused multiply-add) wherever the SIMD kernel sets
//! use FMA, so results are bitwise identical to the AVX2 and AVX-512 versions. Not a libm:
//! subnormal results of `exp` are flushed to zero, as in every kernel set.

use super::SimdF32;

impl SimdF32 for f32 {
    const LANES: usize = 1;
    type Mask = bool;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        v
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        s[0]
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        d[0] = self;
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self + o
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        self - o
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        self * o
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        self / o
    }
    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        f32::mul_add(self, m, a)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        f32::max(self, o)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        f32::min(self, o)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32::abs(self)
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        f32::copysign(self, sign)
    }
    #[inline(always)]
    fn round(self) -> Self {
        f32::round_ties_even(self)
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        f32::from_bits(((n as i32 + 127) as u32) << 23)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> bool {
        self < o
    }
    #[inline(always)]
    fn gt(self, o: Self) -> bool {
        self > o
    }
    #[inline(always)]
    fn is_nan(self) -> bool {
        f32::is_nan(self)
    }
    #[inline(always)]
    fn select(m: bool, t: Self, f: Self) -> Self {
        if m {
            t
        } else {
            f
        }
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        self
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        self
    }
}

/// `e^x` (see [`crate::math`] for the algorithm and error).
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    super::exp(x)
}

/// `erf(x)`.
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    super::erf(x)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub fn sigmoid(x: f32) -> f32 {
    super::sigmoid(x)
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    super::gelu(x)
}

/// `x * sigmoid(1.702 x)`.
#[inline(always)]
pub fn quick_gelu(x: f32) -> f32 {
    super::quick_gelu(x)
}
