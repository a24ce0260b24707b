//! Row kernels written once, generic over the lane type ([`SimdF32`]).
//!
//! Every loop walks its slice in full vectors and handles the tail by padding a vector
//! (`load_padded` / `store_partial`) and running the *same* vector code, so an element's
//! result never depends on its position or on the slice length. No threads here: callers
//! split rows across threads if they want to.
//!
//! These bodies are `#[inline(always)]`; they become real code inside the kernel set's
//! target-feature function (`table::run`), instantiated with the set's lane type.
//!
//! Not here: the argument checks and dispatch (`rows/mod.rs`), the lane math (`math/`).

use super::SoftmaxMask;
use crate::math::{self, SimdF32};

/// The elementwise functions applied in place by [`map_inplace`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ElemOp {
    Exp,
    Erf,
    Sigmoid,
    Gelu,
    QuickGelu,
}

/// A lane-wise function, applied by [`map`]. A trait with an `#[inline(always)]` method
/// rather than a closure or `fn` item: those can end up as out-of-line calls compiled without
/// the wrapper's target features, which would turn every intrinsic into a function call.
trait Lanewise {
    fn apply<V: SimdF32>(&self, v: V) -> V;
}

macro_rules! lanewise {
    ($name:ident, $f:path) => {
        struct $name;
        impl Lanewise for $name {
            #[inline(always)]
            fn apply<V: SimdF32>(&self, v: V) -> V {
                $f(v)
            }
        }
    };
}
lanewise!(Exp, math::exp);
lanewise!(Erf, math::erf);
lanewise!(Sigmoid, math::sigmoid);
lanewise!(Gelu, math::gelu);
lanewise!(QuickGelu, math::quick_gelu);

/// Multiplication by a constant.
struct Scale(f32);
impl Lanewise for Scale {
    #[inline(always)]
    fn apply<V: SimdF32>(&self, v: V) -> V {
        v.mul(V::splat(self.0))
    }
}

/// `x[i] <- f(x[i])`, full vectors then one padded vector.
#[inline(always)]
fn map<V: SimdF32>(x: &mut [f32], f: &impl Lanewise) {
    let mut chunks = x.chunks_exact_mut(V::LANES);
    for c in &mut chunks {
        f.apply(V::load(c)).store(c);
    }
    let rem = chunks.into_remainder();
    if !rem.is_empty() {
        f.apply(V::load_padded(rem, 0.0)).store_partial(rem);
    }
}

/// `x[i] <- op(x[i])`.
#[inline(always)]
pub(crate) fn map_inplace<V: SimdF32>(op: ElemOp, x: &mut [f32]) {
    match op {
        ElemOp::Exp => map::<V>(x, &Exp),
        ElemOp::Erf => map::<V>(x, &Erf),
        ElemOp::Sigmoid => map::<V>(x, &Sigmoid),
        ElemOp::Gelu => map::<V>(x, &Gelu),
        ElemOp::QuickGelu => map::<V>(x, &QuickGelu),
    }
}

/// `x[i] <- x[i] * s`.
#[inline(always)]
pub(crate) fn scale<V: SimdF32>(x: &mut [f32], s: f32) {
    map::<V>(x, &Scale(s));
}

/// `dst[i] <- dst[i] + src[i]`; `dst.len() == src.len()`.
#[inline(always)]
pub(crate) fn add<V: SimdF32>(dst: &mut [f32], src: &[f32]) {
    debug_assert_eq!(dst.len(), src.len());
    let mut d = dst.chunks_exact_mut(V::LANES);
    let mut s = src.chunks_exact(V::LANES);
    for (dc, sc) in (&mut d).zip(&mut s) {
        V::load(dc).add(V::load(sc)).store(dc);
    }
    let (dr, sr) = (d.into_remainder(), s.remainder());
    if !dr.is_empty() {
        V::load_padded(dr, 0.0)
            .add(V::load_padded(sr, 0.0))
            .store_partial(dr);
    }
}

/// `x[r, j] <- x[r, j] + bias[j]` over rows of `bias.len()`.
#[inline(always)]
pub(crate) fn add_bias_rows<V: SimdF32>(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        add::<V>(row, bias);
    }
}

/// Numerically stable softmax of one row, in place:
/// `row[j] <- exp(row[j] - max) / sum_k exp(row[k] - max)`.
/// A row whose maximum is `-inf` (empty or fully masked) becomes all zeros.
#[inline(always)]
pub(crate) fn softmax_row<V: SimdF32>(row: &mut [f32]) {
    let l = V::LANES;
    let split = row.len() - row.len() % l;
    // Pass 1: the maximum (padding lanes hold -inf).
    let mut m = V::splat(f32::NEG_INFINITY);
    for c in row[..split].chunks_exact(l) {
        m = m.max(V::load(c));
    }
    if split < row.len() {
        m = m.max(V::load_padded(&row[split..], f32::NEG_INFINITY));
    }
    let mx = m.reduce_max();
    if mx == f32::NEG_INFINITY {
        row.fill(0.0);
        return;
    }
    // Pass 2: e = exp(x - max), stored, and summed (padding lanes give exp(-inf) = 0).
    let vmx = V::splat(mx);
    let mut s = V::splat(0.0);
    for c in row[..split].chunks_exact_mut(l) {
        let e = math::exp(V::load(c).sub(vmx));
        e.store(c);
        s = s.add(e);
    }
    if split < row.len() {
        let tail = &mut row[split..];
        let e = math::exp(V::load_padded(tail, f32::NEG_INFINITY).sub(vmx));
        e.store_partial(tail);
        s = s.add(e);
    }
    // Pass 3: scale by 1/sum.
    scale::<V>(row, 1.0 / s.reduce_add());
}

/// Softmax over the rows of `x` (`cols` wide) with an optional mask; see
/// [`super::softmax_rows`] for the mask semantics.
#[inline(always)]
pub(crate) fn softmax_rows<V: SimdF32>(x: &mut [f32], cols: usize, mask: SoftmaxMask<'_>) {
    for (r, row) in x.chunks_exact_mut(cols).enumerate() {
        match mask {
            SoftmaxMask::None => softmax_row::<V>(row),
            SoftmaxMask::Causal => {
                let (keep, masked) = row.split_at_mut(r % cols + 1);
                softmax_row::<V>(keep);
                masked.fill(0.0);
            }
            SoftmaxMask::Additive(m) => {
                let mask_rows = m.len() / cols;
                let off = (r % mask_rows) * cols;
                add::<V>(row, &m[off..off + cols]);
                softmax_row::<V>(row);
            }
        }
    }
}

/// Accumulators per reduction in [`row_stats`]: independent chains hide the add latency.
const ACC: usize = 4;

/// `sum_i f(x_i)` over a row, lane-wise with [`ACC`] accumulators (vector `k` of the row goes to
/// accumulator `k % ACC` for the full groups, leftover vectors and the tail to the first),
/// then combined in a fixed tree. `pad` fills the tail's missing lanes and must give
/// `f(pad) = 0`.
#[inline(always)]
fn row_sum<V: SimdF32>(row: &[f32], pad: f32, f: &impl Accumulate) -> f32 {
    let l = V::LANES;
    let mut acc = [V::splat(0.0); ACC];
    let mut groups = row.chunks_exact(ACC * l);
    for g in &mut groups {
        for (u, a) in acc.iter_mut().enumerate() {
            *a = f.accumulate(V::load(&g[u * l..]), *a);
        }
    }
    let mut rest = groups.remainder().chunks_exact(l);
    for c in &mut rest {
        acc[0] = f.accumulate(V::load(c), acc[0]);
    }
    let tail = rest.remainder();
    if !tail.is_empty() {
        acc[0] = f.accumulate(V::load_padded(tail, pad), acc[0]);
    }
    acc[0].add(acc[1]).add(acc[2].add(acc[3])).reduce_add()
}

/// An accumulation step of [`row_sum`] (a trait, not a closure: see [`Lanewise`]).
trait Accumulate {
    fn accumulate<V: SimdF32>(&self, x: V, acc: V) -> V;
}

/// `acc + x`.
struct Sum;
impl Accumulate for Sum {
    #[inline(always)]
    fn accumulate<V: SimdF32>(&self, x: V, acc: V) -> V {
        acc.add(x)
    }
}

/// `acc + (x - mean)^2`.
struct CentredSquares(f32);
impl Accumulate for CentredSquares {
    #[inline(always)]
    fn accumulate<V: SimdF32>(&self, x: V, acc: V) -> V {
        let d = x.sub(V::splat(self.0));
        d.mul_add(d, acc)
    }
}

/// Mean and `1 / sqrt(var + eps)` of one row, in f32: the mean first, then the (biased)
/// variance of the centred values.
#[inline(always)]
fn row_stats<V: SimdF32>(row: &[f32], eps: f32) -> (f32, f32) {
    let n = row.len() as f32;
    let mean = row_sum::<V>(row, 0.0, &Sum) / n;
    // Padding lanes hold the mean, so they add 0.
    let var = row_sum::<V>(row, mean, &CentredSquares(mean)) / n;
    (mean, 1.0 / (var + eps).sqrt())
}

/// `out = (x - mean) * rstd * w + b` for one row; `x`, `out`, `w`, `b` all of one length.
#[inline(always)]
fn normalize_row<V: SimdF32>(x: &[f32], out: &mut [f32], w: &[f32], b: &[f32], mr: (f32, f32)) {
    let (vmean, vrstd) = (V::splat(mr.0), V::splat(mr.1));
    let l = V::LANES;
    let split = x.len() - x.len() % l;
    let body = out[..split]
        .chunks_exact_mut(l)
        .zip(x[..split].chunks_exact(l))
        .zip(w[..split].chunks_exact(l).zip(b[..split].chunks_exact(l)));
    for ((oc, xc), (wc, bc)) in body {
        let xn = V::load(xc).sub(vmean).mul(vrstd);
        xn.mul_add(V::load(wc), V::load(bc)).store(oc);
    }
    if split < x.len() {
        let xn = V::load_padded(&x[split..], 0.0).sub(vmean).mul(vrstd);
        let (wt, bt) = (
            V::load_padded(&w[split..], 0.0),
            V::load_padded(&b[split..], 0.0),
        );
        xn.mul_add(wt, bt).store_partial(&mut out[split..]);
    }
}

/// Layer normalisation of each `cols`-wide row of `x` into `out`.
#[inline(always)]
pub(crate) fn layernorm_rows<V: SimdF32>(
    x: &[f32],
    out: &mut [f32],
    w: &[f32],
    b: &[f32],
    eps: f32,
) {
    let cols = w.len();
    for (xr, or) in x.chunks_exact(cols).zip(out.chunks_exact_mut(cols)) {
        let mr = row_stats::<V>(xr, eps);
        normalize_row::<V>(xr, or, w, b, mr);
    }
}

/// Layer normalisation of each `cols`-wide row of `x`, in place.
#[inline(always)]
pub(crate) fn layernorm_rows_inplace<V: SimdF32>(x: &mut [f32], w: &[f32], b: &[f32], eps: f32) {
    let cols = w.len();
    let mut buf = [0.0f32; 16];
    for row in x.chunks_exact_mut(cols) {
        let mr = row_stats::<V>(row, eps);
        // Normalise vector by vector; each input vector is read before it is overwritten.
        let l = V::LANES;
        let split = cols - cols % l;
        for (j, c) in row[..split].chunks_exact_mut(l).enumerate() {
            let xn = V::load(c).sub(V::splat(mr.0)).mul(V::splat(mr.1));
            let (wc, bc) = (&w[j * l..j * l + l], &b[j * l..j * l + l]);
            xn.mul_add(V::load(wc), V::load(bc)).store(c);
        }
        if split < cols {
            let t = cols - split;
            buf[..t].copy_from_slice(&row[split..]);
            normalize_row::<V>(&buf[..t], &mut row[split..], &w[split..], &b[split..], mr);
        }
    }
}
