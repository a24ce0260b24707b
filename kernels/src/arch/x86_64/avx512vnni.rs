//! The AVX512-VNNI int8 micro-kernel, `i8gemm_ukernel_avx512vnni_10x32`: u8 activations
//! times s8 weights by `vpdpbusd`, summed in i32, dequantised in registers.
//!
//! ```text
//!   per quad q (4 k):  b0 = 16 columns x 4 s8   b1 = columns 16..32          2 zmm loads
//!   A: a[0] (4 u8) -> vpbroadcastd -> acc[0][0] += dpbusd(a, b0)   acc[0][1] += dpbusd(a, b1)
//!      ..                              ..                           ..
//!      a[9]                            acc[9][0]                    acc[9][1]
//! ```
//! 20 i32 accumulators + 2 B vectors + 1 broadcast = 23 zmm; per quad 20 `vpdpbusd` (each 64
//! multiply-adds) against 2 B loads and 10 broadcasts. `vpdpbusd` adds four u8 x s8
//! products to each i32 lane without saturation; the sums are exact (`|acc| <= 255*127*K`,
//! `K <= 65536`), so the order of the k does not matter and the result equals the scalar
//! reference's. The epilogue is `gemm::int8::dequant` on 16 lanes: `vpmulld`/`vpsubd` for the
//! zero-point correction, `vcvtdq2ps`, the scale product, then beta, bias and the activation
//! as in the f32 kernels.
//!
//! The B micro-panel of a K = 768 product is 24 KiB: it stays in L1 across the tiles of a
//! panel (3072: 96 KiB, in L2). Prefetch as in `avx512.rs`.
//!
//! Not here: the quantisation and loops (`gemm/int8.rs`, `gemm/loops_int8.rs`).

use super::avx512::{stream_ahead, PanelPrefetch};
use crate::gemm::{Activation, Int8Kernel, Prefetch, QuantTile, RowQuant};
use crate::Isa;
use core::arch::x86_64::*;

/// The AVX512-VNNI 10x32 int8 micro-kernel.
pub(crate) struct Avx512Vnni;

const MR: usize = 10;
const NR: usize = 32;

/// Whether the CPU has AVX512-VNNI (and BW), detected once.
pub(crate) fn has_avx512vnni() -> bool {
    static HAS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *HAS.get_or_init(|| {
        std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vnni")
    })
}

impl Int8Kernel for Avx512Vnni {
    const ISA: Isa = Isa::Avx512;
    const MR: usize = MR;
    const NR: usize = NR;
    const MC: usize = 240;
    type AQuad = u32;

    fn is_available() -> bool {
        has_avx512vnni()
    }

    fn a_quad(q: [u8; 4]) -> u32 {
        u32::from_le_bytes(q)
    }

    unsafe fn quantize_row(x: &[f32], out: &mut [u8]) -> RowQuant {
        // SAFETY: the CPU has AVX-512F and BW (`is_available`).
        unsafe { quantize_row_avx512(x, out) }
    }

    unsafe fn ukernel(
        kq: usize,
        a: *const u32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        beta: f32,
        q: &QuantTile,
        bias: *const f32,
        act: Activation,
        pf: Prefetch,
    ) {
        // SAFETY: forwarded contract; the CPU has AVX512-VNNI (`is_available`, checked when
        // the `PackedB` named this kernel).
        unsafe {
            if pf.stream_b {
                i8gemm_ukernel_avx512vnni_10x32::<true>(kq, a, b, c, rs_c, beta, q, bias, act, pf)
            } else {
                i8gemm_ukernel_avx512vnni_10x32::<false>(kq, a, b, c, rs_c, beta, q, bias, act, pf)
            }
        }
    }
}

/// The kernel; `STREAM` as in `avx512.rs` (the first tile of a task to read a B micro-panel
/// also prefetches it into L1).
///
/// # Safety
/// See [`Int8Kernel::ukernel`]; the CPU supports AVX-512F, BW and VNNI.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8gemm_ukernel_avx512vnni_10x32<const STREAM: bool>(
    kq: usize,
    mut a: *const u32,
    mut b: *const u32,
    c: *mut f32,
    rs_c: usize,
    beta: f32,
    q: &QuantTile,
    bias: *const f32,
    act: Activation,
    pf: Prefetch,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels (kq x MR and
    // kq x NR quads), tile, row and column arrays and bias.
    unsafe {
        let mut acc0 = [_mm512_setzero_si512(); MR];
        let mut acc1 = [_mm512_setzero_si512(); MR];
        let mut pf = PanelPrefetch::new(pf.next, pf.next_bytes, kq);
        for _ in 0..kq {
            pf.next();
            if STREAM {
                stream_ahead(b);
            }
            let b0 = _mm512_loadu_si512(b.cast());
            let b1 = _mm512_loadu_si512(b.add(16).cast());
            for r in 0..MR {
                let ar = _mm512_set1_epi32(*a.add(r) as i32);
                acc0[r] = _mm512_dpbusd_epi32(acc0[r], ar, b0);
                acc1[r] = _mm512_dpbusd_epi32(acc1[r], ar, b1);
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        store_dequant(&acc0, &acc1, c, rs_c, beta, q, bias, act);
    }
}

/// `C <- act(dequant(acc) (+ beta*C) (+ bias))` for a 10 x 32 tile, as
/// `gemm::int8::dequant` and the row kernels' activation on the same 16 lanes.
///
/// # Safety
/// As [`Int8Kernel::ukernel`]; the CPU supports AVX-512F.
#[inline]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn store_dequant(
    acc0: &[__m512i; MR],
    acc1: &[__m512i; MR],
    c: *mut f32,
    rs_c: usize,
    beta: f32,
    q: &QuantTile,
    bias: *const f32,
    act: Activation,
) {
    use crate::math::{avx512::Avx512F32, gelu, quick_gelu};
    let act = |v: __m512| match act {
        Activation::None => v,
        Activation::QuickGelu => quick_gelu(Avx512F32(v)).0,
        Activation::Gelu => gelu(Avx512F32(v)).0,
    };
    // SAFETY: every access stays within the caller-guaranteed tile, arrays and bias.
    unsafe {
        let (cs0, cs1) = (
            _mm512_loadu_ps(q.col_scale),
            _mm512_loadu_ps(q.col_scale.add(16)),
        );
        let (sum0, sum1) = (
            _mm512_loadu_si512(q.col_sum.cast()),
            _mm512_loadu_si512(q.col_sum.add(16).cast()),
        );
        let vb = _mm512_set1_ps(beta);
        for r in 0..MR {
            let cr = c.add(r * rs_c);
            let zp = _mm512_set1_epi32(*q.row_zp.add(r));
            let rs = _mm512_set1_ps(*q.row_scale.add(r));
            let corr0 = _mm512_sub_epi32(acc0[r], _mm512_mullo_epi32(zp, sum0));
            let corr1 = _mm512_sub_epi32(acc1[r], _mm512_mullo_epi32(zp, sum1));
            let mut v0 = _mm512_mul_ps(_mm512_cvtepi32_ps(corr0), _mm512_mul_ps(rs, cs0));
            let mut v1 = _mm512_mul_ps(_mm512_cvtepi32_ps(corr1), _mm512_mul_ps(rs, cs1));
            if beta != 0.0 {
                v0 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr), v0);
                v1 = _mm512_fmadd_ps(vb, _mm512_loadu_ps(cr.add(16)), v1);
            }
            if !bias.is_null() {
                v0 = _mm512_add_ps(v0, _mm512_loadu_ps(bias));
                v1 = _mm512_add_ps(v1, _mm512_loadu_ps(bias.add(16)));
            }
            _mm512_storeu_ps(cr, act(v0));
            _mm512_storeu_ps(cr.add(16), act(v1));
        }
    }
}

/// [`crate::gemm::int8::quantize_row_scalar`] on 16 lanes: the extremes by `vminps`/`vmaxps`
/// (exact, so the lane order does not matter), the same scalar parameters, then
/// `vmulps`, `vcvtps2dq` (nearest even, as `round_ties_even`), `+ zp`, a clamp and a
/// narrowing to u8. The same bytes as the scalar definition.
///
/// Panics unless `out` is at least as long as `x`.
#[target_feature(enable = "avx512f,avx512bw")]
pub(crate) fn quantize_row_avx512(x: &[f32], out: &mut [u8]) -> RowQuant {
    use crate::gemm::int8::{quantize_act, row_params};
    assert!(out.len() >= x.len());
    let n = x.len();
    let full = n / 16 * 16;
    let (mut lo, mut hi) = (_mm512_setzero_ps(), _mm512_setzero_ps());
    // NaN or infinity: `x - x` is NaN exactly for those.
    let mut bad = _mm512_setzero_ps();
    for i in (0..full).step_by(16) {
        // SAFETY: reads x[i..i+16], inside `x`.
        let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
        lo = _mm512_min_ps(lo, v);
        hi = _mm512_max_ps(hi, v);
        bad = _mm512_add_ps(bad, _mm512_sub_ps(v, v));
    }
    let (mut lo_s, mut hi_s) = (_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi));
    let mut finite = _mm512_cmp_ps_mask::<_CMP_UNORD_Q>(bad, bad) == 0;
    for &v in &x[full..] {
        finite &= v.is_finite();
        lo_s = lo_s.min(v);
        hi_s = hi_s.max(v);
    }
    // (`vminps`/`vmaxps` pass a NaN operand through in some lanes, the scalar `min`/`max`
    // skip it; either way the row is marked not finite and its extremes are unused.)
    let (scale, inv, zp) = row_params(lo_s, hi_s, finite);
    let (vinv, vzp) = (_mm512_set1_ps(inv), _mm512_set1_epi32(zp));
    let (zero, top) = (_mm512_setzero_si512(), _mm512_set1_epi32(255));
    for i in (0..full).step_by(16) {
        // SAFETY: reads x[i..i+16] and writes out[i..i+16], inside both (asserted).
        unsafe {
            let v = _mm512_loadu_ps(x.as_ptr().add(i));
            let qv = _mm512_add_epi32(_mm512_cvtps_epi32(_mm512_mul_ps(v, vinv)), vzp);
            let qv = _mm512_min_epi32(_mm512_max_epi32(qv, zero), top);
            _mm_storeu_si128(out.as_mut_ptr().add(i).cast(), _mm512_cvtepi32_epi8(qv));
        }
    }
    for (o, &v) in out[full..n].iter_mut().zip(&x[full..]) {
        *o = quantize_act(v, inv, zp);
    }
    RowQuant { scale, zp }
}
