//! GEMM against a naive f64 reference, for every ISA this machine has.
//!
//! Integer-valued inputs make most checks exact: every product and partial sum is an integer
//! far below 2^24, and alpha, beta in {0, 1, 2.5} keep the results representable, so each ISA
//! must match the f64 reference bit for bit whatever its summation order or FMA use.
//! Random real inputs (the CLIP shapes) are checked against the bound in `docs/numerics.md`.

mod common;

use clip_kernels::{
    sgemm, sgemm_prepacked, Activation, Blocking, Epilogue, Isa, MatMut, MatRef, PackedB, Precision,
};
use common::mat::{reference, Layout, Mat};

/// The ISAs to test, announcing loudly any this CPU lacks (a failure if `CLIP_REQUIRE_ISA`
/// names it).
fn isas() -> Vec<Isa> {
    common::isas("GEMM")
}

/// A small deterministic generator (xorshift64*).
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    /// An integer in -4..=4, as f32.
    fn int(&mut self) -> f32 {
        (self.next() % 9) as f32 - 4.0
    }
    /// Uniform in [-1, 1).
    fn real(&mut self) -> f32 {
        ((self.next() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

struct Case {
    m: usize,
    n: usize,
    k: usize,
    alpha: f32,
    beta: f32,
    la: Layout,
    lb: Layout,
    lc: Layout,
    prepacked: bool,
    bias: bool,
    act: Activation,
}

/// Runs one case with integer inputs and demands exact agreement (no activation) or the
/// activation bound.
fn check_exact(isa: Isa, case: &Case, rng: &mut Rng) {
    let a = Mat::new(case.m, case.k, case.la, f32::NAN, || rng.int());
    let b = Mat::new(case.k, case.n, case.lb, f32::NAN, || rng.int());
    let c_fill = if case.beta == 0.0 { f32::NAN } else { 0.0 };
    let mut c = Mat::new(case.m, case.n, case.lc, -7.0, || {
        if c_fill.is_nan() {
            f32::NAN
        } else {
            rng.int()
        }
    });
    let bias: Option<Vec<f32>> = case.bias.then(|| (0..case.n).map(|_| rng.int()).collect());
    let (want, _) = reference(case.alpha, &a, &b, case.beta, &c, bias.as_deref(), case.act);
    let epi = Epilogue::bias_act(bias.as_deref(), case.act);
    if case.prepacked {
        let pb = PackedB::new(isa, b.view());
        sgemm_prepacked(case.alpha, a.view(), &pb, case.beta, c.view_mut(), epi);
    } else {
        sgemm(
            isa,
            case.alpha,
            a.view(),
            b.view(),
            case.beta,
            c.view_mut(),
            epi,
        );
    }
    for i in 0..case.m {
        for j in 0..case.n {
            let got = c.get(i, j) as f64;
            let w = want[i * case.n + j];
            let tol = if case.act == Activation::None {
                0.0
            } else {
                1e-6 * (1.0 + w.abs())
            };
            assert!(
                (got - w).abs() <= tol,
                "{isa} m={} n={} k={} alpha={} beta={} layouts={:?}/{:?}/{:?} prepacked={} act={:?}: C[{i},{j}] = {got}, want {w}",
                case.m, case.n, case.k, case.alpha, case.beta, case.la, case.lb, case.lc, case.prepacked, case.act
            );
        }
    }
    // Padding of C must be untouched.
    if matches!(case.lc, Layout::Padded) {
        for i in 0..case.m {
            for j in case.n..case.n + 3 {
                assert_eq!(
                    c.data[i * c.rs + j],
                    -7.0,
                    "{isa}: C padding overwritten at row {i}"
                );
            }
        }
    }
}

const ALPHAS: [f32; 3] = [0.0, 1.0, 2.5];
const BETAS: [f32; 3] = [0.0, 1.0, 2.5];

#[test]
fn small_sizes_cube_exact() {
    let mut rng = Rng(0x1234_5678);
    for isa in isas() {
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
                        la: [Layout::RowMajor, Layout::ColMajor, Layout::Padded][idx % 3],
                        lb: [Layout::RowMajor, Layout::ColMajor, Layout::Padded][(idx / 2) % 3],
                        lc: [Layout::RowMajor, Layout::ColMajor, Layout::Padded][(idx / 5) % 3],
                        prepacked: idx.is_multiple_of(2),
                        bias: idx.is_multiple_of(7),
                        act: Activation::None,
                    };
                    check_exact(isa, &case, &mut rng);
                }
            }
        }
    }
}

#[test]
fn block_edges_exact() {
    let mut rng = Rng(99);
    for isa in isas() {
        let bl = Blocking::of(isa);
        let mut dims = vec![1, 257];
        for d in [bl.mr, bl.nr, bl.kc] {
            dims.extend([d - 1, d, d + 1]);
        }
        dims.extend([bl.mc + 1, 2 * bl.kc + 3]);
        for (t, &m) in dims.iter().enumerate() {
            for (u, &n) in dims.iter().enumerate() {
                // Every k edge is met with small m or n; where both are large, k is one
                // of 1, 3 and KC + 1 (the f64 reference of 500^3 cases was most of
                // the test suite's time).
                let k = match m * n > 1 << 16 {
                    false => dims[(t + u) % dims.len()],
                    true => [1, 3, bl.kc + 1][(t + u) % 3],
                };
                let case = Case {
                    m,
                    n,
                    k,
                    alpha: ALPHAS[(t + u) % 3],
                    beta: BETAS[t % 3],
                    la: [Layout::RowMajor, Layout::ColMajor][u % 2],
                    lb: [Layout::RowMajor, Layout::ColMajor, Layout::Padded][t % 3],
                    lc: [Layout::RowMajor, Layout::Padded][(t + u) % 2],
                    prepacked: (t + u) % 2 == 1,
                    bias: t.is_multiple_of(2),
                    act: Activation::None,
                };
                check_exact(isa, &case, &mut rng);
            }
        }
    }
}

#[test]
fn epilogue_activations() {
    let mut rng = Rng(7);
    for isa in isas() {
        for act in [Activation::QuickGelu, Activation::Gelu] {
            for &(m, n, k) in &[(1, 1, 1), (17, 33, 9), (50, 70, 40), (3, 100, 300)] {
                for prepacked in [false, true] {
                    let case = Case {
                        m,
                        n,
                        k,
                        alpha: 0.25,
                        beta: if prepacked { 0.0 } else { 1.0 },
                        la: Layout::RowMajor,
                        lb: Layout::ColMajor,
                        lc: if prepacked {
                            Layout::RowMajor
                        } else {
                            Layout::ColMajor
                        },
                        prepacked,
                        bias: true,
                        act,
                    };
                    check_exact(isa, &case, &mut rng);
                }
            }
        }
    }
}

/// Both ways of packing A give exact products: each task packing its own row block (row
/// blocks keep every thread busy: 1 and 2 threads here) and A packed once for tasks that
/// share rows (4 threads on 257 rows); over two KC blocks, with A row-major (the ISA's own
/// packer, when it has one), padded (a row stride past k) and column-major (the generic one).
#[test]
fn a_packing_paths_exact() {
    let mut rng = Rng(0xa9ac);
    for isa in isas() {
        let bl = Blocking::of(isa);
        for (t, threads) in [1, 2, 4].into_iter().enumerate() {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            for (u, m) in [257, bl.mc + 1].into_iter().enumerate() {
                let case = Case {
                    m,
                    n: 70,
                    k: bl.kc + 6,
                    alpha: 1.0,
                    beta: BETAS[(t + u) % 3],
                    la: [Layout::RowMajor, Layout::Padded, Layout::ColMajor][(t + u) % 3],
                    lb: Layout::ColMajor,
                    lc: Layout::RowMajor,
                    prepacked: u == 0,
                    bias: true,
                    act: Activation::None,
                };
                pool.install(|| check_exact(isa, &case, &mut rng));
            }
        }
    }
}

/// An activation fused into the GEMM's epilogue gives the bits of the same GEMM followed by
/// the row kernel (`rows::quick_gelu`, `rows::gelu`) on its output, for full and edge tiles,
/// pre-packed f32 and bf16 B, beta 0 and 1, on every ISA.
#[test]
fn fused_activation_equals_row_kernel_after() {
    let mut rng = Rng(0xf05e);
    for isa in isas() {
        for act in [Activation::QuickGelu, Activation::Gelu] {
            for &(m, k, n) in &[(50, 64, 96), (13, 40, 70), (77, 30, 33)] {
                for (bf16, beta) in [(false, 0.0), (false, 1.0), (true, 1.0)] {
                    let a = Mat::new(m, k, Layout::RowMajor, 0.0, || rng.real());
                    let b = Mat::new(k, n, Layout::ColMajor, 0.0, || rng.real());
                    let bias: Vec<f32> = (0..n).map(|_| 2.0 * rng.real()).collect();
                    let c0: Vec<f32> = (0..m * n).map(|_| rng.real()).collect();
                    let pb = if bf16 {
                        PackedB::new_bf16(isa, b.view())
                    } else {
                        PackedB::new(isa, b.view())
                    };
                    let mut fused = c0.clone();
                    let epi = Epilogue::bias_act(Some(&bias), act);
                    sgemm_prepacked(
                        1.5,
                        a.view(),
                        &pb,
                        beta,
                        MatMut::row_major(&mut fused, m, n),
                        epi,
                    );
                    let mut after = c0.clone();
                    let epi = Epilogue::bias_act(Some(&bias), Activation::None);
                    sgemm_prepacked(
                        1.5,
                        a.view(),
                        &pb,
                        beta,
                        MatMut::row_major(&mut after, m, n),
                        epi,
                    );
                    match act {
                        Activation::QuickGelu => clip_kernels::rows::quick_gelu(isa, &mut after),
                        _ => clip_kernels::rows::gelu(isa, &mut after),
                    }
                    for (i, (x, y)) in fused.iter().zip(&after).enumerate() {
                        assert_eq!(
                            x.to_bits(),
                            y.to_bits(),
                            "{isa} {act:?} {m}x{k}x{n} bf16={bf16} beta={beta}: C[{i}] {x} vs {y}"
                        );
                    }
                }
            }
        }
    }
}

/// Random real inputs on CLIP's shapes: |C - ref| <= 2 k eps sum|a||b| + eps |ref|.
#[test]
fn clip_shapes_real_bound() {
    let mut rng = Rng(2024);
    for isa in isas() {
        for &(m, k, n) in &[(50, 768, 3072), (77, 512, 2048), (13, 3072, 40)] {
            let a = Mat::new(m, k, Layout::RowMajor, 0.0, || rng.real());
            let b = Mat::new(k, n, Layout::ColMajor, 0.0, || rng.real());
            let mut c = Mat::new(m, n, Layout::RowMajor, 0.0, || f32::NAN);
            let (want, mag) = reference(1.0, &a, &b, 0.0, &c, None, Activation::None);
            let pb = PackedB::new(isa, b.view());
            sgemm_prepacked(1.0, a.view(), &pb, 0.0, c.view_mut(), Epilogue::none());
            let eps = f32::EPSILON as f64;
            let mut worst = 0.0f64;
            for i in 0..m * n {
                let err = (c.data[i] as f64 - want[i]).abs();
                let bound = 2.0 * k as f64 * eps * mag[i] + eps * want[i].abs();
                assert!(
                    err <= bound,
                    "{isa} {m}x{k}x{n}: C[{i}] err {err} > bound {bound}"
                );
                worst = worst.max(err / mag[i].max(f64::MIN_POSITIVE));
            }
            eprintln!("{isa} {m}x{k}x{n}: max |err| / sum|a||b| = {worst:.3e} (u = {eps:.3e})");
        }
    }
}

/// The same product on 1, 2 and 3 threads, pre-packed or not, is bitwise identical; so is a
/// row computed alone or inside a taller A.
#[test]
fn bitwise_independent_of_threads_and_m() {
    let mut rng = Rng(5);
    for isa in isas() {
        let (m, k, n) = (77, 300, 517);
        let a = Mat::new(m, k, Layout::RowMajor, 0.0, || rng.real());
        let b = Mat::new(k, n, Layout::ColMajor, 0.0, || rng.real());
        let bias: Vec<f32> = (0..n).map(|_| rng.real()).collect();
        let pb = PackedB::new(isa, b.view());
        let run = |threads: usize, prepacked: bool, rows: usize| -> Vec<f32> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![f32::NAN; rows * n];
            let av = MatRef::row_major(&a.data[..rows * k], rows, k);
            let epi = Epilogue::bias_act(Some(&bias), Activation::QuickGelu);
            pool.install(|| {
                if prepacked {
                    sgemm_prepacked(1.0, av, &pb, 0.0, MatMut::row_major(&mut c, rows, n), epi)
                } else {
                    sgemm(
                        isa,
                        1.0,
                        av,
                        b.view(),
                        0.0,
                        MatMut::row_major(&mut c, rows, n),
                        epi,
                    )
                }
            });
            c
        };
        let base = run(1, true, m);
        for (threads, prepacked) in [(2, true), (3, true), (1, false), (2, false)] {
            let got = run(threads, prepacked, m);
            assert!(
                base.iter()
                    .zip(&got)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{isa}: result differs with {threads} threads, prepacked={prepacked}"
            );
        }
        // 33 and 77 rows run on the 11-row AVX-512 tile, the others on the 10-row one.
        for rows in [1, 7, 33, 77] {
            let got = run(2, true, rows);
            assert!(
                base[..rows * n]
                    .iter()
                    .zip(&got)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{isa}: the first {rows} rows differ when computed alone"
            );
        }
    }
}

/// `PackedB::new_stacked` over parts stored as `[out_i, in]` weights (B_i = W_i^T) gives
/// bitwise the products of packing their concatenation, including panels that straddle two
/// parts and depths past one KC block, in f32, bf16 and int8.
#[test]
fn stacked_packing_equals_concatenated() {
    let mut rng = Rng(0x5eed_57ac);
    for isa in isas() {
        for k in [37, 1030] {
            for widths in [&[5, 40, 17][..], &[32, 32, 32], &[0, 33, 0, 64]] {
                let weights: Vec<Vec<f32>> = widths
                    .iter()
                    .map(|&w| (0..w * k).map(|_| rng.real()).collect())
                    .collect();
                let parts: Vec<MatRef<'_>> = weights
                    .iter()
                    .zip(widths)
                    .map(|(w, &cols)| MatRef::row_major(w, cols, k).t())
                    .collect();
                let n: usize = widths.iter().sum();
                let mut concat = vec![0.0f32; k * n];
                let mut j0 = 0;
                for p in &parts {
                    for i in 0..k {
                        for j in 0..p.cols {
                            concat[i * n + j0 + j] = p.data[i * p.rs + j * p.cs];
                        }
                    }
                    j0 += p.cols;
                }
                let m = 7;
                let a: Vec<f32> = (0..m * k).map(|_| rng.real()).collect();
                for precision in [Precision::F32, Precision::Bf16, Precision::Int8] {
                    let whole = MatRef::row_major(&concat, k, n);
                    let want_b = match precision {
                        Precision::F32 => PackedB::new(isa, whole),
                        Precision::Bf16 => PackedB::new_bf16(isa, whole),
                        Precision::Int8 => PackedB::new_int8(isa, whole),
                    };
                    let got_b = PackedB::new_stacked(isa, &parts, precision);
                    let mut want = vec![0.0f32; m * n];
                    let mut got = vec![1.0f32; m * n];
                    let av = MatRef::row_major(&a, m, k);
                    let epi = Epilogue::none();
                    sgemm_prepacked(
                        1.0,
                        av,
                        &want_b,
                        0.0,
                        MatMut::row_major(&mut want, m, n),
                        epi,
                    );
                    sgemm_prepacked(1.0, av, &got_b, 0.0, MatMut::row_major(&mut got, m, n), epi);
                    let same = want
                        .iter()
                        .zip(&got)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{isa} k={k} widths={widths:?} {precision:?}");
                }
            }
        }
    }
}
