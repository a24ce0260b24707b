//! `Linear` with bf16 weights: against an f64 reference over the bf16-rounded weight (rounded
//! by the `half` crate, independently of the kernels), every weight source (f32, bf16 owned,
//! bf16 memory-mapped, transposed views, f16, slices) packing to the same bits, and results
//! bitwise identical across thread counts.

use clip_tensor::{
    bf16, f16, Activation, Bf16Kernel, ByteStorage, DType, Exec, Linear, Precision, Tensor,
};
use std::sync::Arc;

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn forward(lin: &Linear, x: &[f32], rows: usize, th: &Exec) -> Vec<u32> {
    let mut y = vec![f32::NAN; rows * lin.out_features()];
    lin.forward_into(x, &mut y, Activation::None, false, th);
    y.iter().map(|v| v.to_bits()).collect()
}

struct Bytes(Vec<u8>);
impl ByteStorage for Bytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[test]
fn bf16_linear_matches_f64_over_rounded_weight() {
    for kind in [Bf16Kernel::Convert, Bf16Kernel::Dot] {
        let Ok(th) = Exec::with_threads(2).unwrap().with_bf16_kernel(kind) else {
            eprintln!("!!! bf16 Linear: no {kind} kernel on this CPU: SKIPPED !!!");
            continue;
        };
        matches_f64_over_rounded_weight(&th, kind);
    }
}

/// The conversion kernel against f64 over the rounded weight; the dot kernel over the rounded
/// weight and activations (`docs/numerics.md`).
fn matches_f64_over_rounded_weight(th: &Exec, kind: Bf16Kernel) {
    let (rows, inp, out) = (37, 300, 130);
    let x = rand_vec(rows * inp, 1);
    let w = rand_vec(out * inp, 2);
    let b = rand_vec(out, 3);
    let lin = Linear::new(
        &Tensor::from_vec(w.clone(), &[out, inp]).unwrap(),
        Some(b.clone()),
        Precision::Bf16,
        th,
    )
    .unwrap();
    assert_eq!(lin.precision(), Precision::Bf16);
    assert_eq!(lin.bf16_kernel(), Some(kind));
    let th = th.clone();
    let f32_lin = Linear::new(
        &Tensor::from_vec(w.clone(), &[out, inp]).unwrap(),
        None,
        Precision::F32,
        &th,
    )
    .unwrap();
    assert_eq!(f32_lin.precision(), Precision::F32);
    assert!(lin.size_bytes() * 2 <= f32_lin.size_bytes() + 4096);
    let mut y = vec![0.0f32; rows * out];
    lin.forward_into(&x, &mut y, Activation::None, false, &th);
    let u = f32::EPSILON as f64;
    let xr = |v: f32| match kind {
        Bf16Kernel::Convert => v as f64,
        Bf16Kernel::Dot => bf16::from_f32(v).to_f64(),
    };
    for r in 0..rows {
        for o in 0..out {
            let (mut s, mut mag) = (b[o] as f64, b[o].abs() as f64);
            for i in 0..inp {
                let wr = bf16::from_f32(w[o * inp + i]).to_f64();
                s += xr(x[r * inp + i]) * wr;
                mag += (xr(x[r * inp + i]) * wr).abs();
            }
            let got = y[r * out + o] as f64;
            let bound = 2.0 * (inp + 1) as f64 * u * mag + u * s.abs();
            assert!(
                (got - s).abs() <= bound,
                "{kind}: y[{r},{o}] = {got}, want {s} (bound {bound})"
            );
        }
    }
    // The rounding of the weight is visible: the bf16 layer is not the f32 one.
    let yf = forward(&f32_lin, &x, rows, &th);
    let mut lin_nb = vec![0.0f32; rows * out];
    Linear::new(
        &Tensor::from_vec(w, &[out, inp]).unwrap(),
        None,
        Precision::Bf16,
        &th,
    )
    .unwrap()
    .forward_into(&x, &mut lin_nb, Activation::None, false, &th);
    assert_ne!(yf, lin_nb.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
}

#[test]
fn every_weight_source_packs_the_same_bf16() {
    let th = Exec::with_threads(2).unwrap();
    let (rows, inp, out) = (11, 77, 45);
    let x = rand_vec(rows * inp, 4);
    let w = rand_vec(out * inp, 5);
    let wb: Vec<bf16> = w.iter().map(|&v| bf16::from_f32(v)).collect();
    let wr: Vec<f32> = wb.iter().map(|v| v.to_f32()).collect();
    let bias = rand_vec(out, 6);
    let want = forward(
        &Linear::new(
            &Tensor::from_vec(w.clone(), &[out, inp]).unwrap(),
            Some(bias.clone()),
            Precision::Bf16,
            &th,
        )
        .unwrap(),
        &x,
        rows,
        &th,
    );
    let check = |what: &str, lin: Linear| {
        assert_eq!(lin.precision(), Precision::Bf16, "{what}");
        assert_eq!(forward(&lin, &x, rows, &th), want, "{what}");
    };
    // Owned bf16, as stored.
    let owned = Tensor::from_bf16(wb.clone(), &[out, inp]).unwrap();
    check(
        "bf16 owned",
        Linear::new(&owned, Some(bias.clone()), Precision::Bf16, &th).unwrap(),
    );
    // Borrowed bf16 bytes (a memory map), at an offset.
    let mut raw = vec![0u8; 2];
    for v in &wb {
        raw.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    let store: Arc<dyn ByteStorage> = Arc::new(Bytes(raw));
    let mapped = Tensor::from_bytes(store, 2, DType::BF16, &[out, inp]).unwrap();
    check(
        "bf16 mapped",
        Linear::new(&mapped, Some(bias.clone()), Precision::Bf16, &th).unwrap(),
    );
    // A transposed view of the [in, out] matrix (strided, no copy).
    let wt: Vec<bf16> = (0..inp * out)
        .map(|idx| wb[(idx % out) * inp + idx / out])
        .collect();
    let view = Tensor::from_bf16(wt, &[inp, out])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    assert!(!view.is_contiguous());
    check(
        "bf16 transposed view",
        Linear::new(&view, Some(bias.clone()), Precision::Bf16, &th).unwrap(),
    );
    // A narrowed view: rows of a taller weight.
    let mut tall = wb.clone();
    tall.extend(wb.iter().take(3 * inp));
    let narrow = Tensor::from_bf16(tall, &[out + 3, inp])
        .unwrap()
        .narrow(0, 0, out)
        .unwrap();
    check(
        "bf16 narrowed",
        Linear::new(&narrow, Some(bias.clone()), Precision::Bf16, &th).unwrap(),
    );
    // f32, already rounded, [out, in] and the transposed view of [in, out].
    check(
        "f32 rounded [out, in]",
        Linear::new(
            &Tensor::from_vec(wr.clone(), &[out, inp]).unwrap(),
            Some(bias.clone()),
            Precision::Bf16,
            &th,
        )
        .unwrap(),
    );
    let wrt: Vec<f32> = (0..inp * out)
        .map(|idx| wr[(idx % out) * inp + idx / out])
        .collect();
    let wrt = Tensor::from_vec(wrt, &[inp, out])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    check(
        "f32 rounded [in, out] transposed",
        Linear::new(&wrt, Some(bias.clone()), Precision::Bf16, &th).unwrap(),
    );
    // f16 storage is rounded to bf16 from its bits: the same as rounding its f32 values.
    let wh: Vec<f16> = w.iter().map(|&v| f16::from_f32(v)).collect();
    let wh32: Vec<f32> = wh.iter().map(|v| v.to_f32()).collect();
    let from_f16 = Linear::new(
        &Tensor::from_f16(wh, &[out, inp]).unwrap(),
        None,
        Precision::Bf16,
        &th,
    )
    .unwrap();
    let from_f32 = Linear::new(
        &Tensor::from_vec(wh32, &[out, inp]).unwrap(),
        None,
        Precision::Bf16,
        &th,
    )
    .unwrap();
    assert_eq!(
        forward(&from_f16, &x, rows, &th),
        forward(&from_f32, &x, rows, &th)
    );
    // Errors are reported as for f32.
    assert!(Linear::new(&Tensor::zeros(&[3]), None, Precision::Bf16, &th).is_err());
    assert!(Linear::new(&owned, Some(vec![0.0; out + 1]), Precision::Bf16, &th).is_err());
}

#[test]
fn bf16_linear_is_bitwise_identical_across_thread_counts() {
    let (rows, inp, out) = (50, 768, 96);
    let x = rand_vec(rows * inp, 7);
    let w = Tensor::from_bf16(
        rand_vec(out * inp, 8)
            .iter()
            .map(|&v| bf16::from_f32(v))
            .collect(),
        &[out, inp],
    )
    .unwrap();
    let b = rand_vec(out, 9);
    let run = |n: usize| -> Vec<u32> {
        let th = Exec::with_threads(n).unwrap();
        let lin = Linear::new(&w, Some(b.clone()), Precision::Bf16, &th).unwrap();
        let mut y = rand_vec(rows * out, 10);
        lin.forward_into(&x, &mut y, Activation::None, true, &th);
        let mut z = vec![0.0; rows * out];
        lin.forward_into(&x, &mut z, Activation::QuickGelu, false, &th);
        y.iter().chain(&z).map(|v| v.to_bits()).collect()
    };
    let one = run(1);
    for n in [2, 3] {
        assert_eq!(one, run(n), "bf16 Linear differs between 1 and {n} threads");
    }
}
