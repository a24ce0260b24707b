//! int8 GEMM: weights quantised per output channel (symmetric s8, an f32 scale per column of
//! B), activations quantised per row at each call (asymmetric u8: an f32 scale and an integer
//! zero point per row of A), products summed exactly in i32, then dequantised in the
//! micro-kernel's epilogue together with beta, bias and the activation.
//!
//! ```text
//!   weight column j:  s_j = max_k |B[k][j]| / 127      w[k][j] = round(B[k][j] / s_j)  in -127..=127
//!   activation row r: lo = min(0, min_k A[r][k])  hi = max(0, max_k A[r][k])
//!                     t_r = (hi - lo) / 255        z_r = round(-lo * 255 / (hi - lo))  in 0..=255
//!                     a[r][k] = clamp(round(A[r][k] * 255 / (hi - lo)) + z_r, 0, 255)
//!   acc[r][j]  = sum_k a[r][k] * w[k][j]                       (i32, exact)
//!   corr[r][j] = acc[r][j] - z_r * colsum_j                    (i32, exact; colsum_j = sum_k w[k][j])
//!   C[r][j]   <- act(f32(corr) * (alpha t_r * s_j) (+ beta*C by one FMA) (+ bias[j]))
//! ```
//! `round` is to nearest, ties to even. Every step is exact integer arithmetic or a fixed
//! sequence of f32 roundings, so all int8 kernels give the same bits (tested against the
//! scalar reference), and a row's result depends on nothing but that row: the results do not
//! depend on the thread count or on the other rows of A.
//!
//! The depth is not blocked (no KC): each tile sums all of K, so the accumulators never leave
//! the registers. `|corr| <= 255*127*K`, which fits an i32 up to K = [`MAX_K`].
//!
//! Packed B: for each NR-wide panel `j`, `ceil(K/4)` rows of NR `u32`, each the four s8
//! weights of one column at four consecutive k (the lowest k in the low byte), zero past K and
//! past N; then per column (padded to whole panels) the scale `s_j` and `colsum_j`.
//!
//! Not here: the loops (`loops_int8.rs`), the micro-kernels (`arch/`), which kernel each set
//! runs (`table.rs`).

use super::pack::AlignedBuf;
use crate::Isa;

/// The largest depth an int8 GEMM takes: `255*127*K` must fit an i32.
pub const MAX_K: usize = 65_536;

/// The scale of a weight channel whose largest magnitude is `maxabs`: `maxabs / 127`, or 1
/// for an all-zero channel (any value would do; a positive one keeps files valid).
#[inline]
pub fn weight_scale_i8(maxabs: f32) -> f32 {
    if maxabs == 0.0 {
        1.0
    } else {
        maxabs / 127.0
    }
}

/// `x` quantised with `scale`: `round(x / scale)` clamped to `-127..=127` (NaN gives 0).
#[inline]
pub fn quantize_weight_i8(x: f32, scale: f32) -> i8 {
    (x / scale).round_ties_even().clamp(-127.0, 127.0) as i8
}

/// Quantises a weight stored as `[out, in]` rows (`w[o*rs + i*cs]`) per output channel:
/// returns the `out x in` s8 values, row-major, and the `out` scales. The same numbers the
/// int8 packing computes from f32 weights, so a file written with them loads to the same model.
pub fn quantize_weight_rows(
    w: &[f32],
    out: usize,
    inp: usize,
    rs: usize,
    cs: usize,
) -> (Vec<i8>, Vec<f32>) {
    let mut q = vec![0i8; out * inp];
    let mut scales = vec![0.0f32; out];
    for o in 0..out {
        let at = |i: usize| w[o * rs + i * cs];
        let maxabs = (0..inp).map(|i| at(i).abs()).fold(0.0f32, f32::max);
        let s = weight_scale_i8(maxabs);
        scales[o] = s;
        for (i, v) in q[o * inp..(o + 1) * inp].iter_mut().enumerate() {
            *v = quantize_weight_i8(at(i), s);
        }
    }
    (q, scales)
}

/// An activation row's quantisation: the scale `t` and zero point `z` of
/// `A[r][k] ~= t * (a[r][k] - z)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct RowQuant {
    pub scale: f32,
    pub zp: i32,
}

/// Quantises one row of A into `out` (`out.len() >= x.len()`; the rest of `out` is left as
/// it is), as the module docs say. A row with NaN or an infinity gets a NaN scale, so its
/// outputs are NaN; a row of zeros gets scale 0 ([`row_params`]). The scalar definition every
/// kernel's quantiser must match bit for bit.
pub(crate) fn quantize_row_scalar(x: &[f32], out: &mut [u8]) -> RowQuant {
    let (mut lo, mut hi) = (0.0f32, 0.0f32);
    let mut finite = true;
    for &v in x {
        finite &= v.is_finite();
        lo = lo.min(v);
        hi = hi.max(v);
    }
    let (scale, inv, zp) = row_params(lo, hi, finite);
    for (o, &v) in out.iter_mut().zip(x) {
        *o = quantize_act(v, inv, zp);
    }
    RowQuant { scale, zp }
}

/// `(scale, 1/scale as 255/(hi-lo), zero point)` of a row with extremes `lo <= 0 <= hi`.
/// Where `hi - lo` overflows (extremes beyond 1.7e38), `scale = hi/255 - lo/255` and
/// `inv = 1/scale` instead, so a finite row stays finite.
#[inline]
pub(crate) fn row_params(lo: f32, hi: f32, finite: bool) -> (f32, f32, i32) {
    if !finite {
        return (f32::NAN, 0.0, 0);
    }
    let range = hi - lo;
    if range == 0.0 {
        return (0.0, 0.0, 0);
    }
    let (scale, inv) = if range.is_finite() {
        (range / 255.0, 255.0 / range)
    } else {
        let s = hi / 255.0 - lo / 255.0;
        (s, 1.0 / s)
    };
    let zp = (-lo * inv).round_ties_even().clamp(0.0, 255.0) as i32;
    (scale, inv, zp)
}

/// One activation quantised: `clamp(round(x * inv) + zp, 0, 255)`.
#[inline(always)]
pub(crate) fn quantize_act(x: f32, inv: f32, zp: i32) -> u8 {
    ((x * inv).round_ties_even() as i32 + zp).clamp(0, 255) as u8
}

/// The dequantising epilogue of one element, the definition the SIMD epilogues follow:
/// `f32(acc - zp*colsum) * (t*s)`, then `fma(beta, c, .)` if `beta != 0`, then `+ bias`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn dequant(
    acc: i32,
    zp: i32,
    colsum: i32,
    row_scale: f32,
    col_scale: f32,
    beta: f32,
    c: f32,
    bias: Option<f32>,
) -> f32 {
    let corr = acc.wrapping_sub(zp.wrapping_mul(colsum));
    let mut v = corr as f32 * (row_scale * col_scale);
    if beta != 0.0 {
        v = beta.mul_add(c, v);
    }
    if let Some(b) = bias {
        v += b;
    }
    v
}

/// What an int8 tile's epilogue reads besides C and the bias: MR row scales and zero points,
/// NR column scales and sums (padded arrays: edge tiles read zeros past M and N).
#[derive(Clone, Copy, Debug)]
pub(crate) struct QuantTile {
    pub row_scale: *const f32,
    pub row_zp: *const i32,
    pub col_scale: *const f32,
    pub col_sum: *const i32,
}

/// An int8 GEMM micro-kernel: an `MR x NR` tile of C from a packed A micro-panel (per quad of
/// k, MR elements of type `AQuad`: the four u8 of a row, as u8 or widened) and a packed B
/// micro-panel (per quad, NR `u32` of four s8), summing all of K.
pub(crate) trait Int8Kernel: Sync + 'static {
    /// The kernel set this kernel belongs to.
    const ISA: Isa;
    /// Rows of the register tile.
    const MR: usize;
    /// Columns of the register tile.
    const NR: usize;
    /// Rows of a task's row block (the loops' split, as `MicroKernel::MC`).
    const MC: usize;
    /// One row's four activations of one quad in the packed A: `u32` (four u8) or `u64`
    /// (four u16, for kernels that multiply 16-bit lanes).
    type AQuad: bytemuck::Pod + Send + Sync;

    /// Whether this CPU runs the kernel (the set's check, and any extension it needs).
    fn is_available() -> bool {
        Self::ISA.is_available()
    }

    /// The packed form of four quantised activations `q` (the lowest k first).
    fn a_quad(q: [u8; 4]) -> Self::AQuad;

    /// Quantises one row (see [`quantize_row_scalar`], whose bits every override must give).
    ///
    /// # Safety
    /// The CPU runs the kernel.
    unsafe fn quantize_row(x: &[f32], out: &mut [u8]) -> RowQuant {
        quantize_row_scalar(x, out)
    }

    /// `C <- act(dequant(A*B) (+ beta*C) (+ bias))` on one full tile (module docs).
    ///
    /// # Safety
    /// `a` points to `kq*MR` readable `AQuad`, `b` to `kq*NR` `u32`; `c` to an `MR x NR`
    /// row-major tile with row stride `rs_c`, readable (if `beta != 0`) and writable; the
    /// `q` pointers to MR (rows) and NR (columns) readable values; `bias` is null or points to
    /// NR floats. The CPU runs the kernel.
    #[allow(clippy::too_many_arguments)]
    unsafe fn ukernel(
        kq: usize,
        a: *const Self::AQuad,
        b: *const u32,
        c: *mut f32,
        rs_c: usize,
        beta: f32,
        q: &QuantTile,
        bias: *const f32,
        act: super::Activation,
        pf: super::Prefetch,
    );
}

/// The per-column data of an int8 packed B: scales and sums of the quantised weights, padded
/// with zeros to whole panels.
#[derive(Clone, Debug, Default)]
pub(crate) struct I8Cols {
    pub scale: Vec<f32>,
    pub sum: Vec<i32>,
}

/// Packs a `k x n` B of quantised weights `get(k, j)` into NR-wide panels of quads (module
/// docs), in parallel over panels; returns the panels and each column's sum.
pub(crate) fn pack_b_quads(
    (k, n): (usize, usize),
    nr: usize,
    get: impl Fn(usize, usize) -> i8 + Sync,
) -> (AlignedBuf, Vec<i32>) {
    use rayon::prelude::*;
    let kq = k.div_ceil(4);
    let panels = n.div_ceil(nr);
    let mut buf = AlignedBuf::zeroed(kq * panels * nr);
    let mut sums = vec![0i32; panels * nr];
    if kq == 0 {
        return (buf, sums);
    }
    let work = |(j, (dst, sum)): (usize, (&mut [u32], &mut [i32]))| {
        let j0 = j * nr;
        for jj in 0..nr.min(n - j0) {
            let mut s = 0i32;
            for q in 0..kq {
                let mut bytes = [0u8; 4];
                for (t, byte) in bytes.iter_mut().enumerate() {
                    if 4 * q + t < k {
                        let v = get(4 * q + t, j0 + jj);
                        s += v as i32;
                        *byte = v as u8;
                    }
                }
                dst[q * nr + jj] = u32::from_le_bytes(bytes);
            }
            sum[jj] = s;
        }
    };
    let chunks = buf
        .view_mut::<u32>()
        .chunks_mut(kq * nr)
        .zip(sums.chunks_mut(nr))
        .enumerate();
    if k * n < 1 << 16 {
        chunks.for_each(work);
    } else {
        chunks
            .collect::<Vec<_>>()
            .into_par_iter()
            .with_min_len(4)
            .for_each(work);
    }
    (buf, sums)
}
