//! Packing of A and B into the micro-kernels' panel layouts, and the 64-byte aligned buffer
//! that holds them.
//!
//! Packed B (per call, or once for a weight in [`crate::gemm::PackedB`]): for each KC block of
//! rows `k0..k0+kc` and each NR-wide panel `j`, `kc x NR` floats k-major, at offset
//! `k0*panels*NR + j*kc*NR`. Columns past `n` are zero. Packed A: for each MR-high micro-panel,
//! `kc x MR` floats k-major; rows past `m` are zero.

use super::kernel::MAX_NR;
use super::MatRef;

/// 64 bytes of f32, so a `Vec` of them is cache-line aligned.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Line([f32; 16]);

/// A growable, 64-byte aligned f32 buffer.
#[derive(Clone, Default)]
pub(crate) struct AlignedBuf {
    lines: Vec<Line>,
    len: usize,
}

impl AlignedBuf {
    /// A zeroed buffer of `len` floats.
    pub(crate) fn zeroed(len: usize) -> Self {
        AlignedBuf {
            lines: vec![Line([0.0; 16]); len.div_ceil(16)],
            len,
        }
    }

    /// Resizes to at least `len` floats; contents are unspecified afterwards.
    pub(crate) fn ensure(&mut self, len: usize) {
        if self.lines.len() * 16 < len {
            self.lines = vec![Line([0.0; 16]); len.div_ceil(16)];
        }
        self.len = len;
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        let ptr = self.lines.as_ptr().cast::<f32>();
        // SAFETY: `Line` is `repr(C)` over `[f32; 16]` with no padding, so the lines are
        // `lines.len()*16 >= len` initialised, contiguous f32s.
        unsafe { std::slice::from_raw_parts(ptr, self.len) }
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        let ptr = self.lines.as_mut_ptr().cast::<f32>();
        // SAFETY: as in `as_slice`, and `&mut self` makes the borrow unique.
        unsafe { std::slice::from_raw_parts_mut(ptr, self.len) }
    }

    /// Bytes held (for memory accounting).
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.lines.len() * 64
    }
}

/// Packs one MR-high micro-panel of A: rows `row0..row0+rows` (`rows <= MR`, zero beyond),
/// depth `k0..k0+kc`, into `dst` (`kc*MR` floats, k-major). Generic over the micro-kernel so
/// the row loop has a constant trip count; writes are sequential.
pub(crate) fn pack_a_panel<K: super::MicroKernel>(
    dst: &mut [f32],
    a: &MatRef<'_>,
    row0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
) {
    let mr = K::MR;
    let dst = &mut dst[..kc * mr];
    if rows == mr && a.cs == 1 {
        let base = row0 * a.rs + k0;
        let src = &a.data[base..base + (mr - 1) * a.rs + kc];
        let rs = a.rs;
        // 8 k at a time: read 8 contiguous floats of each row, write 8 rows of the panel.
        let mut k = 0;
        while k + 8 <= kc {
            let mut t = [[0.0f32; 8]; 16];
            for (r, tr) in t.iter_mut().enumerate().take(mr) {
                tr.copy_from_slice(&src[r * rs + k..r * rs + k + 8]);
            }
            for kk in 0..8 {
                let out = &mut dst[(k + kk) * mr..(k + kk + 1) * mr];
                for (r, o) in out.iter_mut().enumerate() {
                    *o = t[r][kk];
                }
            }
            k += 8;
        }
        for k in k..kc {
            for r in 0..mr {
                dst[k * mr + r] = src[r * rs + k];
            }
        }
        return;
    }
    for (k, out) in dst.chunks_exact_mut(mr).enumerate() {
        for (r, o) in out.iter_mut().enumerate() {
            *o = if r < rows {
                a.data[(row0 + r) * a.rs + (k0 + k) * a.cs]
            } else {
                0.0
            };
        }
    }
}

/// Packs all of A (`m x k`) with depth blocks of `kc_block` into MR-high micro-panels, in
/// parallel over panels. The panel `p` of the block at `k0` (depth `kc`) is at
/// `k0*panels*MR + p*kc*MR`.
pub(crate) fn pack_a_all<K: super::MicroKernel>(dst: &mut [f32], a: &MatRef<'_>, kc_block: usize) {
    use rayon::prelude::*;
    let (m, k, mr) = (a.rows, a.cols, K::MR);
    let panels = m.div_ceil(mr);
    let mut k0 = 0;
    let mut rest = &mut dst[..panels * mr * k];
    while k0 < k {
        let kc = kc_block.min(k - k0);
        let (block, tail) = rest.split_at_mut(kc * panels * mr);
        let pack = |(p, panel): (usize, &mut [f32])| {
            pack_a_panel::<K>(panel, a, p * mr, mr.min(m - p * mr), k0, kc)
        };
        if panels * mr * k < 1 << 16 {
            block.chunks_mut(kc * mr).enumerate().for_each(pack);
        } else {
            block
                .par_chunks_mut(kc * mr)
                .enumerate()
                .with_min_len(4)
                .for_each(pack);
        }
        rest = tail;
        k0 += kc;
    }
}

/// Packs one NR-wide panel of B: depth `k0..k0+kc`, columns `j0..j0+nr` (clipped at `b.cols`,
/// zero beyond). `dst` holds `kc*nr` floats.
pub(crate) fn pack_b_panel(
    dst: &mut [f32],
    b: &MatRef<'_>,
    k0: usize,
    kc: usize,
    j0: usize,
    nr: usize,
) {
    debug_assert!(dst.len() >= kc * nr);
    let cols = nr.min(b.cols - j0);
    if b.cs == 1 {
        for k in 0..kc {
            let base = (k0 + k) * b.rs + j0;
            dst[k * nr..k * nr + cols].copy_from_slice(&b.data[base..base + cols]);
            dst[k * nr + cols..(k + 1) * nr].fill(0.0);
        }
    } else if b.rs == 1 && cols == nr && nr <= MAX_NR {
        // B is a transposed row-major weight: read 8 contiguous k of each column, write 8
        // contiguous panel rows.
        let mut k = 0;
        let mut t = [[0.0f32; 8]; MAX_NR];
        while k + 8 <= kc {
            for (j, tj) in t.iter_mut().enumerate().take(nr) {
                let base = (j0 + j) * b.cs + k0 + k;
                tj.copy_from_slice(&b.data[base..base + 8]);
            }
            for kk in 0..8 {
                for (j, o) in dst[(k + kk) * nr..(k + kk + 1) * nr].iter_mut().enumerate() {
                    *o = t[j][kk];
                }
            }
            k += 8;
        }
        for k in k..kc {
            for j in 0..nr {
                dst[k * nr + j] = b.data[(j0 + j) * b.cs + k0 + k];
            }
        }
    } else {
        for j in 0..cols {
            let base = k0 * b.rs + (j0 + j) * b.cs;
            for k in 0..kc {
                dst[k * nr + j] = b.data[base + k * b.rs];
            }
        }
        for k in 0..kc {
            dst[k * nr + cols..(k + 1) * nr].fill(0.0);
        }
    }
}

/// Number of floats of a packed B of `k x n` for panel width `nr`.
pub(crate) fn packed_b_len(k: usize, n: usize, nr: usize) -> usize {
    k * n.div_ceil(nr) * nr
}

/// Offset of micro-panel `j` of the KC block starting at `k0` (depth `kc`) in a packed A or B
/// with `panels` panels of width `nr` (MR for A, NR for B).
#[inline]
pub(crate) fn packed_offset(k0: usize, kc: usize, j: usize, panels: usize, nr: usize) -> usize {
    k0 * panels * nr + j * kc * nr
}

/// Packs all of B (`k x n`) with depth blocks of `kc_block`, in parallel over panels.
pub(crate) fn pack_b_all(dst: &mut [f32], b: &MatRef<'_>, kc_block: usize, nr: usize) {
    use rayon::prelude::*;
    let (k, n) = (b.rows, b.cols);
    let panels = n.div_ceil(nr);
    debug_assert!(dst.len() >= packed_b_len(k, n, nr));
    let mut k0 = 0;
    let mut rest = &mut dst[..packed_b_len(k, n, nr)];
    while k0 < k {
        let kc = kc_block.min(k - k0);
        let (block, tail) = rest.split_at_mut(kc * panels * nr);
        block
            .par_chunks_mut(kc * nr)
            .enumerate()
            .with_min_len(4)
            .for_each(|(j, panel)| pack_b_panel(panel, b, k0, kc, j * nr, nr));
        rest = tail;
        k0 += kc;
    }
}
