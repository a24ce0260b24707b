//! Row kernels against f64 references for every kernel set the CPU has: softmax (no mask,
//! causal, additive, fully masked rows), layernorm (out of place and in place), GELUs over
//! odd lengths and large magnitudes, and the exact elementwise add/scale/bias.
//! Bounds asserted here are the ones written in `docs/numerics.md`.

mod common;

use clip_kernels::rows::{self, SoftmaxMask};
use clip_kernels::Isa;
use common::*;

const LENS: [usize; 5] = [1, 3, 17, 77, 769];

/// f64 softmax of `x` (already masked, f32 values), all `-inf` giving zeros.
fn softmax_f64(x: &[f32]) -> Vec<f64> {
    let m = x.iter().fold(f64::NEG_INFINITY, |a, &b| a.max(b as f64));
    if m == f64::NEG_INFINITY {
        return vec![0.0; x.len()];
    }
    let e: Vec<f64> = x.iter().map(|&v| (v as f64 - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

/// Max abs error and max error relative to the reference (where it exceeds 1e-30).
fn compare(got: &[f32], want: &[f64]) -> (f64, f64) {
    let (mut a, mut r) = (0.0f64, 0.0f64);
    for (&g, &w) in got.iter().zip(want) {
        assert!(g.is_finite(), "non-finite output {g} (want {w})");
        let e = (g as f64 - w).abs();
        a = a.max(e);
        if w.abs() > 1e-30 {
            r = r.max(e / w.abs());
        }
    }
    (a, r)
}

/// Softmax bounds: abs 1e-7 + rel 3e-6 per element (see docs/numerics.md).
fn check_softmax(label: &str, got: &[f32], want: &[f64]) -> f64 {
    let mut worst = 0.0f64;
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let e = (g as f64 - w).abs();
        let bound = 1e-7 + 3e-6 * w.abs();
        assert!(
            e <= bound,
            "{label}: [{i}] got {g}, want {w} (|diff| {e:e})"
        );
        worst = worst.max(e / bound);
    }
    worst
}

#[test]
fn softmax_against_f64() {
    let mut rng = Rng::new(1);
    for isa in isas("softmax_against_f64") {
        let (mut abs_w, mut rel_w) = (0.0f64, 0.0f64);
        for cols in LENS {
            for (lo, hi) in [(-10.0, 10.0), (-1e4, 1e4), (1e4 - 20.0, 1e4 + 20.0)] {
                let rows = 3;
                let x = rng.vec(rows * cols, lo, hi);
                let mut y = x.clone();
                rows::softmax_rows(isa, &mut y, cols, SoftmaxMask::None);
                for r in 0..rows {
                    let want = softmax_f64(&x[r * cols..(r + 1) * cols]);
                    let got = &y[r * cols..(r + 1) * cols];
                    check_softmax(
                        &format!("softmax [{isa}] cols {cols} range {lo}"),
                        got,
                        &want,
                    );
                    let (a, rl) = compare(got, &want);
                    abs_w = abs_w.max(a);
                    rel_w = rel_w.max(rl);
                }
            }
        }
        eprintln!("softmax [{isa}]: max abs error {abs_w:.3e}, max rel error {rel_w:.3e}");
    }
}

#[test]
fn softmax_causal_and_additive_masks() {
    let mut rng = Rng::new(2);
    for isa in isas("softmax_causal_and_additive_masks") {
        for cols in LENS {
            // Two stacked [cols, cols] blocks, causal: row r keeps j <= r % cols.
            let rows = 2 * cols;
            let x = rng.vec(rows * cols, -30.0, 30.0);
            let mut y = x.clone();
            rows::softmax_rows(isa, &mut y, cols, SoftmaxMask::Causal);
            for r in 0..rows {
                let keep = r % cols + 1;
                let row = &x[r * cols..(r + 1) * cols];
                let mut want = softmax_f64(&row[..keep]);
                want.resize(cols, 0.0);
                let got = &y[r * cols..(r + 1) * cols];
                check_softmax(&format!("causal [{isa}] cols {cols} row {r}"), got, &want);
                assert!(got[keep..].iter().all(|&v| v == 0.0));
            }

            // Additive [rows, cols] mask with -inf entries and one fully masked row.
            let rows = 4;
            let x = rng.vec(rows * cols, -1e4, 1e4);
            let mut mask: Vec<f32> = (0..rows * cols)
                .map(|i| match i % 5 {
                    0 => f32::NEG_INFINITY,
                    1 => -3.5,
                    _ => 0.0,
                })
                .collect();
            mask[cols..2 * cols].fill(f32::NEG_INFINITY); // row 1 fully masked
            for (label, m) in [("full", &mask[..]), ("broadcast", &mask[..cols])] {
                let mut y = x.clone();
                rows::softmax_rows(isa, &mut y, cols, SoftmaxMask::Additive(m));
                for r in 0..rows {
                    let mr = &m[(r % (m.len() / cols)) * cols..][..cols];
                    // The mask is added in f32, as every f32 implementation does.
                    let masked: Vec<f32> = x[r * cols..(r + 1) * cols]
                        .iter()
                        .zip(mr)
                        .map(|(a, b)| a + b)
                        .collect();
                    let want = softmax_f64(&masked);
                    let got = &y[r * cols..(r + 1) * cols];
                    check_softmax(
                        &format!("additive {label} [{isa}] cols {cols} row {r}"),
                        got,
                        &want,
                    );
                }
            }
        }
    }
}

#[test]
fn softmax_fully_masked_rows_are_zero() {
    for isa in isas("softmax_fully_masked_rows_are_zero") {
        for cols in LENS {
            let mut y = vec![f32::NEG_INFINITY; 2 * cols];
            rows::softmax_rows(isa, &mut y, cols, SoftmaxMask::None);
            assert!(y.iter().all(|&v| v == 0.0), "[{isa}] cols {cols}: {y:?}");
            let mut y = vec![1.0f32; 2 * cols];
            let mask = vec![f32::NEG_INFINITY; cols];
            rows::softmax_rows(isa, &mut y, cols, SoftmaxMask::Additive(&mask));
            assert!(y.iter().all(|&v| v == 0.0), "[{isa}] cols {cols}: {y:?}");
        }
    }
}

fn layernorm_f64(x: &[f32], w: &[f32], b: &[f32], eps: f32) -> Vec<f64> {
    let n = x.len() as f64;
    let mean = x.iter().map(|&v| v as f64).sum::<f64>() / n;
    let var = x.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n;
    let rstd = 1.0 / (var + eps as f64).sqrt();
    x.iter()
        .zip(w.iter().zip(b))
        .map(|(&v, (&wi, &bi))| (v as f64 - mean) * rstd * wi as f64 + bi as f64)
        .collect()
}

#[test]
fn layernorm_against_f64() {
    let mut rng = Rng::new(3);
    let eps = 1e-5;
    for isa in isas("layernorm_against_f64") {
        let mut worst = 0.0f64;
        for cols in LENS.into_iter().chain([512, 768]) {
            for (lo, hi) in [(-3.0, 3.0), (-1e4, 1e4)] {
                let rows = 3;
                let x = rng.vec(rows * cols, lo, hi);
                let w = rng.vec(cols, -2.0, 2.0);
                let b = rng.vec(cols, -1.0, 1.0);
                let mut y = vec![f32::NAN; rows * cols];
                rows::layernorm_rows(isa, &x, &mut y, cols, &w, &b, eps);
                let mut z = x.clone();
                rows::layernorm_rows_inplace(isa, &mut z, cols, &w, &b, eps);
                assert!(
                    y.iter().zip(&z).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "[{isa}] in-place differs"
                );
                for r in 0..rows {
                    let s = r * cols..(r + 1) * cols;
                    let want = layernorm_f64(&x[s.clone()], &w, &b, eps);
                    for (j, (&g, &wv)) in y[s.clone()].iter().zip(&want).enumerate() {
                        // Bound: 2e-6 * (|w_j| * |xhat_j| + |b_j|) + 1e-7.
                        let xhat = (wv - b[j] as f64) / w[j] as f64;
                        let scale = (w[j] as f64 * xhat).abs() + (b[j] as f64).abs();
                        let e = (g as f64 - wv).abs();
                        let bound = 2e-6 * scale + 1e-7;
                        assert!(
                            e <= bound,
                            "[{isa}] cols {cols} row {r} col {j}: {g} vs {wv}"
                        );
                        worst = worst.max(e / (scale + 1e-30));
                    }
                }
            }
        }
        eprintln!("layernorm [{isa}]: max error / (|w xhat| + |b|) = {worst:.3e}");
    }
}

#[test]
fn gelus_against_f64_on_odd_lengths() {
    let mut rng = Rng::new(4);
    for isa in isas("gelus_against_f64_on_odd_lengths") {
        for n in LENS {
            for (lo, hi) in [(-6.0, 6.0), (-1e4, 1e4)] {
                let x = rng.vec(n, lo, hi);
                let mut g = x.clone();
                rows::gelu(isa, &mut g);
                let mut q = x.clone();
                rows::quick_gelu(isa, &mut q);
                for i in 0..n {
                    let (rg, rq) = (gelu_f64(x[i] as f64), quick_gelu_f64(x[i] as f64));
                    let eg = (g[i] as f64 - rg).abs();
                    assert!(
                        eg <= 5e-7 + 3e-6 * rg.abs(),
                        "gelu [{isa}] x={}: {} vs {rg}",
                        x[i],
                        g[i]
                    );
                    // Results below the smallest normal f32 are flushed to (signed) zero.
                    let ok = ulps(q[i], rq) <= 3.0
                        || (rq.abs() < f32::MIN_POSITIVE as f64 && q[i].abs() <= f32::MIN_POSITIVE);
                    assert!(ok, "quick_gelu [{isa}] x={}: {} vs {rq}", x[i], q[i]);
                }
            }
        }
    }
}

#[test]
fn add_scale_bias_are_exact() {
    let mut rng = Rng::new(5);
    for isa in isas("add_scale_bias_are_exact") {
        for n in LENS {
            let a = rng.vec(n, -1e4, 1e4);
            let b = rng.vec(n, -1.0, 1.0);
            let mut d = a.clone();
            rows::add(isa, &mut d, &b);
            assert!(d
                .iter()
                .zip(a.iter().zip(&b))
                .all(|(&d, (&x, &y))| d == x + y));
            let mut s = a.clone();
            rows::scale(isa, &mut s, 0.125_3);
            assert!(s.iter().zip(&a).all(|(&s, &x)| s == x * 0.125_3));
            let mut x = rng.vec(3 * n, -5.0, 5.0);
            let x0 = x.clone();
            rows::add_bias_rows(isa, &mut x, &b);
            assert!(x
                .iter()
                .zip(&x0)
                .enumerate()
                .all(|(i, (&v, &o))| v == o + b[i % n]));
        }
    }
}

#[test]
#[should_panic(expected = "not a multiple of cols")]
fn softmax_rejects_ragged_rows() {
    let mut x = vec![0.0f32; 10];
    rows::softmax_rows(Isa::Scalar, &mut x, 3, SoftmaxMask::None);
}

#[test]
#[should_panic(expected = "weight has 3 elements")]
fn layernorm_rejects_wrong_weight() {
    let x = vec![0.0f32; 8];
    let mut y = vec![0.0f32; 8];
    rows::layernorm_rows(Isa::Scalar, &x, &mut y, 4, &[1.0; 3], &[0.0; 4], 1e-5);
}

/// Row kernels give the same bits whether rows are processed in one call or split (as a
/// threaded caller would split them: for masks, at multiples of the mask's period).
#[test]
fn row_results_independent_of_splitting() {
    let mut rng = Rng::new(6);
    for isa in isas("row_results_independent_of_splitting") {
        for cols in [3, 17, 77] {
            let x = rng.vec(4 * cols * cols, -20.0, 20.0);
            let mask = rng.vec(cols * cols, -5.0, 0.0);
            for m in [
                SoftmaxMask::None,
                SoftmaxMask::Causal,
                SoftmaxMask::Additive(&mask),
            ] {
                let mut whole = x.clone();
                rows::softmax_rows(isa, &mut whole, cols, m);
                let mut parts = x.clone();
                for part in parts.chunks_mut(cols * cols) {
                    rows::softmax_rows(isa, part, cols, m);
                }
                assert!(whole
                    .iter()
                    .zip(&parts)
                    .all(|(a, b)| a.to_bits() == b.to_bits()));
            }
            let (w, b) = (rng.vec(cols, -1.0, 1.0), rng.vec(cols, -1.0, 1.0));
            let mut whole = vec![0.0; x.len()];
            rows::layernorm_rows(isa, &x, &mut whole, cols, &w, &b, 1e-5);
            let mut parts = x.clone();
            for part in parts.chunks_mut(cols * 5) {
                rows::layernorm_rows_inplace(isa, part, cols, &w, &b, 1e-5);
            }
            assert!(whole
                .iter()
                .zip(&parts)
                .all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
