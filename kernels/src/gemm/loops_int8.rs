//! The int8 GEMM's loops, compiled once per int8 micro-kernel (`gemm_int8::<K>`): A is
//! quantised row by row and packed once per call, then the same task split as the f32 loops
//! (row blocks x chunks of B panels, one rayon task each) runs the micro-kernel over every
//! tile with all of K (no depth blocking: see `int8.rs`).
//!
//! ```text
//! quantise + pack A       [parallel over MR-high panels]: per row, scale and zero point
//! loop 3  IC [parallel]   tasks = row blocks x panel chunks, disjoint C
//!   loop 2  JR            for each NR-wide B micro-panel (all of K: 24 KiB at K = 768)
//!     loop 1  IR          for each MR-high A micro-panel
//!       micro-kernel      one MR x NR tile, dequantised with bias, beta and activation
//! ```
//! B is always pre-packed (weights are quantised once, at load). A row's quantisation and
//! every tile's arithmetic are fixed by that row and K alone, so the result is the same for
//! every thread count and whatever the other rows are.
//!
//! Not here: the quantisation formulas and packed layouts (`int8.rs`), the kernels (`arch/`).

use super::int8::{Int8Kernel, QuantTile, RowQuant};
use super::kernel::{Prefetch, MAX_NR, MAX_TILE};
use super::loops::{give_back, take, A_PACK};
use super::{Activation, Epilogue, MatMut, MatRef, PackedB};

/// C's base pointer, shared by tasks that write disjoint tiles.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: tasks write disjoint elements of C (disjoint rows x panel ranges), and C's strides
// were checked to make distinct elements distinct addresses.
unsafe impl Send for CPtr {}
// SAFETY: as above.
unsafe impl Sync for CPtr {}

/// One call's fixed parameters, shared by its tasks.
struct Job<'a, K: Int8Kernel> {
    beta: f32,
    c: CPtr,
    rs_c: usize,
    cs_c: usize,
    m: usize,
    n: usize,
    bias: Option<&'a [f32]>,
    act: Activation,
    /// Quads of k.
    kq: usize,
    /// A, quantised and packed: MR-high panels of `kq x MR` quads.
    apack: &'a [K::AQuad],
    /// Per row of A (padded to whole panels): `alpha * t_r`, and `z_r`.
    row_scale: &'a [f32],
    row_zp: &'a [i32],
    /// B's panels (`kq x NR` quads each) and per-column scales and sums (padded).
    bpack: &'a [u32],
    col_scale: &'a [f32],
    col_sum: &'a [i32],
    panels: usize,
}

/// `C <- act(alpha*A*B + beta*C + bias)` with the int8 B `b` and the kernel `K`. Never
/// inlined: called inside the kernel set's target-feature function (`table::run`), the loops
/// compile as plain code.
#[inline(never)]
pub(crate) fn gemm_int8<K: Int8Kernel>(
    alpha: f32,
    a: &MatRef<'_>,
    b: &PackedB,
    beta: f32,
    c: MatMut<'_>,
    epi: &Epilogue<'_>,
) {
    let (m, n, k) = (c.rows, c.cols, a.cols);
    if m == 0 || n == 0 {
        return;
    }
    let cols = b.i8_cols();
    debug_assert_eq!(b.nr(), K::NR);
    let kq = k.div_ceil(4);
    let a_panels = m.div_ceil(K::MR);
    let quad_words = std::mem::size_of::<K::AQuad>() / 4;
    let mut abuf = take(&A_PACK);
    abuf.ensure(a_panels * kq * K::MR * quad_words);
    let mut row_scale = vec![0.0f32; a_panels * K::MR];
    let mut row_zp = vec![0i32; a_panels * K::MR];
    quantize_pack_a::<K>(
        abuf.view_mut::<f32>(),
        a,
        kq,
        alpha,
        &mut row_scale,
        &mut row_zp,
    );
    let job = Job::<K> {
        beta,
        c: CPtr(c.data.as_mut_ptr()),
        rs_c: c.rs,
        cs_c: c.cs,
        m,
        n,
        bias: epi.bias,
        act: epi.activation,
        kq,
        apack: bytemuck::cast_slice(&abuf.view::<f32>()[..a_panels * kq * K::MR * quad_words]),
        row_scale: &row_scale,
        row_zp: &row_zp,
        bpack: b.buf().view(),
        col_scale: &cols.scale,
        col_sum: &cols.sum,
        panels: n.div_ceil(K::NR),
    };
    run_tasks(&job, k);
    give_back(&A_PACK, abuf);
}

/// Quantises every row of A and packs it into MR-high panels of quads (zero rows past M),
/// in parallel over panels for a large A; the row scales (times `alpha`) and zero points go
/// to `scale` and `zp`.
fn quantize_pack_a<K: Int8Kernel>(
    dst: &mut [f32],
    a: &MatRef<'_>,
    kq: usize,
    alpha: f32,
    scale: &mut [f32],
    zp: &mut [i32],
) {
    use rayon::prelude::*;
    let (m, k, mr) = (a.rows, a.cols, K::MR);
    let quad_words = std::mem::size_of::<K::AQuad>() / 4;
    let panel_len = kq * mr * quad_words;
    if panel_len == 0 {
        // K = 0: nothing to quantise (scale 0); the epilogue still applies beta and bias.
        scale.fill(0.0);
        zp.fill(0);
        return;
    }
    type Panel<'p> = (usize, ((&'p mut [f32], &'p mut [f32]), &'p mut [i32]));
    let work = |(p, ((dst, scale), zp)): Panel<'_>| {
        let dst: &mut [K::AQuad] = bytemuck::cast_slice_mut(dst);
        let mut row = vec![0.0f32; if a.cs == 1 { 0 } else { k }];
        let mut q = vec![0u8; kq * 4];
        for r in 0..mr {
            let i = p * mr + r;
            let rq = if i < m {
                let x: &[f32] = if a.cs == 1 {
                    &a.data[i * a.rs..i * a.rs + k]
                } else {
                    for (kk, v) in row.iter_mut().enumerate() {
                        *v = a.data[i * a.rs + kk * a.cs];
                    }
                    &row
                };
                // SAFETY: the loops only run kernels this CPU runs (`PackedB` picks one).
                unsafe { K::quantize_row(x, &mut q[..k]) }
            } else {
                q[..k].fill(0);
                RowQuant { scale: 0.0, zp: 0 }
            };
            // The padded k multiply zero weights; zero keeps the packed A deterministic.
            q[k..].fill(0);
            scale[r] = alpha * rq.scale;
            zp[r] = rq.zp;
            for (t, quad) in q.chunks_exact(4).enumerate() {
                dst[t * mr + r] = K::a_quad([quad[0], quad[1], quad[2], quad[3]]);
            }
        }
    };
    let panels = dst[..m.div_ceil(mr) * panel_len]
        .chunks_mut(panel_len)
        .zip(scale.chunks_mut(mr))
        .zip(zp.chunks_mut(mr))
        .enumerate();
    if m * k < 1 << 15 {
        panels.for_each(work);
    } else {
        panels.collect::<Vec<_>>().into_par_iter().for_each(work);
    }
}

/// How many row blocks `m` rows are cut into (as the f32 loops' `row_blocks`).
fn row_blocks<K: Int8Kernel>(m: usize, threads: usize) -> usize {
    let mut m_blocks = m.div_ceil(K::MC);
    let balanced = m_blocks.div_ceil(threads) * threads;
    if m >= 8 * K::MR * balanced {
        m_blocks = balanced;
    }
    m_blocks.min(m.div_ceil(K::MR)).max(1)
}

/// Splits the product into tasks (row blocks x panel chunks) and runs them on the pool.
fn run_tasks<K: Int8Kernel>(job: &Job<'_, K>, k: usize) {
    use rayon::prelude::*;
    let m = job.m;
    let threads = rayon::current_num_threads().max(1);
    let ops = 2.0 * m as f64 * job.n as f64 * k as f64;
    // Tiny products are not worth waking other threads for.
    let threads = if ops < 4.0e5 { 1 } else { threads };
    let m_blocks = row_blocks::<K>(m, threads);
    let a_panels = m.div_ceil(K::MR);
    let n_chunks = threads.div_ceil(m_blocks).min(job.panels).max(1);
    let per_chunk = job.panels.div_ceil(n_chunks);
    let mut tasks = Vec::with_capacity(m_blocks * n_chunks);
    for ib in 0..m_blocks {
        let t0 = ib * a_panels / m_blocks;
        let t1 = (ib + 1) * a_panels / m_blocks;
        for p0 in (0..job.panels).step_by(per_chunk) {
            tasks.push((t0, t1, p0, (p0 + per_chunk).min(job.panels)));
        }
    }
    if tasks.len() == 1 {
        let (t0, t1, p0, p1) = tasks[0];
        task(job, t0, t1, p0, p1);
    } else {
        tasks
            .par_iter()
            .for_each(|&(t0, t1, p0, p1)| task(job, t0, t1, p0, p1));
    }
}

/// Row tiles `t0..t1`, B panels `p0..p1`: loops 2 and 1.
fn task<K: Int8Kernel>(job: &Job<'_, K>, t0: usize, t1: usize, p0: usize, p1: usize) {
    let (kq, mr, nr) = (job.kq, K::MR, K::NR);
    let tiles = t1 - t0;
    for j in p0..p1 {
        let bpanel = &job.bpack[j * kq * nr..(j + 1) * kq * nr];
        // This task's next B panel, brought into L2 in shares over this panel's tiles.
        let (next, share) = if j + 1 < p1 {
            (
                job.bpack[(j + 1) * kq * nr..].as_ptr().cast::<u8>(),
                (kq * nr * 4).div_ceil(tiles),
            )
        } else {
            (std::ptr::null(), 0)
        };
        for t in t0..t1 {
            let pf = Prefetch {
                next: if next.is_null() {
                    next
                } else {
                    next.wrapping_add((t - t0) * share)
                },
                next_bytes: share,
                stream_b: t == t0,
            };
            let apanel = &job.apack[t * kq * mr..(t + 1) * kq * mr];
            tile(job, apanel, bpanel, t, j, pf);
        }
    }
}

/// One `MR x NR` tile: row tile `t`, column panel `j`.
fn tile<K: Int8Kernel>(
    job: &Job<'_, K>,
    apanel: &[K::AQuad],
    bpanel: &[u32],
    t: usize,
    j: usize,
    pf: Prefetch,
) {
    let (row0, col0) = (t * K::MR, j * K::NR);
    let mr = K::MR.min(job.m - row0);
    let nr = K::NR.min(job.n - col0);
    let q = QuantTile {
        row_scale: job.row_scale[row0..row0 + K::MR].as_ptr(),
        row_zp: job.row_zp[row0..row0 + K::MR].as_ptr(),
        col_scale: job.col_scale[col0..col0 + K::NR].as_ptr(),
        col_sum: job.col_sum[col0..col0 + K::NR].as_ptr(),
    };
    let mut bias_pad = [0.0f32; MAX_NR];
    let bias = match job.bias {
        Some(b) if nr == K::NR => b[col0..col0 + nr].as_ptr(),
        Some(b) => {
            bias_pad[..nr].copy_from_slice(&b[col0..col0 + nr]);
            bias_pad.as_ptr()
        }
        None => std::ptr::null(),
    };
    // SAFETY: (row0, col0) is inside C, whose extent was checked at the safe boundary.
    let c = unsafe { job.c.0.add(row0 * job.rs_c + col0 * job.cs_c) };
    if mr == K::MR && nr == K::NR && job.cs_c == 1 {
        // SAFETY: the panels hold kq*MR and kq*NR quads (sliced by the caller); the tile
        // rows row0..row0+MR, columns col0..col0+NR lie in C and belong to this task alone;
        // the row and column arrays are sliced to MR and NR above.
        unsafe {
            K::ukernel(
                job.kq,
                apanel.as_ptr(),
                bpanel.as_ptr(),
                c,
                job.rs_c,
                job.beta,
                &q,
                bias,
                job.act,
                pf,
            )
        };
        return;
    }
    // Edge tile or column-strided C: through a contiguous scratch tile.
    #[repr(align(64))]
    struct Tile([f32; MAX_TILE]);
    let mut s = Tile([0.0; MAX_TILE]);
    let s = &mut s.0[..K::MR * K::NR];
    let (rs, cs) = (job.rs_c, job.cs_c);
    if job.beta != 0.0 {
        for r in 0..mr {
            for jj in 0..nr {
                // SAFETY: (row0+r, col0+jj) is inside C and owned by this task.
                s[r * K::NR + jj] = unsafe { *c.add(r * rs + jj * cs) };
            }
        }
    }
    // SAFETY: the scratch tile is MR x NR with row stride NR; panels, arrays and bias as above.
    unsafe {
        K::ukernel(
            job.kq,
            apanel.as_ptr(),
            bpanel.as_ptr(),
            s.as_mut_ptr(),
            K::NR,
            job.beta,
            &q,
            bias,
            job.act,
            pf,
        )
    };
    for r in 0..mr {
        for jj in 0..nr {
            // SAFETY: as above.
            unsafe { *c.add(r * rs + jj * cs) = s[r * K::NR + jj] };
        }
    }
}
