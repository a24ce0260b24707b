//! The AVX2 int8 micro-kernel, `i8gemm_ukernel_avx2_6x8`: u8 activations times s8 weights in
//! 16-bit lanes by `vpmaddwd`, summed in i32, dequantised after the k loop.
//!
//! ```text
//!   per quad q (4 k):  w0 = vpmovsxbw(columns 0..4 x 4 s8)   w1 = columns 4..8       2 loads
//!                      i32 lane 2c: (w[4q][c], w[4q+1][c])  lane 2c+1: (w[4q+2][c], w[4q+3][c])
//!   A: a[r] = (a0, a1, a2, a3) as u16 -> vpbroadcastq -> lanes (a0, a1), (a2, a3), ..
//!      acc[r][0] += vpmaddwd(a, w0)     acc[r][1] += vpmaddwd(a, w1)      x 6 rows
//!   after the loop: column c = lane 2c + lane 2c+1 (vphaddd, vpermq)
//! ```
//! 12 accumulators + 2 B vectors + 1 broadcast + 1 product = 16 ymm.
//!
//! Why not `vpmaddubsw` (u8 x s8 pairs into i16): a pair of products of 8-bit activations
//! (up to 255) and weights (up to 127) reaches 64770 and saturates the i16, so it would need
//! 7-bit activations (half the resolution, and results that differ from the other kernels) or
//! splitting each activation in two (twice the multiplies). Widened to 16 bits at packing (A)
//! and at load (B, one `vpmovsxbw` per 4 columns, reused by 6 rows), `vpmaddwd` sums the pair
//! in an i32: exact, so this kernel gives the scalar reference's bits. 192 multiply-adds per
//! quad take 12 `vpmaddwd` and 12 `vpaddd`, against 96 per k step of the f32 kernel's 12 FMAs.
//!
//! Not here: the quantisation and loops (`gemm/int8.rs`, `gemm/loops_int8.rs`).

use crate::gemm::{apply_activation, Activation, Int8Kernel, Prefetch, QuantTile};
use crate::Isa;
use core::arch::x86_64::*;

/// The AVX2 6x8 int8 micro-kernel.
pub(crate) struct Avx2I8;

const MR: usize = 6;
const NR: usize = 8;

impl Int8Kernel for Avx2I8 {
    const ISA: Isa = Isa::Avx2;
    const MR: usize = MR;
    const NR: usize = NR;
    const MC: usize = 240;
    type AQuad = u64;

    fn a_quad(q: [u8; 4]) -> u64 {
        q.iter()
            .enumerate()
            .fold(0u64, |acc, (i, &v)| acc | (v as u64) << (16 * i))
    }

    unsafe fn ukernel(
        kq: usize,
        a: *const u64,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        beta: f32,
        q: &QuantTile,
        bias: *const f32,
        act: Activation,
        _pf: Prefetch,
    ) {
        // SAFETY: forwarded contract; the trait requires a CPU with AVX2.
        unsafe { i8gemm_ukernel_avx2_6x8(kq, a, b, c, rs_c, beta, q, bias) };
        if act != Activation::None {
            for r in 0..MR {
                // SAFETY: row r of the tile is NR writable floats at c + r*rs_c (contract).
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * rs_c), NR) };
                apply_activation(Isa::Avx2, act, row);
            }
        }
    }
}

/// # Safety
/// See [`Int8Kernel::ukernel`] for [`Avx2I8`]; the CPU supports AVX2 and FMA.
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn i8gemm_ukernel_avx2_6x8(
    kq: usize,
    mut a: *const u64,
    mut b: *const u32,
    c: *mut f32,
    rs_c: usize,
    beta: f32,
    q: &QuantTile,
    bias: *const f32,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels (kq x MR and
    // kq x NR quads), tile, row and column arrays and bias.
    unsafe {
        let mut acc0 = [_mm256_setzero_si256(); MR];
        let mut acc1 = [_mm256_setzero_si256(); MR];
        for _ in 0..kq {
            let w0 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.cast()));
            let w1 = _mm256_cvtepi8_epi16(_mm_loadu_si128(b.add(4).cast()));
            for r in 0..MR {
                let ar = _mm256_set1_epi64x(*a.add(r) as i64);
                acc0[r] = _mm256_add_epi32(acc0[r], _mm256_madd_epi16(ar, w0));
                acc1[r] = _mm256_add_epi32(acc1[r], _mm256_madd_epi16(ar, w1));
            }
            a = a.add(MR);
            b = b.add(NR);
        }
        let cs = _mm256_loadu_ps(q.col_scale);
        let sum = _mm256_loadu_si256(q.col_sum.cast());
        let vb = _mm256_set1_ps(beta);
        for r in 0..MR {
            let cr = c.add(r * rs_c);
            // Columns [0 1 4 5 | 2 3 6 7], then in order.
            let s = _mm256_hadd_epi32(acc0[r], acc1[r]);
            let s = _mm256_permute4x64_epi64::<0b11_01_10_00>(s);
            let zp = _mm256_set1_epi32(*q.row_zp.add(r));
            let corr = _mm256_sub_epi32(s, _mm256_mullo_epi32(zp, sum));
            let scale = _mm256_mul_ps(_mm256_set1_ps(*q.row_scale.add(r)), cs);
            let mut v = _mm256_mul_ps(_mm256_cvtepi32_ps(corr), scale);
            if beta != 0.0 {
                v = _mm256_fmadd_ps(vb, _mm256_loadu_ps(cr), v);
            }
            if !bias.is_null() {
                v = _mm256_add_ps(v, _mm256_loadu_ps(bias));
            }
            _mm256_storeu_ps(cr, v);
        }
    }
}
