//! Vector math: `exp`, `erf`, `sigmoid`, exact `gelu` and `quick_gelu`, written once.
//!
//! Every algorithm here is generic over `SimdF32`, a small set of lane-wise f32 operations
//! implemented per kernel set: [`scalar`] (`f32`, the reference), [`portable`]
//! (`wide::f32x8`), [`avx2`] (`__m256`) and [`avx512`] (`__m512`). Because the operation
//! sequence is the same for every lane width, and the scalar reference uses a fused
//! multiply-add exactly where the SIMD versions do, the scalar, AVX2 and AVX-512 results are
//! bitwise identical for every input. (The portable set uses `wide`'s `mul_add`, which is
//! fused only when the crate is compiled with the `fma` target feature; otherwise its results
//! may differ from the others by an ulp or so.)
//!
//! Each public per-ISA module exposes functions on its native vector type (safe
//! `#[target_feature]` functions for the x86 types). Inside the crate the kernels call the
//! generic algorithms on the lane types directly (the AVX-512 GEMM epilogue does). The
//! slice-level, dispatched API is in [`crate::rows`]; which lane type a kernel set uses is
//! `crate::table`. Measured accuracy: `docs/numerics.md`. Coefficients:
//! `kernels/scripts/fit_polys.py`.
//!
//! Not here: reductions over rows, memory traversal, threads.

pub mod portable;
pub mod scalar;

#[cfg(target_arch = "x86_64")]
pub mod avx2;
#[cfg(target_arch = "x86_64")]
pub mod avx512;

/// Lane-wise f32 operations, one implementation per kernel set.
///
/// For the x86 types ([`avx2::Avx2F32`], [`avx512::Avx512F32`]) the methods call intrinsics
/// that need the matching target features. Crate invariant: values of those types are only
/// created and used inside code that runs after [`crate::Isa::is_available`] returned true for
/// that kernel set (in practice: inside the set's target-feature function entered by
/// `table::run` after its check, inside the micro-kernels, or in the `#[target_feature]`
/// functions of the per-ISA modules). The methods cannot carry `#[target_feature]` themselves:
/// a trait method with it must be `unsafe`, and they must be `#[inline(always)]`.
///
/// Code generic over this trait must reach the target-feature function through
/// `#[inline(always)]` functions and trait methods only. A closure or `fn` item passed into
/// the generic code may stay out of line, compiled *without* the features, and then every
/// intrinsic inside it becomes a function call (many times slower: `docs/performance.md`).
/// Use a small trait with an `#[inline(always)]` method instead (see `rows/generic.rs`).
pub(crate) trait SimdF32: Copy {
    /// Number of f32 lanes.
    const LANES: usize;
    /// A lane mask as produced by comparisons.
    type Mask: Copy;

    fn splat(v: f32) -> Self;
    /// Loads `LANES` values from the start of `s` (panics if `s` is shorter).
    fn load(s: &[f32]) -> Self;
    /// Stores `LANES` values to the start of `d` (panics if `d` is shorter).
    fn store(self, d: &mut [f32]);

    fn add(self, o: Self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn mul(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    /// `self * m + a`, fused where the kernel set has FMA.
    fn mul_add(self, m: Self, a: Self) -> Self;
    /// Lane-wise maximum; which operand a NaN lane yields is unspecified.
    fn max(self, o: Self) -> Self;
    /// Lane-wise minimum; which operand a NaN lane yields is unspecified.
    fn min(self, o: Self) -> Self;
    fn abs(self) -> Self;
    /// The magnitude of `self` with the sign bit of `sign`.
    fn copysign(self, sign: Self) -> Self;
    /// Round to the nearest integer, ties to even.
    fn round(self) -> Self;
    /// `2^n` for lanes holding integral values in `[-126, 127]`.
    fn pow2i(n: Self) -> Self;

    /// `self < o` (false for NaN).
    fn lt(self, o: Self) -> Self::Mask;
    /// `self > o` (false for NaN).
    fn gt(self, o: Self) -> Self::Mask;
    fn is_nan(self) -> Self::Mask;
    /// Lane-wise `if m { t } else { f }`.
    fn select(m: Self::Mask, t: Self, f: Self) -> Self;

    /// Sum of the lanes, in a fixed order.
    fn reduce_add(self) -> f32;
    /// Maximum of the lanes.
    fn reduce_max(self) -> f32;

    /// Loads `s.len() < LANES` values, the missing lanes set to `pad`.
    #[inline(always)]
    fn load_padded(s: &[f32], pad: f32) -> Self {
        let mut buf = [pad; 16];
        buf[..s.len()].copy_from_slice(s);
        Self::load(&buf)
    }

    /// Stores the first `d.len() < LANES` lanes into `d`.
    #[inline(always)]
    fn store_partial(self, d: &mut [f32]) {
        let mut buf = [0.0f32; 16];
        self.store(&mut buf);
        let n = d.len();
        d.copy_from_slice(&buf[..n]);
    }
}

// ---- constants ---------------------------------------------------------------------------

/// Inputs above this give `+inf` (just above ln(f32::MAX)).
pub(crate) const EXP_HI: f32 = 88.722_84;
/// Inputs below this give `0`. Slightly above ln(f32::MIN_POSITIVE) = -87.33654: inputs are
/// clamped here before the polynomial, and the clamped lanes (padding, masked `-inf` scores)
/// must still produce a *normal* intermediate, or every multiply on them takes a
/// microcode assist (~100 cycles) for a subnormal result. `e^EXP_LO` = 1.18e-38, so results
/// below that (0.7 % above the smallest normal) are flushed to zero.
pub(crate) const EXP_LO: f32 = -87.33;
const LOG2E: f32 = std::f32::consts::LOG2_E;
/// ln 2 split in two (Cody-Waite): `LN2_HI` has few bits so `n * LN2_HI` is exact.
const LN2_HI: f32 = 0.693_359_4;
const LN2_LO: f32 = -2.121_944_4e-4;
/// `e^r ~ 1 + r + r^2 * q(r)` on `|r| <= ln2/2`, q of degree 4 (minimax, relative error 3e-9).
const EXP_Q: [f32; 5] = [
    0.499_999_94,
    0.166_665_21,
    0.041_668_39,
    0.008_368_745,
    0.001_381_454,
];

/// `erf(a) ~ a * P(a^2)` on `0 <= a <= 1`, P of degree 6 (minimax, relative error 1.2e-9).
/// Stored as `P - 1` (first coefficient 1.128379166 - 1) and evaluated as `a + a * (P - 1)`,
/// so the last step is one FMA with a small correction term.
const ERF_P_M1: [f32; 7] = [
    0.128_379_17,
    -0.376_126_26,
    0.112_836,
    -0.026_854_444,
    0.005_189_535_7,
    -8.020_842e-4,
    7.889_123e-5,
];
/// `erfc(a) ~ exp(Q(a - 1))` on `1 <= a <= 4`, Q of degree 8 (minimax in absolute error of
/// Q, that is relative error of erfc: 1.2e-8). Centred at 1, where erfc is largest, so the
/// f32 rounding of Horner's scheme costs the least absolute error in erf there.
const ERFC_Q: [f32; 9] = [
    -1.849_605_6,
    -2.638_967_3,
    -0.843_107_8,
    -0.041_568_298,
    0.010_068_683,
    -0.002_048_138_3,
    3.179_112_7e-4,
    -3.249_949_8e-5,
    1.599_815_8e-6,
];
const ERFC_CENTER: f32 = 1.0;
/// Above this `erf(a)` rounds to 1 in f32 (`erfc(4) = 1.5e-8`); `erfc` is returned as 0.
const ERF_ONE: f32 = 4.0;
/// The constant of CLIP's `quick_gelu`.
pub(crate) const QUICK_GELU_ALPHA: f32 = 1.702;

// ---- algorithms --------------------------------------------------------------------------

/// Horner's scheme with FMA, coefficients in increasing degree.
#[inline(always)]
fn horner<V: SimdF32, const N: usize>(x: V, c: &[f32; N]) -> V {
    let mut acc = V::splat(c[N - 1]);
    for &ci in c[..N - 1].iter().rev() {
        acc = acc.mul_add(x, V::splat(ci));
    }
    acc
}

/// `e^x`: `x = n ln2 + r`, `e^x = 2^n e^r`, `e^r` by a polynomial. Error <= 1 ulp for normal
/// results (measured); `x > EXP_HI` gives `+inf`, `x < EXP_LO` gives `0`, NaN gives NaN.
#[inline(always)]
pub(crate) fn exp<V: SimdF32>(x: V) -> V {
    let xc = x.max(V::splat(EXP_LO)).min(V::splat(EXP_HI));
    let n = xc.mul(V::splat(LOG2E)).round(); // in [-126, 128]
    let r = n.mul_add(V::splat(-LN2_HI), xc);
    let r = n.mul_add(V::splat(-LN2_LO), r);
    let q = horner(r, &EXP_Q);
    let p = q.mul_add(r.mul(r), r).add(V::splat(1.0));
    // 2^n = 2^(n-k) * 2^k with k = (n > 0), so that n - k stays a normal exponent; both
    // multiplications by powers of two are exact (or overflow to inf, as they should).
    let k = V::select(n.gt(V::splat(0.0)), V::splat(1.0), V::splat(0.0));
    let y = p.mul(V::pow2i(n.sub(k))).mul(k.add(V::splat(1.0)));
    let y = V::select(x.gt(V::splat(EXP_HI)), V::splat(f32::INFINITY), y);
    let y = V::select(x.lt(V::splat(EXP_LO)), V::splat(0.0), y);
    V::select(x.is_nan(), x, y)
}

/// `(erf(a), erfc(a))` for `a >= 0` (or NaN): both with a small absolute error, and `erfc`
/// also with a small relative error for `a <= 4`.
#[inline(always)]
fn erf_erfc_nonneg<V: SimdF32>(a: V) -> (V, V) {
    let one = V::splat(1.0);
    // 0 <= a <= 1: odd polynomial.
    let e_small = a.mul_add(horner(a.mul(a), &ERF_P_M1), a);
    let c_small = one.sub(e_small);
    // 1 < a <= 4: erfc = exp(Q(a - 1)).
    let u = a.min(V::splat(ERF_ONE)).sub(V::splat(ERFC_CENTER));
    let c_large = exp(horner(u, &ERFC_Q));
    let e_large = one.sub(c_large);
    // NaN compares false everywhere and stays in the small branch, which propagates it.
    let large = a.gt(one);
    let e = V::select(large, e_large, e_small);
    let c = V::select(large, c_large, c_small);
    let tail = a.gt(V::splat(ERF_ONE));
    (V::select(tail, one, e), V::select(tail, V::splat(0.0), c))
}

/// `erf(x)`, absolute error about 1e-7 (measured figure in `docs/numerics.md`); odd, NaN in
/// NaN out, `erf(+-inf) = +-1`.
#[inline(always)]
pub(crate) fn erf<V: SimdF32>(x: V) -> V {
    let (e, _) = erf_erfc_nonneg(x.abs());
    e.copysign(x)
}

/// `1 / (1 + e^-x)`.
#[inline(always)]
pub(crate) fn sigmoid<V: SimdF32>(x: V) -> V {
    let one = V::splat(1.0);
    one.div(one.add(exp(V::splat(0.0).sub(x))))
}

/// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`. For `x < 0` the factor `1 + erf(z)` is taken as
/// `erfc(|z|)`, which keeps a small relative error down to `x ~ -5.6` instead of cancelling.
#[inline(always)]
pub(crate) fn gelu<V: SimdF32>(x: V) -> V {
    let z = x.mul(V::splat(std::f32::consts::FRAC_1_SQRT_2));
    let (e, c) = erf_erfc_nonneg(z.abs());
    let one_plus_erf = V::select(z.lt(V::splat(0.0)), c, V::splat(1.0).add(e));
    V::splat(0.5).mul(x).mul(one_plus_erf)
}

/// CLIP's `quick_gelu`, `x * sigmoid(1.702 x)`, computed as `x / (1 + e^(-1.702 x))`.
#[inline(always)]
pub(crate) fn quick_gelu<V: SimdF32>(x: V) -> V {
    let e = exp(V::splat(-QUICK_GELU_ALPHA).mul(x));
    x.div(V::splat(1.0).add(e))
}
