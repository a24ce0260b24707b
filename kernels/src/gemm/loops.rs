//! BLIS's five loops around a micro-kernel, compiled once per micro-kernel (`gemm_loop::<K>`).
//!
//! ```text
//! if tasks share rows: pack all of A, once per call      (M x K; in parallel over panels)
//! loop 5  JC: for each NC-wide block of B's columns      pack B (all k, nc) unless pre-packed
//!   loop 3  IC [parallel]: tasks = row blocks x panel chunks    one rayon task each, disjoint C
//!     loop 4  PC: for each KC-deep block of k            (never split across threads)
//!       if the task owns its rows: pack its MC x KC block of A   (written and read in L2)
//!       loop 2  JR: for each NR-wide B micro-panel       (L1; L2 for AVX-512's KC = 1024)
//!         loop 1  IR: for each MR-high A micro-panel
//!           micro-kernel on one MR x NR tile of C
//! ```
//! Loop 3 (IC) is the task split: each task owns rows `i0..i0+mc` and panels `p0..p1`, so
//! every element of C is computed by one thread with the same k order whatever the thread
//! count. How A is packed is decided per call from that split:
//! - when the row blocks alone keep every thread busy (8 micro-panels a thread or more: M of
//!   160 rows or more on 2 threads with the 10-row AVX-512 tile; any M on 1 thread), each task
//!   packs its own MC x KC block of A at the top of each KC block, so the packed block never
//!   leaves the core's L2;
//! - otherwise (skinny M: tasks share rows and split the panels of N), A is packed once per
//!   call for all tasks and JC blocks, so no two tasks pack the same rows.
//!
//! The bias and activation are applied to each tile after its last KC block.
//!
//! Not here: the micro-kernels (`arch/`), which one a kernel set runs (`table.rs`), the packed
//! layouts (`pack.rs`).

use super::int8::Int8Kernel;
use super::kernel::{MicroKernel, Prefetch, MAX_NR, MAX_TILE, WIDEN_MIN_TILES};
use super::loops_int8::gemm_int8;
use super::pack::{self, AlignedBuf, PanelElem};
use super::{Activation, Epilogue, MatMut, MatRef, PackedB};
use crate::table::{self, Kernel, KernelSet, KernelVisitor, SetVisitor};
use crate::Isa;
use std::cell::RefCell;

/// Where B comes from.
pub(crate) enum BSource<'a> {
    Strided(&'a MatRef<'a>),
    Packed(&'a PackedB),
}

/// The register tile and block sizes of a micro-kernel. Panics for a kind of kernel the set
/// lacks (see `Blocking::of_bf16`). An int8 kernel sums all of K (up to `INT8_MAX_K`) and
/// packs no B per call.
pub(crate) fn blocking(kernel: Kernel) -> super::Blocking {
    struct Of;
    impl KernelVisitor for Of {
        type Out = super::Blocking;
        fn visit<K: MicroKernel>(self) -> super::Blocking {
            super::Blocking {
                mr: K::MR,
                nr: K::NR,
                kc: K::KC,
                mc: K::MC,
                nc: K::NC,
            }
        }
        fn visit_int8<K: Int8Kernel>(self) -> super::Blocking {
            super::Blocking {
                mr: K::MR,
                nr: K::NR,
                kc: super::int8::MAX_K,
                mc: K::MC,
                nc: 0,
            }
        }
    }
    table::describe(kernel, Of).unwrap_or_else(|| panic!("no micro-kernel {kernel:?}"))
}

/// Whether this CPU runs the micro-kernel `kernel` (`false` where its set lacks that kind).
pub(crate) fn is_available(kernel: Kernel) -> bool {
    struct Available;
    impl KernelVisitor for Available {
        type Out = bool;
        fn visit<K: MicroKernel>(self) -> bool {
            K::is_available()
        }
        fn visit_int8<K: Int8Kernel>(self) -> bool {
            K::is_available()
        }
    }
    kernel.isa().is_available() && table::describe(kernel, Available).unwrap_or(false)
}

/// The int8 kernel a B packed for `isa` is multiplied by: `isa`'s if this CPU runs it, else
/// the first of avx2's and scalar's it does (an AVX-512 CPU without VNNI gets avx2's).
pub(crate) fn int8_kernel_for(isa: Isa) -> Kernel {
    [isa, Isa::Avx2, Isa::Scalar]
        .into_iter()
        .map(Kernel::Int8)
        .find(|&k| is_available(k))
        .unwrap_or(Kernel::Int8(Isa::Scalar))
}

/// Runs the loops with the micro-kernel `kernel` (which the caller checked is runnable).
pub(crate) fn dispatch(
    kernel: Kernel,
    alpha: f32,
    a: &MatRef<'_>,
    b: BSource<'_>,
    beta: f32,
    c: MatMut<'_>,
    epi: &Epilogue<'_>,
) {
    struct Run<'a> {
        kernel: Kernel,
        alpha: f32,
        a: &'a MatRef<'a>,
        b: BSource<'a>,
        beta: f32,
        c: MatMut<'a>,
        epi: &'a Epilogue<'a>,
    }
    impl KernelVisitor for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn visit<K: MicroKernel>(self) {
            gemm_loop::<K>(self.alpha, self.a, self.b, self.beta, self.c, self.epi)
        }
        #[inline(always)]
        fn visit_int8<K: Int8Kernel>(self) {
            let BSource::Packed(b) = self.b else {
                unreachable!("an int8 B is always pre-packed")
            };
            gemm_int8::<K>(self.alpha, self.a, b, self.beta, self.c, self.epi)
        }
    }
    impl SetVisitor for Run<'_> {
        type Out = ();
        #[inline(always)]
        fn visit<S: KernelSet>(self) {
            let (kernel, m) = (self.kernel, self.c.rows);
            table::with_kernel::<S, _>(kernel, Some(m), self)
                .unwrap_or_else(|| unreachable!("no micro-kernel {kernel:?}: PackedB checks"))
        }
    }
    let run = Run {
        kernel,
        alpha,
        a,
        b,
        beta,
        c,
        epi,
    };
    table::run(kernel.isa(), run)
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
    pub(super) static A_PACK: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    static B_PACK: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
    /// One B micro-panel widened to f32 (`MicroKernel::WIDEN`).
    static W_PACK: RefCell<AlignedBuf> = RefCell::new(AlignedBuf::default());
}

/// Takes a thread's scratch buffer (an empty one if it is in use higher up this thread's
/// stack, as can happen when rayon runs another job while this one waits).
pub(super) fn take(buf: &'static std::thread::LocalKey<RefCell<AlignedBuf>>) -> AlignedBuf {
    buf.with(|b| {
        b.try_borrow_mut()
            .map(|mut b| std::mem::take(&mut *b))
            .unwrap_or_default()
    })
}

pub(super) fn give_back(buf: &'static std::thread::LocalKey<RefCell<AlignedBuf>>, v: AlignedBuf) {
    buf.with(|b| {
        if let Ok(mut b) = b.try_borrow_mut() {
            if b.capacity_bytes() < v.capacity_bytes() {
                *b = v;
            }
        }
    });
}

/// One call's fixed parameters, shared by its tasks.
struct Job<'a, K: MicroKernel> {
    alpha: f32,
    beta: f32,
    a: &'a MatRef<'a>,
    c: CPtr,
    rs_c: usize,
    cs_c: usize,
    bias: Option<&'a [f32]>,
    act: Activation,
    /// All of A, packed with depth blocks of `kc_block` (`pack::pack_a_all`), when tasks share
    /// rows; `None` when every task owns its rows and packs them itself, block by block.
    apack: Option<&'a [K::A]>,
    /// MR-high panels of the packed A.
    a_panels: usize,
    /// Packed B of columns `n0..n0+nc`, with `panels` panels and depth blocks of `kc_block`.
    bpack: &'a [K::B],
    kc_block: usize,
    panels: usize,
    n0: usize,
    nc: usize,
}

impl<K: MicroKernel> Clone for Job<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<K: MicroKernel> Copy for Job<'_, K> {}

/// Loops 5 to 1 for the micro-kernel `K`. Never inlined: it is called inside the kernel set's
/// target-feature function (`table::run`), and the loops are meant to compile as plain code
/// (only the micro-kernels carry features).
#[inline(never)]
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
    let k = a.cols;
    let a_panels = m.div_ceil(K::MR);
    // When row blocks keep every thread busy, each task packs its own MC x KC block of A just
    // before using it (BLIS's loop 3), so the packed block is written to and read from the
    // core's L2. Otherwise (few rows: tasks share rows and split the columns) A is packed once
    // per call, for every JC block and task, in parallel over panels.
    let threads = rayon::current_num_threads().max(1);
    let shared_a = row_blocks::<K>(m, threads) < threads;
    // (Taken only when used: a task on this thread takes the same buffer.)
    let abuf = shared_a.then(|| {
        let mut buf = take(&A_PACK);
        buf.ensure(pack::packed_len::<K::A>(k, K::KSTEP, a_panels, K::MR));
        pack::pack_a_all::<K>(buf.view_mut(), a, K::KC);
        buf
    });
    let base = Job::<K> {
        alpha,
        beta,
        a,
        c: cptr,
        rs_c: c.rs,
        cs_c: c.cs,
        bias: epi.bias,
        act: epi.activation,
        apack: abuf.as_ref().map(|buf| buf.view()),
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
                bpack: pb.buf().view(),
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
                let panels = nc.div_ceil(K::NR);
                buf.ensure(pack::packed_len::<K::B>(bm.rows, K::KSTEP, panels, K::NR));
                pack::pack_b_all::<K::B>(buf.view_mut(), &block, K::KC, K::KSTEP, K::NR);
                run_tasks::<K>(&Job {
                    bpack: buf.view(),
                    panels,
                    n0,
                    nc,
                    ..base
                });
            }
            give_back(&B_PACK, buf);
        }
    }
    if let Some(buf) = abuf {
        give_back(&A_PACK, buf);
    }
}

/// Splits the block into tasks (loop 3 and a split of loop 2) and runs them on the pool.
fn run_tasks<K: MicroKernel>(job: &Job<'_, K>) {
    use rayon::prelude::*;
    let m = job.a.rows;
    let threads = rayon::current_num_threads().max(1);
    let flops = 2.0 * m as f64 * job.nc as f64 * job.a.cols as f64;
    // Tiny products are not worth waking other threads for.
    let threads = if flops < 2.0e5 { 1 } else { threads };
    let m_blocks = row_blocks::<K>(m, threads);
    // The MR-high micro-panels of A are dealt out evenly (block sizes differ by at most one
    // micro-panel), so no thread is left with a long last block: 1024 rows in 6 blocks are
    // 17-18 micro-panels each, not five of 18 and one of 13.
    let a_panels = m.div_ceil(K::MR);
    let n_chunks = threads.div_ceil(m_blocks).min(job.panels).max(1);
    let per_chunk = job.panels.div_ceil(n_chunks);
    let mut tasks = Vec::with_capacity(m_blocks * n_chunks);
    for ib in 0..m_blocks {
        let i0 = ib * a_panels / m_blocks * K::MR;
        let i1 = ((ib + 1) * a_panels / m_blocks * K::MR).min(m);
        for p0 in (0..job.panels).step_by(per_chunk) {
            tasks.push((i0, i1 - i0, p0, (p0 + per_chunk).min(job.panels)));
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

/// How many row blocks `m` rows are cut into for `threads` threads: blocks of at most MC rows,
/// as many as a multiple of the thread count when the rows allow (8 micro-panels a block at
/// least), so every thread gets the same share; never more blocks than micro-panels.
fn row_blocks<K: MicroKernel>(m: usize, threads: usize) -> usize {
    let mut m_blocks = m.div_ceil(K::MC);
    let balanced = m_blocks.div_ceil(threads) * threads;
    if m >= 8 * K::MR * balanced {
        m_blocks = balanced;
    }
    m_blocks.min(m.div_ceil(K::MR)).max(1)
}

/// Rows `i0..i0+mc`, panels `p0..p1` of the block: loops 4, 2 and 1.
fn task<K: MicroKernel>(job: &Job<'_, K>, i0: usize, mc: usize, p0: usize, p1: usize) {
    let k = job.a.cols;
    debug_assert_eq!(i0 % K::MR, 0);
    let tiles = mc.div_ceil(K::MR);
    // A bf16 conversion kernel's B micro-panels are widened here once for all the task's
    // tiles (then multiplied by the f32 twin) rather than in every tile.
    let mut wbuf = (K::WIDEN && tiles >= WIDEN_MIN_TILES).then(|| {
        let mut w = take(&W_PACK);
        w.ensure(job.kc_block.next_multiple_of(K::KSTEP) * K::NR);
        w
    });
    // This task's own packed A block, when A is not packed for all tasks (`Job::apack`).
    let mut own_a = job.apack.is_none().then(|| take(&A_PACK));
    // Loop 4 (PC). k == 0 still runs once, so beta, bias and activation are applied.
    let mut k0 = 0;
    loop {
        let kc = job.kc_block.min(k - k0);
        let first = k0 == 0;
        let last = k0 + kc >= k;
        let beta = if first { job.beta } else { 1.0 };
        // Depth in elements of each packed operand (pairs count once); k0 is a multiple of
        // KC, which is a multiple of KSTEP, so earlier blocks were never padded.
        let kc_pad = kc.next_multiple_of(K::KSTEP);
        let (a0, asteps) = (k0 / K::A::K_PER, kc_pad / K::A::K_PER);
        let (b0, bsteps) = (k0 / K::B::K_PER, kc_pad / K::B::K_PER);
        // Loop 3's packing: the packed A, the depth offset of this block in it, and the
        // index and count of the task's first micro-panel there.
        let (apack, a_k0, a_first, a_panels) = match (&mut own_a, job.apack) {
            (Some(buf), _) => {
                buf.ensure(asteps * tiles * K::MR);
                pack::pack_a_block::<K>(buf.view_mut(), job.a, i0, mc, k0, kc);
                (buf.view(), 0, 0, tiles)
            }
            (None, Some(all)) => (all, a0, i0 / K::MR, job.a_panels),
            (None, None) => unreachable!("A is packed for all tasks or by each"),
        };
        // Loop 2 (JR).
        for j in p0..p1 {
            let off = pack::packed_offset(b0, bsteps, j, job.panels, K::NR);
            let bpanel = &job.bpack[off..off + bsteps * K::NR];
            if let Some(w) = wbuf.as_mut() {
                let wide = &mut w.view_mut::<<K::Wide as MicroKernel>::B>()[..kc_pad * K::NR];
                // SAFETY: the caller checked that the CPU runs K (lengths: checked by K).
                unsafe { K::widen_b(bpanel, wide, kc_pad) };
            }
            // The B micro-panel this task reads next, prefetched into L2 in shares spread
            // over this panel's tiles so its load from memory overlaps their arithmetic.
            let next = if j + 1 < p1 {
                Some((off + bsteps * K::NR, bsteps))
            } else if k0 + kc < k {
                let kc2 = job.kc_block.min(k - k0 - kc);
                let steps2 = kc2.next_multiple_of(K::KSTEP) / K::B::K_PER;
                let b2 = (k0 + kc) / K::B::K_PER;
                Some((
                    pack::packed_offset(b2, steps2, p0, job.panels, K::NR),
                    steps2,
                ))
            } else {
                None
            };
            let (pf_base, share) = match next {
                Some((o, steps2)) => (
                    job.bpack[o..].as_ptr().cast::<u8>(),
                    (steps2 * K::NR * std::mem::size_of::<K::B>()).div_ceil(tiles),
                ),
                None => (std::ptr::null(), 0),
            };
            // Loop 1 (IR).
            for ir in 0..tiles {
                let pf = Prefetch {
                    next: if pf_base.is_null() {
                        pf_base
                    } else {
                        pf_base.wrapping_add(ir * share)
                    },
                    next_bytes: share,
                    // The first tile reads the panel from wherever the last one's prefetch
                    // left it; the others find it in L2. A widened panel was just written.
                    stream_b: ir == 0 && wbuf.is_none(),
                };
                let aoff = pack::packed_offset(a_k0, asteps, a_first + ir, a_panels, K::MR);
                let apanel = &apack[aoff..aoff + asteps * K::MR];
                let rows = (i0 + ir * K::MR, (i0 + mc).min(i0 + (ir + 1) * K::MR));
                match &wbuf {
                    Some(w) => tile::<K, K::Wide>(
                        job,
                        apanel,
                        &w.view()[..kc_pad * K::NR],
                        kc_pad,
                        rows,
                        j,
                        beta,
                        last,
                        pf,
                    ),
                    None => tile::<K, K>(job, apanel, bpanel, kc_pad, rows, j, beta, last, pf),
                }
            }
        }
        k0 += kc;
        if k0 >= k {
            break;
        }
    }
    if let Some(w) = wbuf {
        give_back(&W_PACK, w);
    }
    if let Some(a) = own_a {
        give_back(&A_PACK, a);
    }
}

/// One `MR x NR` tile: rows `row0..row1`, panel `j`; `kc` is the padded depth. The
/// micro-kernel is `U`: `K` itself, or its f32 twin on a widened B panel (same tile shape).
///
/// Never inlined: a tile is thousands of cycles, and inlined into `task` it made the text
/// encoder on 8 tokens (M = 8: one edge tile per panel, weights streamed from memory) run at
/// half the speed, with the same arithmetic: the cause is in the generated code of `task`
/// (figures in `docs/performance.md`).
#[allow(clippy::too_many_arguments)]
#[inline(never)]
fn tile<K: MicroKernel, U: MicroKernel<A = K::A>>(
    job: &Job<'_, K>,
    apanel: &[K::A],
    bpanel: &[U::B],
    kc: usize,
    (row0, row1): (usize, usize),
    j: usize,
    beta: f32,
    last: bool,
    pf: Prefetch,
) {
    debug_assert_eq!((U::MR, U::NR), (K::MR, K::NR));
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
        // SAFETY: the panels hold kc*MR and kc*NR k (sliced above); the full tile
        // rows row0..row0+MR, columns col0..col0+NR lie in C and belong to this task alone.
        unsafe {
            U::ukernel_pf(
                kc,
                apanel.as_ptr(),
                bpanel.as_ptr(),
                c,
                job.rs_c,
                job.alpha,
                beta,
                bias,
                act,
                pf,
            )
        };
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
        U::ukernel_pf(
            kc,
            apanel.as_ptr(),
            bpanel.as_ptr(),
            t.as_mut_ptr(),
            K::NR,
            job.alpha,
            beta,
            bias,
            act,
            pf,
        )
    };
    for r in 0..mr {
        for jj in 0..nr {
            // SAFETY: as above.
            unsafe { *c.add(r * rs + jj * cs) = t[r * K::NR + jj] };
        }
    }
}
