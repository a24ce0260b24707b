//! [`crate::math`] on `wide::f32x8`: portable SIMD for any target.
//!
//! `wide` lowers to SSE2 on a baseline x86_64 build (two 4-lane halves) and to NEON on
//! aarch64. Its `mul_add` is fused only when the crate is compiled with the `fma` target
//! feature, so these results may differ from the scalar reference by about an ulp.

use super::SimdF32;
use wide::{f32x8, i32x8};

impl SimdF32 for f32x8 {
    const LANES: usize = 8;
    type Mask = f32x8;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        f32x8::splat(v)
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let a: [f32; 8] = s[..8].try_into().expect("8 lanes");
        f32x8::from(a)
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        d[..8].copy_from_slice(&self.to_array());
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
        f32x8::mul_add(self, m, a)
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        self.fast_max(o)
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        self.fast_min(o)
    }
    #[inline(always)]
    fn abs(self) -> Self {
        f32x8::abs(self)
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        f32x8::copysign(self, sign)
    }
    #[inline(always)]
    fn round(self) -> Self {
        f32x8::round(self)
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        let bits: i32x8 = (n.round_int() + i32x8::splat(127)) << 23;
        bytemuck::cast(bits)
    }
    #[inline(always)]
    fn lt(self, o: Self) -> Self {
        use wide::CmpLt;
        self.cmp_lt(o)
    }
    #[inline(always)]
    fn gt(self, o: Self) -> Self {
        use wide::CmpGt;
        self.cmp_gt(o)
    }
    #[inline(always)]
    fn is_nan(self) -> Self {
        f32x8::is_nan(self)
    }
    #[inline(always)]
    fn select(m: Self, t: Self, f: Self) -> Self {
        m.blend(t, f)
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        // Fixed order: pairwise over the halves, then the four sums left to right.
        let a = self.to_array();
        ((a[0] + a[4]) + (a[1] + a[5])) + ((a[2] + a[6]) + (a[3] + a[7]))
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        let a = self.to_array();
        a.into_iter().fold(f32::NEG_INFINITY, f32::max)
    }
}

/// `e^x` lane-wise (see [`crate::math`]).
#[inline(always)]
pub fn exp(x: f32x8) -> f32x8 {
    super::exp(x)
}

/// `erf(x)` lane-wise.
#[inline(always)]
pub fn erf(x: f32x8) -> f32x8 {
    super::erf(x)
}

/// `1 / (1 + e^-x)` lane-wise.
#[inline(always)]
pub fn sigmoid(x: f32x8) -> f32x8 {
    super::sigmoid(x)
}

/// Exact GELU lane-wise.
#[inline(always)]
pub fn gelu(x: f32x8) -> f32x8 {
    super::gelu(x)
}

/// `x * sigmoid(1.702 x)` lane-wise.
#[inline(always)]
pub fn quick_gelu(x: f32x8) -> f32x8 {
    super::quick_gelu(x)
}
