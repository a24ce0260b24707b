//! The AVX512-BF16 dot micro-kernel, `bf16gemm_ukernel_avx512bf16_10x32`: A and B as bf16
//! pairs, products accumulated in f32 by `vdpbf16ps`.
//!
//! ```text
//!   per pair p:  b0 = 16 pairs (cols 0..16)   b1 = 16 pairs (cols 16..32)   2 zmm loads
//!   A: (a[0][2p], a[0][2p+1]) -> vpbroadcastd -> acc[0][0] += dot(a, b0)   acc[0][1] += dot(a, b1)
//!      ..                                        ..
//!      (a[9][2p], a[9][2p+1])                    acc[9][0]                  acc[9][1]
//! ```
//! 20 accumulators + 2 B vectors + 1 broadcast = 23 zmm; per pair 20 `vdpbf16ps` (each 32
//! multiply-adds) against 2 B loads and 10 A broadcasts. Each `vdpbf16ps` lane adds
//! `a[2p+1]*b[2p+1]`, then `a[2p]*b[2p]`, to the accumulator, each rounded to nearest even, with
//! bf16 subnormals read as zero and subnormal results flushed (Intel's specification; modelled
//! bit for bit by [`crate::arch::scalar::ScalarBf16Dot`]).
//!
//! Block sizes are the AVX-512 conversion kernel's (the packed B layout is shared): KC = 1024
//! (a 64 KiB B micro-panel), NR = 32.
//!
//! Where `vdpbf16ps zmm` has a lower FLOP rate than `vfmadd231ps zmm` (on the Xeon this was
//! written on it competes for the same two ports: `docs/performance.md`), this kernel is
//! slower than the conversion kernel wherever the GEMM is compute-bound; it is kept for CPUs
//! where the instruction is fast (AMD Zen 4/5) and as an option.
//!
//! Not here: the conversion kernel and the shared epilogue (`avx512.rs`).

use super::avx512::{store_tile, stream_ahead, PanelPrefetch};
use crate::gemm::{Activation, MicroKernel, Prefetch};
use crate::Isa;
use core::arch::x86_64::*;

/// The AVX512-BF16 10x32 dot micro-kernel.
pub(crate) struct Avx512Bf16Dot;

const MR: usize = 10;
const NR: usize = 32;

impl MicroKernel for Avx512Bf16Dot {
    type A = u32;
    type B = u32;
    type Wide = Self;
    const ISA: Isa = Isa::Avx512;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 1024;
    const MC: usize = 240;
    const NC: usize = 3072;

    fn is_available() -> bool {
        crate::gemm::has_avx512bf16()
    }

    unsafe fn pack_a_rows(dst: &mut [u32], src: &[f32], rs: usize, kc: usize) -> bool {
        // SAFETY: the CPU has AVX512-BF16, hence AVX-512F and BW (`has_avx512bf16`).
        unsafe { pack_a_pairs_avx512(dst, src, rs, kc) }
    }

    unsafe fn ukernel(
        kc: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    ) {
        // SAFETY: forwarded contract; the CPU has AVX512-BF16 (`is_available`, checked
        // by `PackedB` before it names this kernel).
        unsafe {
            bf16gemm_ukernel_avx512bf16_10x32(
                kc,
                a,
                b,
                c,
                rs_c,
                alpha,
                beta,
                bias,
                Activation::None,
                Prefetch::NONE,
            )
        }
    }

    unsafe fn ukernel_pf(
        kc: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
        act: Activation,
        pf: Prefetch,
    ) {
        // SAFETY: as in `ukernel`; prefetches never fault.
        unsafe { bf16gemm_ukernel_avx512bf16_10x32(kc, a, b, c, rs_c, alpha, beta, bias, act, pf) }
    }
}

/// Rounds 16 f32 to bf16 as [`crate::gemm::f32_to_bf16_bits_sat`] does (nearest even, finite
/// values saturating at the largest bf16; NaN quietened), each left in the high half of its
/// lane.
#[inline]
#[target_feature(enable = "avx512f")]
fn round_bf16_hi(x: __m512i) -> __m512i {
    let lsb = _mm512_and_si512(_mm512_srli_epi32::<16>(x), _mm512_set1_epi32(1));
    let r = _mm512_add_epi32(_mm512_add_epi32(x, _mm512_set1_epi32(0x7FFF)), lsb);
    let xf = _mm512_castsi512_ps(x);
    let abs = _mm512_set1_epi32(0x7FFF_FFFF);
    let inf = _mm512_set1_epi32(0x7F80_0000);
    // Finite inputs whose rounding carried into the infinity pattern: the largest bf16.
    let finite = _mm512_cmplt_epi32_mask(_mm512_and_si512(x, abs), inf);
    let over = _mm512_mask_cmpge_epi32_mask(finite, _mm512_and_si512(r, abs), inf);
    let sign = _mm512_and_si512(x, _mm512_set1_epi32(i32::MIN));
    let r = _mm512_mask_mov_epi32(
        r,
        over,
        _mm512_or_si512(sign, _mm512_set1_epi32(0x7F7F_0000)),
    );
    let nan = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(xf, xf);
    _mm512_mask_mov_epi32(r, nan, _mm512_or_si512(x, _mm512_set1_epi32(0x0040_0000)))
}

/// Packs an MR-row micro-panel of A as bf16 pairs, k-major (`dst[p*MR + r]` = the pair of
/// rows `r`, k `2p` and `2p+1`), 32 k at a time: each row's 32 floats are rounded (integer
/// arithmetic, the bits of `f32_to_bf16_bits_sat`) and their high halves packed into 16 pairs
/// (`vpermt2w`) in a small row-major block, which MR gathers of 16 lanes turn k-major (lane
/// `i` of gather `v` is output `o = 16v + i`: row `o % MR`, pair `o / MR`). The tail goes
/// through the scalar rounding. About 8x the generic packer; the same pairs.
///
/// Panics unless `kc` is even, `src` holds `(MR-1)*rs + kc` floats and `dst` `kc/2*MR` pairs.
#[target_feature(enable = "avx512f,avx512bw")]
fn pack_a_pairs_avx512(dst: &mut [u32], src: &[f32], rs: usize, kc: usize) -> bool {
    use crate::gemm::f32_to_bf16_bits_sat;
    assert!(kc.is_multiple_of(2) && src.len() >= (MR - 1) * rs + kc && dst.len() >= kc / 2 * MR);
    let mut words = [0u16; 32];
    for (j, w) in words.iter_mut().enumerate() {
        // The high half of lane l of the first (j < 16) or second vector.
        *w = if j < 16 {
            2 * j + 1
        } else {
            32 + 2 * (j - 16) + 1
        } as u16;
    }
    let mut gather = [[0i32; 16]; MR];
    for (v, g) in gather.iter_mut().enumerate() {
        for (i, l) in g.iter_mut().enumerate() {
            let o = 16 * v + i;
            *l = ((o % MR) * 16 + o / MR) as i32;
        }
    }
    // SAFETY: reads 32 u16 and MR x 16 i32 from local arrays of those sizes.
    let (words, gather) = unsafe {
        let w = _mm512_loadu_si512(words.as_ptr().cast());
        let mut g = [_mm512_setzero_si512(); MR];
        for (gv, row) in g.iter_mut().zip(&gather) {
            *gv = _mm512_loadu_si512(row.as_ptr().cast());
        }
        (w, g)
    };
    let full = kc / 32 * 32;
    let mut block = [[0u32; 16]; MR];
    for k in (0..full).step_by(32) {
        for (r, out) in block.iter_mut().enumerate() {
            // SAFETY: reads src[r*rs + k .. + 32], inside `src` (asserted: k + 32 <= kc);
            // writes the 16 u32 of `out`.
            unsafe {
                let p = src.as_ptr().add(r * rs + k);
                let h0 = round_bf16_hi(_mm512_loadu_si512(p.cast()));
                let h1 = round_bf16_hi(_mm512_loadu_si512(p.add(16).cast()));
                let pairs = _mm512_permutex2var_epi16(h0, words, h1);
                _mm512_storeu_si512(out.as_mut_ptr().cast(), pairs);
            }
        }
        // SAFETY: the gathers read lanes < MR*16 of `block`; the stores write
        // dst[k/2*MR .. (k/2 + 16)*MR], inside `dst` (asserted).
        unsafe {
            let out = dst.as_mut_ptr().add(k / 2 * MR);
            for (v, &g) in gather.iter().enumerate() {
                let x = _mm512_i32gather_epi32::<4>(g, block.as_ptr().cast());
                _mm512_storeu_si512(out.add(16 * v).cast(), x);
            }
        }
    }
    for p in full / 2..kc / 2 {
        for r in 0..MR {
            let lo = f32_to_bf16_bits_sat(src[r * rs + 2 * p]);
            let hi = f32_to_bf16_bits_sat(src[r * rs + 2 * p + 1]);
            dst[p * MR + r] = lo as u32 | (hi as u32) << 16;
        }
    }
    true
}

/// # Safety
/// See [`MicroKernel::ukernel`] for [`Avx512Bf16Dot`]; the CPU supports AVX-512F and
/// AVX512-BF16.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn bf16gemm_ukernel_avx512bf16_10x32(
    kc: usize,
    a: *const u32,
    b: *const u32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
    act: Activation,
    pf: Prefetch,
) {
    // SAFETY: forwarded contract.
    unsafe {
        if pf.stream_b {
            dot_body::<true>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf)
        } else {
            dot_body::<false>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf)
        }
    }
}

/// The dot kernel's loop; `STREAM` as in the f32 kernel (`avx512.rs`): the first tile of a
/// task to read a B micro-panel also prefetches it into L1.
///
/// # Safety
/// As [`bf16gemm_ukernel_avx512bf16_10x32`].
#[inline]
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn dot_body<const STREAM: bool>(
    kc: usize,
    mut a: *const u32,
    mut b: *const u32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
    act: Activation,
    pf: Prefetch,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels (kc/2 x MR and
    // kc/2 x NR pairs) and tile.
    unsafe {
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let mut pf = PanelPrefetch::new(pf.next, pf.next_bytes, kc / 2);
        for _ in 0..kc / 2 {
            pf.next();
            if STREAM {
                stream_ahead(b);
            }
            let b0: __m512bh = core::mem::transmute(_mm512_loadu_si512(b.cast()));
            let b1: __m512bh = core::mem::transmute(_mm512_loadu_si512(b.add(16).cast()));
            for r in 0..MR {
                let ar: __m512bh = core::mem::transmute(_mm512_set1_epi32(*a.add(r) as i32));
                acc0[r] = _mm512_dpbf16_ps(acc0[r], b0, ar);
                acc1[r] = _mm512_dpbf16_ps(acc1[r], b1, ar);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        store_tile::<MR>(&acc0, &acc1, c, rs_c, alpha, beta, bias, act);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gemm::f32_to_bf16_bits_sat;

    /// The vector packer gives the pairs of the scalar rounding, for depths around its 32-k
    /// step, padded row strides, and values that round every way (ties, NaN, infinities,
    /// subnormals, overflow to infinity).
    #[test]
    fn pair_packer_matches_the_scalar_rounding() {
        if !crate::gemm::has_avx512bf16() {
            return eprintln!("!!! dot pair packer: no AVX512-BF16 here: SKIPPED !!!");
        }
        let mut state = 7u64;
        let mut bits = || {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let b = (state >> 32) as u32;
            match state % 7 {
                0 => (b & 0xFFFF_0000) | 0x8000,      // a tie
                1 => b & 0x807F_FFFF,                 // a subnormal
                2 => 0x7F80_0000 | (b & 0x8000_FFFF), // inf or NaN (low payload)
                3 => 0x7F7F_8000 | (b & 0x8000_7FFF), // near overflow
                _ => b,
            }
        };
        for kc in [2, 30, 32, 34, 64, 66, 1024] {
            for rs in [kc, kc + 5] {
                let src: Vec<f32> = (0..(MR - 1) * rs + kc)
                    .map(|_| f32::from_bits(bits()))
                    .collect();
                let mut dst = vec![0xDEAD_BEEFu32; kc / 2 * MR];
                // SAFETY: the CPU was checked to run AVX512-BF16 (and so AVX-512F and BW).
                assert!(unsafe { pack_a_pairs_avx512(&mut dst, &src, rs, kc) });
                for p in 0..kc / 2 {
                    for r in 0..MR {
                        let lo = f32_to_bf16_bits_sat(src[r * rs + 2 * p]) as u32;
                        let hi = f32_to_bf16_bits_sat(src[r * rs + 2 * p + 1]) as u32;
                        assert_eq!(
                            dst[p * MR + r],
                            lo | hi << 16,
                            "kc={kc} rs={rs} p={p} r={r}"
                        );
                    }
                }
            }
        }
    }
}
