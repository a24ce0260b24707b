//! Tensor views, dtype conversion and ops: against naive f64 references, and bitwise equal
//! across thread counts.

use clip_tensor::{bf16, f16, Activation, ByteStorage, DType, Linear, Tensor, Threads};
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

fn bits(t: &Tensor) -> Vec<u32> {
    t.to_vec_f32().iter().map(|x| x.to_bits()).collect()
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

#[test]
fn linear_and_matmul_match_f64() {
    let th = Threads::new(2).unwrap();
    let (rows, inp, out) = (37, 96, 130);
    let x = rand_vec(rows * inp, 1);
    let w = rand_vec(out * inp, 2);
    let b = rand_vec(out, 3);
    let layer = Linear::new(
        &Tensor::from_vec(w.clone(), &[out, inp]).unwrap(),
        Some(&Tensor::from_vec(b.clone(), &[out]).unwrap()),
        &th,
    )
    .unwrap();
    let xt = Tensor::from_vec(x.clone(), &[1, rows, inp]).unwrap();
    let y = xt.linear(&layer, Activation::None, &th).unwrap();
    assert_eq!(y.shape(), &[1, rows, out]);
    let want = naive_linear(&x, &w, &b, rows, inp, out);
    for (g, w) in y.to_vec_f32().iter().zip(&want) {
        assert!(
            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()),
            "{g} vs {w}"
        );
    }
    // matmul with a transposed view of W gives the same product without the bias.
    let wt = Tensor::from_vec(w.clone(), &[out, inp])
        .unwrap()
        .transpose(0, 1)
        .unwrap();
    let m = xt.matmul(&wt, &th).unwrap();
    let zero = vec![0.0; out];
    let want = naive_linear(&x, &w, &zero, rows, inp, out);
    for (g, w) in m.to_vec_f32().iter().zip(&want) {
        assert!((*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()));
    }
    assert!(xt.linear(&layer, Activation::None, &th).is_ok());
    assert!(Tensor::zeros(&[3, 5])
        .linear(&layer, Activation::None, &th)
        .is_err());
}

#[test]
fn every_op_is_bitwise_identical_across_thread_counts() {
    let (b, t, c, heads) = (3, 50, 128, 4);
    let x = Tensor::from_vec(rand_vec(b * t * c, 11), &[b, t, c]).unwrap();
    let w = Tensor::from_vec(rand_vec(c * c, 12), &[c, c]).unwrap();
    let bias = Tensor::from_vec(rand_vec(c, 13), &[c]).unwrap();
    let g = Tensor::from_vec(rand_vec(c, 14), &[c]).unwrap();
    let run = |n: usize| -> Vec<Vec<u32>> {
        let th = Threads::new(n).unwrap();
        let lin = Linear::new(&w, Some(&bias), &th).unwrap();
        let scores = Tensor::from_vec(rand_vec(b * t * t, 15), &[b, t, t]).unwrap();
        vec![
            bits(&x.linear(&lin, Activation::QuickGelu, &th).unwrap()),
            bits(&x.linear(&lin, Activation::Gelu, &th).unwrap()),
            bits(&x.matmul(&w, &th).unwrap()),
            bits(&x.layernorm(&g, &bias, 1e-5, &th).unwrap()),
            bits(&x.softmax(false, &th).unwrap()),
            bits(&scores.softmax(true, &th).unwrap()),
            bits(&x.gelu(&th).unwrap()),
            bits(&x.quick_gelu(&th).unwrap()),
            bits(&x.add(&x, &th).unwrap()),
            bits(&x.scale(0.3, &th).unwrap()),
            bits(&Tensor::attention(&x, &x, &x, heads, true, &th).unwrap()),
            bits(&Tensor::attention(&x, &x, &x, heads, false, &th).unwrap()),
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

#[test]
fn layernorm_and_softmax_match_f64() {
    let th = Threads::new(2).unwrap();
    let (rows, c) = (5, 77);
    let x = rand_vec(rows * c, 21);
    let t = Tensor::from_vec(x.clone(), &[rows, c]).unwrap();
    let ones = Tensor::from_vec(vec![1.0; c], &[c]).unwrap();
    let zeros = Tensor::zeros(&[c]);
    let ln = t.layernorm(&ones, &zeros, 1e-5, &th).unwrap().to_vec_f32();
    let sm = t.softmax(false, &th).unwrap().to_vec_f32();
    for r in 0..rows {
        let row: Vec<f64> = x[r * c..(r + 1) * c].iter().map(|&v| v as f64).collect();
        let mean = row.iter().sum::<f64>() / c as f64;
        let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / c as f64;
        let mx = row.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = row.iter().map(|v| (v - mx).exp()).sum();
        for j in 0..c {
            let want = (row[j] - mean) / (var + 1e-5).sqrt();
            assert!(
                (ln[r * c + j] as f64 - want).abs() < 1e-5,
                "layernorm [{r},{j}]"
            );
            let want = (row[j] - mx).exp() / z;
            assert!(
                (sm[r * c + j] as f64 - want).abs() < 1e-6,
                "softmax [{r},{j}]"
            );
        }
    }
}
