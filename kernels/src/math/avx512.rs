//! [`crate::math`] on `__m512` (AVX-512F, 16 lanes).
//!
//! `Avx512F32` implements the crate's lane operations with AVX-512F intrinsics. Values of it
//! only exist inside code that runs after `Isa::Avx512.is_available()` was checked (the crate
//! invariant stated on `SimdF32`: trait methods cannot carry `#[target_feature]`, and they must
//! be `#[inline(always)]`); every `unsafe` block below relies on that. The public functions take
//! and return raw `__m512` and are safe `#[target_feature]` functions: callable without
//! `unsafe` from code compiled with AVX-512F.
//!
//! Not here: the algorithms (`math/mod.rs`), slices (`rows::`).

use super::SimdF32;
use std::arch::x86_64::*;

/// Sixteen f32 lanes in a ZMM register. Only used where AVX-512F is available.
#[derive(Clone, Copy)]
pub(crate) struct Avx512F32(pub(crate) __m512);

macro_rules! avx512 {
    ($e:expr) => {
        // SAFETY: Avx512F32 values exist only where AVX-512F is available (see module doc).
        unsafe { $e }
    };
}

impl SimdF32 for Avx512F32 {
    const LANES: usize = 16;
    type Mask = __mmask16;

    #[inline(always)]
    fn splat(v: f32) -> Self {
        Self(avx512!(_mm512_set1_ps(v)))
    }
    #[inline(always)]
    fn load(s: &[f32]) -> Self {
        let s = &s[..16];
        // SAFETY: `s` has 16 elements (sliced above); AVX-512F available (module invariant).
        Self(unsafe { _mm512_loadu_ps(s.as_ptr()) })
    }
    #[inline(always)]
    fn store(self, d: &mut [f32]) {
        let d = &mut d[..16];
        // SAFETY: `d` has 16 elements (sliced above); AVX-512F available (module invariant).
        unsafe { _mm512_storeu_ps(d.as_mut_ptr(), self.0) }
    }
    #[inline(always)]
    fn load_padded(s: &[f32], pad: f32) -> Self {
        let k: __mmask16 = (1u32 << s.len().min(15)) as u16 - 1;
        // SAFETY: the mask enables the first min(s.len(), 15) lanes, all in bounds (callers pass
        // tails shorter than 16); masked-off lanes are not accessed (no fault). AVX-512F
        // available (module invariant).
        Self(unsafe { _mm512_mask_loadu_ps(_mm512_set1_ps(pad), k, s.as_ptr()) })
    }
    #[inline(always)]
    fn store_partial(self, d: &mut [f32]) {
        let k: __mmask16 = (1u32 << d.len().min(15)) as u16 - 1;
        // SAFETY: as in `load_padded`: only the first min(d.len(), 15) lanes are written.
        unsafe { _mm512_mask_storeu_ps(d.as_mut_ptr(), k, self.0) }
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Self(avx512!(_mm512_add_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn sub(self, o: Self) -> Self {
        Self(avx512!(_mm512_sub_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn mul(self, o: Self) -> Self {
        Self(avx512!(_mm512_mul_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn div(self, o: Self) -> Self {
        Self(avx512!(_mm512_div_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn mul_add(self, m: Self, a: Self) -> Self {
        Self(avx512!(_mm512_fmadd_ps(self.0, m.0, a.0)))
    }
    #[inline(always)]
    fn max(self, o: Self) -> Self {
        Self(avx512!(_mm512_max_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn min(self, o: Self) -> Self {
        Self(avx512!(_mm512_min_ps(self.0, o.0)))
    }
    #[inline(always)]
    fn abs(self) -> Self {
        Self(avx512!(_mm512_abs_ps(self.0)))
    }
    #[inline(always)]
    fn copysign(self, sign: Self) -> Self {
        avx512!({
            let m = _mm512_set1_epi32(i32::MIN);
            let s = _mm512_and_si512(m, _mm512_castps_si512(sign.0));
            let a = _mm512_andnot_si512(m, _mm512_castps_si512(self.0));
            Self(_mm512_castsi512_ps(_mm512_or_si512(s, a)))
        })
    }
    #[inline(always)]
    fn round(self) -> Self {
        Self(avx512!(_mm512_roundscale_ps::<
            { _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC },
        >(self.0)))
    }
    #[inline(always)]
    fn pow2i(n: Self) -> Self {
        avx512!({
            let i = _mm512_add_epi32(_mm512_cvtps_epi32(n.0), _mm512_set1_epi32(127));
            Self(_mm512_castsi512_ps(_mm512_slli_epi32::<23>(i)))
        })
    }
    #[inline(always)]
    fn lt(self, o: Self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_LT_OQ>(self.0, o.0))
    }
    #[inline(always)]
    fn gt(self, o: Self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_GT_OQ>(self.0, o.0))
    }
    #[inline(always)]
    fn is_nan(self) -> __mmask16 {
        avx512!(_mm512_cmp_ps_mask::<_CMP_UNORD_Q>(self.0, self.0))
    }
    #[inline(always)]
    fn select(m: __mmask16, t: Self, f: Self) -> Self {
        Self(avx512!(_mm512_mask_blend_ps(m, f.0, t.0)))
    }
    #[inline(always)]
    fn reduce_add(self) -> f32 {
        avx512!(_mm512_reduce_add_ps(self.0))
    }
    #[inline(always)]
    fn reduce_max(self) -> f32 {
        avx512!(_mm512_reduce_max_ps(self.0))
    }
}

/// `e^x` lane-wise (see [`crate::math`]).
///
/// # Safety
/// Safe to call from code compiled with AVX-512F; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx512.is_available()`).
#[target_feature(enable = "avx512f")]
#[inline]
pub fn exp(x: __m512) -> __m512 {
    super::exp(Avx512F32(x)).0
}

/// `erf(x)` lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX-512F; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx512.is_available()`).
#[target_feature(enable = "avx512f")]
#[inline]
pub fn erf(x: __m512) -> __m512 {
    super::erf(Avx512F32(x)).0
}

/// `1 / (1 + e^-x)` lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX-512F; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx512.is_available()`).
#[target_feature(enable = "avx512f")]
#[inline]
pub fn sigmoid(x: __m512) -> __m512 {
    super::sigmoid(Avx512F32(x)).0
}

/// Exact GELU lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX-512F; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx512.is_available()`).
#[target_feature(enable = "avx512f")]
#[inline]
pub fn gelu(x: __m512) -> __m512 {
    super::gelu(Avx512F32(x)).0
}

/// `x * sigmoid(1.702 x)` lane-wise.
///
/// # Safety
/// Safe to call from code compiled with AVX-512F; from elsewhere (in `unsafe`) only when
/// the CPU has them (`Isa::Avx512.is_available()`).
#[target_feature(enable = "avx512f")]
#[inline]
pub fn quick_gelu(x: __m512) -> __m512 {
    super::quick_gelu(Avx512F32(x)).0
}
