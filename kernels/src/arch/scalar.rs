//! The scalar reference micro-kernels: `sgemm_ukernel_scalar_4x8` (f32), for bf16 B the
//! conversion kernel and a model of the AVX512-BF16 dot kernel, and the int8 kernel
//! `i8gemm_ukernel_scalar_4x8`. Plain Rust, the oracles the SIMD kernels are tested against.
//! Multiply and add are separate roundings (no FMA), except in the dot model, which follows
//! `vdpbf16ps`, and in the int8 epilogue, which is the definition of `gemm/int8.rs`.
//!
//! Not here: the loops and packing (`gemm/`).

use crate::gemm::{Activation, Int8Kernel, MicroKernel, Prefetch, QuantTile};
use crate::Isa;

/// The scalar 4x8 micro-kernel.
pub(crate) struct Scalar;

const MR: usize = 4;
const NR: usize = 8;

impl MicroKernel for Scalar {
    type A = f32;
    type B = f32;
    type Wide = Self;
    const ISA: Isa = Isa::Scalar;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 1024;
    const MC: usize = 64;
    const NC: usize = 1024;

    unsafe fn ukernel(
        kc: usize,
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    ) {
        // SAFETY: the caller guarantees kc*MR floats at `a` and kc*NR at `b`.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, kc * MR),
                std::slice::from_raw_parts(b, kc * NR),
            )
        };
        let mut acc = [[0.0f32; NR]; MR];
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for r in 0..MR {
                for j in 0..NR {
                    acc[r][j] += ak[r] * bk[j];
                }
            }
        }
        // SAFETY: forwarded contract.
        unsafe { store_tile(&acc, c, rs_c, alpha, beta, bias) }
    }
}

/// `f32(x << 16)` and `f32(x & 0xFFFF_0000)`: the two bf16 of a pair, widened (exactly).
#[inline(always)]
pub(crate) fn widen_pair(x: u32) -> (f32, f32) {
    (f32::from_bits(x << 16), f32::from_bits(x & 0xFFFF_0000))
}

/// `C[r][j] <- alpha*acc (+ beta*C) (+ bias)` with the scalar kernel's roundings (a multiply
/// and an add, no FMA).
///
/// # Safety
/// As [`MicroKernel::ukernel`] for an `MR x NR` tile.
#[inline(always)]
unsafe fn store_tile(
    acc: &[[f32; NR]; MR],
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
) {
    for (r, acc_r) in acc.iter().enumerate() {
        for (j, &v) in acc_r.iter().enumerate() {
            // SAFETY: the caller guarantees an MR x NR tile at `c` with row stride rs_c,
            // and NR floats at a non-null `bias`.
            unsafe {
                let cp = c.add(r * rs_c + j);
                let mut v = alpha * v;
                if beta != 0.0 {
                    v += beta * *cp;
                }
                if !bias.is_null() {
                    v += *bias.add(j);
                }
                *cp = v;
            }
        }
    }
}

/// The scalar bf16 conversion micro-kernel, `bf16gemm_ukernel_scalar_4x8`: the reference of
/// the conversion kernels. A is f32 (`kc x MR`, `kc` even), B bf16 pairs (`kc/2 x NR`); each
/// pair is widened and multiplied exactly as [`Scalar`] multiplies f32, in k order, so the
/// result is bitwise the f32 kernel's on the bf16-rounded B.
pub(crate) struct ScalarBf16;

impl MicroKernel for ScalarBf16 {
    type A = f32;
    type B = u32;
    type Wide = Self;
    const ISA: Isa = Isa::Scalar;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 1024;
    const MC: usize = 64;
    const NC: usize = 1024;

    unsafe fn ukernel(
        kc: usize,
        a: *const f32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
    ) {
        // SAFETY: the caller guarantees kc*MR floats at `a` and kc/2*NR pairs at `b`.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, kc * MR),
                std::slice::from_raw_parts(b, kc / 2 * NR),
            )
        };
        let mut acc = [[0.0f32; NR]; MR];
        for (ak, bk) in a.chunks_exact(2 * MR).zip(b.chunks_exact(NR)) {
            let mut even = [0.0f32; NR];
            let mut odd = [0.0f32; NR];
            for j in 0..NR {
                (even[j], odd[j]) = widen_pair(bk[j]);
            }
            for r in 0..MR {
                for j in 0..NR {
                    acc[r][j] += ak[r] * even[j];
                }
            }
            for r in 0..MR {
                for j in 0..NR {
                    acc[r][j] += ak[MR + r] * odd[j];
                }
            }
        }
        // SAFETY: forwarded contract.
        unsafe { store_tile(&acc, c, rs_c, alpha, beta, bias) }
    }
}

/// A bf16 value as `vdpbf16ps` reads it: subnormals are zero (DAZ).
#[inline(always)]
fn daz(x: f32) -> f32 {
    if x.is_subnormal() {
        0.0f32.copysign(x)
    } else {
        x
    }
}

/// A result as `vdpbf16ps` writes it: subnormals are flushed to zero (FTZ).
#[inline(always)]
fn ftz(x: f32) -> f32 {
    daz(x)
}

/// The scalar model of the AVX512-BF16 dot micro-kernel, `bf16gemm_ukernel_scalar_dot_4x8`:
/// the reference of [`crate::arch::x86_64::avx512bf16`]. A and B are bf16 pairs; per pair,
/// as Intel specifies `vdpbf16ps`: `acc = fma(a[2p+1], b[2p+1], acc)`, then
/// `acc = fma(a[2p], b[2p], acc)`, each rounded to nearest even, with bf16 subnormal inputs
/// read as zero and subnormal results flushed to zero. The epilogue is the AVX-512 kernel's
/// (`alpha*acc`, then `fma(beta, C, .)`, then `+ bias`), so the two agree bit for bit.
pub(crate) struct ScalarBf16Dot;

impl MicroKernel for ScalarBf16Dot {
    type A = u32;
    type B = u32;
    type Wide = Self;
    const ISA: Isa = Isa::Scalar;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 1024;
    const MC: usize = 64;
    const NC: usize = 1024;

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
        // SAFETY: the caller guarantees kc/2*MR pairs at `a` and kc/2*NR pairs at `b`.
        let (a, b) = unsafe {
            (
                std::slice::from_raw_parts(a, kc / 2 * MR),
                std::slice::from_raw_parts(b, kc / 2 * NR),
            )
        };
        let mut acc = [[0.0f32; NR]; MR];
        for (ap, bp) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for r in 0..MR {
                let (a0, a1) = widen_pair(ap[r]);
                let (a0, a1) = (daz(a0), daz(a1));
                for j in 0..NR {
                    let (b0, b1) = widen_pair(bp[j]);
                    let t = ftz(a1.mul_add(daz(b1), acc[r][j]));
                    acc[r][j] = ftz(a0.mul_add(daz(b0), t));
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            for (j, &v) in acc_r.iter().enumerate() {
                // SAFETY: the caller guarantees an MR x NR tile at `c` with row stride rs_c,
                // and NR floats at a non-null `bias`.
                unsafe {
                    let cp = c.add(r * rs_c + j);
                    let mut v = alpha * v;
                    if beta != 0.0 {
                        v = beta.mul_add(*cp, v);
                    }
                    if !bias.is_null() {
                        v += *bias.add(j);
                    }
                    *cp = v;
                }
            }
        }
    }
}

/// The scalar int8 micro-kernel, `i8gemm_ukernel_scalar_4x8`: the reference of the int8
/// kernels. Per quad of k, each row's four u8 activations times each column's four s8
/// weights, summed in i32 (exact, so the order is free); then the epilogue of
/// `gemm::int8::dequant` and the row kernels' activation. The portable and NEON sets use it
/// too.
pub(crate) struct ScalarI8;

impl Int8Kernel for ScalarI8 {
    const ISA: Isa = Isa::Scalar;
    const MR: usize = MR;
    const NR: usize = NR;
    const MC: usize = 64;
    type AQuad = u32;

    fn a_quad(q: [u8; 4]) -> u32 {
        u32::from_le_bytes(q)
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
        _pf: Prefetch,
    ) {
        // SAFETY: the caller guarantees kq*MR quads at `a`, kq*NR at `b`, MR row and NR
        // column values behind `q`.
        let (a, b, rsc, rzp, csc, csum) = unsafe {
            (
                std::slice::from_raw_parts(a, kq * MR),
                std::slice::from_raw_parts(b, kq * NR),
                std::slice::from_raw_parts(q.row_scale, MR),
                std::slice::from_raw_parts(q.row_zp, MR),
                std::slice::from_raw_parts(q.col_scale, NR),
                std::slice::from_raw_parts(q.col_sum, NR),
            )
        };
        let mut acc = [[0i32; NR]; MR];
        for (aq, bq) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            for r in 0..MR {
                let x = aq[r].to_le_bytes();
                for j in 0..NR {
                    let w = bq[j].to_le_bytes();
                    for t in 0..4 {
                        acc[r][j] += x[t] as i32 * w[t] as i8 as i32;
                    }
                }
            }
        }
        for (r, acc_r) in acc.iter().enumerate() {
            // SAFETY: row r of the tile is NR writable (and, if beta != 0, readable) floats
            // at c + r*rs_c; a non-null bias has NR floats.
            let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * rs_c), NR) };
            for (j, o) in row.iter_mut().enumerate() {
                // SAFETY: as above.
                let bj = (!bias.is_null()).then(|| unsafe { *bias.add(j) });
                *o = crate::gemm::int8::dequant(
                    acc_r[j], rzp[r], csum[j], rsc[r], csc[j], beta, *o, bj,
                );
            }
            crate::gemm::apply_activation(Self::ISA, act, row);
        }
    }
}
