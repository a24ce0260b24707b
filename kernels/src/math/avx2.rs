//! [`crate::math`] on `__m256` (AVX2 + FMA, 8 lanes).
//!
//! `Avx2F32` implements the crate's lane operations with AVX/AVX2/FMA intrinsics. Values of
//! it only exist inside code that runs after `Isa::Avx2.is_available()` was checked (the crate
//! invariant stated on `SimdF32`: trait methods cannot carry `#[target_feature]`, and they must
//! be `#[inline(always)]`); every `unsafe` block below relies on that. The public functions take
//! and return raw `__m256` and are safe `#[target_feature]` functions: callable without
//! `unsafe` from code compiled with AVX2 and FMA.
//!
//! Not here: the algorithms (`math/mod.rs`), slices (`rows::`).

use super::SimdF32;
use std::arch::x86_64::*;

/// Eight f32 lanes in an AVX register. Only used where AVX2 and FMA are available.
#[derive(Clone, Copy)]
pub(crate) struct Avx2F32(pub(crate) __m256);

macro_rules! avx {
    ($e:expr) => {
        // SAFETY: Avx2F32 values exist only where AVX2+FMA are available (see module doc).
        unsafe { $e }
    };
}

impl SimdF32 for Avx2F32 {
    const LANES: usize = 8;
    type Mask = __m256;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self(avx!(_mm256_set1_ps(v)))
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let s = &s[..8];
        // SAFETY: `s` has 8 elements (sliced above); AVX available (module invariant).
        Self(unsafe { _mm256_loadu_ps(s.as_ptr()) })
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        let d = &mut d[..8];
        // SAFETY: `d` has 8 elements (sliced above); AVX available (module invariant).
        unsafe { _mm256_storeu_ps(d.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn load_padded(s: &[f32], pad: f32) -> Self {
        let m = tail_mask(s.len());
        // SAFETY: the mask enables the first min(s.len(), 8) lanes, all in bounds; masked-off
        // lanes are not accessed (no fault). AVX2 available (module invariant).
        unsafe {
            let v = _mm256_maskload_ps(s.as_ptr(), m);
            Self(_mm256_blendv_ps(
                _mm256_set1_ps(pad),
                v,
                _mm256_castsi256_ps(m),
            ))
        }
    }
    #[inline(always)]
    fn store_partial(self, d: &mut [f32]) {
        let m = tail_mask(d.len());
        // SAFETY: as in `load_padded`: only the first min(d.len(), 8) lanes are written.
        unsafe { _mm256_maskstore_ps(d.as_mut_ptr(), m, self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(avx!(_mm256_add_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(avx!(_mm256_sub_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(avx!(_mm256_mul_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(avx!(_mm256_div_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        Self(avx!(_mm256_fmadd_ps(self.0, m.0, a.0)))
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        Self(avx!(_mm256_max_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        Self(avx!(_mm256_min_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(avx!(_mm256_andnot_ps(_mm256_set1_ps(-0.0), self.0)))
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        avx!({
            let m = _mm256_set1_ps(-0.0);
            Self(_mm256_or_ps(
                _mm256_and_ps(m, sign.0),
                _mm256_andnot_ps(m, self.0),
            ))
        })
    }
    #[inline(always)]
    fn round(self) -> Self {
        Self(avx!(_mm256_round_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(self.0)))
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        avx!({
            let i = _mm256_add_epi32(_mm256_cvtps_epi32(n.0), _mm256_set1_epi32(127));
            Self(_mm256_castsi256_ps(_mm256_slli_epi32::<23>(i)))
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __m256 {
        avx!(_mm256_cmp_ps::<_CMP_LT_OQ>(self.0, o.0))
    }
    #[inline(always)]
    fn gt(self, o: Self) -> __m256 {
        avx!(_mm256_cmp_ps::<_CMP_GT_OQ>(self.0, o.0))
    }
    #[inline(always)]
    fn is_nan(self) -> __m256 {
        avx!(_mm256_cmp_ps::<_CMP_UNORD_Q>(self.0, self.0))
    }
    #[inline(always)]
    fn select(m: __m256, t: Self, f: Self) -> Self {
        Self(avx!(_mm256_blendv_ps(f.0, t.0, m)))
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        avx!({
            // (lane i + lane i+4), then pairs, then the last two: a fixed tree.
            let s = _mm_add_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let s = _mm_add_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)))
        })
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        avx!({
            let s = _mm_max_ps(
                _mm256_castps256_ps128(self.0),
                _mm256_extractf128_ps::<1>(self.0),
            );
            let s = _mm_max_ps(s, _mm_movehl_ps(s, s));
            _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)))
        })
    }
}

/// All-ones in the first `n.min(8)` 32-bit lanes.
#[inline(always)]
fn tail_mask(n: usize) -> __m256i {
    let n = n.min(8) as i32;
    avx!(_mm256_cmpgt_epi32(
        _mm256_set1_epi32(n),
        _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7)
    ))
}

/// `e^x` lane-wise (see [`crate::math`]).
///
/// # Safety
/// Safe to call from code compiled with AVX2 and FMA; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx2.is_available()`).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn exp(x: __m256) -> __m256 {
    super::exp(Avx2F32(x)).0
}

/// `erf(x)` lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX2 and FMA; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx2.is_available()`).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn erf(x: __m256) -> __m256 {
    super::erf(Avx2F32(x)).0
}

/// `1 / (1 + e^-x)` lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX2 and FMA; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx2.is_available()`).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn sigmoid(x: __m256) -> __m256 {
    super::sigmoid(Avx2F32(x)).0
}

/// Exact GELU lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX2 and FMA; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx2.is_available()`).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn gelu(x: __m256) -> __m256 {
    super::gelu(Avx2F32(x)).0
}

/// `x * sigmoid(1.702 x)` lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX2 and FMA; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx2.is_available()`).
#[target_feature(enable = "avx2,fma")]
#[inline]
pub fn quick_gelu(x: __m256) -> __m256 {
    super::quick_gelu(Avx2F32(x)).0
}
