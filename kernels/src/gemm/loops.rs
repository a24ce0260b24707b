//! BLIS's five loops around a micro-kernel, compiled once per ISA (`gemm_loop::<K>`).
//!
//! ```text
//! loop 5  JC: for each NC-wide block of B's columns     pack B (all k, nc) unless pre-packed
//!   [parallel]: tasks = IC blocks x JR chunks          one rayon task each, disjoint C
//!   loop 4  PC: for each KC-deep block of k            (never split across threads)
//!     pack A block (MC x KC)                           stays in L2
//!     loop 2  JR: for each NR-wide B micro-panel       stays in L1
//!       loop 1  IR: for each MR-high A micro-panel
//!         micro-kernel on one MR x NR tile of C
//! ```
//! Loop 3 (IC) is the task split: each task owns rows `i0..i0+mc` and panels `p0..p1`, so
//! every element of C is computed by one thread with the same k order whatever the thread
//! count. The bias and activation are applied to each tile after its last KC block.

use super::kernel::{MicroKernel, MAX_NR, MAX_TILE};
use super::pack::{self, AlignedBuf};
use super::{Activation, Epilogue, MatMut, MatRef, PackedB};
use crate::Isa;
use std::cell::RefCell;

/// Where B comes from.
pub(crate) enum BSource<'a> {
    Strided(&'a MatRef<'a>),
    Packed(&'a PackedB),
}

/// The register tile and block sizes of an ISA's micro-kernel.
pub(crate) fn blocking(isa: Isa) -> super::Blocking {
    fn of<K: MicroKernel>() -> super::Blocking {
        super::Blocking {
            mr: K::MR,
            nr: K::NR,
            kc: K::KC,
            mc: K::MC,
            nc: K::NC,
        }
    }
    match isa {
        Isa::Scalar => of::<crate::arch::scalar::Scalar>(),
        Isa::Portable => of::<crate::arch::portable::Portable>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => of::<crate::arch::x86_64::avx2::Avx2>(),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => of::<crate::arch::x86_64::avx512::Avx512>(),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("x86_64 kernels on another architecture"),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => of::<crate::arch::aarch64::neon::Neon>(),
        #[cfg(not(target_arch = "aarch64"))]
        Isa::Neon => super::Blocking {
            mr: 6,
            nr: 16,
            kc: 256,
            mc: 240,
            nc: 3072,
        },
    }
}

/// Runs the loops with the micro-kernel of `isa` (which the caller checked is runnable).
pub(crate) fn dispatch(
    isa: Isa,
    alpha: f32,
    a: &MatRef<'_>,
    b: BSource<'_>,
    beta: f32,
    c: MatMut<'_>,
    epi: &Epilogue<'_>,
) {
    match isa {
        Isa::Scalar => gemm_loop::<crate::arch::scalar::Scalar>(alpha, a, b, beta, c, epi),
        Isa::Portable => gemm_loop::<crate::arch::portable::Portable>(alpha, a, b, beta, c, epi),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx2 => gemm_loop::<crate::arch::x86_64::avx2::Avx2>(alpha, a, b, beta, c, epi),
        #[cfg(target_arch = "x86_64")]
        Isa::Avx512 => gemm_loop::<crate::arch::x86_64::avx512::Avx512>(alpha, a, b, beta, c, epi),
        #[cfg(not(target_arch = "x86_64"))]
        Isa::Avx2 | Isa::Avx512 => unreachable!("x86_64 kernels on another architecture"),
        #[cfg(target_arch = "aarch64")]
        Isa::Neon => gemm_loop::<crate::arch::aarch64::neon::Neon>(alpha, a, b, beta, c, epi),
        #[cfg(not(target_arch = "aarch64"))]
        Isa::Neon => unreachable!("the NEON kernels on another architecture"),
    }
}

/// C's base pointer, shared by tasks that write disjoint tiles.
#[derive(Clone, Copy)]
struct CPtr(*mut f32);
// SAFETY: tasks write disjoint elements of C (disjoint rows x panel ranges), and C's strides
// were checked to make distinct elements distinct addresses.
unsafe impl Send for CPtr {}
// SAFETY: as above.
unsafe impl Sync for CPtr {}

thread_local! {
    static A_PACK: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    static B_PACK: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
}

/// Takes a thread's scratch buffer (an empty one if it is in use higher up this thread's
/// stack, as can happen when rayon runs another job while this one waits).
fn take(buf: &'static std::thread::LocalKey<RefCell<AlignedBuf>>) -> AlignedBuf {
    buf.with(|b| {
        b.try_borrow_mut()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    })
}

fn give_back(buf: &'static std::thread::LocalKey<RefCell<AlignedBuf>>, v: AlignedBuf) {
    buf.with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            if b.capacity_bytes() < v.capacity_bytes() {
                *b = v;
            }
        }
    });
}

/// One call's fixed parameters, shared by its tasks.
#[derive(Clone, Copy)]
struct Job<'a> {
    alpha: f32,
    beta: f32,
    a: &'a MatRef<'a>,
    c: CPtr,
    rs_c: usize,
    cs_c: usize,
    bias: Option<&'a [f32]>,
    act: Activation,
    /// All of A, packed with depth blocks of `kc_block` (`pack::pack_a_all`).
    apack: &'a [f32],
    /// MR-high panels of the packed A.
    a_panels: usize,
    /// Packed B of columns `n0..n0+nc`, with `panels` panels and depth blocks of `kc_block`.
    bpack: &'a [f32],
    kc_block: usize,
    panels: usize,
    n0: usize,
    nc: usize,
}

fn gemm_loop<K: MicroKernel>(
    alpha: f32,
    a: &MatRef<'_>,
    b: BSource<'_>,
    beta: f32,
    c: MatMut<'_>,
    epi: &Epilogue<'_>,
) {
    let (m, n) = (c.rows, c.cols);
    if m == 0 || n == 0 {
        return;
    }
    let cptr = CPtr(c.data.as_mut_ptr());
    // A is packed once per call, for every JC block and task (in parallel over panels).
    let k = a.cols;
    let a_panels = m.div_ceil(K::MR);
    let mut abuf = take(&A_PACK);
    abuf.ensure(a_panels * K::MR * k);
    pack::pack_a_all::<K>(abuf.as_mut_slice(), a, K::KC);
    let base = Job {
        alpha,
        beta,
        a,
        c: cptr,
        rs_c: c.rs,
        cs_c: c.cs,
        bias: epi.bias,
        act: epi.activation,
        apack: abuf.as_slice(),
        a_panels,
        bpack: &[],
        kc_block: K::KC,
        panels: n.div_ceil(K::NR),
        n0: 0,
        nc: n,
    };
    match b {
        BSource::Packed(pb) => {
            debug_assert_eq!((pb.kc(), pb.nr()), (K::KC, K::NR));
            run_tasks::<K>(&Job {
                bpack: pb.data(),
                kc_block: pb.kc(),
                ..base
            });
        }
        BSource::Strided(bm) => {
            let mut buf = take(&B_PACK);
            // Loop 5 (JC): one NC-wide block of B's columns at a time.
            for n0 in (0..n).step_by(K::NC) {
                let nc = K::NC.min(n - n0);
                let block = MatRef {
                    data: &bm.data[n0 * bm.cs..],
                    cols: nc,
                    ..*bm
                };
                buf.ensure(pack::packed_b_len(bm.rows, nc, K::NR));
                pack::pack_b_all(buf.as_mut_slice(), &block, K::KC, K::NR);
                let panels = nc.div_ceil(K::NR);
                run_tasks::<K>(&Job {
                    bpack: buf.as_slice(),
                    panels,
                    n0,
                    nc,
                    ..base
                });
            }
            give_back(&B_PACK, buf);
        }
    }
    give_back(&A_PACK, abuf);
}

/// Splits the block into tasks (loop 3 and a split of loop 2) and runs them on the pool.
fn run_tasks<K: MicroKernel>(job: &Job<'_>) {
    use rayon::prelude::*;
    let m = job.a.rows;
    let threads = rayon::current_num_threads().max(1);
    let flops = 2.0 * m as f64 * job.nc as f64 * job.a.cols as f64;
    // Tiny products are not worth waking other threads for.
    let threads = if flops < 2.0e5 { 1 } else { threads };
    // Row blocks of at most MC rows, as many as a multiple of the thread count when the rows
    // allow (8 micro-panels a block at least), so every thread gets the same share.
    let mut m_blocks = m.div_ceil(K::MC);
    let balanced = m_blocks.div_ceil(threads) * threads;
    if m >= 8 * K::MR * balanced {
        m_blocks = balanced;
    }
    let mc = m.div_ceil(m_blocks).div_ceil(K::MR) * K::MR;
    let m_blocks = m.div_ceil(mc);
    let n_chunks = threads.div_ceil(m_blocks).min(job.panels).max(1);
    let per_chunk = job.panels.div_ceil(n_chunks);
    let mut tasks = Vec::with_capacity(m_blocks * n_chunks);
    for ib in 0..m_blocks {
        let i0 = ib * mc;
        for p0 in (0..job.panels).step_by(per_chunk) {
            tasks.push((i0, mc.min(m - i0), p0, (p0 + per_chunk).min(job.panels)));
        }
    }
    if tasks.len() == 1 {
        let (i0, mc, p0, p1) = tasks[0];
        task::<K>(job, i0, mc, p0, p1);
    } else {
        tasks
            .par_iter()
            .for_each(|&(i0, mc, p0, p1)| task::<K>(job, i0, mc, p0, p1));
    }
}

/// Rows `i0..i0+mc`, panels `p0..p1` of the block: loops 4, 2 and 1.
fn task<K: MicroKernel>(job: &Job<'_>, i0: usize, mc: usize, p0: usize, p1: usize) {
    let k = job.a.cols;
    debug_assert_eq!(i0 % K::MR, 0);
    // Loop 4 (PC). k == 0 still runs once, so beta, bias and activation are applied.
    let mut k0 = 0;
    loop {
        let kc = job.kc_block.min(k - k0);
        let first = k0 == 0;
        let last = k0 + kc >= k;
        let beta = if first { job.beta } else { 1.0 };
        // Loop 2 (JR).
        let tiles = mc.div_ceil(K::MR);
        for j in p0..p1 {
            let off = pack::packed_offset(k0, kc, j, job.panels, K::NR);
            let bpanel = &job.bpack[off..off + kc * K::NR];
            // The B micro-panel this task reads next, prefetched into L2 in shares spread
            // over this panel's tiles so its load from memory overlaps their arithmetic.
            let next = if j + 1 < p1 {
                Some((off + kc * K::NR, kc))
            } else if k0 + kc < k {
                let kc2 = job.kc_block.min(k - k0 - kc);
                Some((
                    pack::packed_offset(k0 + kc, kc2, p0, job.panels, K::NR),
                    kc2,
                ))
            } else {
                None
            };
            let (pf_base, share) = match next {
                Some((o, kc2)) => (
                    job.bpack[o..].as_ptr().cast::<u8>(),
                    (kc2 * K::NR * 4).div_ceil(tiles),
                ),
                None => (std::ptr::null(), 0),
            };
            // Loop 1 (IR).
            for ir in 0..tiles {
                let pf = if pf_base.is_null() {
                    pf_base
                } else {
                    pf_base.wrapping_add(ir * share)
                };
                let aoff = pack::packed_offset(k0, kc, i0 / K::MR + ir, job.a_panels, K::MR);
                let apanel = &job.apack[aoff..aoff + kc * K::MR];
                tile::<K>(
                    job,
                    apanel,
                    bpanel,
                    kc,
                    i0 + ir * K::MR,
                    (i0 + mc).min(i0 + (ir + 1) * K::MR),
                    j,
                    beta,
                    last,
                    pf,
                    share,
                );
            }
        }
        k0 += kc;
        if k0 >= k {
            break;
        }
    }
}

/// One `MR x NR` tile: rows `row0..row1`, panel `j`.
#[allow(clippy::too_many_arguments)]
#[inline]
fn tile<K: MicroKernel>(
    job: &Job<'_>,
    apanel: &[f32],
    bpanel: &[f32],
    kc: usize,
    row0: usize,
    row1: usize,
    j: usize,
    beta: f32,
    last: bool,
    pf: *const u8,
    pf_bytes: usize,
) {
    let col0 = job.n0 + j * K::NR;
    let mr = row1 - row0;
    let nr = K::NR.min(job.n0 + job.nc - col0);
    let mut bias_pad = [0.0f32; MAX_NR];
    let bias = match job.bias {
        Some(b) if last => {
            if nr == K::NR {
                b[col0..col0 + nr].as_ptr()
            } else {
                bias_pad[..nr].copy_from_slice(&b[col0..col0 + nr]);
                bias_pad.as_ptr()
            }
        }
        _ => std::ptr::null(),
    };
    let act = if last { job.act } else { Activation::None };
    // SAFETY: (row0, col0) is inside C, whose extent was checked at the safe boundary.
    let c = unsafe { job.c.0.add(row0 * job.rs_c + col0 * job.cs_c) };
    if mr == K::MR && nr == K::NR && job.cs_c == 1 {
        // SAFETY: the panels hold kc*MR and kc*NR floats (sliced above); the full tile
        // rows row0..row0+MR, columns col0..col0+NR lie in C and belong to this task alone.
        unsafe {
            K::ukernel_pf(
                kc,
                apanel.as_ptr(),
                bpanel.as_ptr(),
                c,
                job.rs_c,
                job.alpha,
                beta,
                bias,
                pf,
                pf_bytes,
            )
        };
        if act != Activation::None {
            for r in 0..K::MR {
                // SAFETY: row r of the tile is NR contiguous elements of C owned by this task.
                let row = unsafe { std::slice::from_raw_parts_mut(c.add(r * job.rs_c), K::NR) };
                apply_activation(K::ISA, act, row);
            }
        }
        return;
    }
    // Edge tile or column-strided C: go through a contiguous scratch tile.
    #[repr(align(64))]
    struct Tile([f32; MAX_TILE]);
    let mut t = Tile([0.0; MAX_TILE]);
    let t = &mut t.0[..K::MR * K::NR];
    let (rs, cs) = (job.rs_c, job.cs_c);
    if beta != 0.0 {
        for r in 0..mr {
            for jj in 0..nr {
                // SAFETY: (row0+r, col0+jj) is inside C and owned by this task.
                t[r * K::NR + jj] = unsafe { *c.add(r * rs + jj * cs) };
            }
        }
    }
    // SAFETY: the scratch tile is MR x NR with row stride NR; panels and bias as above.
    unsafe {
        K::ukernel(
            kc,
            apanel.as_ptr(),
            bpanel.as_ptr(),
            t.as_mut_ptr(),
            K::NR,
            job.alpha,
            beta,
            bias,
        )
    };
    if act != Activation::None {
        for row in t.chunks_exact_mut(K::NR).take(mr) {
            apply_activation(K::ISA, act, row);
        }
    }
    for r in 0..mr {
        for jj in 0..nr {
            // SAFETY: as above.
            unsafe { *c.add(r * rs + jj * cs) = t[r * K::NR + jj] };
        }
    }
}

/// The activation of the epilogue, on one tile row: the same vectorised functions as
/// [`crate::rows::gelu`] and [`crate::rows::quick_gelu`], so a fused and an unfused activation
/// give the same bits.
fn apply_activation(isa: Isa, act: Activation, row: &mut [f32]) {
    match act {
        Activation::None => {}
        Activation::QuickGelu => crate::rows::quick_gelu(isa, row),
        Activation::Gelu => crate::rows::gelu(isa, row),
    }
}
