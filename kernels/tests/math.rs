//! Accuracy of the vector math (exp, erf, sigmoid, gelu, quick_gelu) against f64 over dense
//! sweeps, for every kernel set the CPU has; bitwise agreement between the scalar reference
//! and AVX2/AVX-512; and independence of an element's result from its position.
//! The bounds asserted here are the ones written in `docs/numerics.md`.

mod common;

use clip_kernels::{rows, Isa};
use common::*;

type SliceFn = fn(Isa, &mut [f32]);

/// `n` points evenly spaced over `[lo, hi]`, as f32.
fn sweep(lo: f64, hi: f64, n: usize) -> Vec<f32> {
    (0..n)
        .map(|i| (lo + (hi - lo) * i as f64 / (n - 1) as f64) as f32)
        .collect()
}

fn run(f: SliceFn, isa: Isa, x: &[f32]) -> Vec<f32> {
    let mut y = x.to_vec();
    f(isa, &mut y);
    y
}

#[test]
fn exp_within_2_ulp() {
    let x = sweep(-87.3, 88.7, 2_000_001);
    for isa in isas("exp_within_2_ulp") {
        let y = run(rows::exp, isa, &x);
        let worst = x
            .iter()
            .zip(&y)
            .map(|(&xi, &yi)| ulps(yi, (xi as f64).exp()))
            .fold(0.0f64, f64::max);
        eprintln!("exp [{isa}]: max error {worst:.3} ulp over [-87.3, 88.7]");
        assert!(worst <= 2.0, "exp [{isa}]: {worst} ulp");
        let special = [
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            89.0,
            -88.0,
            -1e30,
            0.0,
        ];
        let s = run(rows::exp, isa, &special);
        assert!(s[0].is_nan());
        assert_eq!(&s[1..], &[f32::INFINITY, 0.0, f32::INFINITY, 0.0, 0.0, 1.0]);
    }
}

#[test]
fn sigmoid_within_3_ulp() {
    let x = sweep(-87.0, 90.0, 1_000_001);
    for isa in isas("sigmoid_within_3_ulp") {
        let y = run(rows::sigmoid, isa, &x);
        let worst = x
            .iter()
            .zip(&y)
            .map(|(&xi, &yi)| ulps(yi, sigmoid_f64(xi as f64)))
            .fold(0.0f64, f64::max);
        eprintln!("sigmoid [{isa}]: max error {worst:.3} ulp over [-87, 90]");
        assert!(worst <= 3.0, "sigmoid [{isa}]: {worst} ulp");
        let s = run(rows::sigmoid, isa, &[f32::NAN, -1e4, 1e4, f32::INFINITY]);
        assert!(s[0].is_nan());
        assert_eq!(&s[1..], &[0.0, 1.0, 1.0]);
    }
}

#[test]
fn erf_within_1e7_abs() {
    let x = sweep(-6.0, 6.0, 2_000_001);
    for isa in isas("erf_within_1e7_abs") {
        let y = run(rows::erf, isa, &x);
        let (mut worst, mut at) = (0.0f64, 0.0f32);
        for (&xi, &yi) in x.iter().zip(&y) {
            let e = (yi as f64 - erf_f64(xi as f64)).abs();
            if e > worst {
                (worst, at) = (e, xi);
            }
        }
        eprintln!("erf [{isa}]: max abs error {worst:.3e} (at x = {at}) over [-6, 6]");
        assert!(worst <= 1.2e-7, "erf [{isa}]: {worst:e} at {at}");
        let s = run(
            rows::erf,
            isa,
            &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0],
        );
        assert!(s[0].is_nan());
        assert_eq!(&s[1..3], &[1.0, -1.0]);
        assert_eq!(s[3].to_bits(), (-0.0f32).to_bits());
    }
}

#[test]
fn gelu_error_bounds() {
    let x = sweep(-12.0, 12.0, 2_000_001);
    for isa in isas("gelu_error_bounds") {
        let y = run(rows::gelu, isa, &x);
        // Absolute error, and error relative to max(|gelu(x)|, 1e-30) for x >= -5.
        let (mut abs_w, mut rel_w) = (0.0f64, 0.0f64);
        for (&xi, &yi) in x.iter().zip(&y) {
            let r = gelu_f64(xi as f64);
            let e = (yi as f64 - r).abs();
            abs_w = abs_w.max(e);
            if xi >= -5.0 && r.abs() > 1e-30 {
                rel_w = rel_w.max(e / r.abs());
            }
        }
        eprintln!("gelu [{isa}]: max abs error {abs_w:.3e} on [-12, 12], max rel error {rel_w:.3e} on [-5, 12]");
        assert!(abs_w <= 5e-7, "gelu [{isa}] abs {abs_w:e}");
        assert!(rel_w <= 3e-6, "gelu [{isa}] rel {rel_w:e}");
    }
}

#[test]
fn quick_gelu_within_3_ulp() {
    let x = sweep(-50.0, 50.0, 1_000_001);
    for isa in isas("quick_gelu_within_3_ulp") {
        let y = run(rows::quick_gelu, isa, &x);
        let worst = x
            .iter()
            .zip(&y)
            .map(|(&xi, &yi)| ulps(yi, quick_gelu_f64(xi as f64)))
            .fold(0.0f64, f64::max);
        eprintln!("quick_gelu [{isa}]: max error {worst:.3} ulp over [-50, 50]");
        assert!(worst <= 3.0, "quick_gelu [{isa}]: {worst} ulp");
    }
}

const ALL_FNS: [(&str, SliceFn); 5] = [
    ("exp", rows::exp),
    ("erf", rows::erf),
    ("sigmoid", rows::sigmoid),
    ("gelu", rows::gelu),
    ("quick_gelu", rows::quick_gelu),
];

#[test]
fn scalar_avx2_avx512_bitwise_equal() {
    let mut x = sweep(-100.0, 100.0, 200_001);
    let mut rng = Rng::new(7);
    x.extend(rng.vec(10_000, -1e4, 1e4));
    x.extend([
        f32::NAN,
        f32::INFINITY,
        f32::NEG_INFINITY,
        0.0,
        -0.0,
        88.7,
        -87.4,
    ]);
    for (name, f) in ALL_FNS {
        let want = run(f, Isa::Scalar, &x);
        for isa in isas("scalar_avx2_avx512_bitwise_equal") {
            if matches!(isa, Isa::Portable | Isa::Neon | Isa::Scalar) {
                continue; // `wide`'s mul_add (portable, and neon's row math) may be unfused: compared by bounds instead.
            }
            let got = run(f, isa, &x);
            for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                assert!(
                    g.to_bits() == w.to_bits() || (g.is_nan() && w.is_nan()),
                    "{name} [{isa}] x = {}: {g} vs scalar {w}",
                    x[i]
                );
            }
        }
    }
}

#[test]
fn result_independent_of_position_and_length() {
    let mut rng = Rng::new(11);
    let x = rng.vec(64, -8.0, 8.0);
    for isa in isas("result_independent_of_position_and_length") {
        for (name, f) in ALL_FNS {
            let full = run(f, isa, &x);
            for start in 0..20 {
                for len in 1..=(x.len() - start).min(40) {
                    let part = run(f, isa, &x[start..start + len]);
                    for (k, v) in part.iter().enumerate() {
                        assert_eq!(
                            v.to_bits(),
                            full[start + k].to_bits(),
                            "{name} [{isa}] start {start} len {len} k {k}"
                        );
                    }
                }
            }
        }
    }
}

/// The per-ISA vector functions (what GEMM epilogues call) agree with the scalar reference.
#[test]
fn per_isa_vector_functions_match_scalar() {
    use clip_kernels::math::{portable, scalar};
    let xs: Vec<f32> = (0..64).map(|i| (i as f32 - 32.0) * 0.37).collect();
    type Fns = (fn(f32) -> f32, fn(wide::f32x8) -> wide::f32x8);
    let table: [(&str, Fns); 5] = [
        ("exp", (scalar::exp, portable::exp)),
        ("erf", (scalar::erf, portable::erf)),
        ("sigmoid", (scalar::sigmoid, portable::sigmoid)),
        ("gelu", (scalar::gelu, portable::gelu)),
        ("quick_gelu", (scalar::quick_gelu, portable::quick_gelu)),
    ];
    for (name, (fs, fp)) in table {
        for c in xs.chunks_exact(8) {
            let got = fp(wide::f32x8::from(<[f32; 8]>::try_from(c).unwrap())).to_array();
            for (g, &x) in got.iter().zip(c) {
                // Unfused multiply-adds may move a result by a few ulps (more where the
                // formula is ill-conditioned, as gelu's tail): compare with a loose bound.
                let want = fs(x);
                assert!(
                    (g - want).abs() <= 4e-6 * want.abs() + 1e-12,
                    "portable::{name}({x})"
                );
            }
        }
    }
    #[cfg(target_arch = "x86_64")]
    {
        use clip_kernels::math::{avx2, avx512};
        use std::arch::x86_64::*;
        if common::run_or_skip("per_isa_vector_functions_match_scalar", Isa::Avx2) {
            for c in xs.chunks_exact(8) {
                let mut out = [0.0f32; 8];
                // SAFETY: AVX2 and FMA are available (checked above); `c` and `out` hold 8 floats.
                unsafe {
                    let v = _mm256_loadu_ps(c.as_ptr());
                    _mm256_storeu_ps(out.as_mut_ptr(), avx2::gelu(avx2::exp(v)));
                }
                for (o, &x) in out.iter().zip(c) {
                    assert_eq!(
                        o.to_bits(),
                        scalar::gelu(scalar::exp(x)).to_bits(),
                        "avx2 x={x}"
                    );
                }
            }
        }
        if common::run_or_skip("per_isa_vector_functions_match_scalar", Isa::Avx512) {
            for c in xs.chunks_exact(16) {
                let mut out = [0.0f32; 16];
                // SAFETY: AVX-512F is available (checked above); `c` and `out` hold 16 floats.
                unsafe {
                    let v = _mm512_loadu_ps(c.as_ptr());
                    let y = avx512::quick_gelu(avx512::sigmoid(avx512::erf(v)));
                    _mm512_storeu_ps(out.as_mut_ptr(), y);
                }
                for (o, &x) in out.iter().zip(c) {
                    let want = scalar::quick_gelu(scalar::sigmoid(scalar::erf(x)));
                    assert_eq!(o.to_bits(), want.to_bits(), "avx512 x={x}");
                }
            }
        }
    }
}
