//! Multi-head scaled dot-product attention over token rows:
//! `out[b, t, h] = softmax(scale * q[b, t, h] . k[b, :, h]^T (+ causal mask)) . v[b, :, h]`.
//!
//! Layout: q, k and v are token rows `row_stride` floats apart; head `h` of token `t` (over
//! all batches, `t` in `0..B*T`) starts at `t * row_stride + h * head_dim`. A fused QKV
//! buffer `[B*T, 3*H*D]` is passed as three offset slices with `row_stride = 3*H*D`; separate
//! `[B*T, H*D]` buffers with `row_stride = H*D`. `out` is `[B, T, H*D]`, contiguous.
//!
//! Parallelism: one job per (batch, head) on the caller's rayon pool; each job is computed
//! wholly by one thread with a per-thread scratch buffer (K transposed and V packed for the
//! head, scores of a block of 4 queries), so the result is identical for every thread count
//! and there is no `[T, T]` allocation. Per block of queries: scores by axpys over `K^T`
//! (vectorised along keys), the row softmax of `crate::rows`, then `p . V` (vectorised along
//! `head_dim`). Every dot product is summed over its index in order, whatever the lane count.
//!
//! Not here: the Q/K/V projections (GEMM), KV caches, masks other than causal.

use crate::math::SimdF32;
use crate::rows::softmax_row;
use crate::table::{self, assert_available, KernelSet, SetVisitor};
use crate::Isa;
use rayon::prelude::*;
use std::cell::RefCell;

/// The sizes of an attention problem.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttentionShape {
    /// Number of sequences `B`.
    pub batch: usize,
    /// Tokens per sequence `T`.
    pub seq: usize,
    /// Heads `H`.
    pub heads: usize,
    /// Features per head `D`.
    pub head_dim: usize,
}

/// Padding granularity of the scratch layout: the widest lane count (AVX-512).
const PAD: usize = 16;

fn round_up(n: usize) -> usize {
    n.div_ceil(PAD) * PAD
}

/// Everything a (batch, head) job reads.
struct Problem<'a> {
    q: &'a [f32],
    k: &'a [f32],
    v: &'a [f32],
    row_stride: usize,
    shape: AttentionShape,
    causal: bool,
    scale: f32,
}

thread_local! {
    /// Per-thread scratch, grown on demand and reused across calls.
    static SCRATCH: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Multi-head scaled dot-product attention (see the module doc for the layout):
/// for each batch `b`, head `h` and query `i`,
/// `out[b, i, h*D..(h+1)*D] = sum_j p_ij v[b, j, h]`, with
/// `p_i = softmax_j(scale * q[b, i, h] . k[b, j, h])` over `j < T`, or `j <= i` if `causal`.
///
/// Runs on the caller's rayon pool (`pool.install(..)` chooses the thread count); the
/// result is bitwise identical for any thread count.
///
/// Panics if `isa` is not available, if `row_stride < heads * head_dim`, or if a slice is too
/// short for the shape (`q`, `k`, `v` need `(B*T - 1) * row_stride + H*D` elements; `out`
/// exactly `B*T*H*D`).
#[allow(clippy::too_many_arguments)]
pub fn attention(
    isa: Isa,
    q: &[f32],
    k: &[f32],
    v: &[f32],
    row_stride: usize,
    out: &mut [f32],
    shape: AttentionShape,
    causal: bool,
    scale: f32,
) {
    assert_available(isa);
    let AttentionShape {
        batch,
        seq,
        heads,
        head_dim,
    } = shape;
    let hd = heads * head_dim;
    let tokens = batch * seq;
    assert_eq!(
        out.len(),
        tokens * hd,
        "attention: out has {} elements, [B={batch}, T={seq}, H*D={hd}] needs {}",
        out.len(),
        tokens * hd
    );
    if tokens == 0 || hd == 0 {
        return;
    }
    assert!(
        row_stride >= hd,
        "attention: row_stride {row_stride} < heads * head_dim = {hd}"
    );
    let need = (tokens - 1) * row_stride + hd;
    for (name, s) in [("q", q), ("k", k), ("v", v)] {
        assert!(
            s.len() >= need,
            "attention: {name} has {} elements, {tokens} token rows of stride {row_stride} need {need}",
            s.len()
        );
    }
    let p = Problem {
        q,
        k,
        v,
        row_stride,
        shape,
        causal,
        scale,
    };

    // The output rows of each (b, h) job: `seq` disjoint pieces of `head_dim` floats.
    let mut jobs: Vec<Vec<&mut [f32]>> = (0..batch * heads)
        .map(|_| Vec::with_capacity(seq))
        .collect();
    for (t, row) in out.chunks_exact_mut(hd).enumerate() {
        let b = t / seq;
        for (h, piece) in row.chunks_exact_mut(head_dim).enumerate() {
            jobs[b * heads + h].push(piece);
        }
    }

    let run = |(job, mut rows): (usize, Vec<&mut [f32]>)| {
        SCRATCH.with(|s| {
            let mut s = s.borrow_mut();
            let head = Head {
                p: &p,
                job,
                scratch: &mut s,
                out_rows: &mut rows,
            };
            // Per job, on the thread that runs it: the head's code is compiled inside the
            // set's target-feature function (`table::run`), not in this closure.
            table::run(isa, head)
        })
    };
    if rayon::current_num_threads() <= 1 || jobs.len() == 1 {
        jobs.into_iter().enumerate().for_each(run);
    } else {
        jobs.into_par_iter().enumerate().for_each(run);
    }
}

/// One (batch, head) job, run on the kernel set's lane type.
struct Head<'a, 'b> {
    p: &'a Problem<'a>,
    job: usize,
    scratch: &'b mut Vec<f32>,
    out_rows: &'b mut [&'a mut [f32]],
}

impl SetVisitor for Head<'_, '_> {
    type Out = ();
    #[inline(always)]
    fn visit<S: KernelSet>(self) {
        attend_head::<S::Lanes>(self.p, self.job, self.scratch, self.out_rows)
    }
}

/// Query rows whose scores are computed together (sharing each load of `K^T`).
const ROWS: usize = 4;

/// Attention for batch `job / H`, head `job % H`, writing `out_rows[i]` (`head_dim` floats)
/// for each query `i`.
///
/// Scratch layout (`Tp`, `Dp` = T, D rounded up to 16, padding zero; `R` = [`ROWS`]):
/// ```text
///   kt  [D][Tp]   K of this head, transposed: kt[d][j] = k[j][d]
///   vp  [T][Dp]   V of this head, packed
///   sc  [R][Tp]   scores, then probabilities, of the current block of queries
///   qs  [R][D]    the current queries, times `scale`
/// ```
/// Queries go by blocks of `R`: scores of the block (keys up to the block's last causal
/// limit; each row later uses only its own), `R` row softmaxes (independent, so their
/// latency chains overlap), then `p . V` for pairs of rows (sharing each load of V).
/// Queries left over after the last full block have their scores computed one at a time.
#[inline(always)]
fn attend_head<V: SimdF32>(
    p: &Problem<'_>,
    job: usize,
    scratch: &mut Vec<f32>,
    out_rows: &mut [&mut [f32]],
) {
    let AttentionShape {
        seq: t_len,
        heads,
        head_dim: d_len,
        ..
    } = p.shape;
    let (b, h) = (job / heads, job % heads);
    let (tp, dp) = (round_up(t_len), round_up(d_len));
    let need = d_len * tp + t_len * dp + ROWS * (tp + d_len);
    if scratch.len() < need {
        scratch.resize(need, 0.0);
    }
    let (kt, rest) = scratch[..need].split_at_mut(d_len * tp);
    let (vp, rest) = rest.split_at_mut(t_len * dp);
    let (sc, qs) = rest.split_at_mut(ROWS * tp);
    kt.fill(0.0);
    vp.fill(0.0);

    let col0 = h * d_len;
    let row = |t: usize| (b * t_len + t) * p.row_stride + col0;
    for t in 0..t_len {
        let (kr, vr) = (&p.k[row(t)..][..d_len], &p.v[row(t)..][..d_len]);
        for (d, &x) in kr.iter().enumerate() {
            kt[d * tp + t] = x;
        }
        vp[t * dp..t * dp + d_len].copy_from_slice(vr);
    }

    let l = V::LANES;
    let mut i0 = 0;
    for block in out_rows.chunks_mut(ROWS) {
        let r_len = block.len();
        let n_of = |i: usize| if p.causal { i + 1 } else { t_len };
        for r in 0..r_len {
            let q = &p.q[row(i0 + r)..][..d_len];
            for (qd, &x) in qs[r * d_len..(r + 1) * d_len].iter_mut().zip(q) {
                *qd = x * p.scale;
            }
        }
        // sc[r][j] = sum_d qs[r][d] * kt[d][j] for the key chunks covering 0..n(last row).
        let chunks = n_of(i0 + r_len - 1).div_ceil(l);
        if r_len == ROWS {
            let mut c = 0;
            while c + 2 <= chunks {
                scores_block::<V, ROWS, 2>(qs, d_len, kt, tp, c * l, sc);
                c += 2;
            }
            for c in c..chunks {
                scores_block::<V, ROWS, 1>(qs, d_len, kt, tp, c * l, sc);
            }
        } else {
            for r in 0..r_len {
                let (q1, s1) = (&qs[r * d_len..], &mut sc[r * tp..]);
                let mut c = 0;
                while c + 4 <= chunks {
                    scores_block::<V, 1, 4>(q1, d_len, kt, tp, c * l, s1);
                    c += 4;
                }
                for c in c..chunks {
                    scores_block::<V, 1, 1>(q1, d_len, kt, tp, c * l, s1);
                }
            }
        }
        for r in 0..r_len {
            softmax_row::<V>(&mut sc[r * tp..r * tp + n_of(i0 + r)]);
        }
        // out[dd] = sum_j sc[r][j] * vp[j][dd]: two rows (sharing each load of V) and four
        // chunks of head_dim at a time.
        // No closures around the kernels here: a closure not inlined would be compiled
        // without the wrapper's target features (see `rows/generic.rs`).
        let chunks = d_len.div_ceil(l);
        let mut r = 0;
        while r < r_len {
            let p0 = &sc[r * tp..][..n_of(i0 + r)];
            let mut c = 0;
            if r + 2 <= r_len {
                let p1 = &sc[(r + 1) * tp..][..n_of(i0 + r + 1)];
                let (o0, o1) = block[r..r + 2].split_at_mut(1);
                let (o0, o1) = (&mut *o0[0], &mut *o1[0]);
                while c + 4 <= chunks {
                    let outs = [&mut *o0, &mut *o1];
                    weighted_sum_block::<V, 2, 4>([p0, p1], vp, dp, c * l, outs);
                    c += 4;
                }
                for c in c..chunks {
                    let outs = [&mut *o0, &mut *o1];
                    weighted_sum_block::<V, 2, 1>([p0, p1], vp, dp, c * l, outs);
                }
                r += 2;
            } else {
                let o0 = &mut *block[r];
                while c + 4 <= chunks {
                    weighted_sum_block::<V, 1, 4>([p0], vp, dp, c * l, [&mut *o0]);
                    c += 4;
                }
                for c in c..chunks {
                    weighted_sum_block::<V, 1, 1>([p0], vp, dp, c * l, [&mut *o0]);
                }
                r += 1;
            }
        }
        i0 += r_len;
    }
}

/// `sc[r*tp + c0 + u*L + k] = sum_d qs[r*d_len + d] * kt[d*tp + c0 + u*L + k]` for `R` query
/// rows and `N` key chunks: `R*N` independent accumulators hide the FMA latency and each
/// load of `kt` serves `R` rows; every score is still summed over `d` in order.
#[inline(always)]
fn scores_block<V: SimdF32, const R: usize, const N: usize>(
    qs: &[f32],
    d_len: usize,
    kt: &[f32],
    tp: usize,
    c0: usize,
    sc: &mut [f32],
) {
    let l = V::LANES;
    let mut acc = [[V::splat(0.0); N]; R];
    for d in 0..d_len {
        let krow = &kt[d * tp + c0..][..N * l];
        let mut kv = [V::splat(0.0); N];
        for (u, k) in kv.iter_mut().enumerate() {
            *k = V::load(&krow[u * l..]);
        }
        for (r, accr) in acc.iter_mut().enumerate() {
            let qv = V::splat(qs[r * d_len + d]);
            for (a, &k) in accr.iter_mut().zip(&kv) {
                *a = qv.mul_add(k, *a);
            }
        }
    }
    for (r, accr) in acc.iter().enumerate() {
        for (u, a) in accr.iter().enumerate() {
            a.store(&mut sc[r * tp + c0 + u * l..]);
        }
    }
}

/// `outs[r][c0 + u*L + k] = sum_j ps[r][j] * vp[j*dp + c0 + u*L + k]` for `R` query rows and
/// `N` chunks of `head_dim`: each load of V serves `R` rows, `R*N` accumulators hide the
/// FMA latency, and every output is summed over `j` in order (rows with more keys, under the
/// causal mask, continue alone). Lanes past `head_dim` are computed on zero padding and not
/// stored.
#[inline(always)]
fn weighted_sum_block<V: SimdF32, const R: usize, const N: usize>(
    ps: [&[f32]; R],
    vp: &[f32],
    dp: usize,
    c0: usize,
    outs: [&mut [f32]; R],
) {
    let l = V::LANES;
    let mut acc = [[V::splat(0.0); N]; R];
    let n_min = ps.iter().map(|p| p.len()).min().unwrap_or(0);
    for j in 0..n_min {
        let vrow = &vp[j * dp + c0..][..N * l];
        let mut vv = [V::splat(0.0); N];
        for (u, v) in vv.iter_mut().enumerate() {
            *v = V::load(&vrow[u * l..]);
        }
        for (accr, p) in acc.iter_mut().zip(&ps) {
            let pv = V::splat(p[j]);
            for (a, &v) in accr.iter_mut().zip(&vv) {
                *a = pv.mul_add(v, *a);
            }
        }
    }
    for (accr, p) in acc.iter_mut().zip(&ps) {
        for (j, &pj) in p.iter().enumerate().skip(n_min) {
            let vrow = &vp[j * dp + c0..][..N * l];
            let pv = V::splat(pj);
            for (u, a) in accr.iter_mut().enumerate() {
                *a = pv.mul_add(V::load(&vrow[u * l..]), *a);
            }
        }
    }
    for (accr, out) in acc.iter().zip(outs) {
        for (u, a) in accr.iter().enumerate() {
            let start = c0 + u * l;
            if start >= out.len() {
                break;
            }
            let dst = &mut out[start..];
            if dst.len() >= l {
                a.store(dst);
            } else {
                a.store_partial(dst);
            }
        }
    }
}
