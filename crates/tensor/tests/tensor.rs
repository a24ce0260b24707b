//! Tensor views, dtype conversion, `Linear` and the execution context: against naive f64
//! references, and bitwise equal across thread counts.

use clip_tensor::{bf16, f16, Activation, ByteStorage, DType, Exec, Linear, Precision, Tensor};
use std::sync::Arc;

fn rand_vec(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 2.0
        })
        .collect()
}

#[test]
fn views_share_storage_and_index_correctly() {
    let data: Vec<f32> = (0..24).map(|i| i as f32).collect();
    let t = Tensor::from_vec(data, &[2, 3, 4]).unwrap();
    let n = t.narrow(2, 1, 2).unwrap();
    assert_eq!(n.shape(), &[2, 3, 2]);
    assert!(!n.is_contiguous());
    let want: Vec<f32> = (0..2)
        .flat_map(|a| (0..3).flat_map(move |b| (1..3).map(move |c| (a * 12 + b * 4 + c) as f32)))
        .collect();
    assert_eq!(n.to_vec_f32(), want);
    let tr = t.transpose(0, 2).unwrap();
    assert_eq!(tr.shape(), &[4, 3, 2]);
    let got = tr.to_vec_f32();
    for c in 0..4 {
        for b in 0..3 {
            for a in 0..2 {
                assert_eq!(got[c * 6 + b * 2 + a], (a * 12 + b * 4 + c) as f32);
            }
        }
    }
    let r = t.reshape(&[6, 4]).unwrap();
    assert!(r.is_contiguous());
    assert_eq!(r.to_vec_f32(), t.to_vec_f32());
    let r2 = tr.reshape(&[24]).unwrap();
    assert_eq!(r2.to_vec_f32(), got);
    assert!(t.narrow(1, 2, 2).is_err());
    assert!(t.transpose(0, 3).is_err());
    assert!(t.reshape(&[5, 5]).is_err());
}

#[test]
fn half_storage_converts_exactly() {
    let vals = rand_vec(1000, 3);
    let h: Vec<f16> = vals.iter().map(|&x| f16::from_f32(x)).collect();
    let b: Vec<bf16> = vals.iter().map(|&x| bf16::from_f32(x)).collect();
    let th = Tensor::from_f16(h.clone(), &[10, 100]).unwrap();
    let tb = Tensor::from_bf16(b.clone(), &[10, 100]).unwrap();
    assert_eq!(th.dtype(), DType::F16);
    let want_h: Vec<f32> = h.iter().map(|x| x.to_f32()).collect();
    let want_b: Vec<f32> = b.iter().map(|x| x.to_f32()).collect();
    assert_eq!(th.to_vec_f32(), want_h);
    assert_eq!(tb.to_vec_f32(), want_b);
    assert_eq!(th.transpose(0, 1).unwrap().to_vec_f32()[1], want_h[100]);
}

struct Bytes(Vec<u8>);
impl ByteStorage for Bytes {
    fn bytes(&self) -> &[u8] {
        &self.0
    }
}

#[test]
fn borrowed_bytes_aligned_and_not() {
    let vals = rand_vec(64, 9);
    let mut raw = vec![0u8; 3];
    for v in &vals {
        raw.extend_from_slice(&v.to_le_bytes());
    }
    raw.extend_from_slice(&[0; 16]);
    let store: Arc<dyn ByteStorage> = Arc::new(Bytes(raw));
    let base = store.bytes().as_ptr() as usize;
    // Offset 3 is 4-aligned only if the allocation starts at 1 mod 4: then the view borrows.
    let t = Tensor::from_bytes(store.clone(), 3, DType::F32, &[8, 8]).unwrap();
    assert_eq!(t.to_vec_f32(), vals);
    assert_eq!(t.is_borrowed(), (base + 3).is_multiple_of(4));
    assert!(Tensor::from_bytes(store.clone(), 3, DType::F32, &[9, 8]).is_err());
    assert!(Tensor::from_bytes(store, usize::MAX - 2, DType::F32, &[1]).is_err());
}

fn naive_linear(x: &[f32], w: &[f32], b: &[f32], rows: usize, inp: usize, out: usize) -> Vec<f64> {
    let mut y = vec![0.0; rows * out];
    for r in 0..rows {
        for o in 0..out {
            let mut s = b[o] as f64;
            for i in 0..inp {
                s += x[r * inp + i] as f64 * w[o * inp + i] as f64;
            }
            y[r * out + o] = s;
        }
    }
    y
}

fn forward(lin: &Linear, x: &[f32], act: Activation, exec: &Exec) -> Vec<f32> {
    let rows = x.len() / lin.in_features();
    let mut y = vec![f32::NAN; rows * lin.out_features()];
    lin.forward_into(x, &mut y, act, false, exec);
    y
}

/// `Linear::new` on a `[out, in]` tensor and on the transposed view of an `[in, out]` one
/// (OpenAI's projections) against an f64 reference; the residual form adds to `out`.
#[test]
fn linear_matches_f64_from_either_layout() {
    let exec = Exec::with_threads(2).unwrap();
    let (rows, inp, out) = (37, 96, 130);
    let x = rand_vec(rows * inp, 1);
    let w = rand_vec(out * inp, 2);
    let b = rand_vec(out, 3);
    let wt = Tensor::from_vec(w.clone(), &[out, inp]).unwrap();
    let layer = Linear::new(&wt, Some(b.clone()), Precision::F32, &exec).unwrap();
    assert_eq!((layer.in_features(), layer.out_features()), (inp, out));
    let y = forward(&layer, &x, Activation::None, &exec);
    let want = naive_linear(&x, &w, &b, rows, inp, out);
    for (g, w) in y.iter().zip(&want) {
        assert!(
            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{g} vs {w}"
        );
    }
    // The same weight stored [in, out] and passed as its transposed view packs the same.
    let mut w_in_out = vec![0.0f32; inp * out];
    for o in 0..out {
        for i in 0..inp {
            w_in_out[i * out + o] = w[o * inp + i];
        }
    }
    let view = Tensor::from_vec(w_in_out, &[inp, out])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    let from_view = Linear::new(&view, Some(b.clone()), Precision::F32, &exec).unwrap();
    assert_eq!(forward(&from_view, &x, Activation::None, &exec), y);
    // accumulate: out <- out + x W^T + b.
    let mut acc = vec![1.5f32; rows * out];
    layer.forward_into(&x, &mut acc, Activation::None, true, &exec);
    for (a, w) in acc.iter().zip(&want) {
        assert!((*a as f64 - (w + 1.5)).abs() <= 1e-4 * (2.5 + w.abs()));
    }
    assert!(Linear::new(&Tensor::zeros(&[3]), None, Precision::F32, &exec).is_err());
    assert!(Linear::new(&wt, Some(vec![0.0; out + 1]), Precision::F32, &exec).is_err());
}

/// q, k and v stacked give the bits of the concatenated weight.
#[test]
fn stacked_equals_concatenated() {
    let exec = Exec::with_threads(2).unwrap();
    let (rows, c) = (9, 40);
    let parts: Vec<Vec<f32>> = (0..3).map(|i| rand_vec(c * c, 30 + i)).collect();
    let bias = rand_vec(3 * c, 33);
    let x = rand_vec(rows * c, 34);
    let tensors: Vec<Tensor> = parts
        .iter()
        .map(|p| Tensor::from_vec(p.clone(), &[c, c]).unwrap())
        .collect();
    let refs: Vec<&Tensor> = tensors.iter().collect();
    let cat = Tensor::from_vec(parts.concat(), &[3 * c, c]).unwrap();
    for p in [Precision::F32, Precision::Bf16] {
        let a = Linear::stacked(&refs, Some(bias.clone()), p, &exec).unwrap();
        let b = Linear::new(&cat, Some(bias.clone()), p, &exec).unwrap();
        assert_eq!(
            forward(&a, &x, Activation::None, &exec),
            forward(&b, &x, Activation::None, &exec),
            "{p:?}"
        );
    }
    let odd = Tensor::zeros(&[c, c + 1]);
    assert!(Linear::stacked(&[&tensors[0], &odd], None, Precision::F32, &exec).is_err());
}

/// Linear layers (with each activation) and row operations give the same bits on 1, 2 and
/// 3 threads.
#[test]
fn bitwise_identical_across_thread_counts() {
    let (rows, c) = (150, 128);
    let x = rand_vec(rows * c, 11);
    let w = Tensor::from_vec(rand_vec(c * c, 12), &[c, c]).unwrap();
    let bias = rand_vec(c, 13);
    let g = rand_vec(c, 14);
    let run = |n: usize| -> Vec<Vec<u32>> {
        let exec = Exec::with_threads(n).unwrap();
        let lin = Linear::new(&w, Some(bias.clone()), Precision::F32, &exec).unwrap();
        let mut ln = vec![0.0f32; x.len()];
        exec.for_rows(&x, &mut ln, c, |isa, x, o| {
            clip_kernels::rows::layernorm_rows(isa, x, o, c, &g, &bias, 1e-5)
        });
        let bits = |v: Vec<f32>| v.iter().map(|f| f.to_bits()).collect::<Vec<u32>>();
        vec![
            bits(forward(&lin, &x, Activation::QuickGelu, &exec)),
            bits(forward(&lin, &x, Activation::Gelu, &exec)),
            bits(ln),
        ]
    };
    let one = run(1);
    for n in [2, 3] {
        let other = run(n);
        for (i, (a, b)) in one.iter().zip(&other).enumerate() {
            assert!(a == b, "op #{i} differs between 1 and {n} threads");
        }
    }
}

/// Thread counts beyond the cap are refused with a typed error, not started.
#[test]
fn too_many_threads_refused() {
    let max = clip_tensor::max_threads();
    assert!(Exec::with_threads(max).is_ok());
    let e = Exec::with_threads(max + 1).unwrap_err();
    assert!(e.to_string().contains("per core"), "{e}");
    assert!(Exec::with_threads(100_000).is_err());
}
