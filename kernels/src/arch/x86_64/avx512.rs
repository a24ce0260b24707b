//! The AVX-512F micro-kernels: `sgemm_ukernel_avx512::<10>` (f32; `::<11>` for M that pads
//! less in 11-row tiles) and its bf16 conversion twin.
//!
//! ```text
//!            B: b0 = zmm(k, 0..16)   b1 = zmm(k, 16..32)
//!   A: a[0]  acc[0][0]               acc[0][1]
//!      a[1]  acc[1][0]               acc[1][1]
//!      ..    ..                      ..
//!      a[9]  acc[9][0]               acc[9][1]
//! ```
//! 20 accumulators + 2 B vectors + 1 broadcast = 23 of 32 zmm registers; per k, 20 FMAs
//! against 2 vector loads and 10 broadcasts. MR = 10 tiles ViT-B/32's 50 tokens exactly.
//!
//! Block sizes: KC = 1024 makes one depth block of CLIP's K = 768 and at most three of its
//! K = 3072, so C is read and rewritten at most twice; the 1024 x 32 B micro-panel (128 KiB)
//! lives in L2 and streams through L1 next to the A micro-panel (the L1 streamer keeps up:
//! 168 bytes per 10 cycles). MC = 240 keeps the 240 x 1024 A block (960 KiB) in the 2 MiB L2
//! beside it. NC = 3072 bounds the per-call packed B. Measured faster than KC = 256 / MC = 480
//! with the B panel in L1 (`docs/performance.md`).
//!
//! Prefetch: the loops pass each tile a share of the *next* B micro-panel; the kernel issues
//! one `prefetcht1` per k step across that share, so the next panel streams from memory into
//! L2 while this one is multiplied. Model weights (350 MB for ViT-B/32 in f32) do not fit in
//! cache, and at 50-77 rows a panel is used by only 5-8 tiles: without it the kernel waited
//! on memory. The first tile of a task to read a B micro-panel (`Prefetch::stream_b`) also
//! prefetches it into L1 32 k ahead of its loads (`body::<R, true>`): when M is a single tile
//! (8 text tokens) nothing else brings the panel closer than L2 in time; the other tiles
//! re-read the panel from L2 and run without it. (What each gained: `docs/performance.md`.)
//!
//! Not here: the loops that hand out the hints (`gemm/loops.rs`), the AVX512-BF16 dot kernel
//! (`avx512bf16.rs`).

use crate::gemm::{Activation, MicroKernel, Prefetch};
use crate::Isa;
use core::arch::x86_64::*;

/// The AVX-512F f32 micro-kernel of `R` rows by 32 columns (`R <= 14`).
pub(crate) struct Avx512Rows<const R: usize>;

/// The 10x32 tile: the default.
pub(crate) type Avx512 = Avx512Rows<MR>;

/// The 11x32 tile: the same loops and arithmetic with one more row, so that M = 77 (a full
/// CLIP text context) tiles exactly instead of padding to 80. The loops pick it over
/// [`Avx512`] when it pads fewer rows ([`use_r11`]); every element of C is the same k-ordered
/// FMA chain either way, so the result does not depend on the choice.
pub(crate) type Avx512R11 = Avx512Rows<11>;

const MR: usize = 10;
const NR: usize = 32;

/// Whether M rows pad to fewer rows in 11-row tiles than in 10-row ones.
pub(crate) fn use_r11(m: usize) -> bool {
    m.div_ceil(11) * 11 < m.div_ceil(MR) * MR
}

impl<const R: usize> MicroKernel for Avx512Rows<R> {
    type A = f32;
    type B = f32;
    type Wide = Self;
    const ISA: Isa = Isa::Avx512;
    const MR: usize = R;
    const NR: usize = NR;
    const KC: usize = 1024;
    /// 240 rows (a 960 KiB A block in L2), rounded down to whole tiles: 240 or 231.
    const MC: usize = 240 / R * R;
    const NC: usize = 3072;

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
        // SAFETY: forwarded contract; the trait requires a CPU with AVX-512F.
        unsafe {
            sgemm_ukernel_avx512::<R>(
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
        a: *const f32,
        b: *const f32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
        act: Activation,
        pf: Prefetch,
    ) {
        // SAFETY: forwarded contract; prefetches never fault.
        unsafe { sgemm_ukernel_avx512::<R>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf) }
    }

    unsafe fn pack_a_rows(dst: &mut [f32], src: &[f32], rs: usize, kc: usize) -> bool {
        // SAFETY: the trait requires a CPU with AVX-512F.
        unsafe { pack_a_rows_avx512::<R>(dst, src, rs, kc) }
    }
}

/// Packs an `R`-row micro-panel of A (k-major: `dst[k*R + r] = src[r*rs + k]`) 16 k at a
/// time: the 16*R floats of those k are R gathers of 16 lanes, one store each (lane `i` of
/// gather `v` is output `o = 16v + i`, row `o % R`, k `o / R`). Faster than the scalar
/// transpose (`docs/performance.md`); it moves the same floats, so the packed panel is the same.
///
/// Panics unless `src` holds `(R-1)*rs + kc` floats and `dst` `kc*R`.
#[target_feature(enable = "avx512f")]
fn pack_a_rows_avx512<const R: usize>(dst: &mut [f32], src: &[f32], rs: usize, kc: usize) -> bool {
    // Gather indices are i32 element offsets.
    if R > 16 || (R - 1) * rs + 16 > i32::MAX as usize {
        return false;
    }
    assert!(src.len() >= (R - 1) * rs + kc && dst.len() >= kc * R);
    let mut idx = [_mm512_setzero_si512(); R];
    for (v, iv) in idx.iter_mut().enumerate() {
        let mut lanes = [0i32; 16];
        for (i, l) in lanes.iter_mut().enumerate() {
            let o = 16 * v + i;
            *l = ((o % R) * rs + o / R) as i32;
        }
        // SAFETY: reads 16 i32 from a local array of 16.
        *iv = unsafe { _mm512_loadu_si512(lanes.as_ptr().cast()) };
    }
    let full = kc / 16 * 16;
    for k in (0..full).step_by(16) {
        // SAFETY: every lane reads src[r*rs + k + kk] with r < R, kk < 16 and k + 16 <= kc,
        // inside `src` (asserted above); the store writes dst[k*R..(k+16)*R], inside `dst`.
        unsafe {
            let base = src.as_ptr().add(k);
            let out = dst.as_mut_ptr().add(k * R);
            for (v, &iv) in idx.iter().enumerate() {
                _mm512_storeu_ps(out.add(16 * v), _mm512_i32gather_ps::<4>(iv, base.cast()));
            }
        }
    }
    for k in full..kc {
        for r in 0..R {
            dst[k * R + r] = src[r * rs + k];
        }
    }
    true
}

/// # Safety
/// See [`MicroKernel::ukernel`] with `MR = R <= 14`; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn sgemm_ukernel_avx512<const R: usize>(
    kc: usize,
    a: *const f32,
    b: *const f32,
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
            body::<R, true>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf)
        } else {
            body::<R, false>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf)
        }
    }
}

/// How far ahead of its loads, in bytes of the B micro-panel, the tile that streams the panel
/// prefetches it into L1 (`Prefetch::stream_b`): 32 steps of 128 bytes (32 f32 k, or 32 bf16
/// pairs), 4 KiB.
const L1_AHEAD: usize = 32 * 128;

/// Prefetches into L1 the two cache lines `L1_AHEAD` bytes past `b`, the B micro-panel row
/// (128 bytes) a streaming tile is about to load (a hint: any address is fine).
#[inline(always)]
pub(super) fn stream_ahead<T>(b: *const T) {
    let ahead = b.cast::<u8>().wrapping_add(L1_AHEAD);
    // SAFETY: a prefetch never faults, whatever the address.
    #[allow(unused_unsafe)]
    unsafe {
        _mm_prefetch::<_MM_HINT_T0>(ahead.cast());
        _mm_prefetch::<_MM_HINT_T0>(ahead.wrapping_add(64).cast());
    }
}

/// The micro-kernel for any `R <= 14` rows of two zmm columns.
///
/// # Safety
/// See [`MicroKernel::ukernel`] with `MR = R`, `NR = 32`; the CPU supports AVX-512F.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn body<const R: usize, const STREAM: bool>(
    kc: usize,
    mut a: *const f32,
    mut b: *const f32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
    act: Activation,
    pf: Prefetch,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels and tile.
    unsafe {
        let mut acc0 = [_mm512_setzero_ps(); R];
        let mut acc1 = [_mm512_setzero_ps(); R];
        let mut pf = PanelPrefetch::new(pf.next, pf.next_bytes, kc);
        for _ in 0..kc {
            pf.next();
            if STREAM {
                stream_ahead(b);
            }
            let b0 = _mm512_loadu_ps(b);
            let b1 = _mm512_loadu_ps(b.add(16));
            for r in 0..R {
                let ar = _mm512_set1_ps(*a.add(r));
                acc0[r] = _mm512_fmadd_ps(ar, b0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(ar, b1, acc1[r]);
            }
            a = a.add(R);
            b = b.add(NR);
        }
        store_tile::<R>(&acc0, &acc1, c, rs_c, alpha, beta, bias, act);
    }
}

/// Walks `bytes` from `start` in `steps` equal strides, one `prefetcht1` per step: the share
/// of the next B micro-panel one tile brings into L2 while it multiplies (a hint only: any
/// address is fine, and a null `start` prefetches nothing).
pub(super) struct PanelPrefetch {
    at: *const u8,
    step: usize,
}

impl PanelPrefetch {
    #[inline(always)]
    pub(super) fn new(start: *const u8, bytes: usize, steps: usize) -> Self {
        let step = if steps == 0 { 0 } else { bytes.div_ceil(steps) };
        let at = if step == 0 { core::ptr::null() } else { start };
        PanelPrefetch { at, step }
    }

    /// Issues this step's prefetch and moves on.
    #[inline(always)]
    pub(super) fn next(&mut self) {
        if !self.at.is_null() {
            // SAFETY: a prefetch never faults, whatever the address.
            #[allow(unused_unsafe)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T1>(self.at.cast())
            };
            self.at = self.at.wrapping_add(self.step);
        }
    }
}

/// `C <- act(alpha*acc (+ beta*C by one FMA) (+ bias))` for an `R x 32` tile; shared by the
/// f32, the bf16 conversion and the bf16 dot kernels. The activation is the row kernels' own
/// vector function on the same 16 lanes (`crate::math`), so the bits are those of applying
/// it after the store (`MicroKernel::ukernel_pf`).
///
/// # Safety
/// As [`MicroKernel::ukernel`] for an `R x 32` tile; the CPU supports AVX-512F.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn store_tile<const R: usize>(
    acc0: &[__m512; R],
    acc1: &[__m512; R],
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
    act: Activation,
) {
    use crate::math::{avx512::Avx512F32, gelu, quick_gelu};
    let act = |v: __m512| match act {
        Activation::None => v,
        Activation::QuickGelu => quick_gelu(Avx512F32(v)).0,
        Activation::Gelu => gelu(Avx512F32(v)).0,
    };
    // SAFETY: every access stays within the caller-guaranteed tile and bias.
    unsafe {
        let va = _mm512_set1_ps(alpha);
        let vb = _mm512_set1_ps(beta);
        for r in 0..R {
            let cr = c.add(r * rs_c);
            let mut v0 = _mm512_mul_ps(va, acc0[r]);
            let mut v1 = _mm512_mul_ps(va, acc1[r]);
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

/// The AVX-512F bf16 conversion micro-kernel, `bf16gemm_ukernel_avx512_10x32`: A f32
/// (`kc x 10`, `kc` even), B bf16 pairs (`kc/2 x 32`).
///
/// ```text
///   per pair p:  x0 = 16 pairs (cols 0..16)      x1 = 16 pairs (cols 16..32)   2 zmm loads
///     k = 2p:    e0 = f32(x0 << 16)              e1 = f32(x1 << 16)            vpslld
///                10 rows x 2 FMAs against a[r][2p]
///     k = 2p+1:  o0 = f32(x0 & 0xFFFF0000)       o1 = f32(x1 & 0xFFFF0000)     vpandd
///                10 rows x 2 FMAs against a[r][2p+1]
/// ```
/// 20 accumulators + 4 B vectors + 1 broadcast + the mask = 26 zmm. Per pair 40 FMAs, 4
/// integer ops (on the FMA ports), 2 B loads (half the f32 kernel's bytes) and 20 broadcasts.
/// The FMAs are the f32 kernel's in k order, so the result is bitwise [`Avx512`]'s on the
/// bf16-rounded B; so are the block sizes (KC = 1024 pairs-padded k, a 64 KiB B micro-panel).
pub(crate) struct Avx512Bf16;

impl MicroKernel for Avx512Bf16 {
    type A = f32;
    type B = u32;
    type Wide = Avx512;
    const WIDEN: bool = true;
    const ISA: Isa = Isa::Avx512;
    const MR: usize = MR;
    const NR: usize = NR;
    const KC: usize = 1024;
    const MC: usize = 240;
    const NC: usize = 3072;

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
        // SAFETY: forwarded contract; the trait requires a CPU with AVX-512F.
        unsafe {
            bf16gemm_ukernel_avx512_10x32(
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

    unsafe fn pack_a_rows(dst: &mut [f32], src: &[f32], rs: usize, kc: usize) -> bool {
        // SAFETY: the trait requires a CPU with AVX-512F.
        unsafe { pack_a_rows_avx512::<MR>(dst, src, rs, kc) }
    }

    unsafe fn widen_b(src: &[u32], dst: &mut [f32], kc: usize) {
        // SAFETY: the trait requires a CPU with AVX-512F.
        unsafe { widen_panel_avx512(src, dst, kc / 2) }
    }

    unsafe fn ukernel_pf(
        kc: usize,
        a: *const f32,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        alpha: f32,
        beta: f32,
        bias: *const f32,
        act: Activation,
        pf: Prefetch,
    ) {
        // SAFETY: forwarded contract; prefetches never fault.
        unsafe { bf16gemm_ukernel_avx512_10x32(kc, a, b, c, rs_c, alpha, beta, bias, act, pf) }
    }
}

/// Widens `pairs` rows of 32 bf16 pairs into `2*pairs` rows of 32 f32 (the f32 kernel's
/// packed B micro-panel): row `2p` from the low halves, row `2p+1` from the high halves.
///
/// Panics unless `src` holds `pairs*32` pairs and `dst` `pairs*64` floats.
#[target_feature(enable = "avx512f")]
fn widen_panel_avx512(src: &[u32], dst: &mut [f32], pairs: usize) {
    assert!(src.len() >= pairs * NR && dst.len() >= pairs * 2 * NR);
    let (mut src, mut dst) = (src.as_ptr(), dst.as_mut_ptr());
    let hi = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
    // SAFETY: each step reads 32 pairs and writes 64 floats, inside the lengths asserted above.
    unsafe {
        for _ in 0..pairs {
            let x0 = _mm512_loadu_si512(src.cast());
            let x1 = _mm512_loadu_si512(src.add(16).cast());
            _mm512_storeu_ps(dst, _mm512_castsi512_ps(_mm512_slli_epi32::<16>(x0)));
            _mm512_storeu_ps(
                dst.add(16),
                _mm512_castsi512_ps(_mm512_slli_epi32::<16>(x1)),
            );
            _mm512_storeu_ps(dst.add(32), _mm512_castsi512_ps(_mm512_and_si512(x0, hi)));
            _mm512_storeu_ps(dst.add(48), _mm512_castsi512_ps(_mm512_and_si512(x1, hi)));
            src = src.add(NR);
            dst = dst.add(2 * NR);
        }
    }
}

/// # Safety
/// See [`MicroKernel::ukernel`] for [`Avx512Bf16`]; the CPU supports AVX-512F.
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
unsafe fn bf16gemm_ukernel_avx512_10x32(
    kc: usize,
    a: *const f32,
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
            bf16_body::<true>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf)
        } else {
            bf16_body::<false>(kc, a, b, c, rs_c, alpha, beta, bias, act, pf)
        }
    }
}

/// The bf16 conversion micro-kernel's loop; `STREAM` as in [`body`].
///
/// # Safety
/// As [`bf16gemm_ukernel_avx512_10x32`].
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn bf16_body<const STREAM: bool>(
    kc: usize,
    mut a: *const f32,
    mut b: *const u32,
    c: *mut f32,
    rs_c: usize,
    alpha: f32,
    beta: f32,
    bias: *const f32,
    act: Activation,
    pf: Prefetch,
) {
    // SAFETY: every pointer access stays within the caller-guaranteed panels and tile.
    unsafe {
        let hi = _mm512_set1_epi32(0xFFFF_0000u32 as i32);
        let mut acc0 = [_mm512_setzero_ps(); MR];
        let mut acc1 = [_mm512_setzero_ps(); MR];
        let mut pf = PanelPrefetch::new(pf.next, pf.next_bytes, kc / 2);
        for _ in 0..kc / 2 {
            pf.next();
            if STREAM {
                stream_ahead(b);
            }
            let x0 = _mm512_loadu_si512(b.cast());
            let x1 = _mm512_loadu_si512(b.add(16).cast());
            let e0 = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(x0));
            let e1 = _mm512_castsi512_ps(_mm512_slli_epi32::<16>(x1));
            for r in 0..MR {
                let ar = _mm512_set1_ps(*a.add(r));
                acc0[r] = _mm512_fmadd_ps(ar, e0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(ar, e1, acc1[r]);
            }
            let o0 = _mm512_castsi512_ps(_mm512_and_si512(x0, hi));
            let o1 = _mm512_castsi512_ps(_mm512_and_si512(x1, hi));
            for r in 0..MR {
                let ar = _mm512_set1_ps(*a.add(MR + r));
                acc0[r] = _mm512_fmadd_ps(ar, o0, acc0[r]);
                acc1[r] = _mm512_fmadd_ps(ar, o1, acc1[r]);
            }
            a = a.add(2 * MR);
            b = b.add(NR);
        }
        store_tile::<MR>(&acc0, &acc1, c, rs_c, alpha, beta, bias, act);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The gather packer lays out exactly what `dst[k*R + r] = src[r*rs + k]` says, for
    /// depths around its 16-k step and padded row strides; and declines row strides whose
    /// gather offsets would not fit an `i32` (before touching `src`).
    fn packs_like_the_definition<const R: usize>() {
        for kc in [1, 15, 16, 17, 33, 1024] {
            for rs in [kc, kc + 3] {
                let src: Vec<f32> = (0..(R - 1) * rs + kc)
                    .map(|i| i as f32 * 0.5 - 7.0)
                    .collect();
                let mut dst = vec![f32::NAN; kc * R];
                // SAFETY: the CPU was checked to run AVX-512F.
                assert!(unsafe { pack_a_rows_avx512::<R>(&mut dst, &src, rs, kc) });
                for k in 0..kc {
                    for r in 0..R {
                        assert_eq!(dst[k * R + r], src[r * rs + k], "R={R} kc={kc} rs={rs}");
                    }
                }
            }
        }
        let mut dst = vec![0.0; 16 * R];
        // SAFETY: declined before `src` is read; the CPU runs AVX-512F.
        assert!(!unsafe { pack_a_rows_avx512::<R>(&mut dst, &[], i32::MAX as usize / 4, 16) });
    }

    #[test]
    fn gather_packer_matches_its_definition() {
        match crate::dispatch::test_isa(Isa::Avx512) {
            Ok(true) => {}
            Ok(false) => return eprintln!("!!! gather packer: no AVX-512F here: SKIPPED !!!"),
            Err(e) => panic!("{e}"),
        }
        packs_like_the_definition::<10>();
        packs_like_the_definition::<11>();
    }
}
