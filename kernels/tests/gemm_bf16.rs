//! GEMM with a bf16 B, for every bf16 kernel this machine has (the conversion kernel of each
//! kernel set, the AVX512-BF16 dot kernel and its scalar model), against a naive f64 GEMM
//! over the bf16-rounded B (and, for the dot kernels, the bf16-rounded A).
//!
//! The rounding is checked against an independent computation (the two bf16 neighbours of a
//! value and the nearer one, in f64), then used for the reference. Integer inputs make most
//! checks exact (integers up to 256 are bf16, every partial sum is an integer below 2^24);
//! random real inputs are checked against the bound in `docs/numerics.md`.

mod common;

use clip_kernels::gemm::{
    bf16_bits_to_f32, f16_bits_to_f32, f32_to_bf16_bits, f32_to_bf16_bits_sat,
};
use clip_kernels::{
    sgemm_prepacked, Activation, Bf16Kernel, Blocking, Epilogue, Isa, MatMut, MatRef, PackedB,
    Precision,
};
use common::mat::{reference, Layout, Mat, LAYOUTS};
use common::Rng;

/// Every (kernel set, bf16 kernel) this CPU runs; says loudly which ones are skipped (a
/// failure for a set `CLIP_REQUIRE_ISA` names).
fn kernels() -> Vec<(Isa, Bf16Kernel)> {
    let mut out = Vec::new();
    for isa in common::isas("bf16 GEMM") {
        for kind in [Bf16Kernel::Convert, Bf16Kernel::Dot] {
            if kind.is_available(isa) {
                out.push((isa, kind));
            } else if isa == Isa::Avx512 {
                // The dot kernel needs AVX512-BF16 besides the set's AVX-512F.
                eprintln!(
                    "!!! bf16 GEMM: kernel {isa}/{kind} is NOT available on this CPU: SKIPPED !!!"
                );
            }
        }
    }
    out
}

/// The bf16 nearest to `x`, ties to even, found without bit tricks: the two bf16 neighbours of
/// `|x|` on the grid of its binade (spacing 2^(e-7), or 2^-133 below 2^-126), in f64.
fn bf16_round_ref(x: f32) -> f32 {
    if x.is_nan() {
        return f32::NAN;
    }
    if x.is_infinite() || x == 0.0 {
        return x;
    }
    let ax = (x as f64).abs();
    let mut e = ax.log2().floor() as i32;
    while 2f64.powi(e) > ax {
        e -= 1;
    }
    while 2f64.powi(e + 1) <= ax {
        e += 1;
    }
    let ulp = 2f64.powi(e.max(-126) - 7);
    let q = ax / ulp; // exact: division by a power of two
    let lo = q.floor();
    let frac = q - lo;
    let n = if frac > 0.5 || (frac == 0.5 && lo % 2.0 == 1.0) {
        lo + 1.0
    } else {
        lo
    };
    let r = n * ulp;
    let r = if r >= 2f64.powi(128) {
        f32::INFINITY
    } else {
        r as f32
    };
    r.copysign(x)
}

/// The bf16 bits of a value that is a bf16 (exact).
fn bits_of(x: f32) -> u16 {
    let b = x.to_bits();
    assert!(x.is_nan() || b & 0xFFFF == 0, "{x} is not a bf16");
    (b >> 16) as u16
}

#[test]
fn rounding_is_nearest_even_with_nan_and_inf() {
    let mut rng = Rng::new(11);
    let mut specials: Vec<u32> = vec![
        0,
        0x8000_0000,
        0x7F80_0000,
        0xFF80_0000,
        0x7F7F_FFFF, // max finite f32: rounds to inf
        0x7F7F_7FFF, // just below the midpoint to inf: stays max bf16
        0x7F7F_8000, // the midpoint between max bf16 (odd) and 2^128: ties to even = inf
        0x0000_0001, // smallest subnormal
        0x0000_8000, // a subnormal tie
        0x0001_8000,
        0x007F_FFFF, // largest subnormal: rounds up to the smallest normal
        0x3F80_8000, // 1 + 2^-8: a tie, down to 1 (even)
        0x3F81_8000, // a tie, up to the even neighbour
        0x3F80_8001, // just above a tie
        0x3F80_7FFF, // just below a tie
    ];
    for _ in 0..200_000 {
        specials.push(rng.next_u64() as u32);
    }
    // Every tie pattern of a few exponents, both signs.
    for hi in [0x3F80u32, 0x3F81, 0x4B7F, 0x0080, 0x0001, 0x7F7E, 0x7F7F] {
        for sign in [0, 0x8000_0000] {
            specials.push(sign | (hi << 16) | 0x8000);
        }
    }
    for b in specials {
        let x = f32::from_bits(b);
        let got = f32_to_bf16_bits(x);
        let want = bf16_round_ref(x);
        if x.is_nan() {
            assert!(
                bf16_bits_to_f32(got).is_nan(),
                "NaN {b:#010x} -> {got:#06x}"
            );
            assert_eq!(got >> 15, (b >> 31) as u16, "NaN sign {b:#010x}");
        } else {
            assert_eq!(
                got,
                bits_of(want),
                "round({x:e} = {b:#010x}) = {got:#06x}, want {:#06x}",
                bits_of(want)
            );
        }
        // The activations' rounding (dot kernels) is the same but saturates finite values.
        let sat = f32_to_bf16_bits_sat(x);
        if x.is_finite() && want.is_infinite() {
            assert_eq!(sat, (got & 0x8000) | 0x7F7F, "saturated {b:#010x}");
        } else {
            assert_eq!(sat, got, "saturating rounding of {b:#010x}");
        }
    }
    // NaNs whose payload is only in the low half must not become infinities.
    for b in [0x7F80_0001u32, 0xFF80_0001, 0x7F80_FFFF, 0x7FC0_0000] {
        assert!(bf16_bits_to_f32(f32_to_bf16_bits(f32::from_bits(b))).is_nan());
    }
}

#[test]
fn f16_widening_is_exact() {
    for h in 0..=u16::MAX {
        let (s, e, m) = ((h >> 15) as i32, ((h >> 10) & 31) as i32, (h & 1023) as f64);
        let v = match e {
            0 => m * 2f64.powi(-24),
            31 if m == 0.0 => f64::INFINITY,
            31 => f64::NAN,
            _ => (1.0 + m / 1024.0) * 2f64.powi(e - 15),
        };
        let want = if s == 1 { -v } else { v };
        let got = f16_bits_to_f32(h);
        if want.is_nan() {
            assert!(got.is_nan(), "f16 {h:#06x}");
        } else {
            assert_eq!(got as f64, want, "f16 {h:#06x}");
            assert_eq!(got.is_sign_negative(), s == 1, "f16 {h:#06x} sign");
        }
    }
}

/// `C = 1 x B` with `A = [1]` shows the packed values: every bf16 bit pattern packed from bits,
/// rounded f32 values packed by `new_bf16`, and f16 bit patterns rounded by `from_f16_bits`.
#[test]
fn packed_values_are_the_rounded_values() {
    let all: Vec<u16> = (0..=u16::MAX).collect();
    let mut rng = Rng::new(3);
    let f32s: Vec<f32> = (0..65536)
        .map(|i| match i % 4 {
            0 => f32::from_bits(rng.next_u64() as u32),
            1 => f32::from_bits((rng.next_u64() as u32 & 0xFFFF_0000) | 0x8000),
            _ => rng.uniform(-3.0, 3.0),
        })
        .collect();
    let n = all.len();
    for (isa, kind) in kernels() {
        let run = |pb: PackedB| -> Vec<f32> {
            let pb = pb.with_bf16_kernel(kind);
            assert_eq!(pb.precision(), Precision::Bf16);
            let mut c = vec![f32::NAN; n];
            sgemm_prepacked(
                1.0,
                MatRef::row_major(&[1.0], 1, 1),
                &pb,
                0.0,
                MatMut::row_major(&mut c, 1, n),
                Epilogue::none(),
            );
            c
        };
        // The dot kernel reads bf16 subnormals as zero; `0 + 1*(-0)` is +0 in both kernels.
        let expect = |v: f32| -> f32 {
            if kind == Bf16Kernel::Dot && v.is_subnormal() || v == 0.0 {
                0.0
            } else {
                v
            }
        };
        let check = |what: &str, got: &[f32], want: &dyn Fn(usize) -> f32| {
            for (j, &g) in got.iter().enumerate() {
                let w = expect(want(j));
                assert!(
                    (g.is_nan() && w.is_nan()) || g.to_bits() == w.to_bits(),
                    "{isa}/{kind} {what}: element {j}: got {g:e}, want {w:e}"
                );
            }
        };
        let got = run(PackedB::from_bf16_bits(isa, &all, 1, n, n, 1));
        check("from_bf16_bits", &got, &|j| bf16_bits_to_f32(all[j]));
        let got = run(PackedB::new_bf16(isa, MatRef::row_major(&f32s, 1, n)));
        check("new_bf16", &got, &|j| bf16_round_ref(f32s[j]));
        let got = run(PackedB::from_f16_bits(isa, &all, 1, n, n, 1));
        check("from_f16_bits", &got, &|j| {
            bf16_round_ref(f16_bits_to_f32(all[j]))
        });
    }
}

/// The same matrix with every element rounded to bf16 by the reference rounding.
fn rounded(m: &Mat) -> Mat {
    Mat {
        data: m.data.iter().map(|&x| bf16_round_ref(x)).collect(),
        ..*m
    }
}

/// Packs `b` as bf16 for `(isa, kind)`.
fn pack(isa: Isa, kind: Bf16Kernel, b: &Mat) -> PackedB {
    PackedB::new_bf16(isa, b.view()).with_bf16_kernel(kind)
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
    bias: bool,
    act: Activation,
}

/// Runs one case with integer inputs (exact in bf16) and demands exact agreement (no
/// activation) or the activation bound; checks that C's padding is untouched.
fn check_exact(isa: Isa, kind: Bf16Kernel, case: &Case, rng: &mut Rng) {
    let mut int = || (rng.next_u64() % 9) as f32 - 4.0;
    let a = Mat::new(case.m, case.k, case.la, f32::NAN, &mut int);
    let b = Mat::new(case.k, case.n, case.lb, f32::NAN, &mut int);
    let mut c = Mat::new(case.m, case.n, case.lc, -7.0, || {
        if case.beta == 0.0 {
            f32::NAN
        } else {
            int()
        }
    });
    let bias: Option<Vec<f32>> = case.bias.then(|| (0..case.n).map(|_| int()).collect());
    let (want, _) = reference(case.alpha, &a, &b, case.beta, &c, bias.as_deref(), case.act);
    let pb = pack(isa, kind, &b);
    let epi = Epilogue::bias_act(bias.as_deref(), case.act);
    sgemm_prepacked(case.alpha, a.view(), &pb, case.beta, c.view_mut(), epi);
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
                "{isa}/{kind} m={} n={} k={} alpha={} beta={} layouts={:?}/{:?}/{:?} bias={} act={:?}: C[{i},{j}] = {got}, want {w}",
                case.m, case.n, case.k, case.alpha, case.beta, case.la, case.lb, case.lc, case.bias, case.act
            );
        }
    }
    if matches!(case.lc, Layout::Padded) {
        for i in 0..case.m {
            for j in case.n..case.n + 3 {
                assert_eq!(
                    c.data[i * c.rs + j],
                    -7.0,
                    "{isa}/{kind}: C padding overwritten"
                );
            }
        }
    }
}

const ALPHAS: [f32; 3] = [0.0, 1.0, 2.5];
const BETAS: [f32; 3] = [0.0, 1.0, 2.5];

/// Sizes 0..=17 cubed, every other k for the slow scalar dot model.
#[test]
fn small_sizes_exact() {
    let mut rng = Rng::new(0x1234);
    for (isa, kind) in kernels() {
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
                        la: LAYOUTS[idx % 3],
                        lb: LAYOUTS[(idx / 2) % 3],
                        lc: LAYOUTS[(idx / 5) % 3],
                        bias: idx.is_multiple_of(7),
                        act: Activation::None,
                    };
                    check_exact(isa, kind, &case, &mut rng);
                }
            }
        }
    }
}

/// MR, NR, KC +- 1, MC + 1, 2 KC + 3, odd k and 257, for each kernel's own blocking.
#[test]
fn block_edges_exact() {
    let mut rng = Rng::new(99);
    for (isa, kind) in kernels() {
        let bl = Blocking::of_bf16(isa, kind);
        let mut dims = vec![1, 3, 257];
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
                    lb: LAYOUTS[t % 3],
                    lc: [Layout::RowMajor, Layout::Padded][(t + u) % 2],
                    bias: t.is_multiple_of(2),
                    act: Activation::None,
                };
                check_exact(isa, kind, &case, &mut rng);
            }
        }
    }
}

#[test]
fn epilogue_activations() {
    let mut rng = Rng::new(7);
    for (isa, kind) in kernels() {
        for act in [Activation::QuickGelu, Activation::Gelu] {
            for &(m, n, k) in &[(1, 1, 1), (17, 33, 9), (50, 70, 41), (3, 100, 300)] {
                for beta in [0.0, 1.0] {
                    let case = Case {
                        m,
                        n,
                        k,
                        alpha: 0.25,
                        beta,
                        la: Layout::RowMajor,
                        lb: Layout::ColMajor,
                        lc: if beta == 0.0 {
                            Layout::RowMajor
                        } else {
                            Layout::ColMajor
                        },
                        bias: true,
                        act,
                    };
                    check_exact(isa, kind, &case, &mut rng);
                }
            }
        }
    }
}

/// Random real inputs on CLIP's shapes against f64 over the rounded operands:
/// `|C - ref| <= 2 K u sum|a||b| + u |ref|` (`docs/numerics.md`). A is strided in one case
/// (transposed) and B is a transposed weight, as in a Linear layer.
#[test]
fn clip_shapes_real_bound() {
    let mut rng = Rng::new(2024);
    let eps = f32::EPSILON as f64;
    for &(m, k, n, la) in &[
        (50, 768, 3072, Layout::RowMajor),
        (77, 512, 2048, Layout::ColMajor),
        (13, 3072, 40, Layout::Padded),
    ] {
        let a = Mat::new(m, k, la, 0.0, || rng.uniform(-1.0, 1.0));
        let b = Mat::new(k, n, Layout::ColMajor, 0.0, || rng.uniform(-1.0, 1.0));
        let c0 = Mat::new(m, n, Layout::RowMajor, 0.0, || f32::NAN);
        let (b_r, a_r) = (rounded(&b), rounded(&a));
        let refs = [
            reference(1.0, &a, &b_r, 0.0, &c0, None, Activation::None),
            reference(1.0, &a_r, &b_r, 0.0, &c0, None, Activation::None),
        ];
        for (isa, kind) in kernels() {
            let (want, mag) = &refs[(kind == Bf16Kernel::Dot) as usize];
            let mut c = Mat::new(m, n, Layout::RowMajor, 0.0, || f32::NAN);
            sgemm_prepacked(
                1.0,
                a.view(),
                &pack(isa, kind, &b),
                0.0,
                c.view_mut(),
                Epilogue::none(),
            );
            let mut worst = 0.0f64;
            for i in 0..m * n {
                let err = (c.data[i] as f64 - want[i]).abs();
                let bound = 2.0 * k as f64 * eps * mag[i] + eps * want[i].abs();
                assert!(
                    err <= bound,
                    "{isa}/{kind} {m}x{k}x{n}: C[{i}] err {err} > bound {bound}"
                );
                worst = worst.max(err / mag[i].max(f64::MIN_POSITIVE));
            }
            eprintln!(
                "{isa}/{kind} {m}x{k}x{n}: max |err| / sum|a||b| = {worst:.3e} (u = {eps:.3e})"
            );
        }
    }
}

/// 1, 2 and 3 threads give the same bits; so does a row computed alone or in a taller A.
/// With 250 rows the AVX2/AVX-512 conversion kernels widen B panels once per task on 1 and 2
/// threads (25 and 13 tiles of 10 rows) and inside each tile on 3 threads and for the rows
/// computed alone: the two ways must agree.
#[test]
fn bitwise_independent_of_threads_and_m() {
    let mut rng = Rng::new(5);
    let (m, k, n) = (250, 301, 517);
    let a = Mat::new(m, k, Layout::RowMajor, 0.0, || rng.uniform(-1.0, 1.0));
    let b = Mat::new(k, n, Layout::ColMajor, 0.0, || rng.uniform(-1.0, 1.0));
    let bias: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
    for (isa, kind) in kernels() {
        let pb = pack(isa, kind, &b);
        let run = |threads: usize, rows: usize| -> Vec<f32> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            let mut c = vec![f32::NAN; rows * n];
            let av = MatRef::row_major(&a.data[..rows * k], rows, k);
            let epi = Epilogue::bias_act(Some(&bias), Activation::QuickGelu);
            pool.install(|| {
                sgemm_prepacked(1.0, av, &pb, 0.0, MatMut::row_major(&mut c, rows, n), epi)
            });
            c
        };
        let same = |x: &[f32], y: &[f32]| x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits());
        let base = run(1, m);
        for threads in [2, 3] {
            assert!(
                same(&base, &run(threads, m)),
                "{isa}/{kind}: result differs with {threads} threads"
            );
        }
        for rows in [1, 7, 33] {
            assert!(
                same(&base[..rows * n], &run(2, rows)),
                "{isa}/{kind}: the first {rows} rows differ when computed alone"
            );
        }
    }
}

/// Packing bf16 bits (a stored weight, transposed) equals packing the same values from f32;
/// packing f16 bits equals packing their f32 values; and each conversion kernel gives bitwise
/// the f32 kernel's result on the rounded B (same tile, same FMAs in the same order).
#[test]
fn packing_sources_agree_and_conversion_equals_f32_on_rounded_b() {
    let mut rng = Rng::new(77);
    // 250 rows: the AVX2/AVX-512 conversion kernels widen each B panel once (one task).
    for m in [23, 250] {
        sources_and_conversion(&mut rng, m);
    }
}

fn sources_and_conversion(rng: &mut Rng, m: usize) {
    let (k, n) = (515, 70);
    let a = Mat::new(m, k, Layout::RowMajor, 0.0, || rng.uniform(-1.0, 1.0));
    // W is [n, k] row-major, B = W^T.
    let w: Vec<f32> = (0..n * k).map(|_| rng.uniform(-2.0, 2.0)).collect();
    let w_bits: Vec<u16> = w.iter().map(|&x| bits_of(bf16_round_ref(x))).collect();
    let w_r: Vec<f32> = w_bits.iter().map(|&h| bf16_bits_to_f32(h)).collect();
    // f16 values of the weight, as bits (f16 is exact in f32).
    let w_f16: Vec<u16> = (0..n * k)
        .map(|_| {
            let e = 5 + rng.next_u64() % 20;
            (((rng.next_u64() % 2) << 15) | (e << 10) | (rng.next_u64() % 1024)) as u16
        })
        .collect();
    let w_f16_f32: Vec<f32> = w_f16.iter().map(|&h| f16_bits_to_f32(h)).collect();
    fn bview(w: &[f32], n: usize, k: usize) -> MatRef<'_> {
        MatRef::row_major(w, n, k).t()
    }
    let gemm = |pb: &PackedB| -> Vec<u32> {
        let mut c = vec![f32::NAN; m * n];
        sgemm_prepacked(
            1.0,
            a.view(),
            pb,
            0.0,
            MatMut::row_major(&mut c, m, n),
            Epilogue::none(),
        );
        c.iter().map(|x| x.to_bits()).collect()
    };
    for (isa, kind) in kernels() {
        let from_f32 = gemm(&PackedB::new_bf16(isa, bview(&w, n, k)).with_bf16_kernel(kind));
        let from_bits =
            gemm(&PackedB::from_bf16_bits(isa, &w_bits, k, n, 1, k).with_bf16_kernel(kind));
        assert_eq!(
            from_f32, from_bits,
            "{isa}/{kind}: from_bf16_bits != new_bf16"
        );
        let f16 = gemm(&PackedB::from_f16_bits(isa, &w_f16, k, n, 1, k).with_bf16_kernel(kind));
        let f16_via_f32 =
            gemm(&PackedB::new_bf16(isa, bview(&w_f16_f32, n, k)).with_bf16_kernel(kind));
        assert_eq!(f16, f16_via_f32, "{isa}/{kind}: from_f16_bits != new_bf16");
        if kind == Bf16Kernel::Convert {
            let f32_kernel = gemm(&PackedB::new(isa, bview(&w_r, n, k)));
            assert_eq!(
                from_f32, f32_kernel,
                "{isa}: the conversion kernel differs from the f32 kernel on the rounded B"
            );
        }
    }
}

/// The AVX512-BF16 kernel agrees bit for bit with its scalar model (which follows Intel's
/// specification of `vdpbf16ps`), on random reals and with beta and bias, for any K (the
/// two share KC, so their KC blocks and epilogues coincide).
#[test]
fn dot_kernel_equals_its_scalar_model() {
    if !common::run_or_skip("dot_kernel_equals_its_scalar_model", Isa::Avx512) {
        return;
    }
    if !Bf16Kernel::Dot.is_available(Isa::Avx512) {
        eprintln!("!!! bf16 GEMM: avx512/dot is NOT available on this CPU: SKIPPED !!!");
        return;
    }
    assert_eq!(
        Blocking::of_bf16(Isa::Avx512, Bf16Kernel::Dot).kc,
        Blocking::of_bf16(Isa::Scalar, Bf16Kernel::Dot).kc
    );
    let mut rng = Rng::new(31);
    for &(m, k, n) in &[(10, 2, 32), (50, 768, 96), (13, 257, 40), (21, 600, 33)] {
        let a = Mat::new(m, k, Layout::RowMajor, 0.0, || rng.uniform(-1.0, 1.0));
        let b = Mat::new(k, n, Layout::ColMajor, 0.0, || rng.uniform(-1.0, 1.0));
        let c0 = Mat::new(m, n, Layout::RowMajor, 0.0, || rng.uniform(-1.0, 1.0));
        let bias: Vec<f32> = (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let run = |isa: Isa| -> Vec<u32> {
            let mut c = Mat {
                data: c0.data.clone(),
                ..c0
            };
            sgemm_prepacked(
                0.75,
                a.view(),
                &pack(isa, Bf16Kernel::Dot, &b),
                2.5,
                c.view_mut(),
                Epilogue::bias(&bias),
            );
            c.data.iter().map(|x| x.to_bits()).collect()
        };
        assert_eq!(
            run(Isa::Avx512),
            run(Isa::Scalar),
            "{m}x{k}x{n}: avx512/dot differs from the scalar model"
        );
    }
}

#[test]
fn availability_and_defaults() {
    for isa in Isa::available() {
        assert!(Bf16Kernel::Convert.is_available(isa));
        let pb = PackedB::new_bf16(isa, MatRef::row_major(&[1.0, 2.0], 1, 2));
        assert_eq!(pb.precision(), Precision::Bf16);
        assert_eq!(pb.bf16_kernel(), Some(Bf16Kernel::default_for(isa)));
        assert_eq!(
            PackedB::new(isa, MatRef::row_major(&[1.0], 1, 1)).precision(),
            Precision::F32
        );
    }
    for isa in [Isa::Portable, Isa::Avx2, Isa::Neon] {
        assert!(!Bf16Kernel::Dot.is_available(isa));
    }
}

#[test]
#[should_panic(expected = "no dot bf16 kernel")]
fn dot_kernel_refused_where_missing() {
    let _ = PackedB::new_bf16(Isa::Portable, MatRef::row_major(&[1.0], 1, 1))
        .with_bf16_kernel(Bf16Kernel::Dot);
}
