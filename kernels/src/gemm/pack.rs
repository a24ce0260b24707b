//! Packing of A and B into the micro-kernels' panel layouts, and the 64-byte aligned buffer
//! that holds them.
//!
//! Packed B (per call, or once for a weight in [`crate::gemm::PackedB`]): for each KC block of
//! rows `k0..k0+kc` and each NR-wide panel `j`, `kc x NR` elements k-major, at offset
//! `k0*panels*NR + j*kc*NR`. Columns past `n` are zero. Packed A: for each MR-high micro-panel,
//! `kc x MR` elements k-major; rows past `m` are zero.
//!
//! Elements are f32, or bf16 pairs ([`PanelElem`] for `u32`): then offsets and depths count
//! pairs (`k0/2`, `kc/2`) and a block of odd depth is padded with a zero k. f32 A panels of a
//! kernel with bf16 B are padded to even depth the same way.

use super::bf16::{f32_to_bf16_bits, f32_to_bf16_bits_sat, pair};
use super::kernel::MAX_NR;
use super::MatRef;

/// Floats per 64-byte cache line.
const LINE: usize = 16;

/// A growable, 64-byte aligned f32 buffer: a zeroed `Vec<f32>` with up to one line of slack,
/// used from its first 64-byte boundary. `vec![0.0; n]` allocates with `calloc`, which takes
/// fresh pages from the OS without writing them, so a large buffer costs no memset and its
/// pages are first touched by whoever fills it (in parallel, when packing weights).
#[derive(Default)]
pub(crate) struct AlignedBuf {
    data: Vec<f32>,
    /// Index of the first 64-byte aligned float in `data`.
    start: usize,
    len: usize,
}

impl Clone for AlignedBuf {
    fn clone(&self) -> Self {
        // A new allocation has its own alignment offset.
        let mut c = AlignedBuf::zeroed(self.len);
        c.as_mut_slice().copy_from_slice(self.as_slice());
        c
    }
}

impl AlignedBuf {
    /// A zeroed buffer of `len` floats.
    pub(crate) fn zeroed(len: usize) -> Self {
        let data = vec![0.0f32; len + LINE - 1];
        let misalign = (data.as_ptr() as usize / 4) % LINE;
        AlignedBuf {
            start: (LINE - misalign) % LINE,
            data,
            len,
        }
    }

    /// Resizes to at least `len` floats; contents are unspecified afterwards.
    pub(crate) fn ensure(&mut self, len: usize) {
        if self.data.len() < self.start + len {
            *self = AlignedBuf::zeroed(len);
        }
        self.len = len;
    }

    /// The buffer as `len` 4-byte elements of a packed panel type.
    pub(crate) fn view<E: PanelElem>(&self) -> &[E] {
        bytemuck::cast_slice(self.as_slice())
    }

    pub(crate) fn view_mut<E: PanelElem>(&mut self) -> &mut [E] {
        bytemuck::cast_slice_mut(self.as_mut_slice())
    }

    pub(crate) fn as_slice(&self) -> &[f32] {
        &self.data[self.start..self.start + self.len]
    }

    pub(crate) fn as_mut_slice(&mut self) -> &mut [f32] {
        &mut self.data[self.start..self.start + self.len]
    }

    /// Bytes held (for memory accounting).
    pub(crate) fn capacity_bytes(&self) -> usize {
        self.data.capacity() * 4
    }
}

/// An element of a packed micro-panel: `f32` (one k) or `u32` (a bf16 pair: two consecutive
/// k, the lower k in the low half). 4 bytes, so every packed buffer is an [`AlignedBuf`].
pub(crate) trait PanelElem: bytemuck::Pod + Send + Sync + 'static {
    /// k values per element.
    const K_PER: usize;

    /// Packs one MR-high micro-panel of A from f32: rows `row0..row0+rows` (`rows <= mr`, zero
    /// beyond), depth `k0..k0+kc`, zero from `kc` to `kc_pad`. `dst` holds `kc_pad/K_PER*mr`.
    #[allow(clippy::too_many_arguments)]
    fn pack_a_panel(
        dst: &mut [Self],
        a: &MatRef<'_>,
        row0: usize,
        rows: usize,
        k0: usize,
        kc: usize,
        kc_pad: usize,
        mr: usize,
    );

    /// Packs one NR-wide panel of B from f32: depth `k0..k0+kc` (zero to `kc_pad`), columns
    /// `j0..j0+nr` (clipped at `b.cols`, zero beyond). `dst` holds `kc_pad/K_PER*nr`.
    fn pack_b_panel(
        dst: &mut [Self],
        b: &MatRef<'_>,
        k0: usize,
        kc: usize,
        kc_pad: usize,
        j0: usize,
        nr: usize,
    );
}

impl PanelElem for f32 {
    const K_PER: usize = 1;

    #[inline(always)]
    fn pack_a_panel(
        dst: &mut [f32],
        a: &MatRef<'_>,
        row0: usize,
        rows: usize,
        k0: usize,
        kc: usize,
        kc_pad: usize,
        mr: usize,
    ) {
        pack_a_panel_f32(&mut dst[..kc_pad * mr], a, row0, rows, k0, kc, mr);
        dst[kc * mr..kc_pad * mr].fill(0.0);
    }

    fn pack_b_panel(
        dst: &mut [f32],
        b: &MatRef<'_>,
        k0: usize,
        kc: usize,
        kc_pad: usize,
        j0: usize,
        nr: usize,
    ) {
        pack_b_panel_f32(dst, b, k0, kc, j0, nr);
        dst[kc * nr..kc_pad * nr].fill(0.0);
    }
}

impl PanelElem for u32 {
    const K_PER: usize = 2;

    #[inline(always)]
    fn pack_a_panel(
        dst: &mut [u32],
        a: &MatRef<'_>,
        row0: usize,
        rows: usize,
        k0: usize,
        kc: usize,
        kc_pad: usize,
        mr: usize,
    ) {
        pack_a_panel_pairs(&mut dst[..kc_pad / 2 * mr], a, row0, rows, k0, kc, mr);
    }

    fn pack_b_panel(
        dst: &mut [u32],
        b: &MatRef<'_>,
        k0: usize,
        kc: usize,
        _kc_pad: usize,
        j0: usize,
        nr: usize,
    ) {
        let cols = nr.min(b.cols - j0);
        pack_b_panel_pairs(dst, kc, nr, cols, |k, j| {
            f32_to_bf16_bits(b.data[(k0 + k) * b.rs + (j0 + j) * b.cs])
        });
    }
}

/// Packs an A micro-panel as bf16 pairs, rounding each f32 to nearest even, finite values
/// saturating at the largest bf16 (the dot kernels: [`f32_to_bf16_bits_sat`]). `dst` holds
/// `kc.div_ceil(2)*mr` pairs; rows past `rows` and the k past `kc` are zero.
#[inline(always)]
fn pack_a_panel_pairs(
    dst: &mut [u32],
    a: &MatRef<'_>,
    row0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
    mr: usize,
) {
    let r = |x: f32| f32_to_bf16_bits_sat(x);
    let mut p0 = 0;
    if rows == mr && a.cs == 1 {
        let base = row0 * a.rs + k0;
        let src = &a.data[base..base + (mr - 1) * a.rs + kc];
        let rs = a.rs;
        // 16 k (8 pairs) at a time: read 16 contiguous floats of each row, write 8 panel rows.
        while 2 * p0 + 16 <= kc {
            let mut t = [[0u32; 8]; 16];
            for (row, tr) in t.iter_mut().enumerate().take(mr) {
                let s = &src[row * rs + 2 * p0..row * rs + 2 * p0 + 16];
                for (q, o) in tr.iter_mut().enumerate() {
                    *o = pair(r(s[2 * q]), r(s[2 * q + 1]));
                }
            }
            for q in 0..8 {
                let out = &mut dst[(p0 + q) * mr..(p0 + q + 1) * mr];
                for (row, o) in out.iter_mut().enumerate() {
                    *o = t[row][q];
                }
            }
            p0 += 8;
        }
    }
    let at = |row: usize, k: usize| -> u16 {
        if row < rows && k < kc {
            r(a.data[(row0 + row) * a.rs + (k0 + k) * a.cs])
        } else {
            0
        }
    };
    for p in p0..kc.div_ceil(2) {
        for (row, o) in dst[p * mr..(p + 1) * mr].iter_mut().enumerate() {
            *o = pair(at(row, 2 * p), at(row, 2 * p + 1));
        }
    }
}

/// Packs one NR-wide panel of bf16 pairs from `get(k, j)` (the bf16 bits of B at depth `k`
/// of the block, column `j` of the panel): `kc.div_ceil(2) x nr` pairs, zero for the k past
/// `kc` and the columns past `cols`.
pub(crate) fn pack_b_panel_pairs(
    dst: &mut [u32],
    kc: usize,
    nr: usize,
    cols: usize,
    get: impl Fn(usize, usize) -> u16,
) {
    let pairs = kc.div_ceil(2);
    let dst = &mut dst[..pairs * nr];
    for j in 0..cols {
        for p in 0..kc / 2 {
            dst[p * nr + j] = pair(get(2 * p, j), get(2 * p + 1, j));
        }
        if kc % 2 == 1 {
            dst[(pairs - 1) * nr + j] = pair(get(kc - 1, j), 0);
        }
    }
    for row in dst.chunks_exact_mut(nr) {
        row[cols..].fill(0);
    }
}

/// Packs one MR-high micro-panel of A as f32: rows `row0..row0+rows` (`rows <= mr`, zero
/// beyond), depth `k0..k0+kc`, into `dst` (`kc*mr` floats, k-major). Inlined into each
/// kernel's loop so the row loop has a constant trip count; writes are sequential.
#[inline(always)]
fn pack_a_panel_f32(
    dst: &mut [f32],
    a: &MatRef<'_>,
    row0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
    mr: usize,
) {
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

/// Packs one MR-high micro-panel of A for the kernel `K` (its element type, MR and depth
/// padding).
#[inline(always)]
pub(crate) fn pack_a_panel<K: super::MicroKernel>(
    dst: &mut [K::A],
    a: &MatRef<'_>,
    row0: usize,
    rows: usize,
    k0: usize,
    kc: usize,
) {
    let kc_pad = kc.next_multiple_of(K::KSTEP);
    if rows == K::MR && a.cs == 1 && kc == kc_pad {
        let base = row0 * a.rs + k0;
        let src = &a.data[base..base + (K::MR - 1) * a.rs + kc];
        // SAFETY: the loops only run kernels the CPU supports (`PackedB` and `sgemm` check,
        // and `table::run` before the loops); the lengths are the kernel's to check.
        if unsafe { K::pack_a_rows(&mut dst[..kc / K::A::K_PER * K::MR], src, a.rs, kc) } {
            return;
        }
    }
    K::A::pack_a_panel(dst, a, row0, rows, k0, kc, kc_pad, K::MR);
}

/// Packs rows `i0..i0+mc` of A (`i0` a multiple of MR), depth `k0..k0+kc`, into consecutive
/// MR-high micro-panels of `kc` padded to KSTEP (one task's block of loop 3), serially.
pub(crate) fn pack_a_block<K: super::MicroKernel>(
    dst: &mut [K::A],
    a: &MatRef<'_>,
    i0: usize,
    mc: usize,
    k0: usize,
    kc: usize,
) {
    let (m, mr) = (a.rows, K::MR);
    let kc_steps = steps::<K::A>(kc, K::KSTEP);
    let panels = mc.div_ceil(mr);
    for (p, panel) in dst[..kc_steps * panels * mr]
        .chunks_mut(kc_steps * mr)
        .enumerate()
    {
        let row0 = i0 + p * mr;
        pack_a_panel::<K>(panel, a, row0, mr.min(m - row0), k0, kc);
    }
}

/// Packs all of A (`m x k`) with depth blocks of `kc_block` into MR-high micro-panels, in
/// parallel over panels. The panel `p` of the block at `k0` (depth `kc`) is at
/// `packed_offset(k0/K_PER, kc_pad/K_PER, p, panels, MR)` ([`steps`]).
pub(crate) fn pack_a_all<K: super::MicroKernel>(dst: &mut [K::A], a: &MatRef<'_>, kc_block: usize) {
    use rayon::prelude::*;
    let (m, k, mr) = (a.rows, a.cols, K::MR);
    let panels = m.div_ceil(mr);
    let mut k0 = 0;
    let len = packed_len::<K::A>(k, K::KSTEP, panels, mr);
    let mut rest = &mut dst[..len];
    while k0 < k {
        let kc = kc_block.min(k - k0);
        let kc_steps = steps::<K::A>(kc, K::KSTEP);
        let (block, tail) = rest.split_at_mut(kc_steps * panels * mr);
        if len < 1 << 16 {
            pack_a_block::<K>(block, a, 0, m, k0, kc);
        } else {
            block
                .par_chunks_mut(kc_steps * mr)
                .enumerate()
                .with_min_len(4)
                .for_each(|(p, panel)| {
                    pack_a_panel::<K>(panel, a, p * mr, mr.min(m - p * mr), k0, kc)
                });
        }
        rest = tail;
        k0 += kc;
    }
}

/// Packs one NR-wide panel of B as f32: depth `k0..k0+kc`, columns `j0..j0+nr` (clipped at
/// `b.cols`, zero beyond). `dst` holds `kc*nr` floats.
fn pack_b_panel_f32(dst: &mut [f32], b: &MatRef<'_>, k0: usize, kc: usize, j0: usize, nr: usize) {
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

/// Elements along k of a block of depth `kc` (padded to a multiple of `kstep`) in panels of
/// element type `E`.
#[inline]
pub(crate) fn steps<E: PanelElem>(kc: usize, kstep: usize) -> usize {
    kc.next_multiple_of(kstep) / E::K_PER
}

/// Number of elements of a packed operand of depth `k` (blocks padded to `kstep`) with
/// `panels` panels of width `w`. Only the last block can be odd, so this is the sum over blocks.
pub(crate) fn packed_len<E: PanelElem>(k: usize, kstep: usize, panels: usize, w: usize) -> usize {
    steps::<E>(k, kstep) * panels * w
}

/// Offset of micro-panel `j` of the KC block starting at `k0_steps` (depth `kc_steps`, both
/// in elements along k, see [`steps`]) in a packed A or B with `panels` panels of width `nr`
/// (MR for A, NR for B).
#[inline]
pub(crate) fn packed_offset(
    k0_steps: usize,
    kc_steps: usize,
    j: usize,
    panels: usize,
    nr: usize,
) -> usize {
    k0_steps * panels * nr + j * kc_steps * nr
}

/// Packs all of B (`k x n`) with depth blocks of `kc_block` (padded to `kstep`), in parallel
/// over panels; `panel(dst, k0, kc, kc_pad, j0)` packs one panel.
pub(crate) fn pack_b_all_with<E: PanelElem>(
    dst: &mut [E],
    (k, n): (usize, usize),
    kc_block: usize,
    kstep: usize,
    nr: usize,
    panel: impl Fn(&mut [E], usize, usize, usize, usize) + Sync,
) {
    use rayon::prelude::*;
    let panels = n.div_ceil(nr);
    let len = packed_len::<E>(k, kstep, panels, nr);
    let mut k0 = 0;
    let mut rest = &mut dst[..len];
    while k0 < k {
        let kc = kc_block.min(k - k0);
        let kc_pad = kc.next_multiple_of(kstep);
        let (block, tail) = rest.split_at_mut(kc_pad / E::K_PER * panels * nr);
        block
            .par_chunks_mut(kc_pad / E::K_PER * nr)
            .enumerate()
            .with_min_len(4)
            .for_each(|(j, dst)| panel(dst, k0, kc, kc_pad, j * nr));
        rest = tail;
        k0 += kc;
    }
}

/// Packs all of an f32 B (`k x n`) into panels of `E` (rounding to bf16 for pairs).
pub(crate) fn pack_b_all<E: PanelElem>(
    dst: &mut [E],
    b: &MatRef<'_>,
    kc_block: usize,
    kstep: usize,
    nr: usize,
) {
    pack_b_all_with(
        dst,
        (b.rows, b.cols),
        kc_block,
        kstep,
        nr,
        |dst, k0, kc, kc_pad, j0| E::pack_b_panel(dst, b, k0, kc, kc_pad, j0, nr),
    );
}

/// Packs the column-wise concatenation of `parts` (a `k x n` B) into a new buffer. A panel
/// inside one part packs straight from it; a panel straddling parts (only when a part's
/// width is not a multiple of `nr`) is gathered into a small `kc x nr` matrix first.
pub(crate) fn pack_b_stacked<E: PanelElem>(
    parts: &[MatRef<'_>],
    (k, n): (usize, usize),
    kc_block: usize,
    kstep: usize,
    nr: usize,
) -> AlignedBuf {
    let mut buf = AlignedBuf::zeroed(packed_len::<E>(k, kstep, n.div_ceil(nr), nr));
    // First column of each part.
    let starts: Vec<usize> = parts
        .iter()
        .scan(0, |c, p| {
            let s = *c;
            *c += p.cols;
            Some(s)
        })
        .collect();
    pack_b_all_with(
        buf.view_mut::<E>(),
        (k, n),
        kc_block,
        kstep,
        nr,
        |dst, k0, kc, kc_pad, j0| {
            let i = starts.partition_point(|&s| s <= j0) - 1;
            let (part, local) = (&parts[i], j0 - starts[i]);
            if local + nr.min(n - j0) <= part.cols {
                return E::pack_b_panel(dst, part, k0, kc, kc_pad, local, nr);
            }
            let cols = nr.min(n - j0);
            let mut tmp = vec![0.0f32; kc * cols];
            for (j, col) in (j0..j0 + cols).enumerate() {
                let i = starts.partition_point(|&s| s <= col) - 1;
                let (p, c) = (&parts[i], col - starts[i]);
                for kk in 0..kc {
                    tmp[kk * cols + j] = p.data[(k0 + kk) * p.rs + c * p.cs];
                }
            }
            let gathered = MatRef::row_major(&tmp, kc, cols);
            E::pack_b_panel(dst, &gathered, 0, kc, kc_pad, 0, nr)
        },
    );
    buf
}

#[cfg(test)]
mod tests {
    use super::AlignedBuf;

    #[test]
    fn aligned_buf_is_aligned_zeroed_and_sized() {
        for len in [0, 1, 15, 16, 17, 1000, 1 << 20] {
            let mut b = AlignedBuf::zeroed(len);
            assert_eq!(b.as_slice().as_ptr() as usize % 64, 0, "len {len}");
            assert_eq!(b.as_slice().len(), len);
            assert!(b.as_slice().iter().all(|&v| v == 0.0));
            b.as_mut_slice()
                .iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = i as f32);
            let c = b.clone();
            assert_eq!(c.as_slice().as_ptr() as usize % 64, 0);
            assert_eq!(c.as_slice(), b.as_slice());
            b.ensure(len * 2 + 3);
            assert_eq!(b.as_slice().as_ptr() as usize % 64, 0);
            assert_eq!(b.as_slice().len(), len * 2 + 3);
        }
    }
}
