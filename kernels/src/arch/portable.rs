//! The portable micro-kernels, `sgemm_ukernel_portable_4x16` and its bf16 conversion twin, over
//! `wide::f32x8`: SIMD on any target `wide` supports, chosen when neither AVX2 nor AVX-512 is
//! available.
//!
//! Registers: 4 rows x 2 vectors of 8 = 8 accumulators; per k, two B vectors and four
//! broadcasts of A.

use crate::gemm::MicroKernel;
use crate::Isa;
use wide::{f32x8, u32x8};

/// The portable 4x16 micro-kernel.
pub(crate) struct Portable;

const MR: usize = 4;
const NR: usize = 16;

#[inline(always)]
fn load(s: &[f32]) -> f32x8 {
    let mut v = [0.0f32; 8];
    v.copy_from_slice(&s[..8]);
    f32x8::from(v)
}

impl MicroKernel for Portable {
    type A = f32;
    type B = f32;
    type Wide = Self;
    const ISA: Isa = Isa::Portable;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 2048;

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
        let mut acc = [[f32x8::ZERO; 2]; MR];
        for (ak, bk) in a.chunks_exact(MR).zip(b.chunks_exact(NR)) {
            let b0 = load(&bk[0..8]);
            let b1 = load(&bk[8..16]);
            for r in 0..MR {
                let ar = f32x8::splat(ak[r]);
                acc[r][0] = ar.mul_add(b0, acc[r][0]);
                acc[r][1] = ar.mul_add(b1, acc[r][1]);
            }
        }
        // SAFETY: forwarded contract.
        unsafe { store_tile(&acc, c, rs_c, alpha, beta, bias) }
    }
}

/// `C <- alpha*acc (+ beta*C) (+ bias)` for a 4 x 16 tile.
///
/// # Safety
/// As [`MicroKernel::ukernel`] for an `MR x NR` tile.
#[inline(always)]
unsafe fn store_tile(
    acc: &[[f32x8; 2]; MR],
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
) {
    let va = f32x8::splat(alpha);
    let vb = f32x8::splat(beta);
    for (r, acc_r) in acc.iter().enumerate() {
        for (h, &acc_v) in acc_r.iter().enumerate() {
            // SAFETY: the caller guarantees an MR x NR tile at `c` with row stride rs_c
            // (readable when beta != 0), and NR floats at a non-null `bias`.
            unsafe {
                let cp = std::slice::from_raw_parts_mut(c.add(r * rs_c + 8 * h), 8);
                let mut v = va * acc_v;
                if beta != 0.0 {
                    v = vb.mul_add(load(cp), v);
                }
                if !bias.is_null() {
                    v += load(std::slice::from_raw_parts(bias.add(8 * h), 8));
                }
                cp.copy_from_slice(&v.to_array());
            }
        }
    }
}

/// The portable bf16 conversion micro-kernel, `bf16gemm_ukernel_portable_4x16`: A f32
/// (`kc x 4`, `kc` even), B bf16 pairs (`kc/2 x 16`); per pair, two `u32x8` loads widened to
/// the even-k vectors (`x << 16`) and the odd-k vectors (`x & 0xFFFF0000`), then the f32
/// kernel's FMAs in k order (so the result is bitwise [`Portable`]'s on the rounded B).
pub(crate) struct PortableBf16;

#[inline(always)]
fn load_u32(s: &[u32]) -> u32x8 {
    let mut v = [0u32; 8];
    v.copy_from_slice(&s[..8]);
    u32x8::from(v)
}

impl MicroKernel for PortableBf16 {
    type A = f32;
    type B = u32;
    type Wide = Self;
    const ISA: Isa = Isa::Portable;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 256;
    const MC: usize = 128;
    const NC: usize = 2048;

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
        let hi = u32x8::splat(0xFFFF_0000);
        let mut acc = [[f32x8::ZERO; 2]; MR];
        for (ak, bk) in a.chunks_exact(2 * MR).zip(b.chunks_exact(NR)) {
            let x0 = load_u32(&bk[0..8]);
            let x1 = load_u32(&bk[8..16]);
            let e0: f32x8 = bytemuck::cast(x0 << 16);
            let e1: f32x8 = bytemuck::cast(x1 << 16);
            for r in 0..MR {
                let ar = f32x8::splat(ak[r]);
                acc[r][0] = ar.mul_add(e0, acc[r][0]);
                acc[r][1] = ar.mul_add(e1, acc[r][1]);
            }
            let o0: f32x8 = bytemuck::cast(x0 & hi);
            let o1: f32x8 = bytemuck::cast(x1 & hi);
            for r in 0..MR {
                let ar = f32x8::splat(ak[MR + r]);
                acc[r][0] = ar.mul_add(o0, acc[r][0]);
                acc[r][1] = ar.mul_add(o1, acc[r][1]);
            }
        }
        // SAFETY: forwarded contract.
        unsafe { store_tile(&acc, c, rs_c, alpha, beta, bias) }
    }
}
