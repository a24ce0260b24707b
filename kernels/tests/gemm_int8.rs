//! int8 GEMM, for every int8 kernel this machine has (AVX512-VNNI, AVX2, the scalar
//! reference), against a reference written here from the formulas of `docs/numerics.md`
//! (weights per column, activations per row, the integer sums in i64, the f32 epilogue), and
//! against exact f64 GEMMs where the quantisation is lossless.
//!
//! The i32 sums are exact, so every kernel must give the reference's bits: for every size
//! 0..=17 cubed, tile edges, strided layouts, alpha, beta (C full of NaN when it is 0), bias
//! and activations, on 1, 2 and 3 threads, and for rows computed alone.

mod common;

use clip_kernels::gemm::{quantize_weight_rows, INT8_MAX_K};
use clip_kernels::{
    sgemm_prepacked, Activation, Epilogue, Isa, MatMut, MatRef, PackedB, Precision,
};
use common::mat::{Layout, Mat, LAYOUTS};
use common::Rng;

/// The kernel sets whose int8 kernel this CPU runs (each once: an AVX-512 CPU without VNNI
/// falls back to AVX2's, said loudly).
fn kernels() -> Vec<Isa> {
    let mut out = Vec::new();
    for isa in common::isas("int8 GEMM") {
        let b = [1.0f32];
        let got = PackedB::new_int8(isa, MatRef::row_major(&b, 1, 1)).int8_kernel_isa();
        match got {
            Some(k) if k == isa || (k == Isa::Scalar && matches!(isa, Isa::Portable | Isa::Neon)) => {
                if !out.contains(&k) {
                    out.push(k);
                }
            }
            other => eprintln!(
                "!!! int8 GEMM: the {isa} int8 kernel is NOT available on this CPU (runs {other:?}): SKIPPED !!!"
            ),
        }
    }
    eprintln!("int8 kernels tested: {out:?}");
    out
}

/// A row of activations quantised as `docs/numerics.md` says: `(q, scale, zero point)`.
fn quantize_row_ref(x: &[f32]) -> (Vec<i64>, f32, i64) {
    let finite = x.iter().all(|v| v.is_finite());
    let lo = x.iter().fold(0.0f32, |a, &b| if b < a { b } else { a });
    let hi = x.iter().fold(0.0f32, |a, &b| if b > a { b } else { a });
    let range = hi - lo;
    if !finite {
        return (vec![0; x.len()], f32::NAN, 0);
    }
    if range == 0.0 {
        return (vec![0; x.len()], 0.0, 0);
    }
    // (Extremes whose difference overflows: the scale from the halves.)
    let (t, inv) = if range.is_finite() {
        (range / 255.0, 255.0 / range)
    } else {
        let t = hi / 255.0 - lo / 255.0;
        (t, 1.0 / t)
    };
    let z = (-lo * inv).round_ties_even().clamp(0.0, 255.0) as i64;
    let q = x
        .iter()
        .map(|&v| ((v * inv).round_ties_even() as i64 + z).clamp(0, 255))
        .collect();
    (q, t, z)
}

/// `act(alpha*A*B + beta*C + bias)` through the int8 quantisation, from the formulas.
#[allow(clippy::too_many_arguments)]
fn reference(
    alpha: f32,
    a: &Mat,
    b: &Mat,
    beta: f32,
    c: &Mat,
    bias: Option<&[f32]>,
    act: Activation,
) -> Vec<f32> {
    let (m, n, k) = (a.rows, b.cols, a.cols);
    // Weights: column j of B is output channel j.
    let mut w = vec![0i64; k * n];
    let mut s = vec![0.0f32; n];
    for j in 0..n {
        let maxabs = (0..k).map(|p| b.get(p, j).abs()).fold(0.0f32, f32::max);
        s[j] = if maxabs == 0.0 { 1.0 } else { maxabs / 127.0 };
        for p in 0..k {
            w[p * n + j] = (b.get(p, j) / s[j]).round_ties_even().clamp(-127.0, 127.0) as i64;
        }
    }
    let mut out = vec![0.0f32; m * n];
    for i in 0..m {
        let row: Vec<f32> = (0..k).map(|p| a.get(i, p)).collect();
        let (q, t, z) = quantize_row_ref(&row);
        for j in 0..n {
            let dot: i64 = (0..k).map(|p| q[p] * w[p * n + j]).sum();
            let colsum: i64 = (0..k).map(|p| w[p * n + j]).sum();
            let corr = dot - z * colsum;
            assert!(corr.abs() < 1 << 31);
            let mut v = corr as i32 as f32 * ((alpha * t) * s[j]);
            if beta != 0.0 {
                v = beta.mul_add(c.get(i, j), v);
            }
            if let Some(bias) = bias {
                v += bias[j];
            }
            out[i * n + j] = v;
        }
        if act != Activation::None {
            let r = &mut out[i * n..(i + 1) * n];
            match act {
                Activation::QuickGelu => clip_kernels::rows::quick_gelu(Isa::Scalar, r),
                _ => clip_kernels::rows::gelu(Isa::Scalar, r),
            }
        }
    }
    out
}

struct Case {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    /// A, B and C layouts: indices into `LAYOUTS` (mod 3).
    layouts: (usize, usize, usize),
    bias: bool,
    act: Activation,
}

/// Runs one case on random inputs and demands the reference's bits; checks that C's padding
/// is untouched.
fn check(isa: Isa, case: &Case, rng: &mut Rng) {
    let (la, lb, lc) = case.layouts;
    let a = Mat::new(case.m, case.k, LAYOUTS[la % 3], f32::NAN, || {
        rng.uniform(-2.0, 3.0)
    });
    let b = Mat::new(case.k, case.n, LAYOUTS[lb % 3], f32::NAN, || {
        rng.uniform(-1.0, 1.0)
    });
    let mut c = Mat::new(case.m, case.n, LAYOUTS[lc % 3], -7.0, || {
        if case.beta == 0.0 {
            f32::NAN
        } else {
            rng.uniform(-1.0, 1.0)
        }
    });
    let bias: Option<Vec<f32>> = case
        .bias
        .then(|| (0..case.n).map(|_| rng.uniform(-1.0, 1.0)).collect());
    let want = reference(case.alpha, &a, &b, case.beta, &c, bias.as_deref(), case.act);
    let pb = PackedB::new_int8(isa, b.view());
    assert_eq!(pb.precision(), Precision::Int8);
    let epi = Epilogue::bias_act(bias.as_deref(), case.act);
    sgemm_prepacked(case.alpha, a.view(), &pb, case.beta, c.view_mut(), epi);
    for i in 0..case.m {
        for j in 0..case.n {
            let (got, w) = (c.get(i, j), want[i * case.n + j]);
            assert!(
                got.to_bits() == w.to_bits() || (got.is_nan() && w.is_nan()),
                "{isa} m={} n={} k={} alpha={} beta={} layouts={:?} bias={} act={:?}: C[{i},{j}] = {got}, want {w}",
                case.m, case.n, case.k, case.alpha, case.beta, case.layouts, case.bias, case.act
            );
        }
    }
    if lc % 3 == 2 {
        for i in 0..case.m {
            for j in case.n..case.n + 3 {
                assert_eq!(c.data[i * c.rs + j], -7.0, "{isa}: C padding overwritten");
            }
        }
    }
}

const ALPHAS: [f32; 3] = [0.0, 1.0, 2.5];
const BETAS: [f32; 3] = [0.0, 1.0, 2.5];

#[test]
fn small_sizes_match_the_definition() {
    let mut rng = Rng::new(0x18);
    for isa in kernels() {
        let mut idx = 0usize;
        for m in 0..=17 {
            for n in 0..=17 {
                for k in 0..=17 {
                    idx += 1;
                    let case = Case {
                        m,
                        n,
                        k,
                        alpha: ALPHAS[idx % 3],
                        beta: BETAS[(idx / 3) % 3],
                        layouts: (idx, idx / 2, idx / 5),
                        bias: idx.is_multiple_of(7),
                        act: Activation::None,
                    };
                    check(isa, &case, &mut rng);
                }
            }
        }
    }
}

/// MR and NR +- 1, MC + 1, depths around the quad (4) and long ones, every epilogue.
#[test]
fn tile_edges_and_epilogues_match_the_definition() {
    let mut rng = Rng::new(0x19);
    for isa in kernels() {
        let b = [0.5f32];
        let nr = PackedB::new_int8(isa, MatRef::row_major(&b, 1, 1))
            .blocking()
            .nr;
        let (mr, mc) = {
            let bl = PackedB::new_int8(isa, MatRef::row_major(&b, 1, 1)).blocking();
            (bl.mr, bl.mc)
        };
        let mut idx = 0usize;
        for m in [mr - 1, mr, mr + 1, 2 * mr + 1, mc + 1] {
            for n in [nr - 1, nr, nr + 1, 3 * nr + 5] {
                for k in [1, 3, 4, 5, 255, 1030] {
                    for act in [Activation::None, Activation::QuickGelu, Activation::Gelu] {
                        idx += 1;
                        let case = Case {
                            m,
                            n,
                            k,
                            alpha: [1.0, 0.75][idx % 2],
                            beta: BETAS[idx % 3],
                            layouts: (idx, idx / 3, idx / 2),
                            bias: idx.is_multiple_of(2),
                            act,
                        };
                        check(isa, &case, &mut rng);
                    }
                }
            }
        }
    }
}

/// Where the quantisation is lossless (each row spans -128..=127, each weight column reaches
/// +-127, all integers), the result is the exact integer product: the kernels add exactly.
#[test]
fn lossless_quantisation_gives_exact_products() {
    let mut rng = Rng::new(0x20);
    for isa in kernels() {
        for (m, k, n) in [(1, 2, 1), (13, 77, 40), (50, 1024, 33), (11, 4096, 70)] {
            let mut av = vec![0.0f32; m * k];
            for i in 0..m {
                for p in 0..k {
                    av[i * k + p] = match p {
                        0 => -128.0,
                        1 => 127.0,
                        _ => ((rng.next_u64() % 256) as i32 - 128) as f32,
                    };
                }
            }
            let mut bv = vec![0.0f32; k * n];
            for p in 0..k {
                for j in 0..n {
                    bv[p * n + j] = if p == (j % k) {
                        if j % 2 == 0 {
                            127.0
                        } else {
                            -127.0
                        }
                    } else {
                        ((rng.next_u64() % 255) as i32 - 127) as f32
                    };
                }
            }
            let pb = PackedB::new_int8(isa, MatRef::row_major(&bv, k, n));
            let mut c = vec![f32::NAN; m * n];
            sgemm_prepacked(
                1.0,
                MatRef::row_major(&av, m, k),
                &pb,
                0.0,
                MatMut::row_major(&mut c, m, n),
                Epilogue::none(),
            );
            for i in 0..m {
                for j in 0..n {
                    let exact: f64 = (0..k)
                        .map(|p| av[i * k + p] as f64 * bv[p * n + j] as f64)
                        .sum();
                    assert_eq!(
                        c[i * n + j] as f64,
                        (exact as f32) as f64,
                        "{isa} {m}x{k}x{n}: C[{i},{j}]"
                    );
                }
            }
        }
    }
}

/// CLIP's shapes on real inputs: every kernel gives the scalar reference's bits, and the error
/// against the f64 product of the unquantised inputs stays within the quantisation bound
/// `sum_k (|a| s/2 + |b| t/2 + t s/4) + 2^-22 |ref|` (`docs/numerics.md`).
#[test]
fn clip_shapes_equal_scalar_and_within_the_quantisation_bound() {
    let mut rng = Rng::new(0x21);
    let isas = kernels();
    for (m, k, n) in [(50, 768, 3072), (77, 512, 2048), (13, 3072, 40)] {
        let a = rng.vec(m * k, -1.0, 1.0);
        let b = rng.vec(k * n, -0.1, 0.1);
        let bias = rng.vec(n, -1.0, 1.0);
        let run = |isa: Isa| {
            let pb = PackedB::new_int8(isa, MatRef::row_major(&b, k, n));
            let mut c = vec![f32::NAN; m * n];
            sgemm_prepacked(
                1.0,
                MatRef::row_major(&a, m, k),
                &pb,
                0.0,
                MatMut::row_major(&mut c, m, n),
                Epilogue::bias(&bias),
            );
            c
        };
        let want = run(Isa::Scalar);
        for &isa in &isas {
            assert!(run(isa) == want, "{isa} {m}x{k}x{n} differs from scalar");
        }
        let mut worst = 0.0f64;
        for i in 0..m {
            let row = &a[i * k..(i + 1) * k];
            let t = (row.iter().cloned().fold(0.0f32, f32::max)
                - row.iter().cloned().fold(0.0f32, f32::min)) as f64
                / 255.0;
            for j in 0..n {
                let s = (0..k).map(|p| b[p * n + j].abs()).fold(0.0f32, f32::max) as f64 / 127.0;
                let (mut exact, mut bound) = (bias[j] as f64, 0.0f64);
                for p in 0..k {
                    let (x, y) = (row[p] as f64, b[p * n + j] as f64);
                    exact += x * y;
                    bound += x.abs() * s / 2.0 + y.abs() * t / 2.0 + t * s / 4.0;
                }
                let err = (want[i * n + j] as f64 - exact).abs();
                bound += exact.abs() * 2f64.powi(-22);
                assert!(
                    err <= bound,
                    "{m}x{k}x{n} C[{i},{j}]: error {err} > bound {bound}"
                );
                worst = worst.max(err / bound);
            }
        }
        eprintln!("int8 {m}x{k}x{n}: max error / quantisation bound = {worst:.3}");
    }
}

/// 1, 2 and 3 threads give the same bits, and so do rows computed alone or in a taller A.
#[test]
fn bitwise_independent_of_threads_and_m() {
    let mut rng = Rng::new(0x22);
    let (m, k, n) = (250, 301, 517);
    let a = rng.vec(m * k, -1.0, 1.0);
    let b = rng.vec(k * n, -1.0, 1.0);
    let bias = rng.vec(n, -1.0, 1.0);
    for isa in kernels() {
        let pb = PackedB::new_int8(isa, MatRef::row_major(&b, k, n));
        let run = |threads: usize, rows: usize| {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![0.0f32; rows * n];
            pool.install(|| {
                sgemm_prepacked(
                    1.0,
                    MatRef::row_major(&a[..rows * k], rows, k),
                    &pb,
                    0.0,
                    MatMut::row_major(&mut c, rows, n),
                    Epilogue::bias_act(Some(&bias), Activation::QuickGelu),
                )
            });
            c
        };
        let one = run(1, m);
        for t in [2, 3] {
            assert!(run(t, m) == one, "{isa}: {t} threads differ from 1");
        }
        for rows in [1, 7, 33] {
            assert!(
                run(2, rows)[..] == one[..rows * n],
                "{isa}: the first {rows} rows alone differ"
            );
        }
    }
}

/// A row with NaN or an infinity gives NaN in its row only; a zero row gives the bias; a row
/// spanning more than f32 can subtract (-3e38..3e38) stays finite, as the definition says.
#[test]
fn non_finite_huge_and_zero_rows() {
    let (m, k, n) = (5, 40, 20);
    let mut a = vec![0.5f32; m * k];
    a[k + 3] = f32::NAN;
    a[2 * k + 7] = f32::INFINITY;
    a[3 * k..4 * k].fill(0.0);
    a[4 * k] = 3e38;
    a[4 * k + 1] = -3e38;
    let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 - 3.0).collect();
    let bias = vec![0.25f32; n];
    let mut it = a[4 * k..].iter();
    let huge = Mat::new(1, k, Layout::RowMajor, 0.0, || *it.next().unwrap());
    let mut it = b.iter();
    let small = Mat::new(k, n, Layout::RowMajor, 0.0, || *it.next().unwrap() * 1e-30);
    for isa in kernels() {
        let pb = PackedB::new_int8(isa, MatRef::row_major(&b, k, n));
        let mut c = vec![0.0f32; m * n];
        sgemm_prepacked(
            1.0,
            MatRef::row_major(&a, m, k),
            &pb,
            0.0,
            MatMut::row_major(&mut c, m, n),
            Epilogue::bias(&bias),
        );
        assert!(c[..n].iter().all(|v| v.is_finite()), "{isa}: row 0");
        assert!(c[n..3 * n].iter().all(|v| v.is_nan()), "{isa}: rows 1, 2");
        let want = reference(1.0, &huge, &small, 0.0, &huge, None, Activation::None);
        let pb = PackedB::new_int8(isa, small.view());
        let mut c = vec![0.0f32; n];
        let cm = MatMut::row_major(&mut c, 1, n);
        sgemm_prepacked(1.0, huge.view(), &pb, 0.0, cm, Epilogue::none());
        assert!(
            c.iter().all(|v| v.is_finite()) && c == want,
            "{isa}: huge row {c:?}"
        );
    }
}

/// Pre-quantised weights (as a file stores them) pack to the same B as quantising at packing,
/// and stacked parts to the same B as their concatenation.
#[test]
fn prequantised_and_stacked_weights_pack_the_same() {
    let mut rng = Rng::new(0x23);
    let (m, inp, outs) = (23, 130, [40usize, 40, 33]);
    let out: usize = outs.iter().sum();
    let w = rng.vec(out * inp, -1.0, 1.0);
    let x = rng.vec(m * inp, -1.0, 1.0);
    for isa in kernels() {
        let run = |pb: &PackedB| {
            let mut c = vec![0.0f32; m * out];
            sgemm_prepacked(
                1.0,
                MatRef::row_major(&x, m, inp),
                pb,
                0.0,
                MatMut::row_major(&mut c, m, out),
                Epilogue::none(),
            );
            c
        };
        let whole = run(&PackedB::new_int8(isa, MatRef::row_major(&w, out, inp).t()));
        let (q, scales) = quantize_weight_rows(&w, out, inp, inp, 1);
        let pre = PackedB::from_int8(isa, &q, &scales, inp, out, 1, inp);
        assert!(run(&pre) == whole, "{isa}: pre-quantised");
        let mut parts = Vec::new();
        let mut o0 = 0;
        for &o in &outs {
            parts.push(MatRef::row_major(&w[o0 * inp..(o0 + o) * inp], o, inp).t());
            o0 += o;
        }
        let stacked = PackedB::new_stacked(isa, &parts, Precision::Int8);
        assert!(run(&stacked) == whole, "{isa}: stacked");
    }
}

/// Past `INT8_MAX_K` the i32 sums could overflow: packing refuses such a depth.
#[test]
#[should_panic(expected = "int8 GEMM: depth")]
fn depth_beyond_the_i32_bound_is_refused() {
    let b = vec![1.0f32; INT8_MAX_K + 1];
    PackedB::new_int8(Isa::Scalar, MatRef::row_major(&b, INT8_MAX_K + 1, 1));
}
