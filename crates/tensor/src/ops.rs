//! Safe tensor operations over `clip-kernels`, run on an explicit [`Threads`] pool.
//!
//! Every operation gives bitwise the same result for every thread count: GEMM never splits
//! the k loop, row kernels are split on row boundaries, and elementwise kernels give the same
//! bits for an element wherever it falls in a chunk.

use crate::{Error, Result, Tensor};
use clip_kernels::{
    rows, Activation, AttentionShape, ElemType, Epilogue, Isa, MatMut, MatRef, PackedB, SoftmaxMask,
};
use rayon::prelude::*;
use std::sync::Arc;

/// A rayon pool of a fixed number of threads, and the kernel set to run on it.
#[derive(Clone)]
pub struct Threads {
    pool: Arc<rayon::ThreadPool>,
    isa: Isa,
}

impl std::fmt::Debug for Threads {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Threads({}, {})",
            self.pool.current_num_threads(),
            self.isa
        )
    }
}

impl Threads {
    /// `n` threads (`0` means all cores) with [`Isa::active`].
    pub fn new(n: usize) -> Result<Threads> {
        Self::with_isa(n, Isa::active())
    }

    /// `n` threads (`0` means all cores) with a given kernel set.
    pub fn with_isa(n: usize, isa: Isa) -> Result<Threads> {
        if !isa.is_available() {
            return Err(Error::Threads {
                reason: format!("this CPU cannot run the {isa} kernels"),
            });
        }
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(n)
            .build()
            .map_err(|e| Error::Threads {
                reason: e.to_string(),
            })?;
        Ok(Threads {
            pool: Arc::new(pool),
            isa,
        })
    }

    pub fn count(&self) -> usize {
        self.pool.current_num_threads()
    }

    pub fn isa(&self) -> Isa {
        self.isa
    }

    /// Runs `f` inside the pool.
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }
}

/// The element type a [`Linear`] keeps its packed weight in. Activations, the bias and the
/// accumulation are f32 either way.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    #[default]
    F32,
    /// bf16 weights (half the bytes), widened in the GEMM's micro-kernel (or multiplied by
    /// `vdpbf16ps` when `CLIP_BF16=dot`); see `clip_kernels::Bf16Kernel`.
    Bf16,
}

/// A Linear layer's weight pre-packed for the GEMM, and its bias: `y = x W^T + b`.
#[derive(Clone, Debug)]
pub struct Linear {
    packed: PackedB,
    bias: Option<Vec<f32>>,
}

impl Linear {
    /// Packs `weight` (`[out, in]`, as PyTorch stores it) once, as f32; `bias` is `[out]`.
    pub fn new(weight: &Tensor, bias: Option<&Tensor>, threads: &Threads) -> Result<Linear> {
        Self::new_with(weight, bias, Precision::F32, threads)
    }

    /// Packs `weight` as bf16: a bf16 tensor (owned or memory-mapped, any strides) is packed
    /// from its bits as stored, an f16 one is rounded from its bits, an f32 one is rounded; no
    /// f32 copy of the weight is made.
    pub fn new_bf16(weight: &Tensor, bias: Option<&Tensor>, threads: &Threads) -> Result<Linear> {
        Self::new_with(weight, bias, Precision::Bf16, threads)
    }

    /// Packs `weight` (`[out, in]`) in `precision`; `bias` is `[out]`.
    pub fn new_with(
        weight: &Tensor,
        bias: Option<&Tensor>,
        precision: Precision,
        threads: &Threads,
    ) -> Result<Linear> {
        if weight.rank() != 2 {
            return Err(Error::BadShape {
                op: "Linear::new",
                shape: weight.shape().to_vec(),
                reason: "weight must be [out, in]".into(),
            });
        }
        let (out, inp) = (weight.shape()[0], weight.shape()[1]);
        if let Some(b) = bias {
            if b.shape() != [out] {
                return Err(Error::ShapeMismatch {
                    op: "Linear::new (bias)",
                    expected: vec![out],
                    found: b.shape().to_vec(),
                });
            }
        }
        let bias = bias.map(Tensor::to_vec_f32);
        if precision == Precision::Bf16 {
            if let Some((bits, dtype)) = weight.storage_bits16() {
                // B = W^T: B(i, o) = W(o, i) at o*s0 + i*s1 of the view's storage.
                let s = weight.strides();
                let (rs, cs) = (s[1], s[0]);
                check_bias(bias.as_deref(), out)?;
                let isa = threads.isa;
                let packed = threads.install(|| match dtype {
                    crate::DType::BF16 => PackedB::from_bf16_bits(isa, bits, inp, out, rs, cs),
                    _ => PackedB::from_f16_bits(isa, bits, inp, out, rs, cs),
                });
                return Ok(Linear { packed, bias });
            }
        }
        let w = if weight.dtype() == crate::DType::F32 {
            weight.clone()
        } else {
            weight.to_f32()?
        };
        let (data, [s0, s1]) = w.strided_f32()?;
        let b = MatRef::strided(data, out, inp, s0, s1).t();
        Self::pack(b, bias, precision, threads)
    }

    /// Packs several `[out_i, in]` weights stacked along `out` (e.g. separate q, k and v
    /// projections as one `[3C, C]` weight) without concatenating them first: f32 tensors
    /// (owned or memory-mapped, any strides) are packed in place, others are converted to
    /// f32 one at a time. `bias` is `[sum of out_i]`.
    pub fn stacked_with(
        weights: &[&Tensor],
        bias: Option<Vec<f32>>,
        precision: Precision,
        threads: &Threads,
    ) -> Result<Linear> {
        let inp = weights
            .first()
            .map_or(0, |w| w.shape().get(1).copied().unwrap_or(0));
        for w in weights {
            if w.rank() != 2 || w.shape()[1] != inp {
                return Err(Error::BadShape {
                    op: "Linear::stacked_with",
                    shape: w.shape().to_vec(),
                    reason: format!("each weight must be [out, {inp}]"),
                });
            }
        }
        let out = weights.iter().map(|w| w.shape()[0]).sum();
        check_bias(bias.as_deref(), out)?;
        let f32s = weights
            .iter()
            .map(|w| {
                if w.dtype() == crate::DType::F32 {
                    Ok((*w).clone())
                } else {
                    w.to_f32()
                }
            })
            .collect::<Result<Vec<Tensor>>>()?;
        let parts = f32s
            .iter()
            .map(|w| {
                let (data, [s0, s1]) = w.strided_f32()?;
                Ok(MatRef::strided(data, w.shape()[0], inp, s0, s1).t())
            })
            .collect::<Result<Vec<MatRef<'_>>>>()?;
        let isa = threads.isa;
        let packed =
            threads.install(|| PackedB::new_stacked(isa, &parts, precision == Precision::Bf16));
        Ok(Linear { packed, bias })
    }

    /// Packs a row-major `[out, in]` weight given as a slice (PyTorch's `Linear.weight`).
    pub fn from_rows(
        weight: &[f32],
        out: usize,
        inp: usize,
        bias: Option<Vec<f32>>,
        threads: &Threads,
    ) -> Result<Linear> {
        Self::from_rows_with(weight, out, inp, bias, Precision::F32, threads)
    }

    /// [`Linear::from_rows`] in `precision`.
    pub fn from_rows_with(
        weight: &[f32],
        out: usize,
        inp: usize,
        bias: Option<Vec<f32>>,
        precision: Precision,
        threads: &Threads,
    ) -> Result<Linear> {
        check_len(weight.len(), inp, out)?;
        Self::pack(
            MatRef::row_major(weight, out, inp).t(),
            bias,
            precision,
            threads,
        )
    }

    /// Packs a row-major `[in, out]` matrix used as `y = x B` (OpenAI's `proj` matrices).
    pub fn from_in_out(
        b: &[f32],
        inp: usize,
        out: usize,
        bias: Option<Vec<f32>>,
        threads: &Threads,
    ) -> Result<Linear> {
        Self::from_in_out_with(b, inp, out, bias, Precision::F32, threads)
    }

    /// [`Linear::from_in_out`] in `precision`.
    pub fn from_in_out_with(
        b: &[f32],
        inp: usize,
        out: usize,
        bias: Option<Vec<f32>>,
        precision: Precision,
        threads: &Threads,
    ) -> Result<Linear> {
        check_len(b.len(), inp, out)?;
        Self::pack(MatRef::row_major(b, inp, out), bias, precision, threads)
    }

    /// Packs `b` (`[in, out]`, any strides, its extent already checked).
    fn pack(
        b: MatRef<'_>,
        bias: Option<Vec<f32>>,
        precision: Precision,
        threads: &Threads,
    ) -> Result<Linear> {
        check_bias(bias.as_deref(), b.cols)?;
        let isa = threads.isa;
        let packed = threads.install(|| match precision {
            Precision::F32 => PackedB::new(isa, b),
            Precision::Bf16 => PackedB::new_bf16(isa, b),
        });
        Ok(Linear { packed, bias })
    }

    /// The element type of the packed weight.
    pub fn precision(&self) -> Precision {
        match self.packed.dtype() {
            ElemType::F32 => Precision::F32,
            ElemType::Bf16 => Precision::Bf16,
        }
    }

    /// `out <- act(x W^T + b)`, or with `accumulate`, `out <- out + x W^T + b` (a fused
    /// residual add; `act` must then be `None`). `x` is `[rows, in]`, `out` `[rows, out]`.
    pub fn forward_into(
        &self,
        x: &[f32],
        out: &mut [f32],
        act: Activation,
        accumulate: bool,
        threads: &Threads,
    ) {
        let k = self.in_features();
        let rows = x.len().checked_div(k).unwrap_or(0);
        let epi = Epilogue::bias_act(self.bias.as_deref(), act);
        let beta = if accumulate { 1.0 } else { 0.0 };
        threads.install(|| {
            clip_kernels::sgemm_prepacked(
                1.0,
                MatRef::row_major(x, rows, k),
                &self.packed,
                beta,
                MatMut::row_major(out, rows, self.out_features()),
                epi,
            )
        });
    }

    /// Bytes held by the packed weight.
    pub fn size_bytes(&self) -> usize {
        self.packed.size_bytes()
    }

    pub fn in_features(&self) -> usize {
        self.packed.k()
    }

    pub fn out_features(&self) -> usize {
        self.packed.n()
    }

    /// `out <- act(x W^T + b)` on raw rows: `x` is `[rows, in]`, `out` `[rows, out]`.
    pub fn forward_slices(&self, x: &[f32], out: &mut [f32], act: Activation, threads: &Threads) {
        let rows = x.len() / self.in_features().max(1);
        let epi = Epilogue::bias_act(self.bias.as_deref(), act);
        threads.install(|| {
            clip_kernels::sgemm_prepacked(
                1.0,
                MatRef::row_major(x, rows, self.in_features()),
                &self.packed,
                0.0,
                MatMut::row_major(out, rows, self.out_features()),
                epi,
            )
        });
    }
}

/// `Linear`'s weight slice must hold `inp*out` values.
fn check_len(len: usize, inp: usize, out: usize) -> Result<()> {
    if len != inp * out {
        return Err(Error::ElementCount {
            op: "Linear",
            expected: inp * out,
            found: len,
        });
    }
    Ok(())
}

/// `Linear`'s bias, if any, has one value per output.
fn check_bias(bias: Option<&[f32]>, out: usize) -> Result<()> {
    match bias {
        Some(b) if b.len() != out => Err(Error::ShapeMismatch {
            op: "Linear (bias)",
            expected: vec![out],
            found: vec![b.len()],
        }),
        _ => Ok(()),
    }
}

/// Rows per parallel chunk so each chunk has at least ~16k elements.
fn rows_per_chunk(cols: usize) -> usize {
    (16_384 / cols.max(1)).max(1)
}

impl Tensor {
    fn last_dim(&self, op: &'static str) -> Result<usize> {
        self.shape().last().copied().ok_or_else(|| Error::BadShape {
            op,
            shape: vec![],
            reason: "needs rank >= 1".into(),
        })
    }

    /// `self @ rhs`: `self` is `[..., M, K]` (leading dims flattened into M), `rhs` `[K, N]`.
    pub fn matmul(&self, rhs: &Tensor, threads: &Threads) -> Result<Tensor> {
        let k = self.last_dim("matmul")?;
        if rhs.rank() != 2 || rhs.shape()[0] != k {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                expected: vec![k, rhs.shape().last().copied().unwrap_or(0)],
                found: rhs.shape().to_vec(),
            });
        }
        let n = rhs.shape()[1];
        let a = self.to_f32()?;
        let m = a.numel() / k.max(1);
        let b = if rhs.dtype() == crate::DType::F32 {
            rhs.clone()
        } else {
            rhs.to_f32()?
        };
        let bdata = b.strided_f32()?;
        let bview = MatRef::strided(bdata.0, k, n, bdata.1[0], bdata.1[1]);
        let mut out = vec![0.0f32; m * n];
        let av = MatRef::row_major(a.as_f32_slice()?, m, k);
        threads.install(|| {
            clip_kernels::sgemm(
                threads.isa,
                1.0,
                av,
                bview,
                0.0,
                MatMut::row_major(&mut out, m, n),
                Epilogue::none(),
            )
        });
        let mut shape = self.shape().to_vec();
        *shape.last_mut().unwrap_or(&mut 0) = n;
        Tensor::from_vec(out, &shape)
    }

    /// `act(self W^T + b)` over the last dimension.
    pub fn linear(&self, layer: &Linear, act: Activation, threads: &Threads) -> Result<Tensor> {
        let k = self.last_dim("linear")?;
        if k != layer.in_features() {
            return Err(Error::ShapeMismatch {
                op: "linear",
                expected: vec![layer.in_features()],
                found: vec![k],
            });
        }
        let x = self.to_f32()?;
        let rows = x.numel() / k.max(1);
        let mut out = vec![0.0f32; rows * layer.out_features()];
        layer.forward_slices(x.as_f32_slice()?, &mut out, act, threads);
        let mut shape = self.shape().to_vec();
        *shape.last_mut().unwrap_or(&mut 0) = layer.out_features();
        Tensor::from_vec(out, &shape)
    }

    /// Softmax over the last dimension, with an optional causal mask (row i of each trailing
    /// `[T, T]` block keeps columns `j <= i`).
    pub fn softmax(&self, causal: bool, threads: &Threads) -> Result<Tensor> {
        let cols = self.last_dim("softmax")?;
        let mut t = self.to_f32()?;
        let isa = threads.isa;
        let data = t.as_f32_slice_mut()?;
        if causal {
            let rows = self
                .shape()
                .get(self.rank().wrapping_sub(2))
                .copied()
                .unwrap_or(1);
            if rows != cols {
                return Err(Error::BadShape {
                    op: "softmax (causal)",
                    shape: self.shape().to_vec(),
                    reason: "the last two dimensions must be equal".into(),
                });
            }
            threads.install(|| {
                data.par_chunks_mut(rows * cols)
                    .for_each(|blk| rows::softmax_rows(isa, blk, cols, SoftmaxMask::Causal))
            });
        } else {
            let chunk = rows_per_chunk(cols) * cols;
            threads.install(|| {
                data.par_chunks_mut(chunk.max(1))
                    .for_each(|blk| rows::softmax_rows(isa, blk, cols, SoftmaxMask::None))
            });
        }
        Ok(t)
    }

    /// Layer normalisation over the last dimension with `weight`, `bias` (`[C]`) and `eps`.
    pub fn layernorm(
        &self,
        weight: &Tensor,
        bias: &Tensor,
        eps: f32,
        threads: &Threads,
    ) -> Result<Tensor> {
        let cols = self.last_dim("layernorm")?;
        for (what, p) in [("layernorm (weight)", weight), ("layernorm (bias)", bias)] {
            if p.shape() != [cols] {
                return Err(Error::ShapeMismatch {
                    op: what,
                    expected: vec![cols],
                    found: p.shape().to_vec(),
                });
            }
        }
        let (w, b) = (weight.to_vec_f32(), bias.to_vec_f32());
        let mut t = self.to_f32()?;
        let isa = threads.isa;
        let data = t.as_f32_slice_mut()?;
        let chunk = rows_per_chunk(cols) * cols;
        threads.install(|| {
            data.par_chunks_mut(chunk.max(1))
                .for_each(|blk| rows::layernorm_rows_inplace(isa, blk, cols, &w, &b, eps))
        });
        Ok(t)
    }

    fn map_chunks(&self, threads: &Threads, f: impl Fn(Isa, &mut [f32]) + Sync) -> Result<Tensor> {
        let mut t = self.to_f32()?;
        let isa = threads.isa;
        let data = t.as_f32_slice_mut()?;
        threads.install(|| data.par_chunks_mut(16_384).for_each(|c| f(isa, c)));
        Ok(t)
    }

    /// Exact GELU, `0.5 x (1 + erf(x / sqrt 2))`, elementwise.
    pub fn gelu(&self, threads: &Threads) -> Result<Tensor> {
        self.map_chunks(threads, rows::gelu)
    }

    /// CLIP's `x * sigmoid(1.702 x)`, elementwise.
    pub fn quick_gelu(&self, threads: &Threads) -> Result<Tensor> {
        self.map_chunks(threads, rows::quick_gelu)
    }

    /// `self * s`, elementwise.
    pub fn scale(&self, s: f32, threads: &Threads) -> Result<Tensor> {
        self.map_chunks(threads, |isa, c| rows::scale(isa, c, s))
    }

    /// `self + other` for tensors of the same shape.
    pub fn add(&self, other: &Tensor, threads: &Threads) -> Result<Tensor> {
        if self.shape() != other.shape() {
            return Err(Error::ShapeMismatch {
                op: "add",
                expected: self.shape().to_vec(),
                found: other.shape().to_vec(),
            });
        }
        let o = other.to_f32()?;
        let src = o.as_f32_slice()?;
        let mut t = self.to_f32()?;
        let isa = threads.isa;
        let data = t.as_f32_slice_mut()?;
        threads.install(|| {
            data.par_chunks_mut(16_384)
                .zip(src.par_chunks(16_384))
                .for_each(|(d, s)| rows::add(isa, d, s))
        });
        Ok(t)
    }

    /// Multi-head scaled dot-product attention: `q`, `k`, `v` are `[B, T, H*D]`; the result is
    /// `[B, T, H*D]`, with scale `1/sqrt(D)` and an optional causal mask.
    pub fn attention(
        q: &Tensor,
        k: &Tensor,
        v: &Tensor,
        heads: usize,
        causal: bool,
        threads: &Threads,
    ) -> Result<Tensor> {
        if q.rank() != 3 || k.shape() != q.shape() || v.shape() != q.shape() {
            return Err(Error::ShapeMismatch {
                op: "attention",
                expected: q.shape().to_vec(),
                found: if k.shape() != q.shape() {
                    k.shape().to_vec()
                } else {
                    v.shape().to_vec()
                },
            });
        }
        let (b, t, c) = (q.shape()[0], q.shape()[1], q.shape()[2]);
        if heads == 0 || c % heads != 0 {
            return Err(Error::BadShape {
                op: "attention",
                shape: q.shape().to_vec(),
                reason: format!("width {c} is not a multiple of {heads} heads"),
            });
        }
        let d = c / heads;
        let (q, k, v) = (q.to_f32()?, k.to_f32()?, v.to_f32()?);
        let mut out = vec![0.0f32; b * t * c];
        let shape = AttentionShape {
            batch: b,
            seq: t,
            heads,
            head_dim: d,
        };
        let scale = 1.0 / (d as f32).sqrt();
        let (q, k, v) = (q.as_f32_slice()?, k.as_f32_slice()?, v.as_f32_slice()?);
        threads.install(|| {
            clip_kernels::attention(threads.isa, q, k, v, c, &mut out, shape, causal, scale)
        });
        Tensor::from_vec(out, &[b, t, c])
    }

    /// The f32 storage slice starting at this view's offset and the view's strides (for 2-D).
    fn strided_f32(&self) -> Result<(&[f32], [usize; 2])> {
        let all = self.storage_f32().ok_or(Error::DType {
            op: "strided view",
            expected: crate::DType::F32,
            found: self.dtype(),
        })?;
        let s = self.strides();
        Ok((&all[self.offset..], [s[0], s[1]]))
    }
}
