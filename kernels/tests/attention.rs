//! Attention against a naive f64 implementation, with and without the causal mask, for every
//! kernel set the CPU has: CLIP's shapes (T = 50 and 77, D = 64, H = 12 and 8), odd small
//! shapes, fused-QKV and separate layouts; and bitwise identity across thread counts.
//! The bound asserted here is the one written in `docs/numerics.md`.

mod common;

use clip_kernels::{attention, AttentionShape, Isa};
use common::*;

/// Naive attention in f64 over the same layout as the kernel.
fn attention_f64(
    q: &[f32],
    k: &[f32],
    v: &[f32],
    rs: usize,
    s: AttentionShape,
    causal: bool,
    scale: f32,
) -> Vec<f64> {
    let (t_len, d_len, hd) = (s.seq, s.head_dim, s.heads * s.head_dim);
    let mut out = vec![0.0f64; s.batch * t_len * hd];
    for b in 0..s.batch {
        for h in 0..s.heads {
            let at = |x: &[f32], t: usize, d: usize| x[(b * t_len + t) * rs + h * d_len + d] as f64;
            for i in 0..t_len {
                let n = if causal { i + 1 } else { t_len };
                let sc: Vec<f64> = (0..n)
                    .map(|j| {
                        (0..d_len).map(|d| at(q, i, d) * at(k, j, d)).sum::<f64>() * scale as f64
                    })
                    .collect();
                let m = sc.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
                let e: Vec<f64> = sc.iter().map(|x| (x - m).exp()).collect();
                let z: f64 = e.iter().sum();
                for d in 0..d_len {
                    let o: f64 = (0..n).map(|j| e[j] / z * at(v, j, d)).sum();
                    out[(b * t_len + i) * hd + h * d_len + d] = o;
                }
            }
        }
    }
    out
}

/// A fused QKV buffer `[B*T, 3*H*D]`: returns it and the row stride.
fn fused_qkv(rng: &mut Rng, s: AttentionShape, amp: f32) -> (Vec<f32>, usize) {
    let rs = 3 * s.heads * s.head_dim;
    (rng.vec(s.batch * s.seq * rs, -amp, amp), rs)
}

fn shape(batch: usize, seq: usize, heads: usize, head_dim: usize) -> AttentionShape {
    AttentionShape {
        batch,
        seq,
        heads,
        head_dim,
    }
}

const SHAPES: [(usize, usize, usize, usize); 7] = [
    (1, 1, 1, 1),
    (2, 3, 2, 5),
    (1, 17, 3, 17),
    (1, 50, 12, 64),
    (2, 77, 8, 64),
    (1, 33, 2, 40),
    (3, 5, 4, 16),
];

/// Bound: |out - ref| <= 4e-6 * max |v| (outputs are convex combinations of v rows; the error
/// is dominated by the f32 rounding of scores up to ~70 in magnitude).
const BOUND: f64 = 4e-6;

#[test]
fn attention_against_f64() {
    let mut rng = Rng::new(21);
    for isa in isas("attention_against_f64") {
        let mut worst = 0.0f64;
        for (b, t, h, d) in SHAPES {
            let s = shape(b, t, h, d);
            let hd = h * d;
            for causal in [false, true] {
                // Fused QKV layout, inputs up to +-3 (scores up to ~ +-70 after scaling).
                let (qkv, rs) = fused_qkv(&mut rng, s, 3.0);
                let scale = 1.0 / (d as f32).sqrt();
                let (q, k, v) = (&qkv[..], &qkv[hd..], &qkv[2 * hd..]);
                let mut out = vec![f32::NAN; b * t * hd];
                attention(isa, q, k, v, rs, &mut out, s, causal, scale);
                let want = attention_f64(q, k, v, rs, s, causal, scale);
                for (i, (&g, &w)) in out.iter().zip(&want).enumerate() {
                    let e = (g as f64 - w).abs() / 3.0;
                    assert!(
                        e <= BOUND,
                        "[{isa}] {s:?} causal {causal}: out[{i}] = {g}, want {w}"
                    );
                    worst = worst.max(e);
                }
                // Separate [B*T, H*D] buffers.
                let (q2, k2, v2) = (
                    rng.vec(b * t * hd, -1.0, 1.0),
                    rng.vec(b * t * hd, -1.0, 1.0),
                    rng.vec(b * t * hd, -1.0, 1.0),
                );
                attention(isa, &q2, &k2, &v2, hd, &mut out, s, causal, scale);
                let want = attention_f64(&q2, &k2, &v2, hd, s, causal, scale);
                for (i, (&g, &w)) in out.iter().zip(&want).enumerate() {
                    let e = (g as f64 - w).abs();
                    assert!(
                        e <= BOUND,
                        "[{isa}] {s:?} separate causal {causal}: out[{i}] = {g}, want {w}"
                    );
                    worst = worst.max(e);
                }
            }
        }
        eprintln!("attention [{isa}]: max |out - ref| / max|v| = {worst:.3e}");
    }
}

#[test]
fn attention_is_identical_for_any_thread_count() {
    let mut rng = Rng::new(22);
    let s = shape(2, 77, 8, 64);
    let (qkv, rs) = fused_qkv(&mut rng, s, 2.0);
    let hd = 8 * 64;
    for isa in isas("attention_is_identical_for_any_thread_count") {
        let mut results = Vec::new();
        for threads in [1, 2, 3] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut out = vec![0.0f32; 2 * 77 * hd];
            pool.install(|| {
                attention(
                    isa,
                    &qkv,
                    &qkv[hd..],
                    &qkv[2 * hd..],
                    rs,
                    &mut out,
                    s,
                    true,
                    0.125,
                )
            });
            results.push(out);
        }
        for r in &results[1..] {
            assert!(
                r.iter()
                    .zip(&results[0])
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "[{isa}] results differ across thread counts"
            );
        }
    }
}

#[test]
#[should_panic(expected = "k has 10 elements")]
fn attention_rejects_short_inputs() {
    let s = shape(1, 2, 1, 8);
    let q = vec![0.0f32; 16];
    let mut out = vec![0.0f32; 16];
    attention(Isa::Scalar, &q, &q[..10], &q, 8, &mut out, s, false, 1.0);
}
