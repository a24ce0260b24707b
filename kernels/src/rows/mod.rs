//! Row kernels: softmax, layernorm, GELU (exact and quick), exp/erf/sigmoid, add, scale.
//!
//! The safe public API. Every function takes the kernel set first, checks its arguments, then
//! dispatches once per call through the kernel-set table (`table::run`, which checks that
//! the CPU can run the set) to one loop of `generic.rs` on the set's lane type, compiled inside
//! the set's target-feature function. Single-threaded: callers parallelise over rows.
//!
//! Determinism: elementwise functions give the same bits for an element wherever it sits and
//! whatever the slice length (tails run through the same vector code, padded). For the
//! elementwise functions, `Scalar`, `Avx2` and `Avx512` are bitwise identical. Row reductions
//! (softmax, layernorm) depend on the lane count, so differ across sets by rounding only.
//! Bounds: `docs/numerics.md`.
//!
//! Not here: the lane math (`math/`), attention (`attention.rs`), threads.

mod generic;

pub(crate) use generic::softmax_row;
use generic::ElemOp;

use crate::table::{self, KernelSet, SetVisitor};
use crate::Isa;

/// The mask applied by [`softmax_rows`].
///
/// Both masks locate a row by its index `r` within the slice passed, so a caller splitting
/// rows across threads must split at multiples of `cols` rows (`Causal`) or of the mask's
/// row count (`Additive`) to get the same result as one call.
#[derive(Clone, Copy, Debug, Default)]
pub enum SoftmaxMask<'a> {
    /// No mask.
    #[default]
    None,
    /// Row `r` keeps columns `j <= r % cols` (the rest become 0), so a stack of `[T, T]`
    /// score matrices, e.g. `[B*H*T, T]`, can be passed at once.
    Causal,
    /// Added to the scores before the maximum: `mask.len()` is a multiple of `cols`, and row
    /// `r` uses mask row `r % (mask.len() / cols)`. So `[cols]` broadcasts to every row,
    /// `[rows, cols]` is elementwise, and `[T, T]` repeats over a stack. Use `-inf` to mask.
    Additive(&'a [f32]),
}

/// One call of a row kernel, run by [`table::run`] on the kernel set's lane type.
enum RowCall<'a> {
    Map(ElemOp, &'a mut [f32]),
    Scale(&'a mut [f32], f32),
    Add(&'a mut [f32], &'a [f32]),
    AddBiasRows(&'a mut [f32], &'a [f32]),
    Softmax(&'a mut [f32], usize, SoftmaxMask<'a>),
    LayerNorm(&'a [f32], &'a mut [f32], [&'a [f32]; 2], f32),
    LayerNormInplace(&'a mut [f32], [&'a [f32]; 2], f32),
}

impl SetVisitor for RowCall<'_> {
    type Out = ();
    #[inline(always)]
    fn visit<S: KernelSet>(self) {
        use generic as g;
        type V<S> = <S as KernelSet>::Lanes;
        match self {
            RowCall::Map(op, x) => g::map_inplace::<V<S>>(op, x),
            RowCall::Scale(x, s) => g::scale::<V<S>>(x, s),
            RowCall::Add(dst, src) => g::add::<V<S>>(dst, src),
            RowCall::AddBiasRows(x, bias) => g::add_bias_rows::<V<S>>(x, bias),
            RowCall::Softmax(x, cols, mask) => g::softmax_rows::<V<S>>(x, cols, mask),
            RowCall::LayerNorm(x, out, [w, b], eps) => g::layernorm_rows::<V<S>>(x, out, w, b, eps),
            RowCall::LayerNormInplace(x, [w, b], eps) => {
                g::layernorm_rows_inplace::<V<S>>(x, w, b, eps)
            }
        }
    }
}

fn check_rows(len: usize, cols: usize, what: &str) {
    assert!(cols > 0 || len == 0, "{what}: cols must be > 0");
    assert!(
        cols == 0 || len.is_multiple_of(cols),
        "{what}: slice length {len} is not a multiple of cols = {cols}"
    );
}

/// Softmax over each `cols`-wide row of `x`, in place, with an optional [`SoftmaxMask`].
///
/// Numerically stable (the row maximum is subtracted first). A row whose entries are all
/// `-inf` after masking becomes all zeros, not NaN.
///
/// Panics if `x.len()` is not a multiple of `cols`, if an additive mask's length is not a
/// non-zero multiple of `cols` dividing the number of rows, or if `isa` is not available.
pub fn softmax_rows(isa: Isa, x: &mut [f32], cols: usize, mask: SoftmaxMask<'_>) {
    check_rows(x.len(), cols, "softmax_rows");
    if x.is_empty() {
        return;
    }
    if let SoftmaxMask::Additive(m) = mask {
        let rows = x.len() / cols;
        assert!(
            !m.is_empty() && m.len().is_multiple_of(cols) && rows.is_multiple_of(m.len() / cols),
            "softmax_rows: additive mask of length {} must be [k, cols = {cols}] with k dividing \
             the {rows} rows",
            m.len()
        );
    }
    table::run(isa, RowCall::Softmax(x, cols, mask))
}

fn check_layernorm(x: usize, out: usize, cols: usize, w: usize, b: usize) {
    check_rows(x, cols, "layernorm_rows");
    assert_eq!(out, x, "layernorm_rows: out has {out} elements, x has {x}");
    assert_eq!(
        w, cols,
        "layernorm_rows: weight has {w} elements, cols = {cols}"
    );
    assert_eq!(
        b, cols,
        "layernorm_rows: bias has {b} elements, cols = {cols}"
    );
}

/// Layer normalisation of each `cols`-wide row:
/// `out = (x - mean) / sqrt(var + eps) * weight + bias`, statistics in f32 (the mean, then
/// the biased variance of the centred values), as `torch.nn.LayerNorm` computes them.
///
/// Panics unless `x.len() == out.len()` is a multiple of `cols` and `weight`, `bias` have
/// `cols` elements, or if `isa` is not available.
pub fn layernorm_rows(
    isa: Isa,
    x: &[f32],
    out: &mut [f32],
    cols: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    check_layernorm(x.len(), out.len(), cols, weight.len(), bias.len());
    if x.is_empty() {
        return;
    }
    table::run(isa, RowCall::LayerNorm(x, out, [weight, bias], eps))
}

/// [`layernorm_rows`] in place; same results bit for bit.
pub fn layernorm_rows_inplace(
    isa: Isa,
    x: &mut [f32],
    cols: usize,
    weight: &[f32],
    bias: &[f32],
    eps: f32,
) {
    check_layernorm(x.len(), x.len(), cols, weight.len(), bias.len());
    if x.is_empty() {
        return;
    }
    table::run(isa, RowCall::LayerNormInplace(x, [weight, bias], eps))
}

/// Exact GELU in place: `x <- 0.5 x (1 + erf(x / sqrt 2))`.
pub fn gelu(isa: Isa, x: &mut [f32]) {
    table::run(isa, RowCall::Map(ElemOp::Gelu, x))
}

/// CLIP's quick GELU in place: `x <- x * sigmoid(1.702 x)`.
pub fn quick_gelu(isa: Isa, x: &mut [f32]) {
    table::run(isa, RowCall::Map(ElemOp::QuickGelu, x))
}

/// `x <- e^x` in place (subnormal results flushed to 0).
pub fn exp(isa: Isa, x: &mut [f32]) {
    table::run(isa, RowCall::Map(ElemOp::Exp, x))
}

/// `x <- erf(x)` in place.
pub fn erf(isa: Isa, x: &mut [f32]) {
    table::run(isa, RowCall::Map(ElemOp::Erf, x))
}

/// `x <- 1 / (1 + e^-x)` in place.
pub fn sigmoid(isa: Isa, x: &mut [f32]) {
    table::run(isa, RowCall::Map(ElemOp::Sigmoid, x))
}

/// `dst <- dst + src`. Panics if the lengths differ.
pub fn add(isa: Isa, dst: &mut [f32], src: &[f32]) {
    assert_eq!(
        dst.len(),
        src.len(),
        "add: dst has {} elements, src has {}",
        dst.len(),
        src.len()
    );
    table::run(isa, RowCall::Add(dst, src))
}

/// `x <- x * s`.
pub fn scale(isa: Isa, x: &mut [f32], s: f32) {
    table::run(isa, RowCall::Scale(x, s))
}

/// `x[r, j] <- x[r, j] + bias[j]` over rows of `bias.len()`. Panics if `x.len()` is not a
/// multiple of `bias.len()`.
pub fn add_bias_rows(isa: Isa, x: &mut [f32], bias: &[f32]) {
    check_rows(x.len(), bias.len(), "add_bias_rows");
    if x.is_empty() {
        return;
    }
    table::run(isa, RowCall::AddBiasRows(x, bias))
}
